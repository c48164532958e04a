"""``collbench run``: time, check and record collectives in a new run directory (``bench.run`` does the work).

Every option is validated before any process starts (exit 2, one line); ranks are spawned locally
(``--nprocs``) or the launcher's are joined under torchrun, and rank 0 writes.
"""

from __future__ import annotations

import argparse

from bench.plan import (
    DEFAULT_VISITS,
    MAX_AUTO_TIME_PER_POINT_S,
    MIN_AUTO_TIME_PER_POINT_S,
    SWEEP_BUDGET_S,
)
from bench.sizes import DEFAULT_MAX_BYTES, format_size
from collectives.spec import SEND_RECV

DESCRIPTION = (
    "Time collectives (nccl-tests style) with every registered algorithm, check results exactly, "
    "and write results.csv + run.json into a new directory under --out. Under torchrun the launcher's "
    "ranks are used and rank 0 writes."
)
EPILOG = (
    "Sizes take K/M/G suffixes (powers of 1024, like nccl-tests); bandwidths are GB/s (1e9 B/s). "
    "By default each point takes samples until its estimate's 95%% CI is within --target-ci or its "
    "--max-time-per-point is spent, the algorithms of one size interleaved; -n fixes the sample count."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--collectives",
        default="all",
        help="comma list or 'all' (default: the six collectives of the default sweep); gather, scatter "
        "and send_recv (point-to-point between ranks 0 and 1) are measured only when named",
    )
    parser.add_argument(
        "--algorithms",
        default="all",
        help="comma list or 'all' (default: every registered one; send_recv's are latency, bw, bibw)",
    )
    parser.add_argument("--backend", choices=("gloo", "nccl"), help="default: nccl if GPUs are visible, else gloo")
    parser.add_argument("--nprocs", type=int, help="local ranks to spawn (default: GPUs for nccl, 2-4 for gloo)")
    parser.add_argument("-b", "--min-bytes", default="1K", help="smallest size S (default 1K)")
    parser.add_argument(
        "-e",
        "--max-bytes",
        help=f"largest size S (default {format_size(DEFAULT_MAX_BYTES['gloo'])} on gloo, "
        f"{format_size(DEFAULT_MAX_BYTES['nccl'])} on nccl)",
    )
    parser.add_argument("-f", "--step-factor", type=float, default=4.0, help="size multiplier (default 4)")
    parser.add_argument("-n", "--iters", type=int, help="fixed timed iterations per point (default: adaptive)")
    parser.add_argument(
        "--target-ci",
        type=float,
        default=0.05,
        help="adaptive: stop when the 95%% CI is within +-this fraction of the estimate (default 0.05)",
    )
    parser.add_argument(
        "--max-time-per-point",
        type=float,
        help=f"adaptive: seconds of sampling per point at most (default: {SWEEP_BUDGET_S:g} s shared by "
        f"the sweep's points, {MIN_AUTO_TIME_PER_POINT_S:g}-{MAX_AUTO_TIME_PER_POINT_S:g} s each)",
    )
    parser.add_argument(
        "--visits",
        type=int,
        default=DEFAULT_VISITS,
        help=f"adaptive: visits per point, spread over the run so a drift of the host hits every point "
        f"alike (default {DEFAULT_VISITS}; 1: each point's samples in one stretch; docs/protocol.md)",
    )
    parser.add_argument(
        "--max-iters", type=int, default=1000, help="adaptive: samples per point at most (default 1000)"
    )
    parser.add_argument(
        "--transport-nice",
        type=int,
        default=19,
        help="gloo: nice value of gloo's transport threads, 0 leaves them (default 19; docs/protocol.md)",
    )
    parser.add_argument(
        "--no-interleave",
        action="store_true",
        help="measure one point after another (nccl-tests' order) instead of the algorithms of a size round-robin",
    )
    parser.add_argument("-w", "--warmup", type=int, help="warm-up calls per point (default 5, fewer above 1M)")
    parser.add_argument("--dtype", default="float32", help="float32 (default), float64, float16, bfloat16, int8, ...")
    parser.add_argument("--op", default="sum", help="sum (default), prod, min, max, avg")
    parser.add_argument("--root", type=int, default=0, help="root rank of broadcast and reduce (default 0)")
    parser.add_argument(
        "--in-place",
        choices=("both", "yes", "no"),
        default="both",
        help="variants of all_gather/reduce_scatter (broadcast/reduce/all_reduce are in-place by nature)",
    )
    parser.add_argument("--cuda-graph", action="store_true", help="GPU: time CUDA-graph replays of the calls")
    parser.add_argument(
        "--window",
        type=int,
        default=SEND_RECV.p2p.default_window,
        help=f"send_recv: messages in flight for bw and bibw (default {SEND_RECV.p2p.default_window}, as osu_bw)",
    )
    parser.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    parser.add_argument(
        "--segment-bytes",
        help="segment size of the pipelined algorithms (K/M suffixes; default: the algorithm's, 1M; the rings: "
        "half a block, 1M-4M)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds without progress before the run is ended")
    parser.add_argument(
        "--repeat",
        type=int,
        metavar="K",
        help="K independent runs (fresh ranks each, the case order rotated between them) as K run directories in "
        "one new directory under --out, with a manifest repeat.json: the evidence collbench compare needs to tell "
        "a change of the code from the spread between runs (docs/regression.md)",
    )
    parser.add_argument("--out", default="results", help="parent directory of the new run directory (default results/)")
    parser.add_argument("--quiet", action="store_true", help="no table or progress bar; print only the run directory")
    parser.add_argument("--json", action="store_true", help="print one JSON summary object instead of the table")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Validate, launch, record and print (``bench.run.run_command``); ``argv`` goes into run.json."""
    from bench.run import run_command

    return run_command(args, argv)
