"""Scatter algorithms on point-to-point ops (tensor semantics: ``src``'s S split in p blocks, block i to rank i).

``scatter(output, input, src, group)``: ``input`` holds S (p blocks of ``output.numel()`` elements) and is read on
``src`` only; every rank's ``output`` receives its block. Other ranks' ``input`` is scratch (the tree forwards
through it), as in nccl-tests, where every rank allocates both buffers. In place (nccl-tests' layout),
``output`` is block ``rank`` of ``input``.

- ``linear``: the root sends block i to rank i, one rank after the other (Open MPI ``basic_linear``):
  p - 1 steps, (p - 1)/p n bytes through the root's port.
- ``tree``: binomial tree (MPICH ``MPIR_Scatter_intra_binomial``): ceil(lg p) steps; in the step of mask 2^k a
  rank holding the blocks of relative ranks [v, v + 2^(k+1)) hands [v + 2^k, v + 2^(k+1)) to relative rank
  v + 2^k. Blocks are kept at their absolute place in ``input`` (a range that wraps past the last block is
  sent as two messages in one step), so no rotation is needed for a root other than 0.

Costs: ``collectives.costs`` (scatter/linear, scatter/tree).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

from collectives import validate
from collectives.batched_p2p import Ctx, Msg, exchange
from collectives.builtin import Builtin
from collectives.harness import Data, Fn, Harness, Other, T, bind


def block(t: torch.Tensor, m: int, b: int) -> torch.Tensor:
    """Block ``b`` (absolute) of the flat buffer ``t`` of p blocks of m elements."""
    return t.narrow(0, b * m, m)


def pieces(t: torch.Tensor, m: int, lo: int, hi: int, root: int, p: int) -> list[torch.Tensor]:
    """The blocks of relative ranks [lo, hi) (absolute blocks lo + root, ...) as at most two contiguous views."""
    first, count = (lo + root) % p, max(0, hi - lo)
    if count == 0:
        return []
    if first + count <= p:
        return [t.narrow(0, first * m, count * m)]
    return [t.narrow(0, first * m, (p - first) * m), t.narrow(0, 0, (first + count - p) * m)]


def start_rooted(name: str, output: torch.Tensor, input: torch.Tensor, root: int, group: dist.ProcessGroup | None,
                 *, gathering: bool) -> tuple[Ctx, int, torch.Tensor, torch.Tensor, int] | None:  # fmt: skip
    """The common start of gather (``gathering``: p blocks in ``output``) and scatter (p blocks in ``input``):
    the argument checks, then on the root its own block copied between its whole buffer and its block;
    (ctx, root, flat output, flat input, m elements per block), or None when there is nothing to do."""
    args = validate.pair_args(name, output, input, group, root=root)
    if args is None:
        return None
    ctx, root = args
    out, inp = output.view(-1), input.view(-1)
    whole, part = (out, inp) if gathering else (inp, out)
    m = part.numel()
    if ctx.rank == root:
        own = block(whole, m, root)
        if own.data_ptr() != part.data_ptr() and m > 0:
            (own.copy_(part) if gathering else part.copy_(own))
    return ctx, root, out, inp, m


def _start(output: torch.Tensor, input: torch.Tensor, src: int,
           group: dist.ProcessGroup | None) -> tuple[Ctx, int, torch.Tensor, torch.Tensor, int] | None:  # fmt: skip
    return start_rooted("scatter", output, input, src, group, gathering=False)


def linear(output: torch.Tensor, input: torch.Tensor, src: int, group: dist.ProcessGroup | None = None) -> None:
    """The root sends every other rank its block, one after the other."""
    started = _start(output, input, src, group)
    if started is None:
        return
    ctx, root, out, inp, m = started
    p = ctx.size
    if ctx.rank != root:
        exchange(ctx, recvs=[(out, root)])
        return
    for v in range(1, p):
        r = (v + root) % p
        exchange(ctx, sends=[(block(inp, m, r), r)])


def tree(output: torch.Tensor, input: torch.Tensor, src: int, group: dist.ProcessGroup | None = None) -> None:
    """Binomial-tree scatter; interior ranks forward their subtree's blocks through their ``input``."""
    started = _start(output, input, src, group)
    if started is None:
        return
    ctx, root, out, inp, m = started
    p = ctx.size
    vr = (ctx.rank - root) % p
    mask = 1
    while mask < p:
        if vr & mask:  # receive the blocks of relative ranks [vr, vr + mask): own block straight into output
            parent = (vr - mask + root) % p
            recvs: list[Msg] = [(out, parent)] + [(v, parent) for v in pieces(inp, m, vr + 1, min(vr + mask, p),
                                                                               root, p)]  # fmt: skip
            exchange(ctx, recvs=recvs)
            break
        mask <<= 1
    mask >>= 1
    while mask > 0:
        child = vr + mask
        if child < p:
            peer = (child + root) % p
            rest = pieces(inp, m, child + 1, min(child + mask, p), root, p)  # the partition the child receives
            sends: list[Msg] = [(block(inp, m, peer), peer)] + [(v, peer) for v in rest]
            exchange(ctx, sends=sends)
        mask >>= 1


#: Algorithm name -> implementation; ``collectives.registry`` collects these (``builtin`` is added there).
ALGORITHMS = {"linear": linear, "tree": tree}


# --- builtin: torch.distributed.scatter with a list of p views of ``input`` on the root. Gloo ``gloo::scatter``:
# the root posts every send at once, then waits for all (gloo/scatter.cc); NCCL: grouped ncclSend/ncclRecv
# (ncclScatter from NCCL 2.28)


def _check_builtin(output: torch.Tensor, input: torch.Tensor, src: int, group=None) -> object:  # noqa: ANN001
    return validate.pair_args("scatter", output, input, group, root=src)


def _torch_scatter(output: torch.Tensor, input: torch.Tensor, src: int, group=None) -> None:  # noqa: ANN001
    """torch.distributed.scatter of ``input``'s p blocks (a list of views, on ``src`` only) into ``output``."""
    m = output.numel()
    p = dist.get_world_size(group)
    flat = input.view(-1)
    blocks = [flat.narrow(0, i * m, m) for i in range(p)] if dist.get_rank() == src else None
    dist.scatter(output.view(-1), blocks, src=src, group=group)


BUILTIN = Builtin(check=_check_builtin, call=_torch_scatter)


class _Harness(Harness):
    """``main`` is the input (S, read on the root only), ``other`` this rank's block (a view of ``main`` in
    place)."""

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return bind(fn, other, main, root)

    def prepare(self, main: T, other: Other, data: Data) -> None:
        data.sentinel(other)  # in place, ``other`` is a block of ``main``: the root's fill below overwrites it
        data.fill(main) if data.rank == data.root else data.sentinel(main)

    def count_wrong(self, main: T, other: Other, data: Data) -> int:
        m = other.numel()
        return data.wrong(other, data.values(main.dtype, data.root, data.rank * m, m))


HARNESS = _Harness()
