"""Block partitions shared by the algorithms: p blocks that differ by at most one element."""

from __future__ import annotations

import torch


def block_starts(n: int, p: int) -> list[int]:
    """Start offsets of p near-equal blocks of n elements, plus n at the end (p + 1 entries)."""
    q, r = divmod(n, p)
    return [i * q + min(i, r) for i in range(p + 1)]


def span(t: torch.Tensor, starts: list[int], lo: int, hi: int) -> torch.Tensor:
    """View of blocks [lo, hi) of the flat tensor t (no copy)."""
    return t.narrow(0, starts[lo], starts[hi] - starts[lo])


def segment_elems(segment_bytes: int, element_size: int) -> int:
    """Elements per pipeline segment (at least one)."""
    if segment_bytes <= 0:
        raise ValueError(f"segment_bytes must be positive, got {segment_bytes}")
    return max(1, segment_bytes // element_size)


def fold_map(p: int) -> tuple[int, int]:
    """(p', rem) for the standard fold of non-power-of-two p: p' = 2^floor(lg p), rem = p - p'."""
    q = 1 << (p.bit_length() - 1)
    return q, p - q


def fold_newrank(rank: int, rem: int) -> int:
    """MPICH fold: ranks < 2*rem pair up (even -> odd); returns -1 for the even ranks that sit out."""
    if rank < 2 * rem:
        return -1 if rank % 2 == 0 else rank // 2
    return rank - rem


def fold_oldrank(newrank: int, rem: int) -> int:
    """Inverse of fold_newrank."""
    return 2 * newrank + 1 if newrank < rem else newrank + rem


def chain_segment_elems(segment_bytes: int, element_size: int, p: int, numel: int) -> int:
    """Segment length of a pipelined chain: ``segment_bytes`` worth, or the whole buffer when p <= 2.

    T = (p - 2 + k)(alpha + n beta / k) is minimised by k = 1 when p = 2 (a chain of one hop has nothing
    to overlap), so segmenting there only adds per-message latency (docs/theory.md, Pipelined chain).
    """
    seg = segment_elems(segment_bytes, element_size)
    return max(seg, numel, 1) if p <= 2 else seg
