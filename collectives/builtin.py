"""The backend's own collectives behind collbench's signatures, with the same validation.

What the backends do underneath (torch 2.x ``ProcessGroupGloo`` / ``ProcessGroupNCCL``):

- broadcast: Gloo ``gloo::broadcast`` (a binomial tree), NCCL ``ncclBroadcast`` (ring / tree
  chosen by NCCL's tuner).
- reduce: Gloo ``gloo::reduce``; NCCL ``ncclReduce`` (ring).
- all_reduce: Gloo ``gloo::allreduce`` (ring-style reduce-scatter + all-gather, or bcube, chosen
  by Gloo), NCCL ``ncclAllReduce`` (ring, double binary tree, NVLS or CollNet by size and topology).
- all_gather: ``all_gather_into_tensor``; Gloo ``gloo::allgather`` into the flat output (a ring);
  NCCL ``ncclAllGather``.
- reduce_scatter: ``reduce_scatter_tensor``; NCCL ``ncclReduceScatter`` (ring).  Gloo has no
  native flat reduce-scatter: torch's ``ProcessGroupGloo`` implements ``reduce_scatter_tensor``
  by all-reducing a copy of the whole input and copying out this rank's chunk, i.e. it moves
  about 2(p-1)/p n bytes instead of (p-1)/p n (see the bench figures in the collectives report).

Differences from the hand-written algorithms, checked before any communication:
- Gloo has no ReduceOp.AVG: ``ValueError`` (the hand-written algorithms do support AVG).
- Gloo reduces a fixed set of dtypes (the eight in ``validate.REDUCIBLE_DTYPES``); anything else
  is a ``TypeError`` from validation, as for every algorithm.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed import ReduceOp

from collectives import validate


def _backend(group: dist.ProcessGroup | None) -> str:
    return str(dist.get_backend(group)).lower()


def _check_backend_op(op: ReduceOp, group: dist.ProcessGroup | None) -> None:
    if op == ReduceOp.AVG and "gloo" in _backend(group):
        raise ValueError("builtin: the gloo backend does not support ReduceOp.AVG; use SUM or a hand-written algorithm")


def broadcast(tensor: torch.Tensor, src: int, group: dist.ProcessGroup | None = None) -> None:
    """torch.distributed.broadcast."""
    if validate.broadcast_args(tensor, src, group) is None:
        return
    dist.broadcast(tensor, src, group=group)


def reduce(tensor: torch.Tensor, dst: int, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None) -> None:
    """torch.distributed.reduce."""
    if validate.reduce_args(tensor, dst, op, group) is None:
        return
    _check_backend_op(op, group)
    dist.reduce(tensor, dst, op=op, group=group)


def all_reduce(tensor: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None) -> None:
    """torch.distributed.all_reduce."""
    if validate.all_reduce_args(tensor, op, group) is None:
        return
    _check_backend_op(op, group)
    dist.all_reduce(tensor, op=op, group=group)


def all_gather(output: torch.Tensor, input: torch.Tensor, group: dist.ProcessGroup | None = None) -> None:
    """torch.distributed.all_gather_into_tensor."""
    if validate.all_gather_args(output, input, group) is None:
        return
    dist.all_gather_into_tensor(output, input, group=group)


def reduce_scatter(
    output: torch.Tensor, input: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None
) -> None:
    """torch.distributed.reduce_scatter_tensor."""
    if validate.reduce_scatter_args(output, input, op, group) is None:
        return
    _check_backend_op(op, group)
    dist.reduce_scatter_tensor(output, input, op=op, group=group)
