"""All-reduce algorithms on point-to-point ops.

- ``ring``: ring reduce-scatter + ring all-gather (Patarasuk & Yuan 2009; NCCL ring,
  Baidu/Horovod ring all-reduce): 2(p-1) steps of n/p bytes, blocks differ by at most one element.
- ``tree``: NCCL-style double binary tree (Sanders, Speck & Traeff 2009; NCCL
  ``src/graph/trees.cc`` ``ncclGetBtree``/``ncclGetDtree``): the buffer is split in two halves,
  each reduced up one binary tree and broadcast back down it, pipelined in segments of
  ``segment_bytes``.  Tree 2 is tree 1 mirrored (even p) or shifted by one (odd p), so every
  rank is an inner node of at most one tree (exception, as in NCCL: for odd p rank 0 is the
  one-child root of tree 1 and an inner node of tree 2).  Both trees advance in the same steps.
- ``reduce_broadcast``: binomial reduce to rank 0 + binomial broadcast (MPICH fallback).
- ``recursive_doubling``: butterfly exchange of the whole buffer (MPICH
  ``MPIR_Allreduce_intra_recursive_doubling``), with the standard fold for non-power-of-two p.
- ``rabenseifner``: recursive-halving reduce-scatter + recursive-doubling all-gather
  (Rabenseifner 2004; MPICH ``MPIR_Allreduce_intra_reduce_scatter_allgather``), same fold.

AVG = SUM, then each owner divides its reduced part by p (once per element).
Costs: ``collectives.costs`` (all_reduce/*).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch.distributed import ReduceOp

from collectives import validate
from collectives.batched_p2p import Ctx, exchange
from collectives.blocks import block_starts, chain_segment_elems, fold_map, fold_newrank, fold_oldrank, span
from collectives.broadcast import binomial_bcast
from collectives.builtin import Builtin, check_backend_op
from collectives.costs import DEFAULT_SEGMENT_BYTES
from collectives.harness import Data, Fn, Harness, Other, T, bind
from collectives.reduce import binomial_reduce
from collectives.reduce_ops import combine, finish
from collectives.trees import btree_parent, dtree_parents, heights_depths

__all__ = ["btree_parent", "dtree_parents", "rabenseifner", "recursive_doubling", "reduce_broadcast", "ring", "tree"]


def _start(tensor: torch.Tensor, op: ReduceOp, group: dist.ProcessGroup | None) -> tuple[Ctx, torch.Tensor] | None:
    """Validate; None when there is nothing to do (non-member, p = 1: AVG over one rank is the identity, or
    an empty tensor), else (ctx, flat view of ``tensor``)."""
    ctx = validate.all_reduce_args(tensor, op, group)
    if ctx is None or ctx.size == 1 or tensor.numel() == 0:
        return None
    return ctx, tensor.view(-1)


def ring_reduce_scatter_inplace(ctx: Ctx, t: torch.Tensor, starts: list[int], op: ReduceOp) -> int:
    """Ring reduce-scatter in place on the p blocks of ``t``; returns the block this rank owns."""
    p, r = ctx.size, ctx.rank
    nxt, prv = (r + 1) % p, (r - 1) % p
    scratch = torch.empty(starts[1] - starts[0], dtype=t.dtype, device=t.device)
    for s in range(p - 1):
        b_send, b_recv = (r - s) % p, (r - s - 1) % p
        dst = span(t, starts, b_recv, b_recv + 1)
        buf = scratch.narrow(0, 0, dst.numel())
        exchange(ctx, sends=[(span(t, starts, b_send, b_send + 1), nxt)], recvs=[(buf, prv)])
        combine(dst, dst, buf, op)
    return (r + 1) % p


def ring_all_gather_inplace(ctx: Ctx, t: torch.Tensor, starts: list[int], owned: int) -> None:
    """Ring all-gather in place: this rank holds block ``owned``, rank r+1 holds owned+1, ..."""
    p, r = ctx.size, ctx.rank
    nxt, prv = (r + 1) % p, (r - 1) % p
    for s in range(p - 1):
        b_send, b_recv = (owned - s) % p, (owned - s - 1) % p
        exchange(
            ctx,
            sends=[(span(t, starts, b_send, b_send + 1), nxt)],
            recvs=[(span(t, starts, b_recv, b_recv + 1), prv)],
        )


def ring(tensor: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None) -> None:
    """Ring all-reduce: ring reduce-scatter then ring all-gather."""
    ctx = validate.all_reduce_args(tensor, op, group)
    if ctx is None:
        return
    t = tensor.view(-1)
    if ctx.size == 1:
        finish(t, op, 1)
        return
    starts = block_starts(t.numel(), ctx.size)
    owned = ring_reduce_scatter_inplace(ctx, t, starts, op)
    finish(span(t, starts, owned, owned + 1), op, ctx.size)
    ring_all_gather_inplace(ctx, t, starts, owned)


def reduce_broadcast(tensor: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None) -> None:
    """Binomial reduce to group rank 0, then binomial broadcast."""
    ctx = validate.all_reduce_args(tensor, op, group)
    if ctx is None or ctx.size == 1:
        return
    t = tensor.view(-1)
    binomial_reduce(ctx, t, 0, op)
    if ctx.rank == 0:
        finish(t, op, ctx.size)
    binomial_bcast(ctx, t, 0)


def _fold_in(ctx: Ctx, t: torch.Tensor, rem: int, op: ReduceOp, scratch: torch.Tensor) -> None:
    """Even ranks < 2*rem hand their buffer to the odd neighbour, which combines it."""
    r = ctx.rank
    if r >= 2 * rem:
        return
    if r % 2 == 0:
        exchange(ctx, sends=[(t, r + 1)])
    else:
        exchange(ctx, recvs=[(scratch, r - 1)])
        combine(t, t, scratch, op)


def _fold_out(ctx: Ctx, t: torch.Tensor, rem: int) -> None:
    """Odd ranks < 2*rem return the result to their even neighbour."""
    r = ctx.rank
    if r < 2 * rem:
        if r % 2 == 0:
            exchange(ctx, recvs=[(t, r + 1)])
        else:
            exchange(ctx, sends=[(t, r - 1)])


def recursive_doubling(
    tensor: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None
) -> None:
    """Recursive-doubling (butterfly) all-reduce with the MPICH fold for non-power-of-two p."""
    if (st := _start(tensor, op, group)) is None:
        return
    ctx, t = st
    q, rem = fold_map(ctx.size)
    scratch = torch.empty_like(t)
    _fold_in(ctx, t, rem, op, scratch)
    nr = fold_newrank(ctx.rank, rem)
    if nr >= 0:
        mask = 1
        while mask < q:
            partner = fold_oldrank(nr ^ mask, rem)
            exchange(ctx, sends=[(t, partner)], recvs=[(scratch, partner)])
            combine(t, t, scratch, op)
            mask <<= 1
        finish(t, op, ctx.size)
    _fold_out(ctx, t, rem)


def rabenseifner(tensor: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None) -> None:
    """Rabenseifner: recursive-halving reduce-scatter + recursive-doubling all-gather, folded."""
    if (st := _start(tensor, op, group)) is None:
        return
    ctx, t = st
    q, rem = fold_map(ctx.size)
    nr = fold_newrank(ctx.rank, rem)
    starts = block_starts(t.numel(), q)
    # the first half of the blocks is the largest piece ever received (blocks shrink with index)
    scratch = torch.empty(t.numel() if ctx.rank < 2 * rem else starts[q // 2], dtype=t.dtype, device=t.device)
    _fold_in(ctx, t, rem, op, scratch)
    if nr >= 0:
        lo, hi = 0, q  # blocks this rank is still responsible for
        mask = q >> 1
        while mask > 0:  # recursive halving: distance q/2, q/4, ..., 1
            partner = fold_oldrank(nr ^ mask, rem)
            mid = lo + mask
            if nr & mask:
                keep, give = (mid, hi), (lo, mid)
            else:
                keep, give = (lo, mid), (mid, hi)
            dst = span(t, starts, *keep)
            buf = scratch.narrow(0, 0, dst.numel())
            exchange(ctx, sends=[(span(t, starts, *give), partner)], recvs=[(buf, partner)])
            combine(dst, dst, buf, op)
            lo, hi = keep
            mask >>= 1
        finish(span(t, starts, nr, nr + 1), op, ctx.size)
        mask = 1
        while mask < q:  # recursive doubling all-gather: aligned groups of mask blocks
            partner = fold_oldrank(nr ^ mask, rem)
            mine = (nr // mask) * mask
            theirs = mine ^ mask
            exchange(
                ctx,
                sends=[(span(t, starts, mine, mine + mask), partner)],
                recvs=[(span(t, starts, theirs, theirs + mask), partner)],
            )
            mask <<= 1
    _fold_out(ctx, t, rem)


# ---- NCCL-style double binary tree (tree shapes: collectives.trees) ----


def tree(
    tensor: torch.Tensor,
    op: ReduceOp = ReduceOp.SUM,
    group: dist.ProcessGroup | None = None,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
) -> None:
    """Double-binary-tree all-reduce (pipelined reduce up, then broadcast down, per half)."""
    validate.check_segment_bytes(segment_bytes)
    if (st := _start(tensor, op, group)) is None:
        return
    ctx, t = st
    p, r, n = ctx.size, ctx.rank, t.numel()
    seg = chain_segment_elems(segment_bytes, t.element_size(), p, n)  # p = 2: trees of depth 1, one segment
    halves = [t.narrow(0, 0, n // 2), t.narrow(0, n // 2, n - n // 2)]
    trees = []
    for parent in dtree_parents(p):
        height, depth = heights_depths(parent)
        children = [c for c in range(p) if parent[c] == r]
        trees.append((parent, height, depth, children))
    ks = [-(-h.numel() // seg) for h in halves]
    n_slots = sum(len(tr[3]) for tr in trees)
    stride = min(seg, n - n // 2)  # largest segment of either half
    scratch = torch.empty(n_slots * stride, dtype=t.dtype, device=t.device)

    def piece(buf: torch.Tensor, j: int) -> torch.Tensor:
        return buf.narrow(0, j * seg, min(seg, buf.numel() - j * seg))

    # Reduce phase: a rank of height h sends (combined) segment j to its parent at step j + h;
    # it receives child c's segment j at step j + height[c] < j + h.
    steps = max(k + max(tr[1]) for k, tr in zip(ks, trees, strict=True))
    for step in range(steps):
        sends, recvs, todo = [], [], []
        slot = 0
        for half, k, (parent, height, _, children) in zip(halves, ks, trees, strict=True):
            j = step - height[r]
            if parent[r] >= 0 and 0 <= j < k:
                sends.append((piece(half, j), parent[r]))
            for c in children:
                jc = step - height[c]
                if 0 <= jc < k:
                    dst = piece(half, jc)
                    buf = scratch.narrow(0, slot * stride, dst.numel())
                    recvs.append((buf, c))
                    todo.append((dst, buf))
                slot += 1
        exchange(ctx, sends, recvs)
        for dst, buf in todo:
            combine(dst, dst, buf, op)
    for half, (parent, *_) in zip(halves, trees, strict=True):
        if parent[r] < 0:
            finish(half, op, p)
    # Broadcast phase: a rank at depth d receives segment j at step j + d - 1, forwards it at j + d.
    steps = max(k + max(tr[2]) - 1 for k, tr in zip(ks, trees, strict=True))
    for step in range(steps):
        sends, recvs = [], []
        for half, k, (parent, _, depth, children) in zip(halves, ks, trees, strict=True):
            j = step - depth[r]
            if 0 <= j < k:
                sends.extend((piece(half, j), c) for c in children)
            jr = step - depth[r] + 1
            if parent[r] >= 0 and 0 <= jr < k:
                recvs.append((piece(half, jr), parent[r]))
        exchange(ctx, sends, recvs)


#: Algorithm name -> implementation; ``collectives.registry`` collects these (``builtin`` is added there).
ALGORITHMS = {
    "ring": ring,
    "tree": tree,
    "reduce_broadcast": reduce_broadcast,
    "recursive_doubling": recursive_doubling,
    "rabenseifner": rabenseifner,
}


# --- builtin: torch.distributed.all_reduce (Gloo ``gloo::allreduce``, ring or bcube, Gloo's choice; NCCL
# ``ncclAllReduce``: ring, double binary tree, NVLS or CollNet, chosen by NCCL's tuner per size and topology)


def _check_builtin(tensor: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group=None) -> object:  # noqa: ANN001
    ctx = validate.all_reduce_args(tensor, op, group)
    if ctx is not None:
        check_backend_op(op, group)
    return ctx


def _torch_all_reduce(tensor: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group=None) -> None:  # noqa: ANN001
    """torch.distributed.all_reduce."""
    dist.all_reduce(tensor, op=op, group=group)


BUILTIN = Builtin(check=_check_builtin, call=_torch_all_reduce)


class _Harness(Harness):
    """``main`` is the buffer; every rank ends with the reduction."""

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return bind(fn, main, op=op)

    def prepare(self, main: T, other: Other, data: Data) -> None:
        data.fill(main)

    def count_wrong(self, main: T, other: Other, data: Data) -> int:
        return data.wrong(main, data.reduced(main.dtype, 0, main.numel()))


HARNESS = _Harness()
