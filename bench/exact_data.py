"""Seeded exact data, sentinels and exact references (docs/protocol.md, Buffers and data).

Rank r's element i is an integer from a closed form, ((A*i + B*r + seed) mod m) + lo, with m chosen so that
every partial result of the reduction stays within the dtype's exact-integer range. Then every ring or
tree order gives bit-identical results, and each rank computes the reference without communication.
Outputs are pre-filled with a sentinel outside the data range (NaN for floats) to catch unwritten regions.
"""

from __future__ import annotations

import torch

_A, _B = 131, 7
# Largest |result| each dtype holds exactly, kept one below the extreme so the sentinel is never a result.
EXACT_BOUND: dict[torch.dtype, int] = {
    torch.float16: 2048,
    torch.bfloat16: 256,
    torch.float32: 1 << 24,
    torch.float64: 1 << 53,
    torch.int8: 126,
    torch.uint8: 254,
    torch.int32: (1 << 31) - 2,
    torch.int64: (1 << 62),
}
_VALUE_CAP = 1000  # keep data small even where the dtype allows more (readable failures)


def torch_dtype(name: str) -> torch.dtype:
    """``float32`` -> ``torch.float32`` (TypeError for a name torch lacks)."""
    dt = getattr(torch, name, None)
    if not isinstance(dt, torch.dtype):
        raise TypeError(f"unknown dtype {name!r}")
    return dt


def torch_op(name: str) -> torch.distributed.ReduceOp:
    from torch.distributed import ReduceOp

    return {
        "sum": ReduceOp.SUM,
        "prod": ReduceOp.PRODUCT,
        "min": ReduceOp.MIN,
        "max": ReduceOp.MAX,
        "avg": ReduceOp.AVG,
        "none": ReduceOp.SUM,
    }[name]


def sentinel(dtype: torch.dtype) -> float | int:
    """A value never produced by the data or any exact reduction of it."""
    if dtype.is_floating_point:
        return float("nan")
    return 255 if dtype == torch.uint8 else int(torch.iinfo(dtype).min)


def _half_range(dtype: torch.dtype, op: str, p: int) -> int:
    bound = EXACT_BOUND[dtype]
    if op in ("sum", "avg"):
        return min(bound // max(p, 1), _VALUE_CAP)
    return min(bound, _VALUE_CAP)


def rank_values(dtype: torch.dtype, op: str, p: int, rank: int, start: int, n: int, seed: int, device: str):
    """Rank ``rank``'s data for elements [start, start + n) as int64 (prod data may be -1/1/2)."""
    i = torch.arange(start, start + n, dtype=torch.int64, device=device)
    signed = dtype != torch.uint8
    if op == "prod":
        # |product| <= 2: a single 2 per element (on rank i % p, every third element), signs from a pattern.
        v = torch.where((i % 3 == 0) & ((i + rank) % max(p, 1) == 0), 2, 1)
        if signed:
            v = torch.where((i * 7 + rank) % 5 == 0, -v, v)
        return v
    half = _half_range(dtype, op, p)
    if half < 1:  # more ranks than exact integers: exactly one rank contributes a 1 per element
        return torch.where((i + rank) % p == 0, 1, 0)
    if signed:
        m, lo = 2 * half + 1, -half
    else:
        m, lo = half + 1, 0
    return (i * _A + rank * _B + seed) % m + lo


def fill(t: torch.Tensor, op: str, p: int, rank: int, start: int, seed: int) -> None:
    """Fill ``t`` with rank ``rank``'s data for elements [start, start + numel)."""
    if t.numel():
        t.copy_(rank_values(t.dtype, op, p, rank, start, t.numel(), seed, str(t.device)))


def reduced(dtype: torch.dtype, op: str, p: int, start: int, n: int, seed: int, device: str) -> torch.Tensor:
    """Exact reduction over all p ranks of elements [start, start + n), cast to ``dtype``."""
    acc_dtype = torch.float64 if dtype.is_floating_point else torch.int64
    acc = rank_values(dtype, op, p, 0, start, n, seed, device).to(acc_dtype)
    for r in range(1, p):
        x = rank_values(dtype, op, p, r, start, n, seed, device).to(acc_dtype)
        if op in ("sum", "avg"):
            acc += x
        elif op == "prod":
            acc *= x
        elif op == "min":
            torch.minimum(acc, x, out=acc)
        elif op == "max":
            torch.maximum(acc, x, out=acc)
        else:
            raise ValueError(f"unknown op {op!r}")
    if op == "avg":
        acc = acc / p
    return acc.to(dtype)


def count_wrong(result: torch.Tensor, expected: torch.Tensor, op: str, p: int) -> int:
    """Elements of ``result`` that differ from ``expected`` (a few ulp allowed only for AVG with p not a power of 2)."""
    if result.numel() == 0:
        return 0
    if op == "avg" and p & (p - 1):
        eps = torch.finfo(result.dtype).eps
        ok = torch.isclose(result.double(), expected.double(), rtol=4 * eps, atol=4 * eps)
    else:
        ok = result == expected
    return int((~ok).sum().item())
