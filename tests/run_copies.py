"""Test helper: a second copy of a run directory under a new run_id."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def copy_run(run: Path, dst: Path) -> Path:
    """A copy of ``run`` under a new run_id (compare refuses one run on both sides, a copy is a second run)."""
    copy = Path(shutil.copytree(run, dst / f"{Path(run).name}-copy"))
    meta = json.loads((copy / "run.json").read_text())
    meta["run_id"] = f"{meta['run_id']}-copy"
    (copy / "run.json").write_text(json.dumps(meta))
    return copy
