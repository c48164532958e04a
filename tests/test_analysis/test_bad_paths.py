"""Every subcommand answers a path it cannot use with one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collbench.cli import main

BAD = {
    "missing": lambda tmp: str(tmp / "nope"),
    "device": lambda tmp: "/dev/null",
    "empty dir": lambda tmp: str(tmp),
    "text file": lambda tmp: _text(tmp),
}


def _text(tmp: Path) -> str:
    path = tmp / "notes.txt"
    path.write_text("not a result\n")
    return str(path)


COMMANDS = {
    "fit": lambda bad: ["fit", bad],
    "report": lambda bad: ["report", bad],
    "compare (base)": lambda bad: ["compare", bad, bad],
    "import": lambda bad: ["import", bad],
    "predict": lambda bad: ["predict", "--fits", bad, "--bytes", "1M", "--world-sizes", "8"],
}


@pytest.mark.parametrize("what", list(BAD))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_bad_path_is_one_line_and_exit_2(tmp_path: Path, command: str, what: str, capsys) -> None:
    """In process (an escaping exception fails the test as a traceback would); one subprocess check below."""
    bad = BAD[what](tmp_path)
    args = COMMANDS[command](bad)
    if args[0] in ("import", "fit", "report"):
        args += ["--out", str(tmp_path / "out")]
    assert main(args) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("collbench: error: "), lines


def test_bad_path_through_the_console_script() -> None:
    proc = subprocess.run([sys.executable, "-m", "collbench", "predict", "--fits", "/dev/null", "--bytes", "1M",
                           "--world-sizes", "8"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith("collbench: error: /dev/null"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


RUN = str(Path(__file__).resolve().parents[2] / "results" / "cpu-2core" / "20261126T171537Z-vm-14de11")
BAD_NUMBERS = [
    (["report", RUN, "--compute-ms", "-100"], "--compute-ms must be a finite number > 0"),
    (["report", RUN, "--peak-gbps", "-5"], "--peak-gbps must be a finite number > 0"),
    (["report", RUN, "--peak-gbps", "nan"], "--peak-gbps must be a finite number > 0"),
    (["report", RUN, "--overlap", "2"], "--overlap must be between 0 and 1"),
    (["report", RUN, "--boot", "100000000"], "--boot must be between 0 and"),
    (["fit", RUN, "--boot", "100000000"], "--boot must be between 0 and"),
    (["predict", "--fits", RUN, "--boot", "-1"], "--boot must be between 0 and"),
    (["predict", "--fits", RUN, "--scaling", "--grad-bytes", "1G", "--compute-ms", "-1"], "--compute-ms must be"),
    (["predict", "--fits", RUN, "--scaling", "--grad-bytes", "1G", "--overlap", "nan"], "--overlap must be"),
    (["predict", "--fits", RUN, "--scaling", "--grad-bytes", "1G", "--gpu-hour-usd", "-2"], "--gpu-hour-usd must"),
]


@pytest.mark.parametrize(("args", "message"), BAD_NUMBERS, ids=[" ".join(a[2:]) for a, _ in BAD_NUMBERS])
def test_unphysical_numbers_are_one_line_and_exit_2_before_any_output(tmp_path: Path, capsys, args: list[str],
                                                                       message: str) -> None:  # fmt: skip
    out = tmp_path / "out"
    if args[0] in ("report", "fit"):
        args = [*args, "--out", str(out)]
    assert main(args) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()  # refused before any folder was made
