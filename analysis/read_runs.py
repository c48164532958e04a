"""Read collbench run directories (results.csv + run.json) into one tidy pandas table.

A run interrupted mid-write may end in a truncated CSV line: it is dropped with a warning. A file that
is not a collbench result (wrong header, unknown schema version, unparsable JSON, bad values) raises
:class:`AnalysisError` with one clear line. Files are read as data only (csv/json; never pickle or eval).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from bench import schema
from bench.schema import BOOL_COLUMNS, CSV_COLUMNS, FLOAT_COLUMNS, INT_COLUMNS

#: extra columns of the tidy table, after the CSV ones
EXTRA_COLUMNS = ("run_id", "run_dir", "status", "launcher", "samples_us")


@dataclass(frozen=True)
class Run:
    """One run directory: its metadata (run.json without points) and its points as a DataFrame."""

    path: Path
    meta: dict[str, Any]
    points: pd.DataFrame
    warnings: tuple[str, ...] = field(default=())

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.path.name)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AnalysisError(f"{path}: is a directory, not a run.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"{path}: corrupt run.json ({exc})") from None
    try:
        return schema.check_run_json(meta, str(path))
    except schema.SchemaError as exc:
        raise AnalysisError(str(exc)) from None


def _read_csv_rows(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Typed rows of results.csv (columns in any order), and warnings (a dropped truncated last line)."""
    try:
        raw = path.read_text()
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AnalysisError(f"{path}: is a directory, not a results.csv") from None
    except UnicodeDecodeError:
        raise AnalysisError(f"{path}: corrupt results.csv (not text)") from None
    try:
        return schema.read_results_csv(raw, str(path))
    except schema.SchemaError as exc:
        raise AnalysisError(str(exc)) from None


def load_run(path: str | Path) -> Run:
    """One run directory (or its results.csv / run.json) as a :class:`Run`."""
    path = Path(path)
    if path.name in ("run.json", "results.csv") and not path.is_dir():
        path = path.parent
    if not path.is_dir():
        raise AnalysisError(f"{path}: no such run directory")
    meta = _read_json(path / "run.json")
    rows, notes = _read_csv_rows(path / "results.csv")
    json_points = meta.get("points") or []
    run_id = str(meta.get("run_id") or path.name)
    for i, row in enumerate(rows):
        samples: tuple[float, ...] | None = None
        if i < len(json_points) and isinstance(json_points[i], dict):
            raw = json_points[i].get("samples_us") or []
            try:
                samples = tuple(float(x) for x in raw) or None
            except (TypeError, ValueError):
                raise AnalysisError(f"{path / 'run.json'}: corrupt samples_us in point {i}") from None
        row.update(run_id=run_id, run_dir=str(path), status=meta.get("status"), launcher=meta.get("launcher"),
                   samples_us=samples)  # fmt: skip
    frame = pd.DataFrame(rows, columns=[*CSV_COLUMNS, *EXTRA_COLUMNS])
    for name in INT_COLUMNS:
        frame[name] = frame[name].astype("Int64")
    for name in FLOAT_COLUMNS:
        frame[name] = frame[name].astype("float64")
    for name in BOOL_COLUMNS:
        frame[name] = frame[name].astype(bool)
    frame = _physical_points(frame, path, notes)
    if meta.get("status") == "running":  # a SIGKILLed writer: what collbench itself would now report
        meta["status"], meta["status_reason"] = schema.effective_status(meta), schema.effective_status_reason(meta)
    if meta.get("status") in ("running", "incomplete", "failed"):
        notes.append(f"{path}: run status is {meta.get('status')} ({meta.get('status_reason') or 'no reason given'})")
    head = {k: v for k, v in meta.items() if k != "points"}
    return Run(path=path, meta=head, points=frame, warnings=tuple(notes))


#: what makes two rows of one run the same point (a second copy adds no evidence)
POINT_KEY = ("collective", "algorithm", "world_size", "bytes", "in_place", "dtype", "op", "root", "cuda_graph",
             "segment_bytes", "backend", "device")  # fmt: skip


def _physical_points(frame: pd.DataFrame, path: Path, notes: list[str]) -> pd.DataFrame:
    """The points whose time and bandwidths can be physical (finite, time > 0, bandwidths >= 0), each once:
    the others are dropped, counted in one warning each, and never fitted, compared or drawn."""
    bad = ~(np.isfinite(frame["time_us"]) & (frame["time_us"] > 0))
    for name in ("algbw_gbps", "busbw_gbps"):
        bad |= ~(np.isfinite(frame[name]) & (frame[name] >= 0))
    if bad.any():
        notes.append(f"{path}: {int(bad.sum())} point(s) with a time or bandwidth that cannot be physical (nan, inf, "
                     "zero or negative) left out")  # fmt: skip
        frame = frame[~bad]
    key = [c for c in POINT_KEY if c in frame.columns]
    dup = frame.duplicated(subset=key, keep="first")
    if dup.any():
        notes.append(f"{path}: {int(dup.sum())} duplicated point(s) left out (the first of each kept)")
        frame = frame[~dup]
    return frame.reset_index(drop=True)


def unique_runs(runs: Iterable[Run], *, warn: bool = True) -> list[Run]:
    """``runs`` without a second copy of a run already in the list (same run_id): the same evidence, not more."""
    out, seen = [], set()
    for run in runs:
        if run.run_id in seen:
            if warn:
                warnings.warn(f"{run.path}: run {run.run_id} was read already (a copy?): left out", stacklevel=3)
            continue
        seen.add(run.run_id)
        out.append(run)
    return out


def load_runs(paths: Iterable[str | Path], *, warn: bool = True) -> pd.DataFrame:
    """Every point of every run in ``paths`` as one table (CSV columns + run_id, run_dir, status,
    launcher, samples_us). Directories holding several runs are searched one level down."""
    runs = [run for p in paths for run in find_runs(p)]
    if not runs:
        raise AnalysisError("no runs given")
    frames = []
    for run in unique_runs(runs, warn=warn):
        if warn:
            for note in run.warnings:
                warnings.warn(note, stacklevel=2)
        frames.append(run.points)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def find_runs(path: str | Path) -> list[Run]:
    """The run at ``path``, or every run directly under it (a ``results/`` parent)."""
    path = Path(path)
    if not path.exists():
        raise AnalysisError(f"{path}: no such file or directory")
    if not path.is_dir():
        if path.name in ("run.json", "results.csv"):
            return [load_run(path.parent)]
        raise AnalysisError(f"{path}: not a run directory (a directory holding run.json and results.csv)")
    if (path / "run.json").exists():
        return [load_run(path)]
    children = sorted(p for p in path.iterdir() if (p / "run.json").exists())
    if not children:
        raise AnalysisError(f"{path}: no run directory (run.json + results.csv) here")
    return [load_run(p) for p in children]
