"""``collbench compare BASE NEW``: per-point change between two runs with significance (``analysis.compare``);
exit 0 when nothing regressed, 1 on a regression, 2 on a usage or input error."""

from __future__ import annotations

import argparse
import json
import math
import warnings
from dataclasses import asdict

from analysis.compare import compare_frames, count_verdicts, has_builtin, run_shift
from analysis.read_runs import load_runs
from analysis.units import size_label
from bench.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", help="baseline run directory")
    parser.add_argument("new", help="new run directory")
    parser.add_argument("--threshold", type=float, default=0.10, help="relative slowdown that counts (default 0.10)")
    parser.add_argument("--alpha", type=float, default=0.01, help="significance level after Holm (default 0.01)")
    parser.add_argument("--relative-to", metavar="ALGO", default="",
                        help="compare each point over the same run's ALGO at its size (e.g. builtin): a shift of "
                             "the host between the runs cancels; ALGO's own points get no verdict")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Match the points of BASE and NEW, print the table (or JSON); exit 1 when a point regressed."""
    if not 0 <= args.threshold < 10:
        raise UsageError("--threshold must be a fraction like 0.05 (5 %)")
    if not 0 < args.alpha < 1:
        raise UsageError("--alpha must be in (0, 1)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base, new = load_runs([args.base]), load_runs([args.new])
    changes, unmatched = compare_frames(base, new, args.threshold, args.alpha, args.seed, args.relative_to)
    if not changes:
        raise UsageError("no point of NEW matches a point of BASE (different collectives, sizes or world sizes?)")
    counts = count_verdicts(changes)
    shift = run_shift(changes)
    if shift["note"] and not args.relative_to and has_builtin(base) and has_builtin(new):
        builtin_changes = compare_frames(base, new, args.threshold, args.alpha, args.seed, "builtin")[0]
        shift["relative_to_builtin"] = count_verdicts(builtin_changes)
    if args.json:
        print(json.dumps({"counts": counts, "run_shift": shift, "points": [asdict(c) for c in changes],
                          "unmatched": unmatched}))  # fmt: skip
    else:
        print(f"# compare  base {args.base}  new {args.new}  threshold {args.threshold:.0%}  alpha {args.alpha}")
        if args.relative_to:
            print(f"# relative to {args.relative_to}: ratio = (NEW / NEW's {args.relative_to}) / "
                  f"(BASE / BASE's {args.relative_to}) at the same size; base_us and new_us are the times")
        print(
            f"{'collective':<15} {'algorithm':<18} {'p':>3} {'size':>9} {'ip':>2} {'base_us':>10} {'new_us':>10} "
            f"{'ratio':>6} {'95% CI':>15} {'p_holm':>8}  verdict"
        )
        for c in changes:
            p = "-" if math.isnan(c.p_value) else f"{c.p_value:.2g}"
            ci = f"[{c.ratio_lo:.2f}, {c.ratio_hi:.2f}]" if c.basis == "samples" else "threshold only"
            print(
                f"{c.collective:<15} {c.algorithm:<18} {c.world_size:>3} {size_label(c.bytes):>9} "
                f"{'y' if c.in_place else 'n':>2} {c.base_time_us:>10.2f} {c.new_time_us:>10.2f} {c.ratio:>6.3f} "
                f"{ci:>15} {p:>8}  {c.verdict}"
            )
        print(
            f"# {len(changes)} points: {counts['regression']} regressed, {counts['improvement']} improved, "
            f"{counts['isolated']} isolated (one size only, not counted), {counts['same']} same"
            + (f"; {len(unmatched)} unmatched" if unmatched else "")
        )
        print(f"# whole run: NEW/BASE median ratio {shift['median_ratio']:.3f}, {shift['same_direction']:.0%} of the "
              f"points moved the same way" + (f" ({shift['note']})" if shift["note"] else ""))  # fmt: skip
        if "relative_to_builtin" in shift:
            rel = shift["relative_to_builtin"]
            print(f"# relative to builtin (a shift of the host cancels): {rel['regression']} regressed, "
                  f"{rel['improvement']} improved of {sum(rel.values())} points; the builtin's own change is not seen")
    return 1 if counts["regression"] else 0
