"""The one point-to-point helper every hand-written algorithm uses.

``exchange`` posts all sends and receives of one step as a single ``batch_isend_irecv`` and
waits for all of them (the ring-flash-attention pattern), so the same schedule runs on Gloo and
NCCL without the send/recv ordering deadlocks of blocking calls.  Zero-length messages are
skipped on both sides (each algorithm computes the same lengths on sender and receiver).

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


def exchange(ctx: Ctx, sends: Sequence[Msg] = (), recvs: Sequence[Msg] = ()) -> None:
    """Send and receive one step's messages concurrently, then wait for all of them.

    Messages between the same pair are matched in list order, so callers list them in the
    same order on both sides.  Never receive into a region sent in the same call.
    """
    ops = [dist.P2POp(dist.isend, t, ctx.peer(r), ctx.group) for t, r in sends if t.numel() > 0]
    ops += [dist.P2POp(dist.irecv, t, ctx.peer(r), ctx.group) for t, r in recvs if t.numel() > 0]
    if not ops:
        return
    for work in dist.batch_isend_irecv(ops):
        work.wait()
