"""The backend's own collectives (NCCL or Gloo) behind collbench's signatures.

PLACEHOLDER: minimal wrappers so the harness can be built in parallel; the collectives
work replaces this module with validated versions.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed import ReduceOp


def broadcast(tensor: torch.Tensor, src: int, group: dist.ProcessGroup | None = None) -> None:
    dist.broadcast(tensor, src, group=group)


def reduce(tensor: torch.Tensor, dst: int, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None) -> None:
    dist.reduce(tensor, dst, op=op, group=group)


def all_reduce(tensor: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None) -> None:
    dist.all_reduce(tensor, op=op, group=group)


def all_gather(output: torch.Tensor, input: torch.Tensor, group: dist.ProcessGroup | None = None) -> None:
    dist.all_gather_into_tensor(output, input, group=group)


def reduce_scatter(
    output: torch.Tensor, input: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None
) -> None:
    dist.reduce_scatter_tensor(output, input, op=op, group=group)
