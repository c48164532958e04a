"""Output paths of the analysis writers: a writer creates new files, or refuses before computing anything.

``claim_output_file`` (export's ``--out FILE``) and ``claim_output_dir`` (report's and fit's ``--out DIR``) check
a path before anything is written: an existing output is refused with one ``AnalysisError`` line naming
``--force`` (the command exits 2), and a run directory's own files (``results.csv``, ``run.json``) are refused
always, ``--force`` or not, since they are the only copy of a measurement. docs/outputs.md: the rules and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from analysis.errors import AnalysisError

#: the files that make a directory a run directory (bench.schema); never written by an analysis command
RUN_FILES = ("results.csv", "run.json")


def run_dir_of(path: Path) -> Path | None:
    """The run directory ``path`` is one of the own files of (``<run>/results.csv`` or ``<run>/run.json`` where
    ``<run>`` holds a result file), else None."""
    parent = path.parent
    if path.name in RUN_FILES and any((parent / name).is_file() for name in RUN_FILES):
        return parent
    return None


def _refuse_run_file(path: Path) -> None:
    run = run_dir_of(path)
    if run is not None:
        raise AnalysisError(f"{path} is a result file of the run directory {run}: collbench never writes over a "
                            "run's results.csv or run.json (not even with --force); choose another --out")  # fmt: skip


def claim_output_file(path: str | Path, force: bool = False) -> Path:
    """``path`` checked as a new output file: AnalysisError when it exists (unless ``force``), is a directory,
    or is a run directory's own file (always)."""
    path = Path(path)
    _refuse_run_file(path)
    if path.is_dir():
        raise AnalysisError(f"{path} is a directory: --out names the file to write")
    if path.exists() and not force:
        raise AnalysisError(f"{path} exists: pass --force to replace it, or choose another --out")
    return path


def claim_output_dir(path: str | Path, outputs: Iterable[str], force: bool = False, default: bool = False) -> Path:
    """``path`` as the directory of the files and folders named in ``outputs``, created if missing.

    AnalysisError when it is a file, cannot be created, or already holds one of ``outputs`` (unless ``force``;
    ``default``: the path is the command's default, so the message also offers ``--out``). Files other than
    ``outputs`` in the directory are left alone, and no name in ``outputs`` may be a run's own file."""
    path = Path(path)
    names = list(outputs)
    for name in names:
        _refuse_run_file(path / name)
    if path.exists() and not path.is_dir():
        raise AnalysisError(f"{path} is a file: --out names a directory")
    taken = [n for n in names if (path / n).exists()]
    if taken and not force:
        where = "the default output directory " if default else ""
        raise AnalysisError(f"{where}{path} already holds {taken[0]} (an earlier output): pass --force to replace "
                            "it, or choose another --out")  # fmt: skip
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AnalysisError(f"cannot create {path}: {exc.strerror or exc}") from None
    return path
