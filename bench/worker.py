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
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from bench import protocol
from bench.plan import DEFAULT_TRANSPORT_NICE, RunConfig
from bench.records import CaseSpec
from collectives.spec import SEND_RECV, is_point_to_point

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


def nice_transport_threads(nice: int) -> int:
    """Raise the nice value of this process's gloo transport threads (``gloo_tcp_loop``) to ``nice``; returns how
    many were changed (0 when ``nice`` is 0 or not on Linux).

    Why (``research/noise/gloo_spin_probe.py``, docs/noise.md): on a machine with fewer free cores than busy threads, a
    rank's transport thread can stay on the CPU for milliseconds per message (on-CPU, not sleeping) while the
    rank's Python thread, which it is waiting for, waits runnable for the next scheduler tick (4 ms at HZ=250):
    one tick per message step. At nice 19 the woken Python thread takes the CPU at once. Every algorithm,
    builtin included, runs with the same setting; on a machine with idle cores it changes nothing.
    """
    if nice <= 0 or not os.path.isdir(f"/proc/{os.getpid()}/task"):
        return 0
    changed = 0
    task = f"/proc/{os.getpid()}/task"
    for tid in os.listdir(task):
        try:
            with open(f"{task}/{tid}/comm") as f:
                if not f.read().startswith("gloo_tcp"):
                    continue
            if os.getpriority(os.PRIO_PROCESS, int(tid)) < nice:
                os.setpriority(os.PRIO_PROCESS, int(tid), nice)
                changed += 1
        except (OSError, ValueError):
            continue
    return changed


class RankMeasurer:
    """Measures cases on this (already initialised) rank with the harness's protocol (``bench.timing``).

    Keeps the buffers of the current (collective, count, dtype) and the bound algorithm callables, so a
    plan of many algorithms per size allocates once per size. Used by ``collbench run``'s ranks and by
    the plugin's persistent pool alike.
    """

    def __init__(self, device: str, seed: int, window: int = SEND_RECV.p2p.default_window,
                 transport_nice: int = DEFAULT_TRANSPORT_NICE) -> None:  # fmt: skip
        import torch.distributed as dist

        from bench.timing import RankContext

        warnings.filterwarnings("ignore", category=FutureWarning)  # torch's *_into_tensor renames
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = device
        self.ctx = RankContext.create(self.rank, self.world, device, seed)
        self.transport_nice = transport_nice if dist.get_backend() == "gloo" else 0
        self.niced = nice_transport_threads(self.transport_nice)
        self._fns: dict[tuple[str, str, int | None], Callable[..., None]] = {}
        self._bufs = None
        self.window, self._send_recv = window, None  # send_recv: bench.osu_p2p, created at its first case

    def _buffers(self, spec: CaseSpec):  # noqa: ANN202 - bench.collective_io.Buffers
        from bench.collective_io import Buffers
        from bench.exact_data import torch_dtype

        b = self._bufs
        if b is None or (b.collective, b.count, str(b.main.dtype)) != (spec.collective, spec.count,
                                                                       f"torch.{spec.dtype}"):  # fmt: skip
            self._bufs = None  # free the previous size first
            self._bufs = Buffers.allocate(spec.collective, spec.count, self.world, torch_dtype(spec.dtype),
                                          self.device)  # fmt: skip
        return self._bufs

    def _fn(self, spec: CaseSpec) -> Callable[..., None]:
        key = (spec.collective, spec.algorithm, spec.segment_bytes)
        if key not in self._fns:
            self._fns[key] = with_segment(resolve(spec.collective, spec.algorithm), spec.segment_bytes)
        return self._fns[key]

    def measure_group(self, specs: list[CaseSpec]) -> list:
        """Per spec of one (collective, bytes, dtype), measured together in one visit (``measure_block`` with
        one group): rank 0's Measurement (None elsewhere) or the rejection reason."""
        (results,) = [r for _, r in self.measure_block([specs], 1)]
        return results

    def measure_block(self, groups: list[list[CaseSpec]], visits: int) -> Iterator[tuple[list[CaseSpec], list]]:
        """(group, results) per group of ``groups`` and visit, each group sampled in ``visits`` visits: visit v
        samples every group once with a ``visits``-th of its budget, so a point's samples spread over the whole
        block and a slow drift of the host hits its points alike (docs/protocol.md). Results (correctness
        checked) come at a group's last visit; earlier visits yield None, for progress."""
        from bench import timing
        from bench.plan import block_visits
        from collectives.costs import busbw_factor

        visits = block_visits(groups, visits)  # fixed counts, CUDA graphs and send_recv: one stretch
        runs: list[timing.GroupRun | None] = [None] * len(groups)
        for visit in range(visits):
            for i, specs in enumerate(groups):
                if is_point_to_point(specs[0].collective):  # not a collective: bench.osu_p2p
                    if self._send_recv is None:
                        from bench.osu_p2p import SendRecvMeasurer

                        self._send_recv = SendRecvMeasurer(self.ctx, self.window)
                    yield specs, [self._send_recv.measure(s) for s in specs]
                    continue
                self.niced += nice_transport_threads(self.transport_nice)  # threads gloo started since
                bufs, fns = self._buffers(specs[0]), [self._fn(s) for s in specs]
                run = runs[i]
                if run is None:
                    run = runs[i] = timing.start_group(specs, fns, bufs, self.ctx)
                else:
                    timing.resume_group(run, fns, bufs, self.ctx)
                timing.sample_group(run, self.ctx, visits)
                if visit < visits - 1:
                    yield specs, None  # progress: one visit of each case of the group
                else:
                    yield specs, timing.finish_group(run, bufs, self.ctx, busbw_factor(specs[0].collective,
                                                                                       self.world))  # fmt: skip
                    runs[i] = None

    def measure(self, spec: CaseSpec):  # noqa: ANN201 - Measurement | None (rank 0 gets it)
        """Rank 0's Measurement of ``spec`` (None elsewhere); ``bench.timing.Unsupported`` if rejected."""
        from bench.timing import Unsupported

        (result,) = self.measure_group([spec])
        if isinstance(result, str):
            raise Unsupported(result)
        return result


def run_rank(config: RunConfig, plan: list[CaseSpec], emit: Emit) -> None:
    """Measure ``plan`` on this (already initialised) rank; rank 0 emits meta, points and skips."""
    from bench.plan import point_groups, visit_blocks

    measurer = RankMeasurer(config.device, config.seed, config.window, config.transport_nice)
    measurer.ctx.barrier()  # every pair connected: gloo has started its transport threads
    measurer.niced += nice_transport_threads(measurer.transport_nice)
    if measurer.rank == 0:
        emit(protocol.META, {**rank_meta(config.device), "transport_threads_niced": measurer.niced})
    for block in visit_blocks(point_groups(plan, config.interleave)):
        for group, results in measurer.measure_block(block, config.visits):
            if results is None:
                emit(protocol.TICK, len(group))
                continue
            for spec, result in zip(group, results, strict=True):
                if isinstance(result, str):
                    if measurer.rank == 0:
                        emit(protocol.SKIP, {"label": spec.label, "reason": result})
                elif result is not None:
                    emit(protocol.POINT, result.to_message())
                emit(protocol.TICK, 1)
    measurer.ctx.barrier()


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


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (gone, or a zombie on Linux)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def _release_fork_server() -> None:
    """A rank started by the fork server inherits the supervisor's end of the pipe that keeps the server alive;
    closed here, so that the server ends as soon as the supervisor does (even SIGKILLed) and takes the ranks with
    it (PR_SET_PDEATHSIG). A rank starts no process of its own, so it never needs the server."""
    try:
        from multiprocessing import forkserver

        server = forkserver._forkserver
        fd = server._forkserver_alive_fd
    except AttributeError:
        return
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
        server._forkserver_alive_fd = None


def spawn_entry(
    rank: int, world_size: int, port: int, config: RunConfig, plan: Any, conn, parent_pid: int,
    rank_main: Callable[[RunConfig, Any, Emit], None] | None = None, supervisor_pid: int | None = None,
    env: dict[str, str] | None = None,
) -> None:  # fmt: skip
    """Target of a locally started rank: the supervisor (``supervisor_pid``) supervises, writes and handles
    Ctrl-C; ``parent_pid`` is this process's parent (the supervisor, or the fork server that started the rank:
    ``bench.launch.rank_context``), whose death kills the rank. ``env``: the supervisor's environment at launch,
    which a rank forked from the long-lived fork server would otherwise not see (the server keeps the one it
    started with: GLOO_SOCKET_IFNAME, NCCL_* or a test's fault settings changed since would be lost)."""
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_parent_death_signal()
    _release_fork_server()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)
    if supervisor_pid is not None and supervisor_pid != parent_pid and process_gone(supervisor_pid):
        os._exit(1)  # the supervisor died; its fork server, our parent, is about to follow
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    os.environ.update(LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world_size))
    limit_intra_op_threads()

    def emit(kind: str, payload: Any) -> None:
        conn.send(protocol.Message(kind, rank, payload))

    from bench import faults

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
            conn.send(protocol.Message(protocol.ERROR, rank, protocol.INIT_ERROR_PREFIX + short_error(exc)))
            conn.close()
            os._exit(1)
        (rank_main or run_rank)(config, plan, emit)
        dist.destroy_process_group()
        conn.send(protocol.Message(protocol.DONE, rank))
    except BaseException as exc:  # noqa: BLE001 - report anything to the supervisor, then exit non-zero
        try:
            conn.send(protocol.Message(protocol.ERROR, rank, short_error(exc)))
        except OSError:
            pass
        conn.close()
        sys.stdout.flush()
        os._exit(1)
    conn.close()
