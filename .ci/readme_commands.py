"""Print the README's Quick start commands, one per line, exactly as written (for .ci/run).

The Quick start section holds the newcomer's commands in fenced shell blocks; CI runs these and nothing
else, so a README path that breaks turns CI red.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FENCE = re.compile(r"```(?:bash|sh|shell|console)\n(.*?)```", re.S)


def quick_start_commands(readme: str) -> list[str]:
    """Commands of the fenced shell blocks between '## Quick start' and the next '## ' heading."""
    m = re.search(r"^## Quick start\s*$(.*?)(?=^## )", readme, re.S | re.M)
    if m is None:
        raise SystemExit("README.md has no '## Quick start' section")
    commands = []
    for block in FENCE.findall(m.group(1)):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line.removeprefix("$ "))
    return commands


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    print("\n".join(quick_start_commands(path.read_text(encoding="utf-8"))))
