"""Gather algorithms on point-to-point ops (tensor semantics: each rank's block of S/p into S on ``dst``).

``gather(output, input, dst, group)``: ``output`` holds S (p blocks of ``input.numel()`` elements); on ``dst``
block i ends as rank i's ``input``. Other ranks' ``output`` is scratch (the tree collects subtrees in it), as
in nccl-tests, where every rank allocates both buffers. In place (nccl-tests' layout), ``input`` is block
``rank`` of ``output``. ``input`` is never written.

- ``linear``: the root receives block i from rank i, one rank after the other (Open MPI ``basic_linear``):
  p - 1 steps, (p - 1)/p n bytes through the root's port.
- ``tree``: binomial tree (MPICH ``MPIR_Gather_intra_binomial``), scatter's tree run backwards: ceil(lg p)
  steps; relative rank v receives the blocks of [v + 2^k, v + 2^(k+1)) from v + 2^k for k = 0, 1, ... until
  bit k of v is set, then sends [v, v + 2^k) to v - 2^k. Blocks are kept at their absolute place in ``output``
  (a wrapped range is two messages in one step).

Costs: ``collectives.costs`` (gather/linear, gather/tree).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

from collectives import validate
from collectives.batched_p2p import Ctx, Msg, exchange
from collectives.builtin import Builtin
from collectives.harness import Data, Fn, Harness, Other, T, bind
from collectives.scatter import block, pieces, start_rooted


def _start(output: torch.Tensor, input: torch.Tensor, dst: int,
           group: dist.ProcessGroup | None) -> tuple[Ctx, int, torch.Tensor, torch.Tensor, int] | None:  # fmt: skip
    return start_rooted("gather", output, input, dst, group, gathering=True)


def linear(output: torch.Tensor, input: torch.Tensor, dst: int, group: dist.ProcessGroup | None = None) -> None:
    """Every other rank sends the root its block; the root receives them one after the other."""
    started = _start(output, input, dst, group)
    if started is None:
        return
    ctx, root, out, inp, m = started
    p = ctx.size
    if ctx.rank != root:
        exchange(ctx, sends=[(inp, root)])
        return
    for v in range(1, p):
        r = (v + root) % p
        exchange(ctx, recvs=[(block(out, m, r), r)])


def tree(output: torch.Tensor, input: torch.Tensor, dst: int, group: dist.ProcessGroup | None = None) -> None:
    """Binomial-tree gather; interior ranks collect their subtree's blocks in their ``output``."""
    started = _start(output, input, dst, group)
    if started is None:
        return
    ctx, root, out, inp, m = started
    p = ctx.size
    vr = (ctx.rank - root) % p
    mask = 1
    while mask < p:
        if vr & mask:  # send own block (from input) and the subtree's blocks [vr + 1, vr + mask)
            parent = (vr - mask + root) % p
            rest = pieces(out, m, vr + 1, min(vr + mask, p), root, p)
            sends: list[Msg] = [(inp, parent)] + [(v, parent) for v in rest]
            exchange(ctx, sends=sends)
            return
        child = vr + mask
        if child < p:
            peer = (child + root) % p
            rest = pieces(out, m, child + 1, min(child + mask, p), root, p)  # the partition the child sends
            recvs: list[Msg] = [(block(out, m, peer), peer)] + [(v, peer) for v in rest]
            exchange(ctx, recvs=recvs)
        mask <<= 1


#: Algorithm name -> implementation; ``collectives.registry`` collects these (``builtin`` is added there).
ALGORITHMS = {"linear": linear, "tree": tree}


# --- builtin: torch.distributed.gather into a list of p views of ``output`` on the root. Gloo ``gloo::gather``:
# the root posts every receive at once, then waits for all (gloo/gather.cc); NCCL: grouped ncclSend/ncclRecv
# (ncclGather from NCCL 2.28)


def _check_builtin(output: torch.Tensor, input: torch.Tensor, dst: int, group=None) -> object:  # noqa: ANN001
    return validate.pair_args("gather", output, input, group, root=dst)


def _torch_gather(output: torch.Tensor, input: torch.Tensor, dst: int, group=None) -> None:  # noqa: ANN001
    """torch.distributed.gather of ``input`` into ``output``'s p blocks (a list of views, on ``dst`` only)."""
    m = input.numel()
    p = dist.get_world_size(group)
    flat = output.view(-1)
    blocks = [flat.narrow(0, i * m, m) for i in range(p)] if dist.get_rank() == dst else None
    dist.gather(input.view(-1), blocks, dst=dst, group=group)


BUILTIN = Builtin(check=_check_builtin, call=_torch_gather)


class _Harness(Harness):
    """``main`` is the gathered output (the result on the root only), ``other`` this rank's block (a view of
    ``main`` in place)."""

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return bind(fn, main, other, root)

    def prepare(self, main: T, other: Other, data: Data) -> None:
        data.sentinel(main)  # in place, ``other`` is this rank's block of ``main``: filled after the sentinel
        data.fill(other)

    def count_wrong(self, main: T, other: Other, data: Data) -> int:
        if data.rank != data.root:
            return 0  # non-root outputs are scratch
        parts = [data.values(main.dtype, k, 0, other.numel()) for k in range(data.p)]
        return data.wrong(main, torch.cat(parts))


HARNESS = _Harness()
