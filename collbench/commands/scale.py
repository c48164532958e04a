"""``collbench scale``: measure a synthetic data-parallel training step at the world size it runs on
(``bench.scale_step``), write the run directory; with ``--study RUN...``, hold runs at several world sizes
against the prediction from collective fits and write scale.csv, scale.md and the figures
(``analysis.scaling_study``).

Exit code 0 (complete and every gradient right), 1 (failed, incomplete or wrong), 2 for bad options (before any
process starts).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from analysis import scaling_study
from bench.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, UsageError
from bench.scale_step import MODES, check_values
from bench.sizes import format_size
from collbench.commands.options import add_force_argument

DESCRIPTION = (
    "Measure a synthetic data-parallel training step the way DDP runs it: a compute phase of --compute-ms "
    "(strong scaling: divided by the world size; weak: per rank), gradients of --grad-bytes all-reduced in "
    "--bucket-bytes buckets as the backward half of the compute phase makes them ready. On CPU ranks the compute "
    "phase is a timed wait (CPU ranks share cores). Writes a run directory (run.json, steps.csv). With --study "
    "RUN...: speedup and efficiency of runs at several world sizes against the prediction from --fits, with "
    "Amdahl's and Gustafson's laws fitted, into scale.csv, scale.md and figures."
)
EPILOG = (
    "Sizes take K/M/G suffixes (powers of 1024). Under torchrun the launcher's ranks are used and rank 0 writes; "
    "across emulated nodes: collbench emulate --nodes N -- scale .... docs/scale.md."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grad-bytes", default="16M", help="gradient bytes all-reduced per step (default 16M)")
    p.add_argument("--compute-ms", type=float, default=300.0,
                   help="compute time of one step on one rank, ms (default 300)")  # fmt: skip
    p.add_argument("--bucket-bytes", help="gradient bucket size (default 25M as DDP, at most --grad-bytes)")
    p.add_argument("--algorithm", default="builtin", help="all_reduce algorithm (default builtin)")
    p.add_argument("--mode", choices=MODES, default="weak",
                   help="strong: fixed global batch, compute per rank = --compute-ms / p; weak (default): fixed "
                   "per-rank batch, compute per rank = --compute-ms")  # fmt: skip
    p.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("-w", "--warmup", type=int, default=2, help="warm-up steps (default 2)")
    p.add_argument("--backend", choices=("gloo", "nccl"), help="default: nccl if GPUs are visible, else gloo")
    p.add_argument("--nprocs", type=int, help="local ranks to spawn (default: GPUs for nccl, 2 for gloo)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds without progress before the run is ended")
    p.add_argument("--out", help="parent of the new run directory (default results/); with --study the study "
                   "directory (default: <folder>/study inside the first --study folder of runs, or <run>.study "
                   "beside a run directory)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON summary object")
    g = p.add_argument_group("study (no ranks: reads scale runs)")
    g.add_argument("--study", nargs="+", metavar="RUN", help="scale run directories (or parents) to hold together")
    g.add_argument("--fits", nargs="+", help="a fits.csv, or all_reduce run directories of the same machine")
    g.add_argument("--gpu-hour-usd", type=float, help="price of one GPU-hour: cost per step and per 1000 steps")
    g.add_argument("--boot", type=int, default=200, help="bootstrap replicates of the fits (default 200)")
    add_force_argument(p)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    if args.study:
        return _study(args)
    return _measure(args, argv)


def _study(args: argparse.Namespace) -> int:
    """scale.csv, scale.md and the figures of the runs in --study, predicted from --fits."""
    from analysis.outputs import claim_output_dir, default_output_dir
    from analysis.predict import build_predictor

    if args.gpu_hour_usd is not None and not (math.isfinite(args.gpu_hour_usd) and args.gpu_hour_usd >= 0):
        raise UsageError(f"--gpu-hour-usd must be a finite number >= 0, got {args.gpu_hour_usd:g}")
    if not 0 <= args.boot <= 100_000:
        raise UsageError(f"--boot must be between 0 and 100000, got {args.boot}")
    skipped: list[str] = []
    runs = scaling_study.load_study(args.study, skipped)
    default = default_output_dir(args.study[0], "study")
    out = claim_output_dir(args.out or default, scaling_study.STUDY_OUTPUTS, args.force, default=not args.out,
                           instead=default)  # fmt: skip
    predictor, summary = (build_predictor(args.fits, "all_reduce", n_boot=args.boot) if args.fits
                          else (None, []))  # fmt: skip
    df, notes = scaling_study.study_table(runs, predictor, args.gpu_hour_usd)
    if predictor is None:
        notes.append("no --fits: measured only")
    notes = [f"fit: {s}" for s in summary] + list(getattr(predictor, "warnings", [])) + skipped + notes
    written = scaling_study.write_study(df, notes, out)
    if args.json:
        print(json.dumps({"out": str(out), "rows": len(df), "notes": notes}))
        return EXIT_OK
    cols = ["world_size", "mode", "bucket_bytes", "step_ms_measured", "step_ms_predicted", "error_pct",
            "comm_exposed_ms", "speedup", "efficiency"]  # fmt: skip
    print(df[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    for n in notes:
        print(f"# {n}")
    print(f"wrote {', '.join(str(p) for p in written)}")
    return EXIT_OK


def _measure(args: argparse.Namespace, argv: list[str]) -> int:
    """Validate, launch, summarise, write, print."""
    check_values(args)  # the torch-free checks first: one line before torch is even imported
    from bench.launch import ResultSink, run_torchrun, torchrun_env
    from bench.run import new_run_dir, topology
    from bench.scale_step import CPU_COMPUTE, CUDA_COMPUTE, scale_rank, validate

    env = torchrun_env()
    config, plan, world = validate(args, env)
    if env is not None and env["rank"] != 0:
        outcome = run_torchrun(config, plan, None, env, scale_rank)
        return EXIT_OK if outcome.status == "complete" else EXIT_FAIL

    run_dir = new_run_dir(args.out or "results")
    compute_kind = CUDA_COMPUTE if config.device == "cuda" else CPU_COMPUTE
    meta_config = {"backend": config.backend, "device": config.device, "world_size": world, **topology(env, world),
                   "command_kind": "scale", "mode": plan.mode, "algorithm": plan.algorithm,
                   "grad_bytes": plan.grad_bytes, "bucket_bytes": plan.bucket_bytes, "n_buckets": len(plan.buckets()),
                   "compute_ms": plan.compute_ms, "rank_compute_ms": plan.rank_compute_ms, "steps": plan.steps,
                   "warmup": plan.warmup, "compute_kind": compute_kind, "nprocs": world}  # fmt: skip
    sink = ResultSink.for_run(run_dir, argv, env, meta_config)
    writer = sink.writer
    got = sink.result
    quiet = args.json
    if not quiet:
        print(f"# collbench scale: {config.backend}, world size {world}, {plan.mode} scaling, all_reduce/"
              f"{plan.algorithm} of {format_size(plan.grad_bytes)} in {len(plan.buckets())} bucket(s) of "
              f"{format_size(plan.bucket_bytes)}, compute {plan.rank_compute_ms:g} ms per rank")  # fmt: skip
        print(f"# compute phase: {compute_kind}")
        print(f"# writing {run_dir}", flush=True)
    outcome, wall_s = sink.launch(config, plan, world, env, scale_rank)
    summary = None
    if got:
        rows = scaling_study.step_rows(got["ranks"])
        scaling_study.write_steps_csv(rows, run_dir)
        summary = scaling_study.summarize_steps(rows)
        writer.meta["scale"] = {**summary, "compute_kind": got["compute_kind"], "hosts": got["hosts"],
                                "ms_per_matmul": got.get("ms_per_matmul"), "wall_s": wall_s,
                                "files": [scaling_study.STEPS_CSV]}  # fmt: skip
        if summary["n_wrong"]:
            writer.meta["warnings"].append(f"WRONG gradients: {summary['n_wrong']} wrong elements")
    writer.finish(outcome.status, outcome.reason)
    if outcome.status != "complete":
        code = EXIT_INTERRUPTED if (outcome.reason or "").startswith("interrupted") else EXIT_FAIL
    else:
        code = EXIT_FAIL if summary is None or summary["n_wrong"] else EXIT_OK
    if args.json:
        print(json.dumps({"run_dir": str(run_dir), "status": outcome.status, "status_reason": outcome.reason,
                          "world_size": world, "mode": plan.mode, **(summary or {}), "compute_kind": compute_kind,
                          "exit_code": code}))  # fmt: skip
        return code
    if summary is not None:
        print(f"# step {summary['step_ms']:.1f} ms [{summary['step_ms_lo']:.1f}, {summary['step_ms_hi']:.1f}] "
              f"(95% CI, {summary['n_steps']} steps): compute {summary['compute_ms']:.1f} ms, exposed communication "
              f"{summary['comm_exposed_ms']:.1f} ms, all-reduces {summary['comm_ms']:.1f} ms")  # fmt: skip
        if summary["n_wrong"]:
            print(f"collbench: error: {summary['n_wrong']} gradient elements were WRONG", file=sys.stderr)
    if outcome.status != "complete":
        print(f"collbench: error: scale {outcome.status}: {outcome.reason}", file=sys.stderr)
    print(run_dir, flush=True)
    return code
