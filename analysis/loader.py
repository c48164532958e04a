"""Read collbench run directories (results.csv + run.json) into one tidy pandas table.

A run interrupted mid-write may end in a truncated CSV line: it is dropped with a warning. A file that
is not a collbench result (wrong header, unknown schema version, unparsable JSON, bad values) raises
:class:`AnalysisError` with one clear line. Files are read as data only (csv/json; never pickle or eval).
"""

from __future__ import annotations

import csv
import io
import json
import math
import socket
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import AnalysisError
from analysis.schema import BOOL_COLUMNS, CSV_COLUMNS, FLOAT_COLUMNS, INT_COLUMNS, SCHEMA_VERSION

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


def _parse_bool(text: str, where: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0", ""):
        return False
    raise AnalysisError(f"{where}: {text!r} is not a boolean")


def _parse_number(text: str, kind: type, where: str) -> float | int | None:
    text = text.strip()
    if text == "" or text.upper() == "N/A":
        return None
    try:
        value = float(text)
    except ValueError:
        raise AnalysisError(f"{where}: {text!r} is not a number") from None
    if kind is int:
        if not math.isfinite(value) or value != int(value):
            raise AnalysisError(f"{where}: {text!r} is not an integer")
        return int(value)
    return value


def _read_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"{path}: corrupt run.json ({exc})") from None
    if not isinstance(meta, dict):
        raise AnalysisError(f"{path}: corrupt run.json (not a JSON object)")
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise AnalysisError(
            f"{path}: schema_version {version!r} is not supported (this collbench reads {SCHEMA_VERSION})"
        )
    return meta


def _read_csv_rows(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Typed rows of results.csv, and warnings (a dropped truncated last line)."""
    try:
        raw = path.read_text()
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise AnalysisError(f"{path}: corrupt results.csv (not text)") from None
    notes: list[str] = []
    lines = raw.splitlines(keepends=True)
    if not lines:
        raise AnalysisError(f"{path}: empty results.csv (no header)")
    if not lines[-1].endswith("\n") and len(lines) > 1:
        notes.append(f"{path}: dropped a truncated last line (interrupted run)")
        lines = lines[:-1]
    reader = csv.reader(io.StringIO("".join(lines)))
    header = tuple(next(reader))
    if header != CSV_COLUMNS:
        missing = [c for c in CSV_COLUMNS if c not in header]
        raise AnalysisError(
            f"{path}: not a collbench v{SCHEMA_VERSION} results.csv (missing columns: {missing or header})"
        )
    rows: list[dict[str, Any]] = []
    for lineno, fields in enumerate(reader, start=2):
        if not fields:
            continue
        where = f"{path}:{lineno}"
        if len(fields) != len(CSV_COLUMNS):
            raise AnalysisError(f"{where}: corrupt row ({len(fields)} fields, expected {len(CSV_COLUMNS)})")
        row: dict[str, Any] = {}
        for name, text in zip(CSV_COLUMNS, fields, strict=True):
            if name in BOOL_COLUMNS:
                row[name] = _parse_bool(text, f"{where} {name}")
            elif name in INT_COLUMNS:
                row[name] = _parse_number(text, int, f"{where} {name}")
            elif name in FLOAT_COLUMNS:
                row[name] = _parse_number(text, float, f"{where} {name}")
            else:
                row[name] = text
        if row["time_us"] is None or row["bytes"] is None:
            raise AnalysisError(f"{where}: corrupt row (no time_us or bytes)")
        rows.append(row)
    return rows, notes


def _writer_alive(writer: object) -> bool | None:
    """Is the process that writes a ``running`` run still there? None when this host cannot tell.

    The rule of docs/results-schema.md (``writer``): same host, and /proc/PID/stat start time unchanged.
    """
    if not isinstance(writer, dict) or writer.get("host") != socket.gethostname():
        return None
    pid = writer.get("pid")
    if not isinstance(pid, int) or pid <= 0 or not Path("/proc/self").exists():
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] not in ("Z", "X") and writer.get("pid_start_ticks") == int(fields[19])


def load_run(path: str | Path) -> Run:
    """One run directory (or its results.csv / run.json) as a :class:`Run`."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if not path.exists():
        raise AnalysisError(f"{path}: no such run directory")
    meta = _read_json(path / "run.json")
    rows, notes = _read_csv_rows(path / "results.csv")
    json_points = meta.get("points") or []
    if not isinstance(json_points, list):
        raise AnalysisError(f"{path / 'run.json'}: corrupt run.json (points is not a list)")
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
    if meta.get("status") == "running" and _writer_alive(meta.get("writer")) is False:
        meta["status"] = "incomplete"  # SIGKILLed writer: what collbench itself would now report
        meta["status_reason"] = f"writer process {meta['writer']['pid']} is gone without finishing the run"
    if meta.get("status") in ("running", "incomplete", "failed"):
        notes.append(f"{path}: run status is {meta.get('status')} ({meta.get('status_reason') or 'no reason given'})")
    head = {k: v for k, v in meta.items() if k != "points"}
    return Run(path=path, meta=head, points=frame, warnings=tuple(notes))


def load_runs(paths: Iterable[str | Path], *, warn: bool = True) -> pd.DataFrame:
    """Every point of every run in ``paths`` as one table (CSV columns + run_id, run_dir, status,
    launcher, samples_us). Directories holding several runs are searched one level down."""
    runs = [run for p in paths for run in find_runs(p)]
    if not runs:
        raise AnalysisError("no runs given")
    frames = []
    for run in runs:
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
    if path.is_file() or (path / "run.json").exists():
        return [load_run(path)]
    children = sorted(p for p in path.iterdir() if (p / "run.json").exists())
    if not children:
        raise AnalysisError(f"{path}: no run directory (run.json + results.csv) here")
    return [load_run(p) for p in children]
