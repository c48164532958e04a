"""The backend's own collectives behind collbench's signatures, with the same validation.

What the backends do underneath (torch 2.x ``ProcessGroupGloo`` / ``ProcessGroupNCCL``; from our
reading of the sources, not re-verified against the torch 2.13 C++ in this project):

- broadcast: Gloo ``gloo::broadcast``; NCCL ``ncclBroadcast`` (ring, pipelined).
- reduce: Gloo ``gloo::reduce``; NCCL ``ncclReduce`` (ring).
- all_reduce: Gloo ``gloo::allreduce`` (ring or bcube, Gloo's choice); NCCL ``ncclAllReduce``
  (ring, double binary tree, NVLS or CollNet, chosen by NCCL's tuner per size and topology).
- all_gather: ``all_gather_into_tensor``; Gloo ``gloo::allgather`` into the flat output;
  NCCL ``ncclAllGather`` (ring).
- reduce_scatter: ``reduce_scatter_tensor``; NCCL ``ncclReduceScatter`` (ring).  Gloo has no flat
  reduce-scatter primitive: torch implements ``reduce_scatter_tensor`` on Gloo through a full
  all-reduce of (a copy of) the input and a copy of this rank's chunk.  Consistent with that,
  scripts/bench_collectives.py measures builtin reduce_scatter at 16 MiB, 2 processes, at about
  1.5x the time of builtin all_reduce of the same buffer.

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
    """torch.distributed.all_gather_into_tensor (all_gather_single in newer torch)."""
    if validate.all_gather_args(output, input, group) is None:
        return
    # torch >= 2.13 renames all_gather_into_tensor (now deprecated) to all_gather_single; same operation
    getattr(dist, "all_gather_single", dist.all_gather_into_tensor)(output, input, group=group)


def reduce_scatter(
    output: torch.Tensor, input: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None
) -> None:
    """torch.distributed.reduce_scatter_tensor (reduce_scatter_single in newer torch)."""
    if validate.reduce_scatter_args(output, input, op, group) is None:
        return
    _check_backend_op(op, group)
    getattr(dist, "reduce_scatter_single", dist.reduce_scatter_tensor)(output, input, op=op, group=group)
