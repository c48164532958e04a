#!/usr/bin/env python3
"""How often does ``collbench compare`` flag a point when both sides ran the same code? (results/README.md).

Simulates ``--comparisons`` same-code comparisons of K runs per side, straight from the model compare assumes:
32 points (all_reduce and all_gather, ring and builtin, 1 KiB-16 MiB), each run's estimate of a point off its
true time by a log-normal factor whose sd is the point's spread between runs. ``--alpha 0.01`` promises that
at most 1 % of such comparisons flag any point (regression or improvement). Spreads:

- ``equal``: 5 % at every point;
- ``mixed``: 1.5-17 % per point, fixed per point but unrelated to its time;
- ``trend``: 15 % below 1 MiB and 0.3 % from 1 MiB up (the shape of the H200 runs; use ``--threshold 0.03``).

    PYTHONPATH=$PWD python scripts/compare_false_flags.py --spreads mixed --runs 3 --comparisons 1000

Prints one line: the share flagged and the median MDE.
"""

from __future__ import annotations

import argparse
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.read_runs import Run
from analysis.repeated import compare_repeated

CASES = [(c, a) for c in ("all_reduce", "all_gather") for a in ("ring", "builtin")]
SIZES = [1 << k for k in range(10, 25, 2)]


def spread(kind: str, collective: str, algorithm: str, nbytes: int) -> float:
    if kind == "equal":
        return 0.05
    if kind == "trend":
        return 0.15 if nbytes < (1 << 20) else 0.003
    h = zlib.crc32(f"{collective}{algorithm}{nbytes}".encode()) / 2**32  # fixed per point, unrelated to time
    return 0.05 * math.exp(2.4 * (h - 0.5))


def simulated_run(kind: str, rng: np.random.Generator, index: int) -> Run:
    rows = []
    for collective, algorithm in CASES:
        for n in SIZES:
            true_us = (50 + n / 1e3) * (2 if collective == "all_reduce" else 1)
            t = true_us * math.exp(rng.normal(0.0, spread(kind, collective, algorithm, n)))
            rows.append({"collective": collective, "algorithm": algorithm, "backend": "gloo", "device": "cpu",
                         "world_size": 4, "dtype": "float32", "op": "sum", "bytes": n, "root": 0,
                         "in_place": collective == "all_reduce", "time_us": t, "time_us_ci_lo": t * 0.999,
                         "time_us_ci_hi": t * 1.001})  # fmt: skip
    return Run(Path(f"sim-{index}"), {"run_id": f"sim-{index}"}, pd.DataFrame(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spreads", choices=("equal", "mixed", "trend"), default="mixed")
    ap.add_argument("--runs", type=int, default=3, help="K runs per side (default 3)")
    ap.add_argument("--comparisons", type=int, default=1000)
    ap.add_argument("--threshold", type=float, default=0.10)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    flagged, mdes, index = 0, [], 0
    for _ in range(args.comparisons):
        sides = []
        for _side in range(2):
            sides.append([simulated_run(args.spreads, rng, index + i) for i in range(args.runs)])
            index += args.runs
        changes, _, summary = compare_repeated(sides[0], sides[1], args.threshold, args.alpha, 0.8)
        flagged += any(c.verdict in ("regression", "improvement") for c in changes)
        mdes.append(summary["mde_median"])
    print(f"spreads {args.spreads}, K = {args.runs}, threshold {args.threshold:.0%}: {flagged} of "
          f"{args.comparisons} same-code comparisons flagged a point ({flagged / args.comparisons:.1%}; alpha "
          f"{args.alpha:.0%}); MDE median {float(np.median(mdes)):.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
