"""Broadcast algorithms on point-to-point ops.

- ``tree``: binomial tree (MPICH ``MPIR_Bcast_intra_binomial``; Thakur, Rabenseifner & Gropp
  2005): ceil(lg p) steps of the whole buffer.
- ``ring``: pipelined chain root -> root+1 -> ... -> root-1 in segments of ``segment_bytes``;
  p - 2 + k steps of n/k bytes (k = ceil(n / segment_bytes)); each step sends segment j to the
  next rank while receiving segment j + 1 from the previous one.
- ``scatter_allgather``: van de Geijn (Barnett et al. 1994; Chan et al. 2007; MPICH
  ``MPIR_Bcast_intra_scatter_ring_allgather``): binomial scatter of p blocks, then a ring
  all-gather; ceil(lg p) + p - 1 steps, 2(p-1)/p n bytes.

Costs: ``collectives.costs`` (broadcast/tree, ring, scatter_allgather).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

from collectives import validate
from collectives.batched_p2p import Ctx, exchange
from collectives.blocks import block_starts, chain_segment_elems, span
from collectives.builtin import Builtin
from collectives.costs import DEFAULT_SEGMENT_BYTES
from collectives.harness import Data, Fn, Harness, Other, T, bind


def binomial_bcast(ctx: Ctx, t: torch.Tensor, root: int) -> None:
    """Binomial-tree broadcast of flat ``t`` from group rank ``root`` (used by all_reduce too)."""
    p = ctx.size
    vr = (ctx.rank - root) % p
    mask = 1
    while mask < p:
        if vr & mask:
            exchange(ctx, recvs=[(t, (vr - mask + root) % p)])
            break
        mask <<= 1
    mask >>= 1
    while mask > 0:
        if vr + mask < p:
            exchange(ctx, sends=[(t, (vr + mask + root) % p)])
        mask >>= 1


def chain_bcast(ctx: Ctx, t: torch.Tensor, root: int, segment_bytes: int) -> None:
    """Pipelined chain broadcast in segments of ``segment_bytes``."""
    p, n = ctx.size, t.numel()
    vr = (ctx.rank - root) % p
    seg = chain_segment_elems(segment_bytes, t.element_size(), p, n)
    k = max(1, -(-n // seg))
    nxt, prv = (ctx.rank + 1) % p, (ctx.rank - 1) % p

    def piece(j: int) -> torch.Tensor:
        start = j * seg
        return t.narrow(0, start, max(0, min(seg, n - start)))

    for step in range(p - 2 + k):
        sends, recvs = [], []
        j_send = step - vr  # segment this rank forwards now (received in the previous step)
        if vr < p - 1 and 0 <= j_send < k:
            sends.append((piece(j_send), nxt))
        j_recv = step - vr + 1
        if vr > 0 and 0 <= j_recv < k:
            recvs.append((piece(j_recv), prv))
        exchange(ctx, sends, recvs)


def scatter_ring_allgather_bcast(ctx: Ctx, t: torch.Tensor, root: int) -> None:
    """Binomial scatter of p blocks (block i to relative rank i), then ring all-gather."""
    p = ctx.size
    vr = (ctx.rank - root) % p
    starts = block_starts(t.numel(), p)
    # scatter: relative rank vr ends up with blocks [vr, vr + lowbit(vr)) after receiving.
    mask = 1
    while mask < p:
        if vr & mask:
            exchange(ctx, recvs=[(span(t, starts, vr, min(vr + mask, p)), (vr - mask + root) % p)])
            break
        mask <<= 1
    mask >>= 1
    while mask > 0:
        if vr + mask < p:
            exchange(ctx, sends=[(span(t, starts, vr + mask, min(vr + 2 * mask, p)), (vr + mask + root) % p)])
        mask >>= 1
    # ring all-gather over relative ranks: step s sends block vr - s, receives block vr - s - 1.
    nxt, prv = (ctx.rank + 1) % p, (ctx.rank - 1) % p
    for s in range(p - 1):
        b_send, b_recv = (vr - s) % p, (vr - s - 1) % p
        exchange(
            ctx,
            sends=[(span(t, starts, b_send, b_send + 1), nxt)],
            recvs=[(span(t, starts, b_recv, b_recv + 1), prv)],
        )


def tree(tensor: torch.Tensor, src: int, group: dist.ProcessGroup | None = None) -> None:
    """Binomial-tree broadcast."""
    args = validate.broadcast_args(tensor, src, group)
    if args is None or args[0].size == 1:
        return
    binomial_bcast(args[0], tensor.view(-1), args[1])


def ring(
    tensor: torch.Tensor,
    src: int,
    group: dist.ProcessGroup | None = None,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
) -> None:
    """Pipelined chain (ring) broadcast in segments of ``segment_bytes``."""
    validate.check_segment_bytes(segment_bytes)
    args = validate.broadcast_args(tensor, src, group)
    if args is None or args[0].size == 1:
        return
    chain_bcast(args[0], tensor.view(-1), args[1], segment_bytes)


def scatter_allgather(tensor: torch.Tensor, src: int, group: dist.ProcessGroup | None = None) -> None:
    """van de Geijn broadcast: binomial scatter + ring all-gather."""
    args = validate.broadcast_args(tensor, src, group)
    if args is None or args[0].size == 1:
        return
    scatter_ring_allgather_bcast(args[0], tensor.view(-1), args[1])


#: Algorithm name -> implementation; ``collectives.registry`` collects these (``builtin`` is added there).
ALGORITHMS = {"ring": ring, "tree": tree, "scatter_allgather": scatter_allgather}


# --- builtin: torch.distributed.broadcast (Gloo ``gloo::broadcast``, binomial tree; NCCL ``ncclBroadcast``, ring)


def _check_builtin(tensor: torch.Tensor, src: int, group: dist.ProcessGroup | None = None) -> object:
    return validate.broadcast_args(tensor, src, group)


def _torch_broadcast(tensor: torch.Tensor, src: int, group: dist.ProcessGroup | None = None) -> None:
    """torch.distributed.broadcast."""
    dist.broadcast(tensor, src, group=group)


BUILTIN = Builtin(check=_check_builtin, call=_torch_broadcast)


class _Harness(Harness):
    """``main`` is the buffer; the root's data reach every rank."""

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return bind(fn, main, root)

    def prepare(self, main: T, other: Other, data: Data) -> None:
        data.fill(main, data.root) if data.rank == data.root else data.sentinel(main)

    def count_wrong(self, main: T, other: Other, data: Data) -> int:
        return data.wrong(main, data.values(main.dtype, data.root, 0, main.numel()))


HARNESS = _Harness()
