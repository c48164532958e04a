"""Write a schema-v1 run directory from plain rows (imports and synthetic runs); never overwrites one."""

from __future__ import annotations

import csv
import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from analysis.errors import AnalysisError
from analysis.schema import CSV_COLUMNS, SCHEMA_VERSION


def csv_value(value: Any) -> str:
    """results.csv text of one value: true/false, empty for None, repr-exact floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.7g}"
    return str(value)


def new_run_dir(parent: str | Path, tag: str) -> Path:
    """A fresh ``<UTC time>-<tag>-<random>`` directory under ``parent`` (exclusive mkdir)."""
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            path = parent / f"{stamp}-{tag}-{secrets.token_hex(3)}"
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as exc:
        raise AnalysisError(f"cannot create a run directory under {parent}: {exc.strerror}") from None
    raise AnalysisError(f"cannot find a free run directory name under {parent}")


def base_meta(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """run.json skeleton with every schema key; ``fields`` override."""
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "tool": "collbench", "collbench_version": "0.1.0",
        "run_id": run_dir.name, "status": "complete", "status_reason": None, "start_time": None, "end_time": None,
        "command": [], "host": None, "launcher": "import", "backend": None, "device": None, "world_size": None,
        "nnodes": None, "versions": {}, "hardware": {}, "environment": {}, "git_commit": None, "config": {},
        "warnings": [], "source": None, "points": [],
    }  # fmt: skip
    meta.update(fields)
    return meta


def write_run_dir(run_dir: Path, meta: dict[str, Any], points: list[dict[str, Any]]) -> Path:
    """results.csv (CSV_COLUMNS order) and run.json (meta + points with samples_us) into ``run_dir``."""
    with open(run_dir / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for pt in points:
            w.writerow([csv_value(pt.get(c)) for c in CSV_COLUMNS])
    meta = {**meta, "points": [{**{c: pt.get(c) for c in CSV_COLUMNS}, "samples_us": pt.get("samples_us") or []}
                               for pt in points]}  # fmt: skip
    tmp = run_dir / ".run.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1, allow_nan=False))
    tmp.replace(run_dir / "run.json")
    return run_dir
