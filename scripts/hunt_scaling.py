"""Rounds and tests ``collbench hunt`` needs on the model network (bench.hunt_sim) from 8 to 4096 nodes, against
the p - 1 rounds of the pairs matrix: writes a CSV, a Markdown table and a figure into --out.

    python scripts/hunt_scaling.py --out results/hunt --noise 0.03 --seeds 20 [--slow-factor 0.5]
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from pathlib import Path

from bench.hunt_sim import ModelNetwork, plant
from bench.hunt_strategy import HuntSettings, default_group_size, hunt

SIZES = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--noise", type=float, default=0.03)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--slow-factor", type=float, default=0.5, help="the planted nodes' fraction of the rate")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in SIZES:
        for slow in (0, 1, 2):
            rounds, tests, exact = [], [], 0
            for seed in range(args.seeds):
                planted = plant(n, 1, slow, 0, args.slow_factor, seed)
                res = hunt(ModelNetwork(n, 1, planted, args.noise, seed),
                           HuntSettings(group_size=default_group_size(n), seed=seed))
                rounds.append(len(res.rounds))
                tests.append(res.n_tests)
                exact += {b.node for b in res.blamed} == {q.node for q in planted}
            rows.append({"nodes": n, "slow": slow, "runs": args.seeds, "found_exactly": exact,
                         "rounds_median": statistics.median(rounds), "rounds_max": max(rounds),
                         "tests_median": statistics.median(tests), "pairs_rounds": n - 1,
                         "three_log2_n": round(3 * math.log2(n), 1)})
    with open(out / "hunt_scaling.csv", "x", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = ["| nodes | slow | found exactly | rounds (median / max) | tests (median) | pairs rounds | 3 log2 N |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['nodes']} | {r['slow']} | {r['found_exactly']}/{r['runs']} | {r['rounds_median']:g} / "
              f"{r['rounds_max']} | {r['tests_median']:g} | {r['pairs_rounds']} | {r['three_log2_n']:g} |"
              for r in rows]
    (out / "hunt_scaling.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for slow, style in ((0, "o-"), (1, "s-"), (2, "^-")):
        mine = [r for r in rows if r["slow"] == slow]
        ax.plot([r["nodes"] for r in mine], [r["rounds_max"] for r in mine], style, label=f"hunt, {slow} slow (max)")
    ax.plot(SIZES, [n - 1 for n in SIZES], "k--", label="pairs matrix (p - 1)")
    ax.plot(SIZES, [3 * math.log2(n) for n in SIZES], "k:", label="3 log2 N")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("nodes")
    ax.set_ylabel("rounds")
    ax.set_title(f"hunt on the model network (noise {100 * args.noise:g} %, slow at {args.slow_factor:g}x, "
                 f"{args.seeds} seeds)",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "hunt_scaling.png", dpi=110)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
