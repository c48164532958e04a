"""Single-size dips of a run's curves: points whose time is far above both neighbours'.

    python research/noise/curve_dips.py RUN [RUN ...] [--factor 1.5]

For every interior point of every curve (collective, algorithm, variant; sizes in order) the ratio of its
``time_us`` to the geometric mean of its two neighbours' times. A real algorithmic step (a protocol switch)
moves every later size; a spike at one size that the neighbours do not share is a measurement artefact
(such as a 20x roofline dip at one size). Prints the count above ``--factor`` and the worst four.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.schema import read_results_csv  # noqa: E402


def dips(run: Path) -> list[tuple[float, str, int]]:
    rows, _ = read_results_csv((run / "results.csv").read_text(), str(run))
    curves: dict[tuple, list[tuple[int, float]]] = {}
    for r in rows:
        curves.setdefault((r["collective"], r["algorithm"], r["in_place"]), []).append((r["bytes"], r["time_us"]))
    out = []
    for (coll, alg, _), pts in curves.items():
        pts.sort()
        for i in range(1, len(pts) - 1):
            ratio = pts[i][1] / math.sqrt(pts[i - 1][1] * pts[i + 1][1])
            out.append((ratio, f"{coll}/{alg}", pts[i][0]))
    return sorted(out, reverse=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--factor", type=float, default=1.5, help="a dip is a time above this x its neighbours'")
    args = ap.parse_args()
    for run in args.runs:
        d = dips(run)
        worst = ", ".join(f"{r:.1f}x {name} {b} B" for r, name, b in d[:4])
        print(f"{run.name}: {sum(r > args.factor for r, _, _ in d)} of {len(d)} interior points above "
              f"{args.factor:g}x their neighbours; worst: {worst}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
