"""The rank side of ``collbench scale``: a synthetic data-parallel training step, timed the way DDP runs it.

One step on every rank: a compute phase of ``compute_ms`` per rank (strong scaling: the one-rank figure / p;
weak: the one-rank figure), whose first half is the forward pass and second half the backward pass; the
gradients (``grad_bytes`` of float32) are cut into buckets of ``bucket_bytes`` (full buckets, then the
remainder), and bucket i becomes ready when the backward pass has produced its share of the gradients
(gradients are assumed to come out evenly over the backward pass, as from layers of equal size). Each ready
bucket is handed to one communication thread that all-reduces the buckets one after another with the chosen
algorithm (one queue, like DDP's one communication stream), so early buckets travel while the backward pass
goes on. The step ends when compute and the last all-reduce are done.

The compute phase: on CPU ranks a timed wait (``time.sleep`` to each deadline), not arithmetic: CPU ranks share
the machine's cores with each other and with the communication threads, so real arithmetic would measure the
core count, not the scaling; the wait leaves the cores to communication, as a GPU's kernels leave the NIC.
On CUDA a chain of matmuls sized (once, by timing) to the duration, with an event after each bucket's share,
which the communication thread waits on before its all-reduce.

Per step and rank: total (barrier release to the later of compute end and last all-reduce end), compute
(measured length of the compute phase), exposed communication (total - compute: the communication compute did
not hide), comm busy (sum of the bucket all-reduce times). A step's figure is its slowest rank's. Every bucket
is checked after the step: rank r sends r + 1 everywhere, so every element must be p (p + 1) / 2.
Options and files: ``collbench.commands.scale``; aggregation, prediction and fits: ``analysis.scaling_study``.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Any

from bench import protocol
from bench.errors import UsageError
from bench.plan import RunConfig
from bench.sizes import parse_size

DEFAULT_BUCKET_BYTES = 25 * 2**20  # PyTorch DDP's bucket_cap_mb default
ELEMENT_BYTES = 4  # gradients are float32
MODES = ("strong", "weak")
CPU_COMPUTE = "timed wait (CPU ranks share cores: the compute phase is a sleep, not arithmetic)"
CUDA_COMPUTE = "matmul chain sized to the duration"
MAX_COMPUTE_MS = 3.6e6  # an hour per step: beyond it a run could not finish anyway
MAX_STEPS = 10**6


@dataclass(frozen=True)
class ScalePlan:
    """What every rank runs (picklable)."""

    grad_bytes: int
    bucket_bytes: int
    compute_ms: float  # the one-rank step's compute, as given
    rank_compute_ms: float  # this world size's compute per rank (strong: compute_ms / p)
    mode: str
    algorithm: str
    steps: int
    warmup: int

    def buckets(self) -> list[int]:
        """Element counts of the buckets in the order they become ready: full buckets, then the remainder."""
        n, b = self.grad_bytes // ELEMENT_BYTES, self.bucket_bytes // ELEMENT_BYTES
        full, rest = divmod(n, b)
        return [b] * full + ([rest] if rest else [])


def _size(text: str, option: str) -> int:
    try:
        value = parse_size(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    return value


def check_values(ns: argparse.Namespace) -> tuple[int, int]:
    """(grad bytes, bucket bytes) after checking the step's numbers; UsageError (one line) otherwise. Torch-free:
    the checks every launch runs before any process starts."""
    grad = _size(ns.grad_bytes, "--grad-bytes")
    if grad < ELEMENT_BYTES:
        raise UsageError(f"--grad-bytes must be at least {ELEMENT_BYTES} bytes (one float32 gradient), "
                         f"got {ns.grad_bytes}")  # fmt: skip
    if ns.bucket_bytes is None:
        bucket = min(DEFAULT_BUCKET_BYTES, grad)
    else:
        bucket = _size(ns.bucket_bytes, "--bucket-bytes")
        if bucket < ELEMENT_BYTES:
            raise UsageError(f"--bucket-bytes must be at least {ELEMENT_BYTES} bytes, got {ns.bucket_bytes}")
        if bucket > grad:
            raise UsageError(f"--bucket-bytes {ns.bucket_bytes} is larger than --grad-bytes {ns.grad_bytes}: a "
                             "bucket holds part of the gradients")  # fmt: skip
    if not (math.isfinite(ns.compute_ms) and 0 <= ns.compute_ms <= MAX_COMPUTE_MS):
        raise UsageError(f"--compute-ms must be a finite number between 0 and {MAX_COMPUTE_MS:g}, got "
                         f"{ns.compute_ms:g}")  # fmt: skip
    if not 1 <= ns.steps <= MAX_STEPS:
        raise UsageError(f"--steps must be between 1 and {MAX_STEPS}, got {ns.steps}")
    if not 0 <= ns.warmup <= MAX_STEPS:
        raise UsageError(f"--warmup must be between 0 and {MAX_STEPS}, got {ns.warmup}")
    if not (math.isfinite(ns.timeout) and ns.timeout > 0):
        raise UsageError(f"--timeout must be a finite number > 0 seconds, got {ns.timeout:g}")
    if ns.nprocs is not None and ns.nprocs < 1:
        raise UsageError(f"--nprocs must be >= 1, got {ns.nprocs}")
    return grad, bucket


def validate(ns: argparse.Namespace, env: dict[str, int] | None) -> tuple[RunConfig, ScalePlan, int]:
    """(run config, what every rank runs, world size) of the options ``ns``; UsageError before any process
    starts. ``env``: the torchrun environment, None for a local launch."""
    import collectives as registry
    from bench.run import MAX_PROCS_PER_CPU, check_memory, visible_gpus

    grad, bucket = check_values(ns)
    known = registry.algorithms("all_reduce")
    if ns.algorithm not in known:
        raise UsageError(f"unknown algorithm {ns.algorithm!r} for all_reduce; known: {', '.join(known)}")
    gpus = visible_gpus()
    backend = ns.backend or ("nccl" if gpus else "gloo")
    if backend == "nccl" and gpus == 0:
        raise UsageError("--backend nccl needs a visible GPU; none found (use --backend gloo)")
    if env is not None:
        world = env["world_size"]
    else:
        import os

        world = ns.nprocs if ns.nprocs is not None else (gpus if backend == "nccl" else 2)
        if backend == "nccl" and world > gpus:
            raise UsageError(f"--nprocs {world} is more than the {gpus} visible GPU(s)")
        cpus = os.cpu_count() or 1
        if backend == "gloo" and world > MAX_PROCS_PER_CPU * cpus:
            most = MAX_PROCS_PER_CPU * cpus
            raise UsageError(f"--nprocs {world} is too many for {cpus} CPU core(s) (at most {most})")
        if backend == "gloo":
            check_memory(world, grad, "float32", option="--grad-bytes")
    rank_compute = ns.compute_ms / world if ns.mode == "strong" else ns.compute_ms
    config = RunConfig(
        collectives=("all_reduce",), algorithms=(("all_reduce", (ns.algorithm,)),), backend=backend,
        device="cuda" if backend == "nccl" else "cpu", dtype="float32", op="sum", sizes=(grad,), min_bytes=grad,
        max_bytes=grad, step_factor=2.0, iters=ns.steps, warmup=ns.warmup, root=0, in_place="yes",
        cuda_graph=False, seed=0, timeout_s=ns.timeout,
    )  # fmt: skip
    plan = ScalePlan(grad, bucket, ns.compute_ms, rank_compute, ns.mode, ns.algorithm, ns.steps, ns.warmup)
    return config, plan, world


# --- rank side ---------------------------------------------------------------------------------------------


class _CommThread:
    """One thread that all-reduces the buckets handed to it, one after another, in the order given (module
    docstring); ``wait`` returns when the queue is empty, with the comm busy time and the last end time."""

    def __init__(self, fn: Any, device: str) -> None:
        import queue
        import threading

        self.fn, self.device = fn, device
        self.cuda_index = 0
        if device == "cuda":
            import torch

            self.cuda_index = torch.cuda.current_device()
        self.q: queue.Queue = queue.Queue()
        self.busy_s = 0.0
        self.last_end = 0.0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="collbench-scale-comm", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        import torch

        stream = None
        if self.device == "cuda":  # its own stream: the collective must not queue behind the compute phase's matmuls
            torch.cuda.set_device(self.cuda_index)
            stream = torch.cuda.Stream()
        while True:
            item = self.q.get()
            if item is None:
                self.q.task_done()
                return
            view, ready = item
            try:
                if self.error is None:
                    if ready is not None:
                        ready.synchronize()  # CUDA: the backward share that produced this bucket is done
                    t = time.perf_counter()
                    if stream is None:
                        self.fn(view)
                    else:
                        with torch.cuda.stream(stream):
                            self.fn(view)
                        stream.synchronize()
                    self.last_end = time.perf_counter()
                    self.busy_s += self.last_end - t
            except BaseException as exc:  # noqa: BLE001 - re-raised on the rank's main thread
                self.error = exc
            finally:
                self.q.task_done()

    def submit(self, view: Any, ready: Any = None) -> None:
        self.q.put((view, ready))

    def wait(self) -> None:
        self.q.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.q.put(None)
        self.thread.join(timeout=5)


def _cuda_compute(device: str) -> tuple[Any, int, float]:
    """(matmul operand, matmuls per millisecond, ms per matmul) for a compute phase on CUDA, timed once."""
    import torch

    a = torch.randn(2048, 2048, device=device)
    for _ in range(3):
        a @ a
    torch.cuda.synchronize()
    n = 20
    t = time.perf_counter()
    for _ in range(n):
        a @ a
    torch.cuda.synchronize()
    per_ms = (time.perf_counter() - t) * 1e3 / n
    return a, n, per_ms


def scale_rank(config: RunConfig, plan: ScalePlan, emit: Any) -> None:
    """One rank of ``collbench scale``: warm-up and timed steps; rank 0 emits every rank's step records."""
    import os
    import socket

    import torch
    import torch.distributed as dist

    import collectives as registry
    from bench.worker import rank_meta

    rank, p = dist.get_rank(), dist.get_world_size()
    control = dist.new_group(backend="gloo")  # barriers and the final gather, apart from the gradients' group
    if rank == 0:
        emit(protocol.META, rank_meta(config.device))
    dev = config.device
    fn = registry.get("all_reduce", plan.algorithm)
    comm = _CommThread(lambda view: fn(view), dev)
    sizes = plan.buckets()
    grads = torch.empty(sum(sizes), dtype=torch.float32, device=dev)
    views, start = [], 0
    for n in sizes:
        views.append(grads.narrow(0, start, n))
        start += n
    total_elems = sum(sizes)
    ready_at = []  # fraction of the backward pass after which each bucket is ready
    acc = 0
    for n in sizes:
        acc += n
        ready_at.append(acc / total_elems)
    want = p * (p + 1) / 2
    c_ms = plan.rank_compute_ms
    mm = _cuda_compute(dev) if dev == "cuda" else None

    def step() -> dict[str, float]:
        grads.fill_(float(rank + 1))
        if dev == "cuda":
            torch.cuda.synchronize()  # the step starts on an idle GPU
        dist.barrier(group=control)
        t0 = time.perf_counter()
        comm.busy_s, comm.last_end = 0.0, 0.0
        if mm is None:
            half = c_ms / 2e3
            _sleep_until(t0 + half)
            for view, frac in zip(views, ready_at, strict=True):
                _sleep_until(t0 + half + half * frac)
                comm.submit(view)
            compute_end = time.perf_counter()
        else:
            a, _, per_ms = mm
            n_half = max(0, round(c_ms / 2 / per_ms))
            done = 0
            for _ in range(n_half):
                a @ a
            for view, frac in zip(views, ready_at, strict=True):
                upto = round(n_half * frac)
                for _ in range(upto - done):
                    a @ a
                done = upto
                ev = torch.cuda.Event()
                ev.record()
                comm.submit(view, ev)
            ev_end = torch.cuda.Event()
            ev_end.record()
            ev_end.synchronize()
            compute_end = time.perf_counter()
        comm.wait()
        end = max(compute_end, comm.last_end)
        wrong = int((grads != want).sum().item())
        return {"total_ms": (end - t0) * 1e3, "compute_ms": (compute_end - t0) * 1e3,
                "exposed_ms": (end - compute_end) * 1e3, "comm_ms": comm.busy_s * 1e3, "n_wrong": wrong}  # fmt: skip

    records: list[dict[str, float]] = []
    try:
        for i in range(plan.warmup + plan.steps):
            rec = step()
            if i >= plan.warmup:
                records.append(rec)
            emit(protocol.TICK, None)
    finally:
        comm.close()
    host = os.environ.get("COLLBENCH_PAIRS_HOST") or socket.gethostname()
    gathered: list[Any] = [None] * p
    dist.all_gather_object(gathered, (host, records), group=control)
    if rank == 0:
        emit(protocol.RESULT, {"hosts": [h for h, _ in gathered], "ranks": [r for _, r in gathered],
                               "compute_kind": CUDA_COMPUTE if dev == "cuda" else CPU_COMPUTE,
                               "ms_per_matmul": mm[2] if mm else None})  # fmt: skip
    dist.barrier(group=control)


def _sleep_until(deadline: float) -> None:
    """Sleep to ``deadline`` (perf_counter seconds); a few hundred microseconds late at worst on a loaded host."""
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return
        time.sleep(left)
