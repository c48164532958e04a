"""``collbench run``: validate options (before any process starts), launch, print, write, choose the exit code."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from bench.backend_support import DTYPE_SIZES, builtin_lacks_op, check_combination
from bench.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, UsageError
from bench.plan import (
    DEFAULT_MAX_TIME_PER_POINT_S,
    DEFAULT_WARMUP,
    SWEEP_BUDGET_S,
    RunConfig,
    auto_time_per_point,
    build_plan,
    progress_units,
)
from bench.sizes import DEFAULT_MAX_BYTES, parse_size, size_sweep
from collectives.costs import COLLECTIVES
from collectives.spec import DEFAULT_SWEEP, SEND_RECV, is_point_to_point, spec

MAX_PROCS_PER_CPU = 8  # gloo ranks per CPU core beyond which a local run is refused (p=16 on 2 cores is fine)
MEMORY_FRACTION = 0.8  # share of available memory a local CPU run may plan to use


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def several_ranks_per_gpu() -> bool:
    """NCCL_MULTI_RANK_GPU_ENABLE=1: local ranks share the visible GPUs round-robin (rank % GPUs); NCCL itself
    decides whether it accepts two ranks on one device (most versions refuse: "Duplicate GPU detected")."""
    return os.environ.get("NCCL_MULTI_RANK_GPU_ENABLE") == "1"


def visible_gpus() -> int:
    """CUDA devices this process sees (0 without CUDA); the default backend and rank count follow it."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _available_memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _resolve_algorithms(collectives: list[str], requested: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(collective, algorithm names) pairs; a name registered for none of the collectives is a usage error."""
    import collectives as registry
    from bench import faults

    known = {c: list(SEND_RECV.p2p.measured) if is_point_to_point(c) else list(registry.algorithms(c))
             for c in collectives}  # fmt: skip
    if faults.enabled():
        for c in collectives:
            known[c] += [] if is_point_to_point(c) else list(faults.FAULTS)
    if requested.strip() == "all":
        return tuple((c, tuple(n for n in known[c] if n not in faults.FAULTS)) for c in collectives)
    names = _split(requested)
    if not names:
        raise UsageError("--algorithms is empty")
    for name in names:
        if not any(name in known[c] for c in collectives):
            choices = sorted({n for c in collectives for n in known[c] if n not in faults.FAULTS})
            raise UsageError(f"unknown algorithm {name!r} for {', '.join(collectives)}; known: {', '.join(choices)}")
    if SEND_RECV.name in collectives and not any(n in known[SEND_RECV.name] for n in names):
        raise UsageError(f"--algorithms names no {SEND_RECV.name} measurement; {SEND_RECV.name} has "
                         f"{', '.join(SEND_RECV.p2p.measured)}")
    return tuple((c, tuple(n for n in names if n in known[c])) for c in collectives)


def validate(ns: argparse.Namespace, launcher_env: dict[str, int] | None) -> tuple[RunConfig, int]:
    """RunConfig and world size from the options; UsageError naming the first problem."""
    collectives = list(DEFAULT_SWEEP) if ns.collectives.strip() == "all" else _split(ns.collectives)
    if not collectives:
        raise UsageError("--collectives is empty")
    for c in collectives:
        if c not in COLLECTIVES and not is_point_to_point(c):
            raise UsageError(f"unknown collective {c!r}; choose from {', '.join((*COLLECTIVES, SEND_RECV.name))}")
    try:
        min_bytes = parse_size(ns.min_bytes)
        max_bytes = parse_size(ns.max_bytes) if ns.max_bytes is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    segment_bytes = None
    if ns.segment_bytes is not None:
        try:
            segment_bytes = parse_size(ns.segment_bytes)
        except ValueError as exc:
            raise UsageError(f"--segment-bytes: {exc}") from None
        if segment_bytes < 1:
            raise UsageError(f"--segment-bytes must be at least 1 byte, got {ns.segment_bytes}")
    if max_bytes is not None and min_bytes > max_bytes:
        raise UsageError(f"--min-bytes {ns.min_bytes} is larger than --max-bytes {ns.max_bytes}")
    if not ns.step_factor > 1:
        raise UsageError(f"--step-factor must be > 1, got {ns.step_factor:g}")
    if ns.iters is not None and ns.iters < 1:
        raise UsageError(f"--iters must be >= 1, got {ns.iters}")
    if not 0 < ns.target_ci < 1:
        raise UsageError(f"--target-ci must be between 0 and 1 (a fraction, 0.05 = 5%), got {ns.target_ci:g}")
    if ns.max_time_per_point is not None and not ns.max_time_per_point > 0:
        raise UsageError(f"--max-time-per-point must be > 0 seconds, got {ns.max_time_per_point:g}")
    if not 0 <= ns.transport_nice <= 19:
        raise UsageError(f"--transport-nice must be between 0 and 19, got {ns.transport_nice}")
    if ns.visits < 1:
        raise UsageError(f"--visits must be >= 1, got {ns.visits}")
    if ns.max_iters < 1:
        raise UsageError(f"--max-iters must be >= 1, got {ns.max_iters}")
    if ns.warmup is not None and ns.warmup < 0:
        raise UsageError(f"--warmup must be >= 0, got {ns.warmup}")
    if not ns.timeout > 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {ns.timeout:g}")
    if ns.nprocs is not None and ns.nprocs < 1:
        raise UsageError(f"--nprocs must be >= 1, got {ns.nprocs}")
    check_upper_bounds(ns)
    if ns.dtype not in DTYPE_SIZES:
        raise UsageError(f"unknown dtype {ns.dtype!r}; choose from {', '.join(DTYPE_SIZES)}")
    if ns.window < 1:
        raise UsageError(f"--window must be >= 1, got {ns.window}")

    gpus = visible_gpus()
    backend = ns.backend or ("nccl" if gpus else "gloo")
    if backend == "nccl" and gpus == 0:
        raise UsageError("--backend nccl needs a visible GPU; none found (use --backend gloo)")
    device = "cuda" if backend == "nccl" else "cpu"
    if max_bytes is None:
        max_bytes = max(min_bytes, DEFAULT_MAX_BYTES[backend])
    problem = check_combination(backend, ns.dtype, ns.op, [c for c in collectives if c in COLLECTIVES])
    if problem:
        raise UsageError(problem)
    if ns.cuda_graph and device != "cuda":
        raise UsageError("--cuda-graph needs the nccl backend on GPUs")

    if launcher_env is not None:
        world = launcher_env["world_size"]
    else:
        world = (
            ns.nprocs if ns.nprocs is not None else (gpus if device == "cuda" else min(4, max(2, os.cpu_count() or 2)))
        )
        cpus = os.cpu_count() or 1
        if device == "cuda" and world > gpus and not several_ranks_per_gpu():
            raise UsageError(
                f"--nprocs {world} is more than the {gpus} visible GPU(s) (NCCL_MULTI_RANK_GPU_ENABLE=1 shares GPUs "
                "between ranks, where this NCCL allows it)"
            )
        if device == "cpu" and world > MAX_PROCS_PER_CPU * cpus:
            raise UsageError(
                f"--nprocs {world} is too many for {cpus} CPU core(s) (at most {MAX_PROCS_PER_CPU * cpus})"
            )
        if device == "cpu":
            check_memory(world, max_bytes, ns.dtype, ns.window if SEND_RECV.name in collectives else 0)
    if SEND_RECV.name in collectives and world < SEND_RECV.min_world_size:
        raise UsageError(f"{SEND_RECV.name} needs at least {SEND_RECV.min_world_size} ranks (ranks 0 and 1 measure), "
                         f"world size is {world}")  # fmt: skip
    if not 0 <= ns.root < world:
        raise UsageError(f"--root {ns.root} is not a rank of world size {world}")

    config = RunConfig(
        collectives=tuple(collectives),
        algorithms=_resolve_algorithms(collectives, ns.algorithms),
        backend=backend,
        device=device,
        dtype=ns.dtype,
        op=ns.op,
        sizes=tuple(size_sweep(min_bytes, max_bytes, ns.step_factor)),
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        step_factor=ns.step_factor,
        iters=ns.iters,
        warmup=ns.warmup,
        root=ns.root,
        in_place=ns.in_place,
        cuda_graph=ns.cuda_graph,
        seed=ns.seed,
        timeout_s=ns.timeout,
        segment_bytes=segment_bytes,
        interleave=not ns.no_interleave,
        target_ci=ns.target_ci,
        max_time_per_point_s=ns.max_time_per_point or DEFAULT_MAX_TIME_PER_POINT_S,
        max_iters=ns.max_iters,
        transport_nice=ns.transport_nice,
        window=ns.window,
        visits=ns.visits,
    )
    if builtin_lacks_op(backend, ns.op) and all(
        case.algorithm == "builtin" and spec(case.collective).reducing for case in build_plan(config, world)
    ):
        raise UsageError(f"--op {ns.op}: {backend} has no {ns.op.upper()} reduction, so the builtin of every case "
                         "would be skipped and nothing would run; use another --op or a hand-written algorithm")
    if ns.max_time_per_point is None:  # auto: the sweep's budget shared by its adaptive points
        n_adaptive = sum(1 for case in build_plan(config, world) if case.adaptive)
        config = dataclasses.replace(config, max_time_per_point_s=auto_time_per_point(n_adaptive))
    return config, world


def check_memory(world: int, max_bytes: int, dtype: str, window: int = 0, option: str = "--max-bytes") -> None:
    """Refuse a local run whose buffers and exact references would not fit in available memory (``window``:
    send_recv's window, whose receive slots take up to SLOT_BYTES more; 0 without send_recv)."""
    available = _available_memory_bytes()
    if available is None:
        return
    # two buffers plus two float64/int64 reference arrays (and one int64 index array) per rank
    per_rank = max_bytes * (2 + 3 * 8 / DTYPE_SIZES[dtype]) + (400 << 20)  # + torch itself
    if window:
        per_rank += min(window * max_bytes, SEND_RECV.p2p.slot_bytes)
    if world * per_rank > MEMORY_FRACTION * available:
        need, have = world * per_rank / 2**30, available / 2**30
        raise UsageError(
            f"{world} ranks at {option} {max_bytes} need about {need:.1f} GiB, {have:.1f} GiB available"
        )


def new_run_dir(out: str) -> Path:
    """A new run directory under ``--out`` (``run`` and ``pairs``); UsageError (one line) when it cannot be made."""
    from bench.run_writer import create_run_dir

    parent = _out_parent(out)
    try:
        return create_run_dir(parent)
    except OSError as exc:
        raise UsageError(f"cannot create a run directory under {out}: {exc}") from None


def _out_parent(path: str) -> Path:
    """``--out``, the parent of new run directories, created if missing; UsageError (one line) when it is (inside)
    a run directory or cannot be written."""
    from bench.schema import inside_run_error

    if (refused := inside_run_error(path)) is not None:
        raise UsageError(refused)
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out {path}: {exc.strerror or exc}") from None
    if not out.is_dir() or not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out {path} is not a writable directory")
    return out


def config_json(config: RunConfig, nprocs: int) -> dict[str, Any]:
    names: list[str] = []
    for _, algs in config.algorithms:
        names += [a for a in algs if a not in names]
    return {
        "collectives": list(config.collectives),
        "algorithms": names,
        "algorithms_per_collective": {c: list(a) for c, a in config.algorithms},
        "min_bytes": config.min_bytes,
        "max_bytes": config.max_bytes,
        "step_factor": config.step_factor,
        "iters": config.iters,
        "warmup": config.warmup if config.warmup is not None else DEFAULT_WARMUP,
        "iters_policy": "fixed" if config.iters is not None or config.cuda_graph else (
            f"adaptive: until the 95% CI is within +-{config.target_ci:g} of the estimate, at least 10 samples "
            f"(fewer above 256 KiB), at most {config.max_iters}, {config.max_time_per_point_s:g} s per point, in "
            f"{config.visits} visits spread over the run"),
        "interleave": config.interleave,
        "target_ci": config.target_ci,
        "max_time_per_point_s": config.max_time_per_point_s,
        "max_iters": config.max_iters,
        "visits": config.visits,
        "transport_nice": config.transport_nice if config.backend == "gloo" else None,
        "dtype": config.dtype,
        "op": config.op,
        "timeout_s": config.timeout_s,
        "root": config.root,
        "in_place": config.in_place,
        "cuda_graph": config.cuda_graph,
        "seed": config.seed,
        "segment_bytes": config.segment_bytes,
        **({"window": config.window} if SEND_RECV.name in config.collectives else {}),
        "sizes": list(config.sizes),
        "nprocs": nprocs,
    }


#: the largest values the options may take: beyond them a run could not finish (or overflows) anyway
UPPER_BOUNDS = {"step_factor": 1024.0, "iters": 10**7, "max_iters": 10**7, "warmup": 10**6, "visits": 10**4,
                "timeout": 7 * 86400.0, "max_time_per_point": 86400.0, "window": 10**6}  # fmt: skip


def check_upper_bounds(ns: argparse.Namespace) -> None:
    """Finite and not absurdly large (inf, 1e20 iterations): one line and exit 2 before any process starts."""
    for name, hi in UPPER_BOUNDS.items():
        value = getattr(ns, name, None)
        if value is not None and not (math.isfinite(value) and value <= hi):
            raise UsageError(f"--{name.replace('_', '-')} must be a finite number <= {hi:g}, got {value:g}")


def topology(env: dict[str, int] | None, world: int) -> dict[str, int]:
    """nnodes and ranks_per_node for run.json: spawned runs are one node; under torchrun LOCAL_WORLD_SIZE ranks
    per node and GROUP_WORLD_SIZE nodes (torchrun's agents), else ceil(WORLD_SIZE / LOCAL_WORLD_SIZE)."""
    if env is None:
        return {"nnodes": 1, "ranks_per_node": world}
    local = max(1, env["local_world_size"])
    nodes = env.get("group_world_size") or -(-world // local)
    return {"nnodes": max(1, nodes), "ranks_per_node": local}


def run_command(ns: argparse.Namespace, argv: list[str]) -> int:
    """Validate, create the run directory, run, print; the exit code says whether the run is trustworthy.
    ``--repeat K``: K such runs into one new parent directory (``run_repeated``)."""
    from bench.launch import run_torchrun, torchrun_env

    env = torchrun_env()
    repeat = getattr(ns, "repeat", None)
    check_repeat(repeat, env)
    if env is not None and ns.nprocs is not None and env["rank"] == 0:
        print("collbench: note: --nprocs is ignored under torchrun", file=sys.stderr)
    config, world = validate(ns, env)
    plan = build_plan(config, world)
    if not plan:
        raise UsageError("nothing to measure: every size rounds to zero elements")
    if repeat is not None:
        return run_repeated(ns, argv, config, world, plan, repeat)
    is_writer = env is None or env["rank"] == 0
    if not is_writer:
        outcome = run_torchrun(config, plan, None, env)
        return EXIT_OK if outcome.status == "complete" else EXIT_FAIL
    run_dir = new_run_dir(ns.out)
    code, _, _ = _run_once(ns, argv, config, world, plan, run_dir, env, show=not (ns.quiet or ns.json))
    return code


def check_repeat(repeat: int | None, env: dict[str, int] | None) -> None:
    """``--repeat``: an integer in [1, MAX_REPEAT], for spawned local ranks only (under torchrun the job itself
    is what repeats: launch it K times)."""
    from bench.schema import MAX_REPEAT

    if repeat is None:
        return
    if not 1 <= repeat <= MAX_REPEAT:
        raise UsageError(f"--repeat must be an integer between 1 and {MAX_REPEAT}, got {repeat}")
    if env is not None:
        raise UsageError("--repeat spawns local ranks K times; under torchrun launch the job K times instead")


def run_repeated(ns: argparse.Namespace, argv: list[str], config: RunConfig, world: int, plan: list,
                 repeat: int) -> int:
    """K independent runs (fresh ranks and process group each, the case order rotated between them by
    ``bench.plan.rotated_plan``) as run directories inside one new parent under ``--out``, with a manifest
    (``bench.schema.REPEAT_MANIFEST``). Stops at the first run that is interrupted; exit code: the worst run's."""
    from bench.plan import rotated_plan
    from bench.run_writer import create_run_dir
    from bench.schema import REPEAT_MANIFEST, repeat_manifest, write_json_atomic

    parent = _out_parent(ns.out)
    host = (os.uname().nodename.split(".")[0] or "host")[:24]
    try:
        top = create_run_dir(parent, tag=f"{host}-repeat{repeat}")
    except OSError as exc:
        raise UsageError(f"cannot create a directory under {ns.out}: {exc}") from None
    command = ["collbench", *argv]
    runs: list[dict[str, Any]] = []
    manifest = top / REPEAT_MANIFEST
    write_json_atomic(manifest, repeat_manifest(command, repeat, runs, "running"))
    if not (ns.quiet or ns.json):
        print(f"# collbench run --repeat {repeat}: {config.backend} on {config.device}, world size {world}, "
              f"{len(plan)} cases per run, each run on fresh ranks with the case order rotated; writing {top}",
              flush=True)  # fmt: skip
    codes: list[int] = []
    try:
        for index in range(repeat):
            order = rotated_plan(plan, index, repeat, config.interleave)
            try:
                run_dir = create_run_dir(top, tag=f"r{index + 1:02d}")
            except OSError as exc:
                raise UsageError(f"cannot create a run directory under {top}: {exc}") from None
            code, outcome, stats = _run_once(ns, argv, config, world, order, run_dir, None, show=False,
                                             summary=False)  # fmt: skip
            codes.append(code)
            runs.append({"run_dir": run_dir.name, "repeat": index + 1, "status": outcome.status,
                         "points": stats["points"], "first_case": order[0].label, "exit_code": code})  # fmt: skip
            write_json_atomic(manifest, repeat_manifest(command, repeat, runs, "running"))
            if not (ns.quiet or ns.json):
                print(f"# repeat {index + 1}/{repeat}: {outcome.status}, {stats['points']} points, first case "
                      f"{order[0].label}: {run_dir.name}", flush=True)  # fmt: skip
            if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
                break
    except KeyboardInterrupt:  # between two runs: the runs made so far are kept and the manifest says so
        codes.append(EXIT_INTERRUPTED)
        print("collbench: error: interrupted between two repeats; the finished runs are kept", file=sys.stderr)
    if not codes:
        codes.append(EXIT_FAIL)
    worst = max(codes, key=lambda c: (c != EXIT_OK, c))
    status = "complete" if worst == EXIT_OK and len(codes) == repeat else "incomplete"
    write_json_atomic(manifest, repeat_manifest(command, repeat, runs, status))
    if ns.json:
        print(json.dumps({"repeat_dir": str(top), "repeat": repeat, "status": status, "runs": runs,
                          "exit_code": worst}))  # fmt: skip
    else:
        if not ns.quiet:
            print(f"# {len(codes)} of {repeat} runs, {status}; compare two such directories with "
                  "collbench compare BASE NEW (docs/regression.md)")
        print(top, flush=True)
    return worst


def _run_once(ns: argparse.Namespace, argv: list[str], config: RunConfig, world: int, plan: list, run_dir: Path,
              env: dict[str, int] | None, show: bool, summary: bool = True) -> tuple[int, Any, dict[str, Any]]:
    """One run of ``plan`` into ``run_dir`` (this process writes): (exit code, outcome, point counts).
    ``show``: the preamble and table; ``summary``: the closing lines (or JSON object) of a single run."""
    from bench.launch import Outcome, Sink, run_spawned, run_torchrun
    from bench.run_writer import RunWriter, base_metadata
    from bench.table import TablePrinter

    meta_config = {"backend": config.backend, "device": config.device, "world_size": world}
    meta_config.update(topology(env, world))
    meta_config.update(config_json(config, world))
    command = ["collbench", *argv]
    writer = RunWriter(run_dir, base_metadata(run_dir, command, "torchrun" if env else "spawn", meta_config))

    show_table = show
    bar = _progress_bar(progress_units(plan, config), enabled=show_table and sys.stderr.isatty())
    write_line = (lambda line: bar.write(line, file=sys.stdout)) if bar else (lambda line: print(line, flush=True))
    table = TablePrinter(config.in_place, write=write_line)
    stats = {"points": 0, "wrong": 0, "noisy": 0, "slow": 0, "busbw_sum": 0.0}

    def on_point(m) -> None:
        stats["points"] += 1
        stats["wrong"] += 0 if m.correct else 1
        stats["noisy"] += int(m.stats.noisy)
        stats["slow"] += int(m.stats.estimate.slow_fraction > 0)
        stats["busbw_sum"] += m.busbw_gbps
        if show_table:
            table.add(m)

    def warn(msg: str) -> None:
        if not ns.json:
            print(f"collbench: warning: {msg}", file=sys.stderr)

    sink = Sink(writer, on_point, warn, on_progress=bar.update if bar else None)
    if show_table:
        _print_preamble(config, world, run_dir, env is not None)
    try:
        if env is None:
            outcome = run_spawned(config, plan, world, sink)
        else:
            outcome = run_torchrun(config, plan, sink, env)
    except Exception as exc:  # noqa: BLE001 - never lose the file status to a harness bug
        outcome = Outcome("failed", f"{type(exc).__name__}: {exc}")
    finally:
        if bar:
            bar.close()
    writer.finish(outcome.status, outcome.reason)
    if summary:
        return _finish(ns, writer, outcome, stats, world), outcome, stats
    return _exit_code(outcome, stats["wrong"]), outcome, stats


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, file=sys.stderr, unit="visit", leave=False, dynamic_ncols=True)


def _print_preamble(config: RunConfig, world: int, run_dir: Path, torchrun: bool) -> None:
    launcher = "torchrun" if torchrun else f"{world} spawned local processes"
    print(f"# collbench run: {config.backend} on {config.device}, world size {world} ({launcher})")
    print(
        f"# dtype {config.dtype}  op {config.op}  sizes {config.min_bytes}..{config.max_bytes} x{config.step_factor:g}"
    )
    print(f"# writing {run_dir}", flush=True)


def _exit_code(outcome, wrong: int) -> int:
    """0 for a complete run with every point correct; 130/143 when interrupted/terminated; else 1."""
    if outcome.status == "complete" and wrong == 0:
        return EXIT_OK
    if outcome.reason and outcome.reason.startswith("interrupted"):
        return EXIT_INTERRUPTED
    if outcome.reason and outcome.reason.startswith("terminated"):
        return EXIT_TERMINATED
    return EXIT_FAIL


def _finish(ns: argparse.Namespace, writer, outcome, stats: dict[str, Any], world: int) -> int:
    points, wrong = stats["points"], stats["wrong"]
    code = _exit_code(outcome, wrong)
    if ns.json:
        summary = {
            "run_dir": str(writer.run_dir),
            "status": outcome.status,
            "status_reason": outcome.reason,
            "points": points,
            "wrong_points": wrong,
            "noisy_points": stats["noisy"],
            "slow_mode_points": stats["slow"],
            "skipped": outcome.skipped,
            "exit_code": code,
        }
        if world == 1:
            summary["note"] = "world size 1: busbw is 0 for all_reduce/all_gather/reduce_scatter; read algbw"
        print(json.dumps(summary))
        return code
    if not ns.quiet:
        avg = stats["busbw_sum"] / points if points else 0.0
        print(f"# Out of bounds values : {wrong} {'OK' if wrong == 0 else 'WRONG POINTS'}")
        print(f"# Avg bus bandwidth    : {avg:.4f} GB/s over {points} points")
    if stats["noisy"] or stats["slow"]:
        noisy = (f"{stats['noisy']} of {points} points missed the CI target (noisy)" if ns.iters is None else
                 f"{stats['noisy']} of {points} points have a 95% CI wider than the target (--iters {ns.iters} is "
                 "fixed: no more samples were taken)")  # fmt: skip
        print(
            f"collbench: warning: {noisy}; "
            f"{stats['slow']} had a slow mode left out of the estimate (interference; see run.json warnings)",
            file=sys.stderr,
        )
    if ns.max_time_per_point is None and ns.iters is None and points and not ns.quiet:
        print(f"# a quick sweep: {SWEEP_BUDGET_S:g} s of sampling shared by its points; for tighter intervals "
              "(regression runs, reports) give each point its own budget, e.g. --max-time-per-point 1 "
              "(docs/protocol.md); to compare versions, --repeat 3 on each (docs/regression.md)")  # fmt: skip
    if wrong:
        print(f"collbench: error: {wrong} point(s) gave WRONG results (correct=false in results.csv)", file=sys.stderr)
    if outcome.status != "complete":
        print(f"collbench: error: run {outcome.status}: {outcome.reason}", file=sys.stderr)
    print(writer.run_dir, flush=True)
    return code
