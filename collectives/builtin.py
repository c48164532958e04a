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

- all_to_all: ``all_to_all_single``; Gloo ``gloo::alltoall`` (equal splits) / ``gloo::alltoallv``: the own
  block copied, then every send and receive posted at once and waited for (``gloo/alltoall.cc``);
  NCCL: grouped ``ncclSend``/``ncclRecv`` to every peer.

Differences from the hand-written algorithms, checked before any communication:
- Gloo has no ReduceOp.AVG: ``ValueError`` (the hand-written algorithms do support AVG).
- Gloo reduces a fixed set of dtypes (the eight in ``validate.REDUCIBLE_DTYPES``); anything else
  is a ``TypeError`` from validation, as for every algorithm.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch.distributed import ReduceOp

from collectives import validate


def _backend(group: dist.ProcessGroup | None) -> str:
    return str(dist.get_backend(group)).lower()


def _check_backend_op(op: ReduceOp, group: dist.ProcessGroup | None) -> None:
    if op == ReduceOp.AVG and "gloo" in _backend(group):
        raise ValueError("builtin: the gloo backend does not support ReduceOp.AVG; use SUM or a hand-written algorithm")


# --- checks (raise before any communication; None = this rank is not in the group) ---------------------------


def _check_broadcast(tensor: torch.Tensor, src: int, group: dist.ProcessGroup | None = None) -> object:
    return validate.broadcast_args(tensor, src, group)


def _check_reduce(tensor: torch.Tensor, dst: int, op: ReduceOp = ReduceOp.SUM, group=None) -> object:  # noqa: ANN001
    ctx = validate.reduce_args(tensor, dst, op, group)
    if ctx is not None:
        _check_backend_op(op, group)
    return ctx


def _check_all_reduce(tensor: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group=None) -> object:  # noqa: ANN001
    ctx = validate.all_reduce_args(tensor, op, group)
    if ctx is not None:
        _check_backend_op(op, group)
    return ctx


def _check_all_gather(output: torch.Tensor, input: torch.Tensor, group=None) -> object:  # noqa: ANN001
    return validate.all_gather_args(output, input, group)


def _check_reduce_scatter(output: torch.Tensor, input: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group=None) -> object:  # noqa: ANN001,E501
    ctx = validate.reduce_scatter_args(output, input, op, group)
    if ctx is not None:
        _check_backend_op(op, group)
    return ctx


def _check_all_to_all(output: torch.Tensor, input: torch.Tensor, output_split_sizes=None, input_split_sizes=None,  # noqa: ANN001
                      group=None) -> object:  # noqa: ANN001  # fmt: skip
    return validate.all_to_all_args(output, input, output_split_sizes, input_split_sizes, group)


# --- the bare torch calls -----------------------------------------------------------------------------------


def _raw_broadcast(tensor: torch.Tensor, src: int, group: dist.ProcessGroup | None = None) -> None:
    dist.broadcast(tensor, src, group=group)


def _raw_reduce(tensor: torch.Tensor, dst: int, op: ReduceOp = ReduceOp.SUM, group=None) -> None:  # noqa: ANN001
    dist.reduce(tensor, dst, op=op, group=group)


def _raw_all_reduce(tensor: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group=None) -> None:  # noqa: ANN001
    dist.all_reduce(tensor, op=op, group=group)


def _raw_all_gather(output: torch.Tensor, input: torch.Tensor, group=None) -> None:  # noqa: ANN001
    # torch >= 2.13 renames all_gather_into_tensor (now deprecated) to all_gather_single; same operation
    getattr(dist, "all_gather_single", dist.all_gather_into_tensor)(output, input, group=group)


def _raw_reduce_scatter(output: torch.Tensor, input: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group=None) -> None:  # noqa: ANN001,E501
    getattr(dist, "reduce_scatter_single", dist.reduce_scatter_tensor)(output, input, op=op, group=group)


def _raw_all_to_all(output: torch.Tensor, input: torch.Tensor, output_split_sizes=None, input_split_sizes=None,  # noqa: ANN001
                    group=None) -> None:  # noqa: ANN001  # fmt: skip
    dist.all_to_all_single(output, input, output_split_sizes, input_split_sizes, group=group)


# --- the public, checked functions ------------------------------------------------------------------------


def broadcast(tensor: torch.Tensor, src: int, group: dist.ProcessGroup | None = None) -> None:
    """torch.distributed.broadcast."""
    if _check_broadcast(tensor, src, group) is not None:
        _raw_broadcast(tensor, src, group)


def reduce(tensor: torch.Tensor, dst: int, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None) -> None:
    """torch.distributed.reduce."""
    if _check_reduce(tensor, dst, op, group) is not None:
        _raw_reduce(tensor, dst, op, group)


def all_reduce(tensor: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None) -> None:
    """torch.distributed.all_reduce."""
    if _check_all_reduce(tensor, op, group) is not None:
        _raw_all_reduce(tensor, op, group)


def all_gather(output: torch.Tensor, input: torch.Tensor, group: dist.ProcessGroup | None = None) -> None:
    """torch.distributed.all_gather_into_tensor (all_gather_single in newer torch)."""
    if _check_all_gather(output, input, group) is not None:
        _raw_all_gather(output, input, group)


def reduce_scatter(
    output: torch.Tensor, input: torch.Tensor, op: ReduceOp = ReduceOp.SUM, group: dist.ProcessGroup | None = None
) -> None:
    """torch.distributed.reduce_scatter_tensor (reduce_scatter_single in newer torch)."""
    if _check_reduce_scatter(output, input, op, group) is not None:
        _raw_reduce_scatter(output, input, op, group)


def all_to_all(
    output: torch.Tensor,
    input: torch.Tensor,
    output_split_sizes: list[int] | None = None,
    input_split_sizes: list[int] | None = None,
    group: dist.ProcessGroup | None = None,
) -> None:
    """torch.distributed.all_to_all_single."""
    if _check_all_to_all(output, input, output_split_sizes, input_split_sizes, group) is not None:
        _raw_all_to_all(output, input, output_split_sizes, input_split_sizes, group)


_PARTS: dict[Callable[..., None], tuple[Callable[..., object], Callable[..., None]]] = {
    broadcast: (_check_broadcast, _raw_broadcast),
    reduce: (_check_reduce, _raw_reduce),
    all_reduce: (_check_all_reduce, _raw_all_reduce),
    all_gather: (_check_all_gather, _raw_all_gather),
    reduce_scatter: (_check_reduce_scatter, _raw_reduce_scatter),
    all_to_all: (_check_all_to_all, _raw_all_to_all),
}


def bind(fn: Callable[..., None], *args: object, **kwargs: object) -> Callable[[], None]:
    """A zero-argument call of ``fn(*args, **kwargs)`` for timing loops.

    For the builtin collectives the arguments are checked here, once (raising as the call would), and the
    returned call goes straight to torch: per-call validation costs a few µs, 5-15 % of a small gloo
    all_reduce, which the builtin baseline must not pay. Any other ``fn`` is bound as it is.
    """
    parts = _PARTS.get(fn)
    if parts is None:
        return functools.partial(fn, *args, **kwargs)
    check, raw = parts
    if check(*args, **kwargs) is None:  # not a member of the group: nothing to do
        return lambda: None
    return functools.partial(raw, *args, **kwargs)
