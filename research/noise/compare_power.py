"""What `collbench compare` flags on runs of the same code, and what it catches of a planted slowdown.

    python research/noise/compare_power.py RUN1 RUN2 [RUN3 ...] [--relative-to builtin]
        [--plant 1.10 --plant-from 1M --plant-algorithms ring,tree]

For each consecutive pair (RUN1/RUN2, RUN2/RUN3, ...) of runs of one command: the points compare flags
(regression or improvement) although nothing changed, and, with ``--plant``, the second run's points of the
planted algorithms at >= ``--plant-from`` bytes made ``--plant`` times slower (every sample and the estimate)
and compared again: how many of them are caught as regressions, and how many other points are flagged.
It measures compare's false alarms and its power on real noise, without editing any code to plant the change.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from analysis.compare import compare_frames  # noqa: E402
from analysis.read_runs import load_runs  # noqa: E402
from bench.sizes import parse_size  # noqa: E402

FLAGGED = ("regression", "improvement")


def planted(frame: pd.DataFrame, factor: float, min_bytes: int, algorithms: set[str]) -> pd.DataFrame:
    """``frame`` with the chosen points ``factor`` times slower."""
    out = frame.copy()
    hit = (out["bytes"] >= min_bytes) & out["algorithm"].isin(algorithms)
    out.loc[hit, "time_us"] *= factor
    out.loc[hit, "samples_us"] = out.loc[hit, "samples_us"].map(lambda s: [x * factor for x in s])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--relative-to", metavar="ALGO", default="", help="as in collbench compare")
    ap.add_argument("--threshold", type=float, default=0.10)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--plant", type=float, default=0.0, help="slowdown factor to plant, e.g. 1.10")
    ap.add_argument("--plant-from", default="1M", help="smallest planted size (default 1M)")
    ap.add_argument("--plant-algorithms", default="ring,tree", help="planted algorithms (default ring,tree)")
    args = ap.parse_args()
    if len(args.runs) < 2:
        ap.error("give at least two runs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frames = [load_runs([r]) for r in args.runs]
    algos, min_bytes = set(args.plant_algorithms.split(",")), parse_size(args.plant_from)
    mode = f"relative to {args.relative_to}" if args.relative_to else "absolute"
    for i, (a, b) in enumerate(zip(frames, frames[1:], strict=False), start=1):
        changes, _ = compare_frames(a, b, args.threshold, args.alpha, 0, args.relative_to)
        flagged = sum(c.verdict in FLAGGED for c in changes)
        line = f"pair {i}/{i + 1} ({mode}): same code, {flagged}/{len(changes)} flagged"
        if args.plant:
            changes, _ = compare_frames(a, planted(b, args.plant, min_bytes, algos), args.threshold, args.alpha, 0,
                                        args.relative_to)  # fmt: skip
            target = [c.bytes >= min_bytes and c.algorithm in algos for c in changes]
            caught = sum(c.verdict == "regression" for c, t in zip(changes, target, strict=True) if t)
            other = sum(c.verdict in FLAGGED for c, t in zip(changes, target, strict=True) if not t)
            line += f"; planted x{args.plant}: caught {caught}/{sum(target)}, other points flagged {other}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
