"""``collbench export --csv``: results and fits of runs as plain CSV files for spreadsheets.

``points.csv``: one row per measured point of every run, the result schema's columns (``bench.schema``; units
in the names: time_us, busbw_gbps, bytes) after ``run_id`` and ``run_dir``, numbers written in full (a round
trip gives them back exactly), booleans as true/false. ``fits.csv``: ``collbench fit``'s columns
(``analysis.fitting.FIT_COLUMNS``), one row per fitted curve or model. Both UTF-8, comma-separated, a header
row, no index. Never imports torch.

``collbench import`` reads ``points.csv`` back (``read_points``, ``write_runs``): one run directory per
``run_id``, with the points exactly as exported (host, hardware and samples are not in the CSV: name the GPU to
``verdict`` with ``--gpu``). Edited in a spreadsheet and saved again, the file still imports while its header
keeps the column names (in any order).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import AnalysisError
from analysis.rundir import base_meta, new_run_dir, write_run_dir
from bench import schema
from bench.schema import CSV_COLUMNS

POINT_COLUMNS = ("run_id", "run_dir", *CSV_COLUMNS)


def points_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The points of ``df`` (``analysis.read_runs.load_runs``) in POINT_COLUMNS order, booleans as true/false."""
    out = df.loc[:, [c for c in POINT_COLUMNS if c in df.columns]].copy()
    for col in out.columns:
        if out[col].dtype == bool:
            out[col] = out[col].map({True: "true", False: "false"})
    return out


def write_points(df: pd.DataFrame, path: Path, force: bool = False) -> Path:
    """``path`` (claimed by the caller: new, or ``force``) with every point of ``df``."""
    try:
        with open(path, "w" if force else "x", newline="", encoding="utf-8") as f:
            points_frame(df).to_csv(f, index=False)
    except FileExistsError:
        raise AnalysisError(f"{path} exists: pass --force to replace it, or choose another --out") from None
    except OSError as exc:
        raise AnalysisError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def sniff(first_line: str) -> bool:
    """True when ``first_line`` is the header of an exported points.csv."""
    return first_line.replace(" ", "").replace('"', "").startswith("run_id,run_dir,")


def read_points(path: Path) -> dict[str, list[dict[str, Any]]]:
    """run_id -> typed rows of an exported points.csv, read one line at a time; AnalysisError naming the file
    and line otherwise."""
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header or "run_id" not in header:
                raise AnalysisError(f"{path}:1: expected an exported points.csv header (run_id, run_dir, ...)")
            order = schema.column_order(header, f"{path}:1")
            rid = header.index("run_id")
            for lineno, fields in enumerate(reader, start=2):
                if not fields:
                    continue
                at = f"{path}:{lineno}"
                if len(fields) != len(header):
                    raise AnalysisError(f"{at}: expected {len(header)} fields as the header names, got {len(fields)}")
                row = {name: schema.parse_field(name, fields[i], at) for name, i in zip(CSV_COLUMNS, order,
                                                                                      strict=True) if i is not None}
                row = schema.upgrade_v1_row(row)
                if any(row[c] is None for c in schema.REQUIRED_VALUES):
                    raise AnalysisError(f"{at}: expected {' and '.join(schema.REQUIRED_VALUES)} in every row")
                runs.setdefault(fields[rid] or "unnamed", []).append(row)
    except schema.SchemaError as exc:
        raise AnalysisError(str(exc)) from None
    except UnicodeDecodeError:
        raise AnalysisError(f"{path}: not a text file") from None
    if not runs:
        raise AnalysisError(f"{path}: an exported points.csv with no point")
    return runs


def write_runs(path: Path, runs: dict[str, list[dict[str, Any]]], out: Path) -> list[Path]:
    """One new run directory under ``out`` per run of an exported points.csv."""
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    written = []
    for run_id, rows in runs.items():
        run_dir = new_run_dir(out, "import")
        meta = base_meta(
            run_dir, command=["collbench", "import", path.name], backend=rows[0]["backend"], device=rows[0]["device"],
            world_size=max(int(r["world_size"]) for r in rows),
            config={"collectives": sorted({r["collective"] for r in rows}),
                    "algorithms": sorted({r["algorithm"] for r in rows})},
            warnings=[f"re-imported from {path.name} (collbench export --csv) of run {run_id}: the points only; "
                      "host, hardware, versions and per-iteration samples are not in the CSV"],
            source={"file": str(path), "format": "collbench-csv", "sha256": sha, "run_id": run_id},
        )  # fmt: skip
        written.append(write_run_dir(run_dir, meta, rows))
    return written
