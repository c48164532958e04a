"""How well two runs of the same command agree, point by point.

    python research/noise/run_agreement.py RUN_A RUN_B [--tolerance 0.10] [--relative-to builtin]

For each point present in both runs (matched on the schema's point key): does the reported estimate
``time_us`` of B lie within ``tolerance`` of A's (|B/A - 1| <= tol)? Also prints, per run, how many
points missed the CI target (``ci_met`` false), how many sat partly in a slow mode, and the wall time
from run.json. Also reads schema-version-1 files (their time_us is the plain median, ci_met reads false).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.schema import POINT_KEY, read_results_csv  # noqa: E402


def _load(run: Path) -> tuple[dict[tuple, dict], dict]:
    rows, _ = read_results_csv((run / "results.csv").read_text(), str(run))
    meta = json.loads((run / "run.json").read_text())
    return {tuple(r[k] for k in POINT_KEY): r for r in rows}, meta


def _ref(key: tuple, algorithm: str) -> tuple:
    """The same point's key with ``algorithm`` in place of its own."""
    i = POINT_KEY.index("algorithm")
    return (*key[:i], algorithm, *key[i + 1:])


def _wall_s(meta: dict) -> float:
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(meta["end_time"]) - parse(meta["start_time"])).total_seconds()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a", type=Path)
    ap.add_argument("run_b", type=Path)
    ap.add_argument("--tolerance", type=float, default=0.10, help="relative agreement bound (default 0.10)")
    ap.add_argument("--relative-to", metavar="ALGO", default="", help="agreement of each point's time over ALGO's")
    ap.add_argument("--list", action="store_true", help="print every point that disagrees")
    args = ap.parse_args()
    a, meta_a = _load(args.run_a)
    b, meta_b = _load(args.run_b)
    common = sorted(set(a) & set(b), key=str)
    if args.relative_to:
        common = [k for k in common if k[1] != args.relative_to and _ref(k, args.relative_to) in a.keys() & b.keys()]
    if not common:
        print("no common points", file=sys.stderr)
        return 2
    ra = {k: a[_ref(k, args.relative_to)]["time_us"] if args.relative_to else 1.0 for k in common}
    rb = {k: b[_ref(k, args.relative_to)]["time_us"] if args.relative_to else 1.0 for k in common}
    ratios = {k: (b[k]["time_us"] / rb[k]) / (a[k]["time_us"] / ra[k]) for k in common}
    agree = [k for k in common if abs(ratios[k] - 1) <= args.tolerance]
    print(f"points in both runs: {len(common)}")
    print(f"agree within {args.tolerance:.0%}: {len(agree)}/{len(common)} = {len(agree) / len(common):.0%}")
    print(f"median |B/A-1|: {statistics.median(abs(r - 1) for r in ratios.values()):.1%}")
    for name, rows, meta in (("A", a, meta_a), ("B", b, meta_b)):
        missed = sum(1 for k in common if not rows[k].get("ci_met"))
        slow = sum(1 for k in common if (rows[k].get("slow_fraction") or 0) > 0)
        print(f"run {name}: CI target missed {missed}/{len(common)} = {missed / len(common):.0%}; "
              f"slow mode seen {slow}; wall {_wall_s(meta):.1f} s")  # fmt: skip
    if args.list:
        for k in common:
            if k not in agree:
                ta, tb = a[k]["time_us"], b[k]["time_us"]
                print(f"  {k[0]}/{k[1]} {k[7]} B in_place={k[9]}: {ratios[k]:.2f}x A ({ta:.0f} -> {tb:.0f} us)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
