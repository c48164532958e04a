"""collectives.scratch: CPU receive buffers kept per thread and dtype, lent one call at a time."""

from __future__ import annotations

import threading

import pytest
import torch

from collectives import scratch as scratch_mod
from collectives.scratch import CAP_BYTES, MIN_BYTES, scratch

N = MIN_BYTES // 4  # the smallest request of 4-byte elements that is kept


def _ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def test_sequential_calls_share_one_buffer_that_grows() -> None:
    like = torch.zeros(1)
    with scratch(2 * N, like) as a:
        first = _ptr(a)
        assert a.numel() == 2 * N and a.dtype == like.dtype
    with scratch(N, like) as b:
        assert _ptr(b) == first  # the kept buffer, not a new one
    with scratch(5 * N, like) as c:
        grown = _ptr(c)
        assert c.numel() == 5 * N
    with scratch(4 * N, like) as d:
        assert _ptr(d) == grown


def test_nested_and_other_dtypes_get_their_own() -> None:
    f32, f64 = torch.zeros(1), torch.zeros(1, dtype=torch.float64)
    with scratch(N, f32) as outer:
        with scratch(N, f32) as inner:  # an algorithm built on another: never the same memory
            assert _ptr(inner) != _ptr(outer)
        with scratch(N, f64) as other:
            assert other.dtype == torch.float64 and _ptr(other) != _ptr(outer)


def test_a_failed_call_gives_its_buffer_up() -> None:
    like = torch.zeros(1, dtype=torch.int16)
    with scratch(N * 2, like):
        pass
    assert torch.int16 in scratch_mod._KEPT.bufs
    with pytest.raises(RuntimeError), scratch(N * 2, like):
        raise RuntimeError("peer died mid-step")  # a posted receive may still land in it
    assert torch.int16 not in scratch_mod._KEPT.bufs


def test_small_large_and_non_cpu_requests_are_not_kept() -> None:
    like = torch.zeros(1, dtype=torch.int8)
    with scratch(CAP_BYTES + 1, like) as big:
        assert big.numel() == CAP_BYTES + 1
    with scratch(MIN_BYTES - 1, like) as small:
        assert small.numel() == MIN_BYTES - 1
    assert torch.int8 not in scratch_mod._KEPT.bufs
    meta = torch.zeros(1, dtype=torch.float16, device="meta")
    with scratch(10, meta) as m:
        assert m.device.type == "meta"
    assert torch.float16 not in scratch_mod._KEPT.bufs


def test_threads_never_share_a_buffer() -> None:
    like = torch.zeros(1, dtype=torch.int32)
    ptrs: dict[str, int] = {}
    with scratch(N, like) as mine:
        ptrs["main"] = _ptr(mine)

        def other() -> None:
            with scratch(N, like) as theirs:
                ptrs["thread"] = _ptr(theirs)

        th = threading.Thread(target=other)
        th.start()
        th.join()
    assert ptrs["thread"] != ptrs["main"]
