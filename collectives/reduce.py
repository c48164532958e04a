"""Reduce algorithms on point-to-point ops.

- ``tree``: binomial tree (MPICH ``MPIR_Reduce_intra_binomial``): ceil(lg p) steps of the whole
  buffer, each followed by a local combine.
- ``ring``: pipelined chain root+1 ... root+p-1 -> root, in segments of ``segment_bytes``
  (the pipelined-chain reduce of Thakur et al. 2005 / NCCL's ring reduce): p - 2 + k steps; in
  each step a rank receives segment j from its successor while sending the already combined
  segment j - 1 to its predecessor.

The ``dst`` rank's tensor holds the result; other ranks' tensors are used as scratch (allowed by
the collbench API, docs/protocol.md, section Algorithm API).  AVG = SUM, then the root divides by p.
Costs: ``collectives.costs`` (reduce/tree, reduce/ring).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch.distributed import ReduceOp

from collectives import validate
from collectives.batched_p2p import Ctx, exchange
from collectives.blocks import chain_segment_elems
from collectives.builtin import Builtin, check_backend_op
from collectives.costs import DEFAULT_SEGMENT_BYTES
from collectives.harness import Data, Fn, Harness, Other, T, bind
from collectives.reduce_ops import combine, finish
from collectives.scratch import scratch


def binomial_reduce(ctx: Ctx, t: torch.Tensor, root: int, op: ReduceOp) -> None:
    """Binomial-tree reduce of flat ``t`` to group rank ``root`` (no AVG division)."""
    p = ctx.size
    vr = (ctx.rank - root) % p
    receives = vr % 2 == 0 and vr + 1 < p  # the first step (mask 1) decides: an odd rank only sends
    with scratch(t.numel() if receives else 0, t) as kept:
        mask = 1
        while mask < p:
            if vr & mask:
                exchange(ctx, sends=[(t, (vr - mask + root) % p)])
                break
            if vr + mask < p:
                exchange(ctx, recvs=[(kept, (vr + mask + root) % p)])
                combine(t, t, kept, op)
            mask <<= 1


def chain_reduce(ctx: Ctx, t: torch.Tensor, root: int, op: ReduceOp, segment_bytes: int) -> None:
    """Pipelined chain reduce towards ``root`` in segments (no AVG division)."""
    p, n = ctx.size, t.numel()
    vr = (ctx.rank - root) % p  # chain runs p-1 -> p-2 -> ... -> 0 in relative ranks
    seg = chain_segment_elems(segment_bytes, t.element_size(), p, n)
    k = max(1, -(-n // seg))
    nxt, prv = (ctx.rank + 1) % p, (ctx.rank - 1) % p
    with scratch(min(seg, n) if vr < p - 1 else 0, t) as kept:  # the last rank of the chain only sends

        def piece(buf: torch.Tensor, j: int) -> torch.Tensor:
            start = j * seg
            return buf.narrow(0, start, max(0, min(seg, n - start)))

        for step in range(p - 2 + k):
            sends, recvs = [], []
            j_send = step - (p - 1 - vr)  # relative rank p-1 starts sending at step 0
            if vr > 0 and 0 <= j_send < k:
                sends.append((piece(t, j_send), prv))
            j_recv = step - (p - 2 - vr)
            recv_view = None
            if vr < p - 1 and 0 <= j_recv < k:
                recv_view = kept.narrow(0, 0, piece(t, j_recv).numel())
                recvs.append((recv_view, nxt))
            exchange(ctx, sends, recvs)
            if recv_view is not None:
                dst = piece(t, j_recv)
                combine(dst, dst, recv_view, op)


def tree(tensor: torch.Tensor, dst: int, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None) -> None:
    """Binomial-tree reduce."""
    args = validate.reduce_args(tensor, dst, op, group)
    if args is None:
        return
    ctx, root = args
    if ctx.size > 1:
        binomial_reduce(ctx, tensor.view(-1), root, op)
    if ctx.rank == root:
        finish(tensor, op, ctx.size)


def ring(
    tensor: torch.Tensor,
    dst: int,
    op: ReduceOp = ReduceOp.SUM,
    group: dist.ProcessGroup | None = None,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
) -> None:
    """Pipelined chain (ring) reduce in segments of ``segment_bytes``."""
    validate.check_segment_bytes(segment_bytes)
    args = validate.reduce_args(tensor, dst, op, group)
    if args is None:
        return
    ctx, root = args
    if ctx.size > 1:
        chain_reduce(ctx, tensor.view(-1), root, op, segment_bytes)
    if ctx.rank == root:
        finish(tensor, op, ctx.size)


#: Algorithm name -> implementation; ``collectives.registry`` collects these (``builtin`` is added there).
ALGORITHMS = {"ring": ring, "tree": tree}


# --- builtin: torch.distributed.reduce (Gloo ``gloo::reduce``; NCCL ``ncclReduce``, ring)


def _check_builtin(tensor: torch.Tensor, dst: int, op: ReduceOp = ReduceOp.SUM, group=None) -> object:  # noqa: ANN001
    ctx = validate.reduce_args(tensor, dst, op, group)
    if ctx is not None:
        check_backend_op(op, group)
    return ctx


def _torch_reduce(tensor: torch.Tensor, dst: int, op: ReduceOp = ReduceOp.SUM, group=None) -> None:  # noqa: ANN001
    """torch.distributed.reduce."""
    dist.reduce(tensor, dst, op=op, group=group)


BUILTIN = Builtin(check=_check_builtin, call=_torch_reduce)


class _Harness(Harness):
    """``main`` is the buffer; only the root's holds the result (the others are scratch)."""

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return bind(fn, main, root, op=op)

    def prepare(self, main: T, other: Other, data: Data) -> None:
        data.fill(main)

    def count_wrong(self, main: T, other: Other, data: Data) -> int:
        if data.rank != data.root:
            return 0
        return data.wrong(main, data.reduced(main.dtype, 0, main.numel()))


HARNESS = _Harness()
