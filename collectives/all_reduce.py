"""All-reduce algorithms on point-to-point ops.

- ``ring``: ring reduce-scatter + ring all-gather (Patarasuk & Yuan 2009; NCCL ring,
  Baidu/Horovod ring all-reduce): 2(p-1) steps of n/p bytes, blocks differ by at most one element.
  The reduce-scatter is pipelined in segments of ``segment_bytes`` (as gloo's ring and NCCL's slots):
  segment j + 1 of a step is on the wire while segment j is added, so the reduction hides behind the
  transfer; the all-gather moves whole blocks.
- ``ring_2ch``: the same on two rings (NCCL's channels), each carrying half of the buffer, both in the same
  batched steps, in rail-aligned orders (``channel_orders``, nodes from ``LOCAL_WORLD_SIZE``): every
  node-crossing hop joins the same local rank on both nodes, and the two rings leave each node through two
  different local ranks, so with rail-aligned NICs (local rank i on NIC i mod k) both NICs carry a ring.
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

import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.distributed import ReduceOp

from collectives import validate
from collectives.batched_p2p import Ctx, Msg, Pending, exchange, post
from collectives.blocks import (
    block_starts,
    chain_segment_elems,
    fold_map,
    fold_newrank,
    fold_oldrank,
    segment_elems,
    span,
)
from collectives.broadcast import binomial_bcast
from collectives.builtin import Builtin, check_backend_op
from collectives.costs import DEFAULT_SEGMENT_BYTES, ring_segment_bytes
from collectives.harness import Data, Fn, Harness, Other, T, bind
from collectives.reduce import binomial_reduce
from collectives.reduce_ops import combine, finish
from collectives.scratch import scratch
from collectives.trees import btree_parent, dtree_parents, heights_depths

__all__ = [
    "btree_parent",
    "channel_orders",
    "dtree_parents",
    "rabenseifner",
    "recursive_doubling",
    "reduce_broadcast",
    "ring",
    "ring_2ch",
    "tree",
]


def _start(tensor: torch.Tensor, op: ReduceOp, group: dist.ProcessGroup | None) -> tuple[Ctx, torch.Tensor] | None:
    """Validate; None when there is nothing to do (non-member, p = 1: AVG over one rank is the identity, or
    an empty tensor), else (ctx, flat view of ``tensor``)."""
    ctx = validate.all_reduce_args(tensor, op, group)
    if ctx is None or ctx.size == 1 or tensor.numel() == 0:
        return None
    return ctx, tensor.view(-1)


#: Steps a pipelined ring keeps posted at once (at most the k segments of a step): later segments are on the
#: wire while one is reduced (gloo's ring all-reduce and NCCL's ring keep several segments in flight too).
RING_DEPTH = 8


@dataclass(frozen=True)
class RingChannel:
    """One ring (a channel) of a ring all-reduce: its part of the buffer, cut in p blocks of k segments each,
    and this rank's place on it.  Blocks are numbered by ring position, so every order of the ranks works."""

    part: torch.Tensor  # flat view of this channel's part of the buffer
    starts: list[int]  # p + 1 block starts in ``part``
    k: int  # segments per block (pieces of one block differ by at most one element)
    pos: int  # this rank's position on the ring
    nxt: int  # group rank after it
    prv: int  # group rank before it

    def block(self, b: int) -> torch.Tensor:
        return span(self.part, self.starts, b, b + 1)

    def piece(self, b: int, j: int) -> torch.Tensor:
        """Segment j of block b: the k segments of a block differ by at most one element (as ``block_starts``)."""
        q, rem = divmod(self.starts[b + 1] - self.starts[b], self.k)
        return self.part.narrow(0, self.starts[b] + j * q + min(j, rem), q + (j < rem))


def ring_channels(ctx: Ctx, t: torch.Tensor, orders: list[list[int]], seg_elems: int) -> list[RingChannel]:
    """One RingChannel per ring order (a permutation of the group ranks); channel c carries part c of ``t``."""
    p = ctx.size
    parts = block_starts(t.numel(), len(orders))
    rings = []
    for c, order in enumerate(orders):
        part = span(t, parts, c, c + 1)
        starts = block_starts(part.numel(), p)
        k = max(1, -(-(starts[1] - starts[0]) // seg_elems))  # block 0 is the largest
        pos = order.index(ctx.rank)
        rings.append(RingChannel(part, starts, k, pos, order[(pos + 1) % p], order[(pos - 1) % p]))
    return rings


def ring_all_reduce_pipelined(ctx: Ctx, rings: list[RingChannel], op: ReduceOp) -> None:
    """Ring reduce-scatter then ring all-gather in place, segment by segment, every channel in the same steps.

    Reduce-scatter step s of a ring sends block pos - s and receives block pos - s - 1, which this rank adds to
    its own; all-gather step s forwards block pos + 1 - s and receives block pos - s.  Every step is cut in k
    segments and the 2(p - 1)k (step, segment) units run in order, ``RING_DEPTH`` of them posted at once: later
    segments travel while an earlier one is added, and the all-gather of segment j starts as soon as its last
    addition is done.  Unit (s + 1, j) forwards what unit (s, j) produced, k units earlier, so it may be posted
    once the unit ``depth`` before it is done when depth <= k (k = 1: one unit at a time, the unpipelined ring).
    """
    depth = min(RING_DEPTH, min(g.k for g in rings))
    widths = [-(-(g.starts[1] - g.starts[0]) // g.k) for g in rings]  # largest piece of each ring
    with scratch(depth * sum(widths), rings[0].part) as kept:  # one slot of ``depth`` per ring
        slots = [kept.narrow(0, depth * sum(widths[:c]), depth * w) for c, w in enumerate(widths)]
        _ring_units(ctx, rings, op, slots, depth, widths)


def _ring_units(
    ctx: Ctx, rings: list[RingChannel], op: ReduceOp, slots: list[torch.Tensor], depth: int, widths: list[int]
) -> None:
    """The unit loop of ``ring_all_reduce_pipelined``: ``slots[c]`` holds ring c's ``depth`` receive slots."""
    p = ctx.size
    half = [(p - 1) * g.k for g in rings]
    total = 2 * max(half)
    posted: deque[tuple[Pending, list[tuple[torch.Tensor, torch.Tensor, bool]]]] = deque()

    def post_unit(u: int) -> None:
        sends: list[Msg] = []
        recvs: list[Msg] = []
        todo = []
        behind = True  # every ring sends a later segment of its current step: no new step's latency
        for g, n_half, w, buf in zip(rings, half, widths, slots, strict=True):
            if u >= 2 * n_half:
                continue
            s, j = divmod(u % n_half, g.k)
            behind = behind and j > 0
            if u < n_half:  # reduce-scatter: receive into a scratch slot, add into block pos - s - 1
                dst = g.piece((g.pos - s - 1) % p, j)
                into = buf.narrow(0, (u % depth) * w, dst.numel())  # the slot of the unit done just before
                sends.append((g.piece((g.pos - s) % p, j), g.nxt))
                recvs.append((into, g.prv))
                todo.append((dst, into, s == p - 2))
            else:  # all-gather: forward block pos + 1 - s, receive block pos - s in place
                sends.append((g.piece((g.pos + 1 - s) % p, j), g.nxt))
                recvs.append((g.piece((g.pos - s) % p, j), g.prv))
        posted.append((post(ctx, sends, recvs, behind=behind), todo))

    for u in range(min(depth, total)):
        post_unit(u)
    for u in range(total):
        pending, todo = posted.popleft()
        pending.wait()
        for dst, into, last in todo:
            combine(dst, dst, into, op)
            if last:
                finish(dst, op, p)
        if u + depth < total:
            post_unit(u + depth)


def ranks_per_node(ctx: Ctx) -> int:
    """Ranks per node as torchrun numbers them (``LOCAL_WORLD_SIZE``, ranks node by node); without it every
    rank is taken to be on one node."""
    try:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", ""))
    except ValueError:
        local = 0
    return local if local >= 1 else max(ctx.global_ranks) + 1


def channel_orders(global_ranks: Sequence[int], channels: int, per_node: int) -> list[list[int]]:
    """Rail-aligned ring order (group ranks) of each channel, as NCCL's rings on a rail-optimised network.

    The nodes come in order (node = global rank // per_node); channel c visits node n's members (in group-rank
    order) starting from member s = (c - n) mod m (m members), so it leaves node n from member s - 1, which is
    where it enters node n + 1: every node-crossing hop joins the same local rank on both nodes, i.e. one rail
    (with local rank i on NIC i mod k), and channel c leaves node n through local rank c - n - 1: channels
    0 .. k - 1 leave (and enter) every node through k different NICs.  (The ring closes on the same rail when
    the number of nodes is a multiple of m; else its last hop joins two rails.)
    """
    nodes: dict[int, list[int]] = {}
    for g, rank in enumerate(global_ranks):
        nodes.setdefault(rank // per_node, []).append(g)
    orders = []
    for c in range(channels):
        order: list[int] = []
        for n, node in enumerate(sorted(nodes)):
            members = nodes[node]
            start = (c - n) % len(members)
            order += members[start:] + members[:start]
        orders.append(order)
    return orders


def _ring_all_reduce(
    tensor: torch.Tensor, op: ReduceOp, group: dist.ProcessGroup | None, segment_bytes: int | None, channels: int
) -> None:
    if segment_bytes is not None:
        validate.check_segment_bytes(segment_bytes)
    ctx = validate.all_reduce_args(tensor, op, group)
    if ctx is None:
        return
    t = tensor.view(-1)
    if ctx.size == 1:
        finish(t, op, 1)
        return
    if t.numel() == 0:
        return
    if channels == 1:  # the plain ring, in group-rank order
        orders = [list(range(ctx.size))]
    else:
        orders = channel_orders(ctx.global_ranks, channels, ranks_per_node(ctx))
    if segment_bytes is None:  # half a block (gloo's rule), 1-4 MiB
        segment_bytes = ring_segment_bytes(t.numel() * t.element_size() / (channels * ctx.size))
    rings = ring_channels(ctx, t, orders, segment_elems(segment_bytes, t.element_size()))
    ring_all_reduce_pipelined(ctx, rings, op)


def ring(
    tensor: torch.Tensor,
    op: ReduceOp = ReduceOp.SUM,
    group: dist.ProcessGroup | None = None,
    segment_bytes: int | None = None,
) -> None:
    """Ring all-reduce: pipelined ring reduce-scatter (segments of ``segment_bytes``; None: half a block, 1-4 MiB,
    ``collectives.costs.ring_segment_bytes``), then ring all-gather."""
    _ring_all_reduce(tensor, op, group, segment_bytes, channels=1)


def ring_2ch(
    tensor: torch.Tensor,
    op: ReduceOp = ReduceOp.SUM,
    group: dist.ProcessGroup | None = None,
    segment_bytes: int | None = None,
) -> None:
    """Two-channel ring all-reduce: each half of the buffer on its own rail-aligned ring (``channel_orders``), both
    rings in the same batched steps, so the node-crossing hops of a 2-NIC node leave it through both NICs."""
    _ring_all_reduce(tensor, op, group, segment_bytes, channels=2)


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


def _fold_in(ctx: Ctx, t: torch.Tensor, rem: int, op: ReduceOp, buf: torch.Tensor) -> None:
    """Even ranks < 2*rem hand their buffer to the odd neighbour, which combines it."""
    r = ctx.rank
    if r >= 2 * rem:
        return
    if r % 2 == 0:
        exchange(ctx, sends=[(t, r + 1)])
    else:
        exchange(ctx, recvs=[(buf, r - 1)])
        combine(t, t, buf, op)


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
    with scratch(t.numel(), t) as kept:
        _fold_in(ctx, t, rem, op, kept)
        nr = fold_newrank(ctx.rank, rem)
        if nr >= 0:
            mask = 1
            while mask < q:
                partner = fold_oldrank(nr ^ mask, rem)
                exchange(ctx, sends=[(t, partner)], recvs=[(kept, partner)])
                combine(t, t, kept, op)
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
    with scratch(t.numel() if ctx.rank < 2 * rem else starts[q // 2], t) as kept:
        _fold_in(ctx, t, rem, op, kept)
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
                buf = kept.narrow(0, 0, dst.numel())
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
    with scratch(n_slots * stride, t) as kept:

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
                        buf = kept.narrow(0, slot * stride, dst.numel())
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
    "ring_2ch": ring_2ch,
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
