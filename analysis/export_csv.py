"""``collbench export --csv``: results and fits of runs as plain CSV files for spreadsheets.

``points.csv``: one row per measured point of every run, the result schema's columns (``bench.schema``; units
in the names: time_us, busbw_gbps, bytes) after ``run_id`` and ``run_dir``, numbers written in full (a round
trip gives them back exactly), booleans as true/false. ``fits.csv``: ``collbench fit``'s columns
(``analysis.fitting.FIT_COLUMNS``), one row per fitted curve or model. Both UTF-8, comma-separated, a header
row, no index. Never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.errors import AnalysisError
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
