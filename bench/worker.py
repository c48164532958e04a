"""One rank's life: initialise the process group, measure every case of the plan, hand points to the writer.

Used by local spawn (the parent process writes; points travel over a pipe) and by torchrun (rank 0 writes
in-process). Only rank 0 emits points; every rank emits ``tick`` after each case for the watchdog.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import sys
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bench.plan import RunConfig
from bench.records import CaseSpec

Emit = Callable[[str, Any], None]


def resolve(collective: str, algorithm: str) -> Callable[..., None]:
    """The algorithm callable: test_* fault algorithms from bench.faults, everything else from the registry."""
    from bench import faults

    if algorithm in faults.FAULTS and faults.enabled():
        return faults.get(collective, algorithm)
    import collectives

    return collectives.get(collective, algorithm)


def with_segment(fn: Callable[..., None], segment_bytes: int | None) -> Callable[..., None]:
    """``fn`` with ``segment_bytes=`` bound when the plan gives one (pipelined algorithms only)."""
    if segment_bytes is None:
        return fn
    return functools.partial(fn, segment_bytes=segment_bytes)


def rank_meta(device: str) -> dict[str, Any]:
    """Versions and hardware only a rank with torch (and the GPU) can tell."""
    import torch

    meta: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda, "nccl": None}
    meta["gpu_model"], meta["gpu_count"] = None, 0
    meta["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        meta["gpu_count"] = torch.cuda.device_count()
        meta["gpu_model"] = torch.cuda.get_device_name(torch.cuda.current_device())
        try:
            meta["nccl"] = ".".join(str(v) for v in torch.cuda.nccl.version())
        except Exception:  # noqa: BLE001 - a build without NCCL
            meta["nccl"] = None
    return meta


def run_rank(config: RunConfig, plan: list[CaseSpec], emit: Emit) -> None:
    """Measure ``plan`` on this (already initialised) rank."""
    import torch.distributed as dist

    from bench.data import torch_dtype
    from bench.measure import Buffers, RankContext, Unsupported, measure
    from collectives.costs import busbw_factor

    warnings.filterwarnings("ignore", category=FutureWarning)  # torch's *_into_tensor renames
    rank, world = dist.get_rank(), dist.get_world_size()
    if rank == 0:
        emit("meta", rank_meta(config.device))
    ctx = RankContext.create(rank, world, config.device, config.seed)
    dtype = torch_dtype(config.dtype)
    fns: dict[tuple[str, str, int | None], Callable[..., None]] = {}
    bufs = None
    for spec in plan:
        if bufs is None or (bufs.collective, bufs.count) != (spec.collective, spec.count):
            bufs = None  # free the previous size first
            bufs = Buffers.allocate(spec.collective, spec.count, world, dtype, config.device)
        key = (spec.collective, spec.algorithm, spec.segment_bytes)
        if key not in fns:
            fns[key] = with_segment(resolve(spec.collective, spec.algorithm), spec.segment_bytes)
        try:
            m = measure(spec, fns[key], bufs, ctx, busbw_factor(spec.collective, world))
        except Unsupported as exc:
            if rank == 0:
                emit("skip", {"label": spec.label, "reason": str(exc)})
            emit("tick", None)
            continue
        if m is not None:
            emit("point", m.to_message())
        emit("tick", None)
    ctx.barrier()


def short_error(exc: BaseException) -> str:
    """``Type: first line`` without gloo's ``[/path/file.cc:123]`` prefix, at most 300 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)
    return f"{type(exc).__name__}: {text}"[:300]


def limit_intra_op_threads() -> None:
    """One intra-op thread per locally started rank unless OMP_NUM_THREADS says otherwise (torchrun's default
    for several local ranks): idle OpenMP threads spinning after a fill or a check otherwise steal cores from
    the other ranks' timed calls. Applied with ``set_num_threads`` too, in case torch was already imported."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    threads = os.environ["OMP_NUM_THREADS"]
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Linux: receive ``sig`` when the parent (supervisor or torchrun agent) dies, so no rank outlives it."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(sig))  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn_entry(
    rank: int, world_size: int, port: int, config: RunConfig, plan: list[CaseSpec], conn, parent_pid: int
) -> None:
    """Target of a locally spawned rank: the parent supervises, writes and handles Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    os.environ.update(LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world_size))
    limit_intra_op_threads()

    def emit(kind: str, payload: Any) -> None:
        conn.send((kind, rank, payload))

    from bench import faults
    from bench.launch import INIT_ERROR_PREFIX

    try:
        import torch.distributed as dist

        if config.device == "cuda":
            import torch

            torch.cuda.set_device(rank % torch.cuda.device_count())  # > 1 rank per GPU: see several_ranks_per_gpu
        try:
            faults.maybe_fail_init(rank)
            dist.init_process_group(
                config.backend, rank=rank, world_size=world_size, timeout=timedelta(seconds=config.timeout_s)
            )
        except Exception as exc:  # noqa: BLE001 - the group never came up: tell the supervisor what kind
            conn.send(("error", rank, INIT_ERROR_PREFIX + short_error(exc)))
            conn.close()
            os._exit(1)
        run_rank(config, plan, emit)
        dist.destroy_process_group()
        conn.send(("done", rank, None))
    except BaseException as exc:  # noqa: BLE001 - report anything to the supervisor, then exit non-zero
        try:
            conn.send(("error", rank, short_error(exc)))
        except OSError:
            pass
        conn.close()
        sys.stdout.flush()
        os._exit(1)
    conn.close()
