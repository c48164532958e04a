"""A persistent process group of local ranks that measures cases on request (for the pytest plugin).

Spawning ranks and forming a process group costs seconds; a test suite that benchmarks many cases pays it
once. Each request is one ``CaseSpec``; every rank runs ``bench.timing.measure`` (the same protocol as
``collbench run``) and rank 0 returns the Measurement. Ranks die with the parent (PR_SET_PDEATHSIG), every
request has a deadline, and a rank that hangs or dies kills the pool with a clear error.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from bench import protocol
from bench.ports import free_port
from bench.records import CaseSpec, Measurement


class PoolError(RuntimeError):
    """A rank failed, hung past the deadline, or the pool could not start."""


def _rank_main(rank: int, world: int, port: int, backend: str, device: str, conn: Any, parent: int) -> None:
    """A rank: join the group, then measure each CaseSpec received until ``None`` (``worker.RankMeasurer``)."""
    from bench.worker import RankMeasurer, limit_intra_op_threads, set_parent_death_signal, short_error

    set_parent_death_signal()
    if os.getppid() != parent:
        os._exit(1)
    limit_intra_op_threads()
    import torch
    import torch.distributed as dist

    from bench.timing import Unsupported

    def send(kind: str, payload: Any = None) -> None:
        conn.send(protocol.Message(kind, rank, payload))

    try:
        if device == "cuda":
            torch.cuda.set_device(rank % torch.cuda.device_count())
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=timedelta(seconds=120))  # fmt: skip
        dist.barrier()
        measurer = RankMeasurer(device, seed=0)
        send(protocol.READY)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one line
        send(protocol.ERROR, short_error(exc))
        return
    while True:
        msg = conn.recv()
        if msg is None:
            break
        try:
            m = measurer.measure(CaseSpec(**msg))
            send(protocol.POINT, m.to_message() if m is not None else None)
        except Unsupported as exc:
            send(protocol.ERROR, f"unsupported case: {exc}")
        except BaseException as exc:  # noqa: BLE001
            send(protocol.ERROR, short_error(exc))
    dist.destroy_process_group()


class WorkerPool:
    """``world_size`` local ranks in one process group; ``measure(spec)`` returns rank 0's Measurement."""

    def __init__(self, world_size: int, backend: str = "gloo", device: str = "cpu", timeout_s: float = 120.0):
        if world_size < 1:
            raise PoolError("world size must be >= 1")
        self.world_size, self.backend, self.device, self.timeout_s = world_size, backend, device, timeout_s
        ctx = mp.get_context("spawn")
        port = free_port()
        self._conns, self._procs = [], []
        for rank in range(world_size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_rank_main, args=(rank, world_size, port, backend, device, child, os.getpid()),
                               daemon=True)  # fmt: skip
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)
        replies = self._collect(timeout_s)
        errors = [r.payload for r in replies if r.kind != protocol.READY]
        if errors:
            self.close()
            raise PoolError(f"the process group did not start: {errors[0]}")

    def _collect(self, timeout_s: float) -> list[protocol.Message]:
        deadline = time.monotonic() + timeout_s
        replies: list[protocol.Message] = []
        for rank, conn in enumerate(self._conns):
            while not conn.poll(0.05):
                if time.monotonic() > deadline:
                    self.close(kill=True)
                    raise PoolError(f"rank {rank} did not answer within {timeout_s:.0f} s")
                if not self._procs[rank].is_alive():
                    self.close(kill=True)
                    raise PoolError(f"rank {rank} died (exit code {self._procs[rank].exitcode})")
            replies.append(conn.recv())
        return replies

    def measure(self, spec: CaseSpec) -> Measurement:
        """Run one case on every rank (the harness's protocol); rank 0's Measurement."""
        if not self._procs:
            raise PoolError("the pool is closed")
        for conn in self._conns:
            conn.send(asdict(spec))
        replies = self._collect(self.timeout_s)
        for reply in replies:
            if reply.kind == protocol.ERROR:
                raise PoolError(reply.payload)
        return Measurement.from_message(replies[0].payload)

    def close(self, kill: bool = False) -> None:
        """Stop every rank (politely unless ``kill``); idempotent."""
        for conn in self._conns:
            if not kill:
                try:
                    conn.send(None)
                except (OSError, ValueError):
                    pass
        for proc in self._procs:
            proc.join(timeout=0 if kill else 10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        self._conns, self._procs = [], []
