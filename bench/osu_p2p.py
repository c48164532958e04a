"""Point-to-point between two ranks, the OSU way: the one measuring code of ``collbench run --collectives
send_recv`` (:class:`SendRecvMeasurer`) and ``collbench pairs`` (:class:`Link`, used per pair).

:class:`Link` is one rank's end of a link to a peer: the bodies of one iteration of osu_latency (ping-pong),
osu_bw (a window of messages posted at once, then an acknowledgement from the receiver) and osu_bibw (both
sides post their window at once), every message through ``collectives.batched_p2p.exchange``, and a timer of
back-to-back iterations. What each figure means: ``collectives.spec.SEND_RECV`` and docs/protocol.md
("send_recv"). Timing is this module's own (host clock around each iteration, a device synchronize after
it on GPUs), not ``bench.timing``'s collective loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist

from collectives.batched_p2p import Ctx, exchange, make_ctx
from collectives.spec import SEND_RECV

Body = Callable[[], None]


class Link:
    """This rank's end of the link to ``peer`` (a global rank): iteration bodies and their timing."""

    def __init__(self, ctx: Ctx, peer: int, device: str, delay_s: float = 0.0) -> None:
        self.ctx, self.peer, self.device, self.delay_s = ctx, peer, device, delay_s

    def sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def step(self, sends: Sequence[torch.Tensor] = (), recvs: Sequence[torch.Tensor] = ()) -> None:
        """One batch of messages to and from the peer, waited for (the planted delay first, tests only)."""
        if self.delay_s:
            time.sleep(self.delay_s)
        exchange(self.ctx, [(t, self.peer) for t in sends], [(t, self.peer) for t in recvs])

    def ping_pong(self, first: bool, send: torch.Tensor, recv: torch.Tensor) -> Body:
        """osu_latency: ``first`` sends, then receives the answer; the other side receives, then answers."""
        if first:
            return lambda: (self.step(sends=[send]), self.step(recvs=[recv]))
        return lambda: (self.step(recvs=[recv]), self.step(sends=[send]))

    def stream(self, sending: bool, send: torch.Tensor, slots: Sequence[torch.Tensor], window: int,
               ack: torch.Tensor) -> Body:  # fmt: skip
        """osu_bw: the sender posts ``window`` messages of ``send`` at once and waits for a one-element
        acknowledgement; the receiver posts ``window`` receives (message i into slot i mod len(slots)), then acks."""
        if sending:
            msgs = [send] * window
            return lambda: (self.step(sends=msgs), self.step(recvs=[ack]))
        into = _spread(slots, window)
        return lambda: (self.step(recvs=into), self.step(sends=[ack]))

    def both_ways(self, send: torch.Tensor, slots: Sequence[torch.Tensor], window: int) -> Body:
        """osu_bibw: both sides post ``window`` sends and ``window`` receives at once and wait for all of them."""
        msgs, into = [send] * window, _spread(slots, window)
        return lambda: self.step(sends=msgs, recvs=into)

    def timed(self, body: Body, iters: int, warmup: int = 0) -> tuple[list[float], float]:
        """Seconds of each of ``iters`` back-to-back iterations (after ``warmup`` untimed ones), and of all of
        them: the host clock is read before the first and after each (a device synchronize first on GPUs)."""
        for _ in range(warmup):
            body()
        self.sync()
        marks = [time.perf_counter()]
        for _ in range(iters):
            body()
            self.sync()
            marks.append(time.perf_counter())
        return [b - a for a, b in zip(marks, marks[1:], strict=False)], marks[-1] - marks[0]


def _spread(slots: Sequence[torch.Tensor], window: int) -> list[torch.Tensor]:
    return [slots[i % len(slots)] for i in range(window)]


def slot_count(nbytes: int, window: int) -> int:
    """Distinct receive slots for a window of messages of ``nbytes``: the whole window up to SLOT_BYTES."""
    return max(1, min(window, SEND_RECV.p2p.slot_bytes // max(nbytes, 1)))


def nccl_ready() -> None:
    """On NCCL one collective on the default group first: torch wants the group's first batched P2P call to
    involve every rank (communicators are created lazily; collectives/batched_p2p.py)."""
    if dist.get_backend() == "nccl":
        dist.barrier()


class SendRecvMeasurer:
    """The ``send_recv`` cases of ``collbench run`` on this rank: ranks 0 and 1 measure, every other rank only
    takes part in the barriers and reductions of the control group (it idles).

    ``ctx`` is the rank's ``bench.timing.RankContext`` (rank, world size, device, seed, control barrier and
    reductions). Per case, as ``bench.timing`` does for a collective: seeded data in the send buffer and the
    sentinel in every receive slot, warm-up, barrier, ``iters`` timed iterations, per-iteration max over ranks,
    then one more iteration on fresh sentinels whose received data every receiver checks (``n_wrong``).
    """

    def __init__(self, ctx: Any, window: int = SEND_RECV.p2p.default_window) -> None:
        from bench import faults

        self.ctx, self.window = ctx, window
        self.active = ctx.rank in SEND_RECV.p2p.ranks
        self.peer = SEND_RECV.p2p.ranks[1 - ctx.rank] if self.active else -1
        nccl_ready()
        self.link = Link(make_ctx(None), self.peer, ctx.device) if self.active else None
        self._faults = faults
        self._shape: tuple[int, str] | None = None

    def _allocate(self, count: int, dtype_name: str, nbytes: int) -> None:
        from bench.exact_data import torch_dtype

        if self._shape == (count, dtype_name):
            return
        dtype, dev = torch_dtype(dtype_name), self.ctx.device
        slots = slot_count(nbytes, self.window)
        self.send = torch.empty(count, dtype=dtype, device=dev)
        self.recv = torch.empty(slots * count, dtype=dtype, device=dev)
        self.slots = [self.recv.narrow(0, i * count, count) for i in range(slots)]
        self.ack = torch.zeros(1, dtype=torch.uint8, device=dev)
        self._shape = (count, dtype_name)

    def _body(self, algorithm: str) -> Body:
        link, first = self.link, self.ctx.rank == SEND_RECV.p2p.ranks[0]
        assert link is not None
        if algorithm == "latency":
            return link.ping_pong(first, self.send, self.slots[0])
        if algorithm == "bw":
            return link.stream(first, self.send, self.slots, self.window, self.ack)
        if algorithm == "bibw":
            return link.both_ways(self.send, self.slots, self.window)
        raise ValueError(f"unknown send_recv measurement {algorithm!r}; known: {', '.join(SEND_RECV.p2p.measured)}")

    def _received(self, algorithm: str) -> list[torch.Tensor]:
        """The slots this rank receives data into (the bw sender receives only the acknowledgement)."""
        if algorithm == "latency":
            return [self.slots[0]]
        if algorithm == "bw" and self.ctx.rank == SEND_RECV.p2p.ranks[0]:
            return []
        return self.slots

    def _prepare(self) -> None:
        from bench import exact_data

        exact_data.fill(self.send, "none", self.ctx.world_size, self.ctx.rank, 0, self.ctx.seed)
        self.recv.fill_(exact_data.sentinel(self.recv.dtype))

    def _wrong(self, algorithm: str) -> int:
        from bench import exact_data

        got = self._received(algorithm)
        if not got:
            return 0
        n = self.send.numel()
        want = exact_data.rank_values(self.send.dtype, "none", self.ctx.world_size, self.peer, 0, n, self.ctx.seed,
                                      self.ctx.device).to(self.send.dtype)  # fmt: skip
        return sum(exact_data.count_wrong(t, want, "none", self.ctx.world_size) for t in got)

    def measure(self, spec: Any) -> Any:  # CaseSpec -> Measurement | None (rank 0 gets it)
        """Rank 0's Measurement of one ``send_recv`` case (``spec.algorithm`` latency, bw or bibw); None elsewhere."""
        from bench.records import Measurement

        ctx, iters = self.ctx, spec.iters
        msgs = SEND_RECV.p2p.messages_per_iteration(spec.algorithm, self.window)
        samples, total = [0.0] * iters, 0.0
        body: Body = lambda: None  # noqa: E731 - idle ranks run nothing
        if self.active:
            self._allocate(spec.count, spec.dtype, spec.bytes)
            self._prepare()
            body = self._body(spec.algorithm)
            for _ in range(spec.warmup):
                body()
        ctx.barrier()
        if self.link is not None:
            samples, total = self.link.timed(body, iters)
        # time per message of S (docs: time_us = iteration time / messages it moves), max over ranks
        per_msg = [s * 1e6 / msgs for s in samples] + [total * 1e6 / msgs / iters if iters else 0.0]
        times = ctx.allreduce_cpu(torch.tensor(per_msg, dtype=torch.float64), dist.ReduceOp.MAX)
        wrong = 0
        if self.active:
            self._prepare()
            if self._faults.p2p_wrong(ctx.rank, spec.bytes):
                self.send.view(-1)[0] = self.recv.view(-1)[0]  # the sentinel: no correct data takes it
        ctx.barrier()
        if self.active:
            body()
            ctx.sync()
            wrong = self._wrong(spec.algorithm)
        total_wrong = ctx.allreduce_cpu(torch.tensor([wrong], dtype=torch.int64), dist.ReduceOp.SUM)
        if ctx.rank != 0:
            return None
        values = times.tolist()
        return Measurement(spec=spec, samples_us=tuple(values[:-1]), block_time_us=values[-1], busbw_factor=1.0,
                           n_wrong=int(total_wrong.item()))  # fmt: skip
