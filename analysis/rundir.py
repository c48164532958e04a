"""Write a run directory from plain rows (imports and synthetic runs) in the one schema of ``bench.schema``;
never overwrites one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analysis.errors import AnalysisError
from bench import schema


def new_run_dir(parent: str | Path, tag: str) -> Path:
    """A fresh ``<UTC time>-<tag>-<random>`` directory under ``parent`` (exclusive mkdir); AnalysisError when
    ``parent`` is (inside) a run directory: a run is never made inside another."""
    refused = schema.inside_run_error(parent)
    if refused is not None:
        raise AnalysisError(refused)
    try:
        return schema.create_run_dir(parent, tag)
    except OSError as exc:
        raise AnalysisError(f"cannot create a run directory under {parent}: {exc.strerror or exc}") from None


def base_meta(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """run.json skeleton with every schema key for a finished, imported run; ``fields`` override."""
    return schema.run_json_skeleton(run_dir.name, **{"status": "complete", "launcher": "import", **fields})


def write_run_dir(run_dir: Path, meta: dict[str, Any], points: list[dict[str, Any]]) -> Path:
    """results.csv (the schema's column order) and run.json (meta + points with samples_us) into ``run_dir``, a
    fresh directory from ``new_run_dir``: both are created exclusively, so an existing run is never written over."""
    if (run_dir / "run.json").exists():
        raise AnalysisError(f"{run_dir} already holds a run.json: a run directory is never written over")
    with open(run_dir / "results.csv", "xb") as f:
        f.write(schema.csv_line(schema.CSV_COLUMNS))
        for pt in points:
            f.write(schema.csv_record(pt))
    meta = {**meta, "points": [schema.json_point(pt, pt.get("samples_us")) for pt in points]}
    tmp = run_dir / ".run.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1, allow_nan=False))
    tmp.replace(run_dir / "run.json")
    return run_dir
