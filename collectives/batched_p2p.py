"""The one point-to-point helper every hand-written algorithm uses.

``exchange`` posts all sends and receives of one step as a single ``batch_isend_irecv`` and
waits for all of them (the ring-flash-attention pattern), so the same schedule runs on Gloo and
NCCL without the send/recv ordering deadlocks of blocking calls.  Zero-length messages are
skipped on both sides (each algorithm computes the same lengths on sender and receiver).
``post`` is its first half: it returns the step's ``Pending`` handle without waiting, so a pipelined
algorithm can reduce one segment while the next one is on the wire (the pipelined ring all-reduce).

Peers are GROUP ranks; ``Ctx`` translates them to the global ranks ``P2POp`` expects.

NCCL note: torch requires the first ``batch_isend_irecv`` in a process group to involve every
rank of the group (NCCL communicators are created lazily).  Our algorithms do not guarantee
that for their first step (a binomial tree's first step involves only some ranks), so on NCCL
call any collective on the group once (``dist.barrier(group)`` or a builtin all_reduce, as the
bench warm-up does) or pass ``device_id`` to ``init_process_group`` (eager init) before the
first hand-written call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

Msg = tuple[torch.Tensor, int]  # (buffer view, peer group rank)


@dataclass(frozen=True)
class Ctx:
    """A process group as the algorithms see it: this rank, the size and the rank map."""

    group: dist.ProcessGroup | None
    rank: int  # group rank of this process
    size: int
    global_ranks: tuple[int, ...]  # global_ranks[group_rank]

    def peer(self, group_rank: int) -> int:
        """Global rank of ``group_rank`` (what ``P2POp`` takes)."""
        return self.global_ranks[group_rank]


def make_ctx(group: dist.ProcessGroup | None) -> Ctx:
    """Ctx of ``group`` (None = the default group) for a member rank."""
    pg = group if group is not None else dist.group.WORLD
    ranks = tuple(dist.get_process_group_ranks(pg))
    return Ctx(group=group, rank=dist.get_rank(pg), size=len(ranks), global_ranks=ranks)


@dataclass(frozen=True)
class Pending:
    """The posted messages of one step; ``wait`` returns when all of them are done."""

    works: tuple = ()

    def wait(self) -> None:
        for work in self.works:
            work.wait()


def post(ctx: Ctx, sends: Sequence[Msg] = (), recvs: Sequence[Msg] = (), *, behind: bool = False) -> Pending:
    """Post one step's sends and receives as one batch and return without waiting.

    ``behind``: the step follows the previous one on the same links with no data dependency between them (a
    later segment of a pipelined ring step), so its latency overlaps the earlier one's transfer; only the cost
    model reads it (``collectives.critpath``: no alpha for such a step).

    Steps posted one after another are matched in posting order between each pair (as messages within a
    step are, in list order), so every rank must post its steps in the same order as its peers expect.
    Neither touch a posted receive buffer nor write a posted send buffer until ``wait`` has returned.
    """
    # Receives first: on gloo a posted receive is read straight into its buffer by the transport thread while
    # this thread is still writing the step's sends (each isend writes what the socket takes before returning).
    ops = [dist.P2POp(dist.irecv, t, ctx.peer(r), ctx.group) for t, r in recvs if t.numel() > 0]
    ops += [dist.P2POp(dist.isend, t, ctx.peer(r), ctx.group) for t, r in sends if t.numel() > 0]
    if not ops:
        return Pending()
    return Pending(tuple(dist.batch_isend_irecv(ops)))


def exchange(ctx: Ctx, sends: Sequence[Msg] = (), recvs: Sequence[Msg] = ()) -> None:
    """Send and receive one step's messages concurrently, then wait for all of them.

    Messages between the same pair are matched in list order, so callers list them in the
    same order on both sides.  Never receive into a region sent in the same call.
    """
    post(ctx, sends, recvs).wait()
