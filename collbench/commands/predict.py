"""``collbench predict``: time, busbw and the best algorithm at sizes and world sizes not measured, and "will
more GPUs help?" for a data-parallel step, from a fit (``analysis.predict``)."""

from __future__ import annotations

import argparse
import json
import math
import sys

from analysis import twotier
from analysis.predict import build_predictor, json_records, predict_table, scaling_table
from analysis.read_runs import find_runs
from analysis.topology import fast_tier
from bench.errors import UsageError
from collbench.commands.options import check_numbers, int_list, parse_bytes
from collectives import costs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fits", nargs="+", required=True,
                        help="a fits.csv, or run directories to fit (runs at >= 2 node counts: two-tier model)")
    parser.add_argument("--collective", default="all_reduce", choices=costs.COLLECTIVES)
    parser.add_argument("--algorithm", default="all", help="algorithm name or 'all' (default)")
    parser.add_argument("--bytes", default="1M,64M,1G", help="sizes, e.g. 4K,1M,1G (default 1M,64M,1G)")
    parser.add_argument("--world-sizes", default="8,64,512", help="comma list (default 8,64,512)")
    parser.add_argument("--gpus-per-node", type=int,
                        help="GPUs per node (default: from the runs' run.json; overrides it)")
    parser.add_argument("--nnodes", type=int,
                        help="nodes of the fitted runs, when they share one world size (GPUs per node = world / nodes)")
    parser.add_argument("--nvlink-domain-gpus", type=int,
                        help="GPUs in one NVLink domain, the fast tier of the model (72 for a GB200 NVL72 rack)")
    parser.add_argument("--boot", type=int, default=200, help="bootstrap replicates for the intervals (default 200)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list: one record per (collective, algorithm, world size, bytes)")
    parser.add_argument("--scaling", action="store_true", help="data-parallel step: will more GPUs help?")
    parser.add_argument("--grad-bytes", default="1G", help="gradient bytes all-reduced per step (--scaling)")
    parser.add_argument("--compute-ms", type=float, default=300.0, help="compute time of one step (--scaling)")
    parser.add_argument("--overlap", type=float, default=0.0, help="share of the all-reduce hidden by compute")
    parser.add_argument("--bucket-bytes", help="gradient bucket size, e.g. 25M (PyTorch DDP's default)")
    parser.add_argument("--gpu-hour-usd", type=float, help="price of one GPU-hour: cost per step (--scaling)")


def _printed_json(pred, summary: list[str], table, as_json: bool) -> bool:  # noqa: ANN001 - predictor, DataFrame
    """The warnings on stderr, then either the JSON records (True: nothing more to print) or the fit's summary
    lines that head the table (False)."""
    for w in pred.warnings:
        print(f"collbench: warning: {w}", file=sys.stderr)
    if as_json:
        print(json.dumps(json_records(table)))
        return True
    for line in summary:
        print(f"# {line}")
    return False


def _unknown_topology(meta: dict) -> bool:
    """A multi-rank run whose nodes and GPUs per node are both unknown (an import without complete rank lines)."""
    hw = meta.get("hardware") or {}
    world = meta.get("world_size") or 0
    known = meta.get("nnodes") or meta.get("ranks_per_node") or hw.get("nnodes") or hw.get("gpus_per_node")
    hosts = hw.get("rank_hosts")
    partial = isinstance(hosts, list) and len(hosts) < int(world) and hw.get("topology_source") != "given"
    return int(world) > 1 and (not known or partial)


def _fast_tier(args: argparse.Namespace) -> tuple[int | None, str]:
    """GPUs per fast tier from --nnodes / --gpus-per-node / --nvlink-domain-gpus (analysis.topology.fast_tier),
    checked against the world sizes of the runs; (None, '') when none is given."""
    if args.nnodes is None and args.gpus_per_node is None and args.nvlink_domain_gpus is None:
        if not (len(args.fits) == 1 and args.fits[0].endswith(".csv")):
            runs = [r for path in args.fits for r in find_runs(path)]
            scales = {int(p) for r in runs for p in r.points["world_size"].dropna().unique() if p > 1}
            unknown = [r.run_id for r in runs if _unknown_topology(r.meta)]
            if unknown and len(scales) >= 2:  # the two-tier model needs every scale's nodes
                raise UsageError(f"the topology of {', '.join(unknown)} is unknown (its log's rank lines are "
                                 "incomplete; never guessed): give --gpus-per-node, --nnodes or "
                                 "--nvlink-domain-gpus")  # fmt: skip
        return None, ""
    sizes: list[int] = []
    if args.nnodes is not None or args.gpus_per_node is not None:
        if len(args.fits) == 1 and args.fits[0].endswith(".csv"):
            raise UsageError("--nnodes / --gpus-per-node apply to run directories, not to a fits.csv")
        sizes = [int(p) for path in args.fits for r in find_runs(path)
                 for p in r.points["world_size"].dropna().unique()]  # fmt: skip
    return fast_tier(sizes, args.nnodes, args.gpus_per_node, args.nvlink_domain_gpus)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Predict the table (or, with --scaling, the data-parallel step) and print it or its JSON records."""
    check_numbers(args, positive=("compute_ms",), fraction=("overlap",), boot=True)
    if args.gpu_hour_usd is not None and not (math.isfinite(args.gpu_hour_usd) and args.gpu_hour_usd >= 0):
        raise UsageError(f"--gpu-hour-usd must be a finite number >= 0, got {args.gpu_hour_usd:g}")
    world_sizes = int_list(args.world_sizes, "--world-sizes")
    tier, tier_line = _fast_tier(args)
    pred, summary = build_predictor(args.fits, args.collective, gpus_per_node=tier, n_boot=args.boot)
    summary = ([tier_line] if tier_line else []) + summary
    if args.scaling:
        alg = "ring" if args.algorithm == "all" else args.algorithm
        bucket = parse_bytes(args.bucket_bytes) if args.bucket_bytes else None
        table = scaling_table(
            pred, grad_bytes=parse_bytes(args.grad_bytes), compute_ms=args.compute_ms, world_sizes=world_sizes,
            algorithm=alg, overlap=args.overlap, bucket_bytes=bucket, collective=args.collective,
            gpu_hour_usd=args.gpu_hour_usd,
        )  # fmt: skip
        if _printed_json(pred, summary, table, args.json):
            return 0
        price = f", {args.gpu_hour_usd:g} USD per GPU-hour" if args.gpu_hour_usd else ""
        print(f"# data-parallel step: {args.collective}/{alg} of {args.grad_bytes} per step, compute "
              f"{args.compute_ms} ms, overlap {args.overlap:.0%}{price}")  # fmt: skip
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        return 0
    known = sorted(set(costs.cost_algorithms(args.collective)) | set(twotier.algorithms_for(args.collective)))
    algorithms = known if args.algorithm == "all" else [args.algorithm]
    if args.algorithm != "all" and args.algorithm not in known:
        raise UsageError(f"unknown algorithm {args.algorithm!r} for {args.collective}")
    sizes = [parse_bytes(s) for s in args.bytes.split(",") if s.strip()]
    table = predict_table(pred, args.collective, algorithms, sizes, world_sizes)
    if _printed_json(pred, summary, table, args.json):
        return 0
    print(f"{'collective':<15} {'algorithm':<18} {'p':>5} {'bytes':>12} {'time_us':>12} {'95% interval':>23} "
          f"{'busbw_gbps':>10}  basis")  # fmt: skip
    for r in table.sort_values(["world_size", "bytes", "time_us"]).itertuples(index=False):
        mark = "  <- best" if r.best else ("  (lower bound, not ranked)" if r.lower_bound else "")
        t = f"{'>=' if r.lower_bound else ''}{r.time_us:.1f}"
        ci = f"[{r.time_us_lo:.1f}, {r.time_us_hi:.1f}]" if math.isfinite(r.time_us_lo) else "-"
        print(f"{r.collective:<15} {r.algorithm:<18} {r.world_size:>5} {r.bytes:>12} {t:>12} {ci:>23} "
              f"{r.busbw_gbps:>10.3f}  {r.basis}{mark}")  # fmt: skip
    return 0
