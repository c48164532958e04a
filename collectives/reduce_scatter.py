"""Reduce-scatter algorithms on point-to-point ops (``reduce_scatter_tensor`` semantics).

- ``ring``: p - 1 steps (Patarasuk & Yuan 2009; NCCL ring): the partial sum of block b starts at
  rank b + 1 and travels round the ring, each rank adding its own block; the last hop lands in
  ``output``.  Two block-sized scratch buffers alternate (send one, receive into the other).  Each step
  is pipelined in segments of ``segment_bytes`` (as gloo's and NCCL's rings): segment j + 1 travels
  while segment j is added.
- ``pairwise``: pairwise exchange (MPICH ``MPIR_Reduce_scatter_intra_pairwise``): step i sends
  input block r + i to rank r + i and receives block r from rank r - i, combining into ``output``.
- ``tree``: recursive halving (MPICH ``MPIR_Reduce_scatter_intra_recursive_halving``;
  Thakur et al. 2005): lg p' steps exchanging half of the remaining range with rank XOR 2^i,
  with the standard fold for non-power-of-two p (even ranks < 2(p - p') give their whole input
  to the odd neighbour first; the odd rank returns the even rank's block at the end).

``input`` is never written (the first combine reads it and writes scratch or ``output``), except in the
in-place layout (``output`` is input block ``rank``, as in NCCL), which every algorithm here supports.
AVG = SUM, then each rank divides its output by p.  Costs: ``collectives.costs`` (reduce_scatter/*).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch.distributed import ReduceOp

from collectives import validate
from collectives.all_reduce import RING_DEPTH
from collectives.batched_p2p import Ctx, Pending, exchange, post
from collectives.blocks import block_starts, fold_map, fold_newrank, fold_oldrank, segment_elems, span
from collectives.builtin import Builtin, check_backend_op
from collectives.costs import ring_segment_bytes
from collectives.harness import Data, Fn, Harness, Other, T, bind
from collectives.reduce_ops import combine, finish
from collectives.scratch import scratch


def _blk(t: torch.Tensor, m: int, b: int, count: int = 1) -> torch.Tensor:
    return t.narrow(0, b * m, count * m)


def _start(
    output: torch.Tensor, input: torch.Tensor, op: ReduceOp, group: dist.ProcessGroup | None
) -> tuple[Ctx, torch.Tensor, torch.Tensor] | None:
    """Validate; finish the trivial cases (non-member, p = 1, empty blocks); else (ctx, flat output, flat input)."""
    ctx = validate.reduce_scatter_args(output, input, op, group)
    if ctx is None:
        return None
    out, inp = output.view(-1), input.view(-1)
    if ctx.size == 1 or out.numel() == 0:
        out.copy_(inp)
        finish(out, op, ctx.size)
        return None
    return ctx, out, inp


def ring(
    output: torch.Tensor,
    input: torch.Tensor,
    op: ReduceOp = ReduceOp.SUM,
    group: dist.ProcessGroup | None = None,
    segment_bytes: int | None = None,
) -> None:
    """Ring reduce-scatter, pipelined in segments of ``segment_bytes`` (None: half a block, 1-4 MiB,
    ``collectives.costs.ring_segment_bytes``).

    Step s receives the partial of block r - s - 2 and adds this rank's input block to it; each step is cut in
    k segments and the (step, segment) units run in order, ``RING_DEPTH`` posted at once, so segment j + 1
    travels while segment j is added.  Unit (s + 1, j) forwards what unit (s, j) produced, k units earlier.
    """
    if segment_bytes is not None:
        validate.check_segment_bytes(segment_bytes)
    if (st := _start(output, input, op, group)) is None:
        return
    ctx, out, inp = st
    p, r, m = ctx.size, ctx.rank, out.numel()
    if segment_bytes is None:
        segment_bytes = ring_segment_bytes(m * inp.element_size())
    nxt, prv = (r + 1) % p, (r - 1) % p
    k = max(1, -(-m // segment_elems(segment_bytes, inp.element_size())))
    cut = block_starts(m, k)
    depth = min(RING_DEPTH, k)
    with scratch(2 * m, inp) as bufs:  # step s receives into block s % 2

        def seg(t: torch.Tensor, j: int) -> torch.Tensor:
            return span(t, cut, j, j + 1)

        def sent(s: int) -> torch.Tensor:  # step 0 forwards my own block r - 1 as the first partial
            return _blk(inp, m, (r - 1) % p) if s == 0 else _blk(bufs, m, (s - 1) % 2)

        posted: deque[Pending] = deque()
        total = (p - 1) * k

        def post_unit(u: int) -> None:
            s, j = divmod(u, k)
            sends, recvs = [(seg(sent(s), j), nxt)], [(seg(_blk(bufs, m, s % 2), j), prv)]
            posted.append(post(ctx, sends, recvs, behind=j > 0))

        for u in range(min(depth, total)):
            post_unit(u)
        for u in range(total):
            posted.popleft().wait()
            s, j = divmod(u, k)
            got = seg(_blk(bufs, m, s % 2), j)
            b = (r - 2 - s) % p  # block whose partial just arrived (r on the last step)
            target = seg(out, j) if s == p - 2 else got  # the last combine lands in output (in place: input block r)
            combine(target, got, seg(_blk(inp, m, b), j), op)
            if u + depth < total:
                post_unit(u + depth)
    finish(out, op, p)


def pairwise(
    output: torch.Tensor, input: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None
) -> None:
    """Pairwise-exchange reduce-scatter."""
    ctx = validate.reduce_scatter_args(output, input, op, group)
    if ctx is None:
        return
    p, r, m = ctx.size, ctx.rank, output.numel()
    out, inp = output.view(-1), input.view(-1)
    out.copy_(_blk(inp, m, r))
    if p > 1 and m > 0:
        with scratch(m, inp) as buf:
            for i in range(1, p):
                to, frm = (r + i) % p, (r - i) % p
                exchange(ctx, sends=[(_blk(inp, m, to), to)], recvs=[(buf, frm)])
                combine(out, out, buf, op)
    finish(out, op, p)


def tree(
    output: torch.Tensor, input: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None
) -> None:
    """Recursive-halving reduce-scatter with the fold for non-power-of-two p."""
    if (st := _start(output, input, op, group)) is None:
        return
    ctx, out, inp = st
    p, r, m = ctx.size, ctx.rank, out.numel()
    q, rem = fold_map(p)

    def first_block(newrank: int) -> int:  # newrank i owns real blocks [first(i), first(i+1))
        return 2 * newrank if newrank < rem else newrank + rem

    folded = r < 2 * rem
    if folded and r % 2 == 0:  # give everything to the odd neighbour, get my block back at the end
        exchange(ctx, sends=[(inp, r + 1)])
        exchange(ctx, recvs=[(out, r + 1)])
        finish(out, op, p)
        return
    largest = first_block(q >> 1) * m  # the largest kept range ever received
    with scratch(p * m + largest, inp) as kept:
        work, recv = kept.narrow(0, 0, p * m), kept.narrow(0, p * m, largest)
        src = inp  # current partial results; the input is read, never written
        if folded:
            exchange(ctx, recvs=[(work, r - 1)])
            combine(work, work, inp, op)
            src = work
        nr = fold_newrank(r, rem)
        lo, hi = 0, q
        mask = q >> 1
        while mask > 0:
            partner = fold_oldrank(nr ^ mask, rem)
            mid = lo + mask
            keep, give = ((mid, hi), (lo, mid)) if nr & mask else ((lo, mid), (mid, hi))
            kb, kc = first_block(keep[0]), first_block(keep[1]) - first_block(keep[0])
            gb, gc = first_block(give[0]), first_block(give[1]) - first_block(give[0])
            buf = recv.narrow(0, 0, kc * m)
            exchange(ctx, sends=[(_blk(src, m, gb, gc), partner)], recvs=[(buf, partner)])
            combine(_blk(work, m, kb, kc), _blk(src, m, kb, kc), buf, op)
            src = work
            lo, hi = keep
            mask >>= 1
        # this rank (newrank nr) now holds the reduced blocks [first(nr), first(nr + 1))
        fb = first_block(nr)
        if folded:
            exchange(ctx, sends=[(_blk(src, m, fb), r - 1)])  # the even neighbour's block r - 1
            out.copy_(_blk(src, m, fb + 1))
        else:
            out.copy_(_blk(src, m, fb))
        finish(out, op, p)


#: Algorithm name -> implementation; ``collectives.registry`` collects these (``builtin`` is added there).
ALGORITHMS = {"ring": ring, "tree": tree, "pairwise": pairwise}


# --- builtin: reduce_scatter_tensor (reduce_scatter_single in torch >= 2.13); NCCL ``ncclReduceScatter``, ring.
# Gloo has no flat reduce-scatter primitive: torch implements ``reduce_scatter_tensor`` on Gloo through a full
# all-reduce of (a copy of) the input and a copy of this rank's chunk. Consistent with that,
# scripts/bench_collectives.py measures builtin reduce_scatter at 16 MiB, 2 processes, at about 1.5x the time of
# builtin all_reduce of the same buffer.


def _check_builtin(output: torch.Tensor, input: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group=None) -> object:  # noqa: ANN001
    ctx = validate.reduce_scatter_args(output, input, op, group)
    if ctx is not None:
        check_backend_op(op, group)
    return ctx


def _torch_reduce_scatter(output: torch.Tensor, input: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group=None) -> None:  # noqa: ANN001,E501
    """torch.distributed.reduce_scatter_tensor (reduce_scatter_single in newer torch)."""
    getattr(dist, "reduce_scatter_single", dist.reduce_scatter_tensor)(output, input, op=op, group=group)


BUILTIN = Builtin(check=_check_builtin, call=_torch_reduce_scatter)


class _Harness(Harness):
    """``main`` is the input, ``other`` this rank's reduced block (a view of ``main`` in place)."""

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return bind(fn, other, main, op=op)

    def prepare(self, main: T, other: Other, data: Data) -> None:
        data.sentinel(other)  # in place, ``other`` is a block of ``main``: the fill below overwrites the sentinel
        data.fill(main)

    def count_wrong(self, main: T, other: Other, data: Data) -> int:
        chunk = other.numel()
        return data.wrong(other, data.reduced(main.dtype, data.rank * chunk, chunk))


HARNESS = _Harness()
