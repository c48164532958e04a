"""All-gather algorithms on point-to-point ops (``all_gather_into_tensor`` semantics).

- ``ring``: p - 1 steps; step s forwards block r - s to rank r + 1 and receives block r - s - 1
  (MPICH ``MPIR_Allgather_intra_ring``; NCCL ring).
- ``tree``: recursive doubling (MPICH ``MPIR_Allgather_intra_recursive_doubling``; Thakur et al.
  2005): lg p' steps swapping aligned groups of blocks with rank XOR 2^i.  Non-power-of-two p uses
  the fold: even ranks < 2(p - p') first give their block to the odd neighbour, p' ranks run
  recursive doubling over contiguous block ranges, and the odd ranks send the full result back.
- ``bruck``: Bruck et al. 1997 (MPICH ``MPIR_Allgather_intra_brucks``): ceil(lg p) steps; step i
  sends the 2^i (or p - 2^i) blocks a rank holds to rank r - 2^i.  Blocks are received straight
  into their final place in ``output`` (a wrapped range is sent as two messages), so the usual
  final local rotation is not needed.

Every algorithm first copies ``input`` into its own block of ``output`` (one n/p copy);
``input`` is never written.  Costs: ``collectives.costs`` (all_gather/*).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

from collectives import validate
from collectives.batched_p2p import Ctx, Msg, exchange
from collectives.blocks import fold_map, fold_newrank, fold_oldrank
from collectives.builtin import Builtin
from collectives.harness import Data, Fn, Harness, Other, T, bind


def _blocks(out: torch.Tensor, m: int, lo: int, hi: int) -> torch.Tensor:
    return out.narrow(0, lo * m, (hi - lo) * m)


def _wrapped(out: torch.Tensor, m: int, first: int, count: int, p: int) -> list[torch.Tensor]:
    """Blocks first, first+1, ... (count of them, modulo p) as at most two contiguous views."""
    end = first + count
    if end <= p:
        return [_blocks(out, m, first, end)]
    return [_blocks(out, m, first, p), _blocks(out, m, 0, end - p)]


def _start(ctx: Ctx, output: torch.Tensor, input: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    out = output.view(-1)
    m = input.numel()
    _blocks(out, m, ctx.rank, ctx.rank + 1).copy_(input.view(-1))
    if ctx.size == 1 or m == 0:
        return None
    return out, m


def ring(output: torch.Tensor, input: torch.Tensor, group: dist.ProcessGroup | None = None) -> None:
    """Ring all-gather."""
    ctx = validate.all_gather_args(output, input, group)
    if ctx is None or (st := _start(ctx, output, input)) is None:
        return
    out, m = st
    p, r = ctx.size, ctx.rank
    nxt, prv = (r + 1) % p, (r - 1) % p
    for s in range(p - 1):
        b_send, b_recv = (r - s) % p, (r - s - 1) % p
        exchange(
            ctx,
            sends=[(_blocks(out, m, b_send, b_send + 1), nxt)],
            recvs=[(_blocks(out, m, b_recv, b_recv + 1), prv)],
        )


def tree(output: torch.Tensor, input: torch.Tensor, group: dist.ProcessGroup | None = None) -> None:
    """Recursive-doubling all-gather with the fold for non-power-of-two p."""
    ctx = validate.all_gather_args(output, input, group)
    if ctx is None or (st := _start(ctx, output, input)) is None:
        return
    out, m = st
    r = ctx.rank
    q, rem = fold_map(ctx.size)

    def first_block(newrank: int) -> int:  # newrank i owns blocks [first(i), first(i+1))
        return 2 * newrank if newrank < rem else newrank + rem

    if r < 2 * rem:  # fold in: even ranks give their block to the odd neighbour
        if r % 2 == 0:
            exchange(ctx, sends=[(_blocks(out, m, r, r + 1), r + 1)])
        else:
            exchange(ctx, recvs=[(_blocks(out, m, r - 1, r), r - 1)])
    nr = fold_newrank(r, rem)
    if nr >= 0:
        mask = 1
        while mask < q:
            partner = fold_oldrank(nr ^ mask, rem)
            mine = (nr // mask) * mask
            theirs = mine ^ mask
            exchange(
                ctx,
                sends=[(_blocks(out, m, first_block(mine), first_block(mine + mask)), partner)],
                recvs=[(_blocks(out, m, first_block(theirs), first_block(theirs + mask)), partner)],
            )
            mask <<= 1
    if r < 2 * rem:  # fold out: odd ranks return the whole result
        if r % 2 == 0:
            exchange(ctx, recvs=[(out, r + 1)])
        else:
            exchange(ctx, sends=[(out, r - 1)])


def bruck(output: torch.Tensor, input: torch.Tensor, group: dist.ProcessGroup | None = None) -> None:
    """Bruck all-gather (ceil(lg p) steps, any p), receiving in place."""
    ctx = validate.all_gather_args(output, input, group)
    if ctx is None or (st := _start(ctx, output, input)) is None:
        return
    out, m = st
    p, r = ctx.size, ctx.rank
    dist_ = 1
    while dist_ < p:  # this rank holds blocks r .. r + dist_ - 1 (mod p)
        count = min(dist_, p - dist_)
        to, frm = (r - dist_) % p, (r + dist_) % p
        sends: list[Msg] = [(v, to) for v in _wrapped(out, m, r, count, p)]
        recvs: list[Msg] = [(v, frm) for v in _wrapped(out, m, frm, count, p)]
        exchange(ctx, sends, recvs)
        dist_ <<= 1


#: Algorithm name -> implementation; ``collectives.registry`` collects these (``builtin`` is added there).
ALGORITHMS = {"ring": ring, "tree": tree, "bruck": bruck}


# --- builtin: all_gather_into_tensor (all_gather_single in torch >= 2.13); Gloo ``gloo::allgather`` into the flat
# output, ring; NCCL ``ncclAllGather``, ring


def _check_builtin(output: torch.Tensor, input: torch.Tensor, group=None) -> object:  # noqa: ANN001
    return validate.all_gather_args(output, input, group)


def _torch_all_gather(output: torch.Tensor, input: torch.Tensor, group=None) -> None:  # noqa: ANN001
    """torch.distributed.all_gather_into_tensor (all_gather_single in newer torch)."""
    getattr(dist, "all_gather_single", dist.all_gather_into_tensor)(output, input, group=group)


BUILTIN = Builtin(check=_check_builtin, call=_torch_all_gather)


class _Harness(Harness):
    """``main`` is the gathered output, ``other`` this rank's block (a view of ``main`` in place)."""

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return bind(fn, main, other)

    def prepare(self, main: T, other: Other, data: Data) -> None:
        data.sentinel(main)  # in place, ``other`` is this rank's block of ``main``: filled after the sentinel
        data.fill(other)

    def count_wrong(self, main: T, other: Other, data: Data) -> int:
        parts = [data.values(main.dtype, k, 0, other.numel()) for k in range(data.p)]
        return data.wrong(main, torch.cat(parts))


HARNESS = _Harness()
