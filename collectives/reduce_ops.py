"""Local reduction kernels shared by the reducing algorithms (the gamma term)."""

from __future__ import annotations

import torch
from torch.distributed import ReduceOp

#: Ops the hand-written algorithms implement (all commutative and associative).
SUPPORTED_OPS = (ReduceOp.SUM, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX, ReduceOp.AVG)


def combine(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, op: ReduceOp) -> None:
    """out = a (op) b elementwise, written in place (``out`` may alias ``a``); AVG sums here."""
    if op == ReduceOp.SUM or op == ReduceOp.AVG:
        torch.add(a, b, out=out)
    elif op == ReduceOp.PRODUCT:
        torch.mul(a, b, out=out)
    elif op == ReduceOp.MIN:
        torch.minimum(a, b, out=out)
    elif op == ReduceOp.MAX:
        torch.maximum(a, b, out=out)
    else:  # validate.check_op rejects these before any communication
        raise ValueError(f"unsupported reduce op {op}")


def finish(t: torch.Tensor, op: ReduceOp, p: int) -> None:
    """Final step of a reduction: AVG divides the sum by p (in place); other ops do nothing."""
    if op == ReduceOp.AVG and p > 1 and t.numel() > 0:
        t.div_(p)
