"""The two sides of ``collbench compare``: one run, or several runs of one configuration, per side.

A side is a run directory, a ``collbench run --repeat`` directory (its manifest ``repeat.json`` lists the runs),
a folder of run directories, or a folder of ``--repeat`` directories (the ``--out`` of ``run --repeat``). A
folder is read as a multi-run side on purpose and said so (``Side.how``), never cut down to one of its runs.
Refused with one line (exit 2), before any statistics: a side with no point, runs of different configurations
within a side or between the sides (collectives, backend, device, world size, dtype, op), and one run on both
sides (``compare D D``, or a run that is in both folders).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from analysis.errors import AnalysisError
from analysis.read_runs import Run, find_runs, load_run, unique_runs
from bench.schema import REPEAT_KIND, REPEAT_MANIFEST

#: what a run's points must agree on within a side and between the sides (the algorithms only within a side:
#: a new version may add or drop an algorithm, whose points are then listed as unmatched)
CONFIG_FIELDS = ("collective", "backend", "device", "world_size", "dtype", "op")


@dataclass(frozen=True)
class Side:
    """BASE or NEW: its runs and how the path was read (said in the output)."""

    label: str
    path: str
    runs: tuple[Run, ...]
    how: str  # "one run" | "repeat directory (K runs)" | "folder of K run directories"


def _repeat_runs(path: Path) -> list[Run] | None:
    """The runs a ``--repeat`` manifest lists (None when ``path`` has no manifest)."""
    manifest = path / REPEAT_MANIFEST
    if not manifest.is_file():
        return None
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"{manifest}: corrupt manifest ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != REPEAT_KIND or not isinstance(meta.get("runs"), list):
        raise AnalysisError(f"{manifest}: not a collbench --repeat manifest")
    names = [r.get("run_dir") for r in meta["runs"] if isinstance(r, dict)]
    if not names or not all(isinstance(n, str) and n and "/" not in n and n not in (".", "..") for n in names):
        raise AnalysisError(f"{manifest}: lists no run directory (the --repeat run made none?)")
    return [load_run(path / name) for name in names]


def _nested_repeats(path: Path) -> list[Path]:
    """The ``--repeat`` directories directly under ``path`` when it holds no run directory itself."""
    children = sorted(c for c in path.iterdir() if c.is_dir())
    if any((c / "run.json").exists() for c in children):
        return []
    return [c for c in children if (c / REPEAT_MANIFEST).is_file()]


def load_side(path: str, label: str) -> Side:
    """One side of a comparison from ``path`` (module doc); AnalysisError with one line when it cannot be one."""
    p = Path(path)
    repeat = _repeat_runs(p) if p.is_dir() else None
    nested = _nested_repeats(p) if repeat is None and p.is_dir() and not (p / "run.json").exists() else []
    if nested:  # a --out folder holding --repeat directories: all their runs
        runs = [run for d in nested for run in (_repeat_runs(d) or [])]
    else:
        runs = repeat if repeat is not None else find_runs(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = unique_runs(runs)
    if len(kept) < len(runs):
        raise AnalysisError(f"{label} {path}: holds the same run twice (a copy of a run is not a second run)")
    if repeat is not None:
        how = f"repeat directory ({len(kept)} runs)"
    elif nested:
        how = f"folder of {len(nested)} repeat director{'y' if len(nested) == 1 else 'ies'} ({len(kept)} runs)"
    elif p.is_dir() and not (p / "run.json").exists():
        n = len(kept)
        runs_word = "run directory" if n == 1 else "run directories"
        how = f"folder of {n} {runs_word}, read as the {n} run{'' if n == 1 else 's'} of one side"
    else:
        how = "one run"
    side = Side(label, path, tuple(kept), how)
    check_side(side)
    return side


def configuration(run: Run) -> dict[str, tuple]:
    """What a run measured (from its points): the sorted values of each CONFIG_FIELDS column, and its algorithms."""
    pts = run.points
    out = {name: tuple(sorted({str(v) for v in pts[name].dropna()})) for name in CONFIG_FIELDS}
    out["algorithm"] = tuple(sorted({f"{c}/{a}" for c, a in zip(pts["collective"], pts["algorithm"], strict=True)}))
    return out


def _differs(a: dict[str, tuple], b: dict[str, tuple], fields: tuple[str, ...]) -> str:
    for name in fields:
        if a[name] != b[name]:
            return f"{name} {', '.join(a[name]) or 'none'} vs {', '.join(b[name]) or 'none'}"
    return ""


def check_side(side: Side) -> None:
    """Every run of ``side`` has points and measured the same configuration (algorithms included)."""
    for run in side.runs:
        if run.points.empty:
            raise AnalysisError(f"{side.label} {side.path}: run {run.path} has no points: nothing to compare")
    first = configuration(side.runs[0])
    for run in side.runs[1:]:
        diff = _differs(first, configuration(run), (*CONFIG_FIELDS, "algorithm"))
        if diff:
            raise AnalysisError(f"{side.label} {side.path}: runs of different configurations ({side.runs[0].path.name} "
                                f"and {run.path.name}: {diff}); a side holds runs of one configuration")  # fmt: skip


def check_sides(base: Side, new: Side) -> None:
    """Not one run on both sides; the same configuration (collectives, backend, device, world size, dtype, op)."""
    if Path(base.path).resolve() == Path(new.path).resolve():
        raise AnalysisError(f"BASE and NEW are the same path ({base.path}): compare two different runs")
    shared = {r.run_id for r in base.runs} & {r.run_id for r in new.runs}
    if shared:
        raise AnalysisError(f"run {sorted(shared)[0]} is on both sides: BASE and NEW must be different runs")
    diff = _differs(configuration(base.runs[0]), configuration(new.runs[0]), CONFIG_FIELDS)
    if diff:
        raise AnalysisError(f"BASE and NEW measured different configurations ({diff}): nothing comparable")
