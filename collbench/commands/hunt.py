"""``collbench hunt``: find the slow nodes, NICs and links of a job in few rounds of sub-group tests, or
(``--simulate N``) the same search on a model network of N nodes with planted slow ones.

Exit code 1 when something is blamed (or the ranks failed), 2 for bad options (before any process starts), 0
when nothing is blamed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from bench.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, UsageError
from bench.hunt_strategy import DEFAULT_SCREEN_ROUNDS, DEFAULT_THRESHOLD

DESCRIPTION = (
    "Find the nodes, NICs (rails) and links that make collectives slow: rounds of all-reduce tests on random "
    "disjoint groups of nodes, suspects regrouped and confirmed against two known-good anchors, low rings of "
    "cleared nodes taken apart into their links. Writes hunt.json, hunt.csv "
    "and hunt.png into a new run directory; exit 1 when something is blamed. --simulate N runs the same search "
    "on a model network instead of ranks."
)
EPILOG = (
    "Under torchrun the launcher's ranks are used, nodes are host names, rail i is local rank i of every node, and "
    "rank 0 writes. Locally every rank is a node (--ranks-per-node groups them). Sizes take K/M/G suffixes."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--simulate", type=int, metavar="N", help="run the search on a model network of N nodes")
    p.add_argument("--slow", type=int, default=0, help="simulate: slow nodes to plant (default 0)")
    p.add_argument("--slow-nics", type=int, default=0, help="simulate: single slow NICs to plant (default 0)")
    p.add_argument("--slow-links", type=int, default=0,
                   help="simulate: slow links to plant between random pairs of other nodes (default 0)")
    p.add_argument("--slow-factor", type=float, default=0.5, help="simulate: their fraction of the rate (0.5)")
    p.add_argument("--rails", type=int, default=1, help="simulate: NICs per node (default 1)")
    p.add_argument("--noise", type=float, help="simulate: relative spread of a test's busbw (default 0.03)")
    p.add_argument("--down", type=int, metavar="NODE", help="simulate: a node that stopped answering")
    p.add_argument("--seed", type=int, default=0, help="seed of the groups (and of the simulated faults)")
    p.add_argument("--group-size", type=int, help="nodes per screening group (default 8, at least 4 groups)")
    p.add_argument("--screen-rounds", type=int, default=DEFAULT_SCREEN_ROUNDS,
                   help=f"screening rounds, a new random grouping each (default {DEFAULT_SCREEN_ROUNDS})")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"a test below this fraction of the healthy median is low (default {DEFAULT_THRESHOLD:g}; "
                        "lower when the measured noise needs it)")  # fmt: skip
    p.add_argument("--sweep-links", action="store_true",
                   help="after the node search, put every link in a ring (ceil((p - 1) / 2) more rounds; without "
                   "it a slow link is found only when the screen happens to make its nodes ring neighbours)")
    p.add_argument("--max-rounds", type=int, help="stop after this many rounds (default: until decided)")
    p.add_argument("--budget-s", type=float, help="stop starting rounds after this many seconds of tests")
    p.add_argument("--backend", choices=("gloo",), help="tests run on gloo (default)")
    p.add_argument("--nprocs", type=int, help="local ranks to spawn, each a node (default 4)")
    p.add_argument("--size", help="all-reduce size of a test (default 4M)")
    p.add_argument("-n", "--iters", type=int, default=3, help="timed iterations per test (default 3)")
    p.add_argument("-w", "--warmup", type=int, default=1, help="warm-up iterations per test (default 1)")
    p.add_argument("--ranks-per-node", type=int, help="nodes are blocks of this many consecutive ranks")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds a round may wait for a rank; a node silent that long is unreachable (default 60)")
    p.add_argument("--out", default="results", help="parent directory of the new run directory (default results/)")
    p.add_argument("--quiet", action="store_true", help="print only the blamed lines and the run directory")
    p.add_argument("--json", action="store_true", help="print one JSON object (hunt.json's content)")


def _check_common(ns: argparse.Namespace) -> None:
    if ns.group_size is not None and ns.group_size < 2:
        raise UsageError(f"--group-size must be >= 2, got {ns.group_size}")
    if ns.screen_rounds < 1:
        raise UsageError(f"--screen-rounds must be >= 1, got {ns.screen_rounds}")
    if not 0 < ns.threshold < 1:
        raise UsageError(f"--threshold must be between 0 and 1 (a fraction of the median), got {ns.threshold:g}")
    if ns.max_rounds is not None and ns.max_rounds < 1:
        raise UsageError(f"--max-rounds must be >= 1, got {ns.max_rounds}")
    if ns.budget_s is not None and not (math.isfinite(ns.budget_s) and ns.budget_s > 0):
        raise UsageError(f"--budget-s must be a finite number > 0, got {ns.budget_s}")


def pairs_rounds(nodes: int) -> int:
    """Rounds of the full pairs matrix over ``nodes``: p - 1 (p for odd p)."""
    return nodes - 1 if nodes % 2 == 0 else nodes


def run(args: argparse.Namespace, argv: list[str]) -> int:
    _check_common(args)
    if args.simulate is not None:
        return _simulate(args)
    sim_only = [o for o, v in (("--slow", args.slow), ("--slow-nics", args.slow_nics), ("--down", args.down),
                               ("--slow-links", args.slow_links), ("--noise", args.noise),
                               ("--rails", args.rails - 1)) if v]  # fmt: skip
    if sim_only:
        raise UsageError(f"{sim_only[0]} only goes with --simulate N")
    return _measure(args, argv)


def _simulate(args: argparse.Namespace) -> int:
    from bench.hunt_sim import DEFAULT_NOISE, ModelNetwork, plant
    from bench.hunt_strategy import HuntSettings, default_group_size, hunt, max_links

    n = args.simulate
    noise = DEFAULT_NOISE if args.noise is None else args.noise
    if n < 2:
        raise UsageError(f"--simulate needs at least 2 nodes, got {n}")
    if args.rails < 1:
        raise UsageError(f"--rails must be >= 1, got {args.rails}")
    if args.slow < 0 or args.slow_nics < 0 or args.slow + args.slow_nics > n:
        raise UsageError(f"--slow and --slow-nics must be >= 0 and plant at most {n} nodes together")
    free = n - args.slow - args.slow_nics
    if not 0 <= args.slow_links <= max_links(free):
        raise UsageError(f"--slow-links must be in 0..{max_links(free)} (the links among the {free} nodes left)")
    if not 0 < args.slow_factor < 1:
        raise UsageError(f"--slow-factor must be between 0 and 1, got {args.slow_factor:g}")
    if not (math.isfinite(noise) and 0 <= noise < 1):
        raise UsageError(f"--noise must be in [0, 1), got {noise:g}")
    if args.down is not None and not 0 <= args.down < n:
        raise UsageError(f"--down must be a node in 0..{n - 1}, got {args.down}")
    planted = plant(n, args.rails, args.slow, args.slow_nics, args.slow_factor, args.seed, args.slow_links)
    net = ModelNetwork(n, args.rails, planted, noise, args.seed,
                       down=frozenset() if args.down is None else frozenset({args.down}))  # fmt: skip
    settings = HuntSettings(group_size=args.group_size or default_group_size(n), screen_rounds=args.screen_rounds,
                            threshold=args.threshold, max_rounds=args.max_rounds, budget_s=args.budget_s,
                            seed=args.seed, sweep_links=args.sweep_links)  # fmt: skip
    result = hunt(net, settings)
    data = result.to_json()
    want = sorted(_planted_key(p.node, p.peer, p.rail, args.rails) for p in planted)
    if args.down is not None:
        want = sorted([*want, (args.down, -1, -1)])
    got = sorted({_planted_key(b.nodes[0], b.nodes[1] if b.kind == "link" else None, b.rail, args.rails)
                  for b in result.blamed})  # fmt: skip
    data.update(planted=[{"node": p.node, "rail": p.rail, "factor": p.factor, "peer": p.peer} for p in planted],
                simulated={"noise": noise, "down": args.down}, found=got == want, pairs_rounds=pairs_rounds(n),
                node_names=None)  # fmt: skip
    if args.json:
        print(json.dumps(data))
    else:
        for line in summary(data, args.quiet):
            print(line)
    return EXIT_FAIL if result.blamed else EXIT_OK


def _planted_key(node: int, peer: int | None, rail: int | None, rails: int) -> tuple[int, int, int]:
    """(node, peer or -1, rail or -1): a planted fault and a blame compare equal when they name the same thing
    (a node or a single-NIC node's one NIC as -1; a link on its rail)."""
    if peer is not None:
        return (min(node, peer), max(node, peer), rail if rail is not None else -1)
    return (node, -1, -1 if rail is None or rails == 1 else rail)


def summary(data: dict[str, Any], quiet: bool) -> list[str]:
    from analysis.hunt import summary_lines

    lines = summary_lines(data)
    return lines if not quiet else [x for x in lines[1:] if not x.startswith("blamed ")]


def _measure(args: argparse.Namespace, argv: list[str]) -> int:
    """Validate, launch, write, print; exit 0 (nothing blamed), 1 (blamed or failed)."""
    from bench.hunt import hunt_rank, validate
    from bench.launch import Outcome, ResultSink, run_torchrun, torchrun_env
    from bench.run import new_run_dir

    env = torchrun_env()
    config, plan, world = validate(args, env)
    if env is not None and env["rank"] != 0:
        outcome = run_torchrun(config, plan, None, env, hunt_rank)
        return EXIT_OK if outcome.status == "complete" else EXIT_FAIL
    run_dir = new_run_dir(args.out)
    meta_config = {"backend": config.backend, "device": config.device, "world_size": world, "command_kind": "hunt",
                   "size_bytes": plan.size_bytes, "iters": plan.iters, "warmup": plan.warmup,
                   "ranks_per_node": plan.ranks_per_node, "seed": args.seed, "threshold": args.threshold,
                   "group_size": plan.settings.group_size, "screen_rounds": plan.settings.screen_rounds,
                   "nprocs": world}  # fmt: skip
    sink = ResultSink.for_run(run_dir, argv, env, meta_config)
    writer = sink.writer
    got = sink.result
    if not (args.quiet or args.json):
        print(f"# collbench hunt: {config.backend}, world size {world}, all-reduce of {plan.size_bytes} B per test, "
              f"groups of {plan.settings.group_size}")  # fmt: skip
        print(f"# writing {run_dir}", flush=True)
    outcome, wall_s = sink.launch(config, plan, world, env, hunt_rank)
    data = None
    if got:
        from analysis.hunt import blame_label, write_files

        data = {**got["hunt"], "node_names": got["node_names"], "node_ranks": got["node_ranks"],
                "pairs_rounds": pairs_rounds(got["hunt"]["nodes"]), "wall_s": wall_s}  # fmt: skip
        files = write_files(data, run_dir)
        writer.meta["nnodes"] = data["nodes"]
        writer.meta["hunt"] = {k: data[k] for k in ("status", "blamed", "suspects", "n_rounds", "n_tests", "seconds",
                                                    "noise_sigma", "cut", "min_detectable_slowdown")}  # fmt: skip
        writer.meta["hunt"]["files"] = [f.name for f in files]
        writer.meta["warnings"] += [f"blamed {b['kind']}: " + (blame_label(data, b) if b["kind"] == "link"
                                    else f"node {b['node']}") for b in data["blamed"]]  # fmt: skip
    if outcome.status != "complete" and data is not None and data["status"] == "unreachable":
        outcome = Outcome("complete", None)  # the search ended as it should: a node stopped answering
    writer.finish(outcome.status, outcome.reason)
    if data is None:
        code = EXIT_INTERRUPTED if (outcome.reason or "").startswith("interrupted") else EXIT_FAIL
    else:
        code = EXIT_FAIL if data["blamed"] or outcome.status != "complete" else EXIT_OK
    if args.json:
        print(json.dumps({"run_dir": str(run_dir), "status": outcome.status, "status_reason": outcome.reason,
                          "exit_code": code, **(data or {})}))  # fmt: skip
        return code
    if data is not None:
        for line in summary(data, args.quiet):
            print(line)
    if outcome.status != "complete":
        print(f"collbench: error: hunt {outcome.status}: {outcome.reason}", file=sys.stderr)
    print(f"# wall time {wall_s:.1f} s")
    print(run_dir, flush=True)
    return code
