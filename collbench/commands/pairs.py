"""``collbench pairs``: measure every rank pair on the ranks (``bench.pairs``), then judge the matrix on rank 0
(``analysis.pairs``), write the run directory and print the verdict.

Exit code 1 when anything is flagged or wrong, 2 for bad options (before any process starts), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

from analysis.pairs import DEFAULT_LATENCY_FACTOR, DEFAULT_THRESHOLD, analyse, summary_lines, write_files
from bench.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK
from bench.pairings import one_factorisation
from bench.pairs import pairs_rank, validate
from bench.sizes import DEFAULT_MAX_BYTES, format_size

DESCRIPTION = (
    "Measure every rank pair's latency and bandwidth in p-1 rounds of disjoint pairs, write the "
    "p x p matrices, a heatmap and run.json into a new run directory, and flag pairs, ranks and nodes below "
    "a threshold of the median of their kind (bandwidth below --threshold, latency above --latency-factor). "
    "Exit code 1 when something is flagged."
)
EPILOG = (
    "Sizes take K/M/G suffixes (powers of 1024); GB = 1e9 B. Under torchrun the launcher's ranks are "
    "used and rank 0 writes."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    large = f"{format_size(DEFAULT_MAX_BYTES['gloo'])} on gloo, {format_size(DEFAULT_MAX_BYTES['nccl'])} on nccl"
    p.add_argument("--backend", choices=("gloo", "nccl"), help="default: nccl if GPUs are visible, else gloo")
    p.add_argument("--nprocs", type=int, help="local ranks to spawn (default: GPUs for nccl, 4 for gloo)")
    p.add_argument("--small-bytes", default="8", help="latency message size (default 8 B)")
    p.add_argument("--large-bytes", help=f"bandwidth message size (default {large})")
    p.add_argument("--window", type=int, default=4, help="messages in flight for bandwidth (default 4, OSU-style)")
    p.add_argument("-n", "--iters", type=int, default=10, help="timed iterations per test (default 10)")
    p.add_argument("-w", "--warmup", type=int, default=2, help="warm-up iterations per test (default 2)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="flag bandwidth below this fraction of the median of the same kind (default "
                   f"{DEFAULT_THRESHOLD:g})")
    p.add_argument("--latency-factor", type=float, default=DEFAULT_LATENCY_FACTOR,
                   help="flag latency above this multiple of the median of the same kind (default "
                   f"{DEFAULT_LATENCY_FACTOR:g}: small-message latency on a shared host swings by 2-3x)")
    p.add_argument("--ranks-per-node", type=int,
                   help="nodes are blocks of this many consecutive ranks (default: one node per host)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=120.0, help="seconds without progress before the run is ended")
    p.add_argument("--out", default="results", help="parent directory of the new run directory (default results/)")
    p.add_argument("--quiet", action="store_true", help="print only the verdict lines and the run directory")
    p.add_argument("--json", action="store_true", help="print one JSON summary object")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Validate, launch, analyse, write, print; exit 0 (clean), 1 (flagged or failed). ``argv`` goes into
    run.json."""
    from bench.launch import ResultSink, run_torchrun, torchrun_env
    from bench.run import new_run_dir

    env = torchrun_env()
    config, plan, world = validate(args, env)
    if env is not None and env["rank"] != 0:
        outcome = run_torchrun(config, plan, None, env, pairs_rank)
        return EXIT_OK if outcome.status == "complete" else EXIT_FAIL

    run_dir = new_run_dir(args.out)
    meta_config = {"backend": config.backend, "device": config.device, "world_size": world, "command_kind": "pairs",
                   "small_bytes": plan.small_bytes, "large_bytes": plan.large_bytes, "window": plan.window,
                   "iters": plan.iters, "warmup": plan.warmup, "threshold": args.threshold,
                   "latency_factor": args.latency_factor,
                   "ranks_per_node": plan.ranks_per_node, "rounds": len(one_factorisation(world)),
                   "nprocs": world}  # fmt: skip
    sink = ResultSink.for_run(run_dir, argv, env, meta_config)
    writer = sink.writer
    got = sink.result
    if not (args.quiet or args.json):
        print(f"# collbench pairs: {config.backend}, world size {world}, {len(one_factorisation(world))} rounds, "
              f"latency at {plan.small_bytes} B, bandwidth at {plan.large_bytes} B x window {plan.window}")  # fmt: skip
        print(f"# writing {run_dir}", flush=True)
    outcome, wall_s = sink.launch(config, plan, world, env, pairs_rank)
    verdict = None
    if got:
        hosts = got["hosts"]
        nodes = [f"node{r // plan.ranks_per_node}" for r in range(world)] if plan.ranks_per_node else hosts
        meta = writer.meta
        meta["nnodes"] = len(set(nodes))
        verdict = analyse(got["records"], nodes, args.threshold, args.latency_factor)
        files = write_files(verdict, run_dir)
        meta["pairs"] = {**verdict.to_json(), "wall_s": wall_s, "rounds_s": got.get("rounds_s"),
                         "files": [f.name for f in files], "hosts": hosts,
                         "second_look": got.get("second_look", [])}  # fmt: skip
        meta["warnings"] += [f"flagged pair {x}" for x in verdict.flagged_pairs] + verdict.wrong_pairs
    writer.finish(outcome.status, outcome.reason)
    if outcome.status != "complete":
        code = EXIT_INTERRUPTED if (outcome.reason or "").startswith("interrupted") else EXIT_FAIL
    else:
        code = EXIT_FAIL if verdict is None or verdict.flagged else EXIT_OK
    if args.json:
        print(json.dumps({
            "run_dir": str(run_dir), "status": outcome.status, "status_reason": outcome.reason, "wall_s": wall_s,
            "rounds_s": got.get("rounds_s"),
            "flagged_ranks": verdict.flagged_ranks if verdict else None,
            "flagged_nodes": verdict.flagged_nodes if verdict else None,
            "flagged_pairs": len(verdict.flagged_pairs) if verdict else None,
            "slow_links": verdict.slow_links if verdict else None, "exit_code": code,
        }))  # fmt: skip
        return code
    if verdict is not None:
        lines = summary_lines(verdict)
        for line in lines if not args.quiet else [x for x in lines if x.startswith("# flagged") or "WRONG" in x]:
            print(line)
        if got.get("second_look") and not args.quiet:
            print(f"# second look at the latency of {len(got['second_look'])} pair(s) above 2x their kind's "
                  f"median, keeping the better: {', '.join(got['second_look'])}")
    if outcome.status != "complete":
        print(f"collbench: error: pairs {outcome.status}: {outcome.reason}", file=sys.stderr)
    rounds = f" (measuring {got['rounds_s']:.1f} s, the rest starting the ranks)" if got.get("rounds_s") else ""
    print(f"# wall time {wall_s:.1f} s{rounds}")
    print(run_dir, flush=True)
    return code
