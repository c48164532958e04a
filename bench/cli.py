"""The ``collbench`` command line.

Top-level imports stay light (no torch): ``collbench --help`` and the analysis subcommands start fast.
``run`` validates every option before any process starts (exit 2, one line, no traceback), then
launches ranks locally (``--nprocs``) or joins a torchrun launch, and writes one new run directory.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bench.errors import EXIT_OK, EXIT_USAGE, UsageError, UsageParser
from bench.plan import (
    DEFAULT_VISITS,
    MAX_AUTO_TIME_PER_POINT_S,
    MIN_AUTO_TIME_PER_POINT_S,
    SWEEP_BUDGET_S,
)
from collectives.spec import SEND_RECV

RUN_HELP = "a sweep: time, check and record collectives (see collbench run --help)"
PAIRS_HELP = "every rank pair's latency and bandwidth; flags the slow link, rank or node (exit 1)"


def _analysis_commands() -> dict[str, str]:
    """The analysis subcommands and their one-line descriptions, as ``analysis.cli`` defines them."""
    try:
        from analysis.cli import COMMANDS
    except ModuleNotFoundError:  # a checkout without analysis: run only
        return {}
    return {name: text for name, (_, text) in COMMANDS.items()}


def _top_help() -> str:
    commands = {"run": RUN_HELP, "pairs": PAIRS_HELP, **_analysis_commands()}
    return "\n".join(["commands:", *(f"  {name:<9} {text}" for name, text in commands.items())])


def build_run_parser() -> argparse.ArgumentParser:
    p = UsageParser(
        prog="collbench run",
        description="Time collectives (nccl-tests style) with every registered algorithm, check results exactly, "
        "and write results.csv + run.json into a new directory under --out. Under torchrun the launcher's "
        "ranks are used and rank 0 writes.",
        epilog="Sizes take K/M/G suffixes (powers of 1024, like nccl-tests); bandwidths are GB/s (1e9 B/s). "
        "By default each point takes samples until its estimate's 95%% CI is within --target-ci or its "
        "--max-time-per-point is spent, the algorithms of one size interleaved; -n fixes the sample count.",
    )
    p.add_argument("--collectives", default="all",
                   help="comma list or 'all' (default: the six collectives of the default sweep); gather, scatter "
                   "and send_recv (point-to-point between ranks 0 and 1) are measured only when named")  # fmt: skip
    p.add_argument("--algorithms", default="all",
                   help="comma list or 'all' (default: every registered one; send_recv's are latency, bw, bibw)")
    p.add_argument("--backend", choices=("gloo", "nccl"), help="default: nccl if GPUs are visible, else gloo")
    p.add_argument("--nprocs", type=int, help="local ranks to spawn (default: GPUs for nccl, 2-4 for gloo)")
    p.add_argument("-b", "--min-bytes", default="1K", help="smallest size S (default 1K)")
    p.add_argument("-e", "--max-bytes", help="largest size S (default 1M on gloo, 64M on nccl)")
    p.add_argument("-f", "--step-factor", type=float, default=4.0, help="size multiplier (default 4)")
    p.add_argument("-n", "--iters", type=int, help="fixed timed iterations per point (default: adaptive)")
    p.add_argument("--target-ci", type=float, default=0.05,
                   help="adaptive: stop when the 95%% CI is within +-this fraction of the estimate (default 0.05)")
    p.add_argument("--max-time-per-point", type=float,
                   help=f"adaptive: seconds of sampling per point at most (default: {SWEEP_BUDGET_S:g} s shared by "
                   f"the sweep's points, {MIN_AUTO_TIME_PER_POINT_S:g}-{MAX_AUTO_TIME_PER_POINT_S:g} s each)")
    p.add_argument("--visits", type=int, default=DEFAULT_VISITS,
                   help=f"adaptive: visits per point, spread over the run so a drift of the host hits every point "
                   f"alike (default {DEFAULT_VISITS}; 1: each point's samples in one stretch; docs/protocol.md)")
    p.add_argument("--max-iters", type=int, default=1000, help="adaptive: samples per point at most (default 1000)")
    p.add_argument("--transport-nice", type=int, default=19,
                   help="gloo: nice value of gloo's transport threads, 0 leaves them (default 19; docs/protocol.md)")
    p.add_argument("--no-interleave", action="store_true",
                   help="measure one point after another (v1 order) instead of the algorithms of a size round-robin")
    p.add_argument("-w", "--warmup", type=int, help="warm-up calls per point (default 5, fewer above 1M)")
    p.add_argument("--dtype", default="float32", help="float32 (default), float64, float16, bfloat16, int8, ...")
    p.add_argument("--op", default="sum", help="sum (default), prod, min, max, avg")
    p.add_argument("--root", type=int, default=0, help="root rank of broadcast and reduce (default 0)")
    p.add_argument(
        "--in-place",
        choices=("both", "yes", "no"),
        default="both",
        help="variants of all_gather/reduce_scatter (broadcast/reduce/all_reduce are in-place by nature)",
    )
    p.add_argument("--cuda-graph", action="store_true", help="GPU: time CUDA-graph replays of the calls")
    p.add_argument(
        "--window",
        type=int,
        default=SEND_RECV.p2p.default_window,
        help=f"send_recv: messages in flight for bw and bibw (default {SEND_RECV.p2p.default_window}, as osu_bw)",
    )
    p.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    p.add_argument(
        "--segment-bytes",
        help="segment size of the pipelined algorithms (K/M suffixes; default: the algorithm's, 1M)",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="seconds without progress before the run is ended")
    p.add_argument("--out", default="results", help="parent directory of the new run directory (default results/)")
    p.add_argument("--quiet", action="store_true", help="no table or progress bar; print only the run directory")
    p.add_argument("--json", action="store_true", help="print one JSON summary object instead of the table")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``collbench`` console script and ``python -m bench``."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if not args or args[0] in ("-h", "--help"):
            print(f"usage: collbench {{{','.join(['run', 'pairs', *_analysis_commands()])}}} ...\n")
            print("Microbenchmarks, correctness checks and cost models of collective communication.\n")
            print(_top_help())
            return EXIT_OK if args else EXIT_USAGE
        if args[0] == "--version":
            from bench.schema import collbench_version

            print(f"collbench {collbench_version()}")
            return EXIT_OK
        command = args[0]
        if command in _analysis_commands():
            return _dispatch_analysis(args)
        if command == "pairs":
            from bench.pairs import pairs_command

            return pairs_command(args)
        if command != "run":
            choices = ", ".join(["run", "pairs", *_analysis_commands()])
            raise UsageError(f"unknown command {command!r}; choose from {choices}")
        from bench.run import run_command

        return run_command(build_run_parser().parse_args(args[1:]), args)
    except UsageError as exc:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank validates; rank 0 speaks
            print(f"collbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _dispatch_analysis(args: list[str]) -> int:
    from analysis.cli import main as analysis_main

    return int(analysis_main(args))


if __name__ == "__main__":
    raise SystemExit(main())
