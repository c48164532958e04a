"""Exact data: every reduction order gives the reference bit for bit; sentinels are never results."""

from __future__ import annotations

import itertools

import pytest
import torch

from bench import exact_data as data


def _sequential(dtype: torch.dtype, op: str, xs: list[torch.Tensor]) -> torch.Tensor:
    acc = xs[0].clone()
    for x in xs[1:]:
        if op in ("sum", "avg"):
            acc = acc + x
        elif op == "prod":
            acc = acc * x
        elif op == "min":
            acc = torch.minimum(acc, x)
        else:
            acc = torch.maximum(acc, x)
    return acc / len(xs) if op == "avg" else acc


@pytest.mark.parametrize("p", [2, 3, 4, 7])
@pytest.mark.parametrize("op", ["sum", "prod", "min", "max"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.int8, torch.uint8, torch.int64])
def test_any_order_in_dtype_equals_reference(dtype: torch.dtype, op: str, p: int) -> None:
    n = 5000
    xs = [data.rank_values(dtype, op, p, r, 0, n, seed=3, device="cpu").to(dtype) for r in range(p)]
    ref = data.reduced(dtype, op, p, 0, n, seed=3, device="cpu")
    for order in itertools.islice(itertools.permutations(range(p)), 6):
        got = _sequential(dtype, op, [xs[r] for r in order])  # every partial result in the dtype itself
        assert torch.equal(got, ref), (order, dtype, op)
    assert data.count_wrong(ref, ref, op, p) == 0
    assert xs[0].abs().max().item() > 0  # data is not trivially zero
    sentinel = torch.full((1,), data.sentinel(dtype), dtype=dtype)
    assert not torch.isin(sentinel, ref).any() if not dtype.is_floating_point else torch.isnan(sentinel).all()


def test_avg_power_of_two_exact_and_tolerant_otherwise() -> None:
    for p in (2, 4, 3):
        xs = [data.rank_values(torch.float32, "avg", p, r, 0, 1000, 0, "cpu").to(torch.float32) for r in range(p)]
        ref = data.reduced(torch.float32, "avg", p, 0, 1000, 0, "cpu")
        got = _sequential(torch.float32, "avg", xs)
        assert data.count_wrong(got, ref, "avg", p) == 0
        if p in (2, 4):
            assert torch.equal(got, ref)


def test_count_wrong_counts_corruption_and_sentinel() -> None:
    ref = data.reduced(torch.float32, "sum", 3, 0, 100, 0, "cpu")
    bad = ref.clone()
    bad[5] += 1
    bad[7] = data.sentinel(torch.float32)
    assert data.count_wrong(bad, ref, "sum", 3) == 2


def test_large_p_falls_back_to_single_one() -> None:
    ref = data.reduced(torch.bfloat16, "sum", 300, 0, 64, 0, "cpu")
    assert torch.equal(ref, torch.ones(64, dtype=torch.bfloat16))
