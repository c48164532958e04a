"""``collbench compare BASE NEW``: per-point change between two sides of one or several runs each, with the
smallest change it could have seen (``analysis.compare_sides`` reads and checks the sides; with three or more
runs in all ``analysis.repeated`` tests against the spread between runs, else ``analysis.compare`` tests one
run's samples against the other's). Exit 0 when nothing regressed (inconclusive included, unless
``--strict``), 1 on a regression, 2 on a usage or input error."""

from __future__ import annotations

import argparse
import json
import math
import warnings
from dataclasses import asdict

import pandas as pd

from analysis.compare import compare_frames, count_verdicts, has_builtin, run_shift, with_mde
from analysis.compare_sides import Side, check_sides, load_side
from analysis.repeated import compare_repeated
from analysis.units import size_label
from bench.errors import EXIT_FAIL, EXIT_OK, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", help="baseline: a run directory, a `run --repeat` directory, or a folder of runs")
    parser.add_argument("new", help="new: the same kinds as BASE, of the same configuration")
    parser.add_argument("--threshold", type=float, default=0.10, help="relative slowdown that counts (default 0.10)")
    parser.add_argument("--alpha", type=float, default=0.01,
                        help="chance of calling any point of a same-code comparison changed (default 0.01; "
                             "Holm over the points with one run per side, Bonferroni with several)")
    parser.add_argument("--power", type=float, default=0.8,
                        help="power of the minimum detectable effect (MDE) printed per point (default 0.8)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 also when the answer is inconclusive (the MDE exceeds the threshold somewhere)")
    parser.add_argument("--relative-to", metavar="ALGO", default="",
                        help="compare each point over the same run's ALGO at its size (e.g. builtin): a shift of "
                             "the host between the runs cancels; ALGO's own points get no verdict")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (one run per side)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Read and check both sides, compare, print the table (or JSON); the exit code is the answer."""
    if not (math.isfinite(args.threshold) and 0 < args.threshold < 10):
        raise UsageError("--threshold must be a fraction like 0.05 (5 %), above 0")
    if not 0 < args.alpha < 1:
        raise UsageError("--alpha must be in (0, 1)")
    if not 0.5 <= args.power < 1:
        raise UsageError("--power must be in [0.5, 1)")
    base, new = load_side(args.base, "BASE"), load_side(args.new, "NEW")
    check_sides(base, new)
    if len(base.runs) + len(new.runs) >= 3:
        return _repeated(args, base, new)
    return _single(args, base, new)


def _json(obj: dict) -> str:
    """``obj`` as strict JSON: nan (a spread or MDE that is unknown) written as null."""

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(obj), allow_nan=False)


def _exit(answer: str, strict: bool) -> int:
    return EXIT_FAIL if answer == "regressed" or (strict and answer == "inconclusive") else EXIT_OK


def _sides_lines(base: Side, new: Side) -> list[str]:
    return [f"# BASE {base.path}: {base.how}", f"# NEW  {new.path}: {new.how}"]


def _repeated(args: argparse.Namespace, base: Side, new: Side) -> int:
    changes, unmatched, summary = compare_repeated(list(base.runs), list(new.runs), args.threshold, args.alpha,
                                                   args.power, args.relative_to)  # fmt: skip
    if not changes:
        raise UsageError("no point of NEW matches a point of BASE (different sizes or algorithms?)")
    summary["model"] = "between-run: one estimate per run and point, spread pooled over both sides"
    if args.json:
        print(_json({"model": "between-run", "sides": _sides_json(base, new), "overall": summary,
                          "counts": summary["counts"], "points": [asdict(c) for c in changes],
                          "unmatched": unmatched}))  # fmt: skip
        return _exit(summary["answer"], args.strict)
    print(f"# compare  threshold {args.threshold:.0%}  alpha {args.alpha} (per point {summary['alpha_per_point']:.2g})"
          f"  power {args.power:.0%}")  # fmt: skip
    print(*_sides_lines(base, new), sep="\n")
    print(f"# between runs: each run is one estimate per point; a point regressed only when the change exceeds what "
          f"separates runs of one side{'; relative to ' + args.relative_to if args.relative_to else ''}")
    print(f"{'collective':<15} {'algorithm':<18} {'p':>3} {'size':>9} {'ip':>2} {'runs':>5} {'base_us':>10} "
          f"{'new_us':>10} {'ratio':>6} {'CI':>15} {'run_sd':>6} {'mde':>6}  verdict")
    for c in changes:
        sd = "-" if math.isnan(c.between_run_sd) else f"{c.between_run_sd:.1%}"
        print(f"{c.collective:<15} {c.algorithm:<18} {c.world_size:>3} {size_label(c.bytes):>9} "
              f"{'y' if c.in_place else 'n':>2} {f'{c.base_runs}/{c.new_runs}':>5} {c.base_time_us:>10.2f} "
              f"{c.new_time_us:>10.2f} {c.ratio:>6.3f} {f'[{c.ratio_lo:.2f}, {c.ratio_hi:.2f}]':>15} {sd:>6} "
              f"{c.mde:>6.1%}  {c.verdict}{_needed(c.runs_needed) if c.verdict == 'inconclusive' else ''}")
    _print_overall(summary, len(changes), unmatched)
    return _exit(summary["answer"], args.strict)


def _needed(n: int | None) -> str:
    from analysis.repeated import MAX_RUNS

    return f" (~{n} runs per side)" if n is not None else f" (>{MAX_RUNS} runs per side)"


def _print_overall(summary: dict, points: int, unmatched: list[str]) -> None:
    counts = summary["counts"]
    print(f"# {points} points: {counts['regression']} regressed, {counts['improvement']} improved, "
          f"{counts['inconclusive']} inconclusive, {counts['same']} no change"
          + (f"; {len(unmatched)} unmatched" if unmatched else ""))
    spread = summary["between_run_sd_median"]
    spread_text = "unknown (one run per side)" if math.isnan(spread) else f"{spread:.1%}"
    print(f"# minimum detectable effect: median {summary['mde_median']:.1%}, worst {summary['mde_max']:.1%} "
          f"(threshold {summary['threshold']:.0%}); spread of one run's estimate between runs {spread_text}, "
          f"within a run {summary['within_run_sd_median']:.1%}")
    if counts["inconclusive"]:
        med, worst = summary["runs_needed_median"], summary["runs_needed_max"]
        beyond = summary["runs_needed_beyond_limit"]
        if med is None and beyond:
            text = "more runs than make sense: the spread is too large for this threshold"
        elif med is None:
            text = "runs per side unknown (repeat each side to measure the spread between runs)"
        else:
            text = f"about {med} runs per side (median; {worst if worst else 'more than 1000'} for all)"
        print(f"# to resolve the inconclusive points: {text}")
    print(f"# answer: {summary['answer']}")


def _sides_json(base: Side, new: Side) -> dict:
    return {s.label.lower(): {"path": s.path, "how": s.how, "runs": [str(r.path) for r in s.runs]} for s in (base, new)}


def _single(args: argparse.Namespace, base_side: Side, new_side: Side) -> int:
    """One run per side: the samples of each run against the other's (``analysis.compare``); the MDE counts only
    the spread within the runs, a lower bound, since the spread between runs is unknown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base, new = base_side.runs[0].points, new_side.runs[0].points
    if base.empty:
        raise UsageError(f"BASE {args.base} has no points: nothing to compare")
    changes, unmatched = compare_frames(base, new, args.threshold, args.alpha, args.seed, args.relative_to)
    if not changes:
        raise UsageError("no point of NEW matches a point of BASE (different sizes or algorithms?)")
    changes, mdes = with_mde(changes, args.threshold, args.alpha, args.power)
    counts = count_verdicts(changes)
    counts["inconclusive"] = sum(c.verdict == "inconclusive" for c in changes)
    shift = run_shift(changes)
    if shift["note"] and not args.relative_to and has_builtin(base) and has_builtin(new):
        builtin_changes = compare_frames(base, new, args.threshold, args.alpha, args.seed, "builtin")[0]
        shift["relative_to_builtin"] = count_verdicts(builtin_changes)
    known = [m for m in mdes if not math.isnan(m)]
    answer = ("regressed" if counts["regression"] else "inconclusive" if counts["inconclusive"]
              else "improved" if counts["improvement"] else "no change")  # fmt: skip
    overall = {"answer": answer, "counts": counts, "threshold": args.threshold, "alpha": args.alpha,
               "power": args.power,
               "alpha_per_point": args.alpha / len(changes),
               "mde_median": float(pd.Series(known).median()) if known else math.nan,
               "mde_max": max(known) if known else math.nan, "between_run_sd_median": math.nan,
               "within_run_sd_median": math.nan, "runs_needed_median": None, "runs_needed_max": None,
               "runs_needed_beyond_limit": 0,
               "model": "within-run: one run per side, the spread between runs is unknown (the MDE is a lower bound)"}
    if args.json:
        points = [{**asdict(c), "mde": m, "base_runs": 1, "new_runs": 1} for c, m in zip(changes, mdes, strict=True)]
        print(_json({"model": "within-run", "sides": _sides_json(base_side, new_side), "overall": overall,
                          "counts": counts, "run_shift": shift, "points": points, "unmatched": unmatched}))  # fmt: skip
        return _exit(answer, args.strict)
    print(f"# compare  base {args.base}  new {args.new}  threshold {args.threshold:.0%}  alpha {args.alpha}")
    print("# one run per side: the spread between runs is unknown, so the MDE below counts only the samples within "
          "each run (a lower bound); repeat each side (collbench run --repeat 3) for a verdict that includes it")
    if args.relative_to:
        print(f"# relative to {args.relative_to}: ratio = (NEW / NEW's {args.relative_to}) / "
              f"(BASE / BASE's {args.relative_to}) at the same size; base_us and new_us are the times")
    print(f"{'collective':<15} {'algorithm':<18} {'p':>3} {'size':>9} {'ip':>2} {'base_us':>10} {'new_us':>10} "
          f"{'ratio':>6} {'95% CI':>15} {'p_holm':>8} {'mde':>6}  verdict")
    for c, m in zip(changes, mdes, strict=True):
        p = "-" if math.isnan(c.p_value) else f"{c.p_value:.2g}"
        ci = f"[{c.ratio_lo:.2f}, {c.ratio_hi:.2f}]" if c.basis == "samples" else "threshold only"
        mde = "-" if math.isnan(m) else f"{m:.1%}"
        print(f"{c.collective:<15} {c.algorithm:<18} {c.world_size:>3} {size_label(c.bytes):>9} "
              f"{'y' if c.in_place else 'n':>2} {c.base_time_us:>10.2f} {c.new_time_us:>10.2f} {c.ratio:>6.3f} "
              f"{ci:>15} {p:>8} {mde:>6}  {c.verdict}")
    print(f"# {len(changes)} points: {counts['regression']} regressed, {counts['improvement']} improved, "
          f"{counts['isolated']} isolated (one size only, not counted), {counts['inconclusive']} inconclusive, "
          f"{counts['same']} same" + (f"; {len(unmatched)} unmatched" if unmatched else ""))
    print(f"# whole run: NEW/BASE median ratio {shift['median_ratio']:.3f}, {shift['same_direction']:.0%} of the "
          f"points moved the same way" + (f" ({shift['note']})" if shift["note"] else ""))  # fmt: skip
    if "relative_to_builtin" in shift:
        rel = shift["relative_to_builtin"]
        print(f"# relative to builtin (a shift of the host cancels): {rel['regression']} regressed, "
              f"{rel['improvement']} improved of {sum(rel.values())} points; the builtin's own change is not seen")
    mde_text = f"median {overall['mde_median']:.1%}, worst {overall['mde_max']:.1%}" if known else "unknown"
    print(f"# minimum detectable effect within the runs: {mde_text} (threshold {args.threshold:.0%}); between runs: "
          "unknown (one run per side)")
    print(f"# answer: {answer}")
    return _exit(answer, args.strict)
