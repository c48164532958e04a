#!/usr/bin/env python
"""Copy a run directory with every time of the points >= MIN_BYTES multiplied by FACTOR: a planted slowdown
to check that ``collbench compare`` catches it (issue 14). The copy gets its own run_id.

    PYTHONPATH=. python scripts/plant_slowdown.py results/<run> /tmp/slower 1.10 1M
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.schema import CSV_COLUMNS, csv_line, csv_record  # noqa: E402
from bench.sizes import parse_size  # noqa: E402

TIMES = ("time_us", "time_us_p10", "time_us_p25", "time_us_p75", "time_us_p90", "time_us_min", "time_us_max",
         "block_time_us", "time_us_median", "time_us_ci_lo", "time_us_ci_hi")  # fmt: skip


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst, factor, min_bytes = Path(argv[0]), Path(argv[1]), float(argv[2]), parse_size(argv[3])
    shutil.copytree(src, dst)
    meta = json.loads((dst / "run.json").read_text())
    meta["run_id"] = dst.name
    for p in meta["points"]:
        if p["bytes"] >= min_bytes:
            p["samples_us"] = [x * factor for x in p["samples_us"]]
            for k in TIMES:
                if p.get(k) is not None:
                    p[k] *= factor
            for k in ("algbw_gbps", "busbw_gbps"):
                p[k] /= factor
    (dst / "run.json").write_text(json.dumps(meta, indent=1) + "\n")
    with open(dst / "results.csv", "wb") as f:
        f.write(csv_line(CSV_COLUMNS))
        for p in meta["points"]:
            f.write(csv_record(p))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
