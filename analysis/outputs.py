"""Output paths of the analysis writers: a writer creates new files, or refuses before computing anything.

``claim_output_file`` (export's ``--out FILE``) and ``claim_output_dir`` (report's and fit's ``--out DIR``) check
a path before anything is written: an existing output is refused with one ``AnalysisError`` line naming
``--force`` (the command exits 2), and a path inside a run directory (``results.csv`` and ``run.json`` above all,
the only copy of a measurement) is refused always, ``--force`` or not: only the command that made a run directory
writes inside it. ``default_output_dir``: where fit and report write without ``--out`` (beside a run directory,
inside a folder of runs). docs/outputs.md: the rules and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from analysis.errors import AnalysisError
from bench.schema import RUN_FILES, enclosing_run_dir, folder_of, inside_run_error, is_run_dir


def run_dir_of(path: Path) -> Path | None:
    """The run directory ``path`` is one of the own files of (``<run>/results.csv`` or ``<run>/run.json`` where
    ``<run>`` holds a result file), else None."""
    parent = path.parent
    if path.name in RUN_FILES and is_run_dir(parent):
        return parent
    return None


def _refuse_run_file(path: Path) -> None:
    run = run_dir_of(path)
    if run is not None:
        raise AnalysisError(f"{path} is a result file of the run directory {run}: collbench never writes over a "
                            "run's results.csv or run.json (not even with --force); choose another --out")  # fmt: skip


def check_outside_runs(path: str | Path, instead: str | Path | None = None) -> None:
    """AnalysisError (one line) when ``path`` is or lies inside a run directory: only the command that made a run
    directory writes inside it (``instead``: the place the line suggests; default the run's parent)."""
    refused = inside_run_error(path, instead)
    if refused is not None:
        raise AnalysisError(refused)


def default_output_dir(first_input: str | Path, kind: str) -> Path:
    """Where fit (``kind`` "fit"), report ("report") and scale --study ("study") write without --out: beside a
    run directory (``<run>.fit``), inside a folder of runs (``<folder>/fit``). ``first_input``: the command's
    first input."""
    path = Path(first_input)
    if path.name in RUN_FILES and path.is_file():
        path = path.parent
    if not is_run_dir(path):
        return path / kind
    named = path if path.name not in ("", "..") else path.resolve()
    return folder_of(named) / f"{named.name}.{kind}"


def claim_output_file(path: str | Path, force: bool = False) -> Path:
    """``path`` checked as a new output file: AnalysisError when it exists (unless ``force``), is a directory,
    or lies inside a run directory (always; a run's own results.csv and run.json with their own line)."""
    path = Path(path)
    _refuse_run_file(path)
    run = enclosing_run_dir(path)
    check_outside_runs(path, folder_of(run) / path.name if run is not None else None)
    if path.is_dir():
        raise AnalysisError(f"{path} is a directory: --out names the file to write")
    if path.exists() and not force:
        raise AnalysisError(f"{path} exists: pass --force to replace it, or choose another --out")
    return path


def claim_output_dir(path: str | Path, outputs: Iterable[str], force: bool = False, default: bool = False,
                     instead: str | Path | None = None) -> Path:  # fmt: skip
    """``path`` as the directory of the files and folders named in ``outputs``, created if missing.

    AnalysisError when it is a file, cannot be created, already holds one of ``outputs`` (unless ``force``;
    ``default``: the path is the command's default, so the message also offers ``--out``), or is (inside) a run
    directory (always; ``instead``: the place that message suggests). Files other than ``outputs`` in the
    directory are left alone."""
    path = Path(path)
    names = list(outputs)
    for name in names:
        _refuse_run_file(path / name)
    check_outside_runs(path, instead)
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
