"""Statistics of per-iteration samples: percentiles, the noise flag and bandwidths."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

NOISY_SPREAD = 1.5  # p90/p10 above this is noisy
NOISY_BLOCK = 0.20  # |block - median| / median above this is noisy


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values, q in [0, 100]."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class SampleStats:
    """Summary of per-iteration times in microseconds (max over ranks already taken)."""

    median_us: float
    p10_us: float
    p25_us: float
    p75_us: float
    p90_us: float
    min_us: float
    max_us: float
    block_us: float
    noisy: bool
    noise_reason: str | None


def summarize(samples_us: Sequence[float], block_us: float) -> SampleStats:
    """Percentiles of ``samples_us`` and the noise verdict against the block time."""
    s = sorted(samples_us)
    med = percentile(s, 50)
    p10, p90 = percentile(s, 10), percentile(s, 90)
    reasons = []
    if p10 > 0 and p90 / p10 > NOISY_SPREAD:
        reasons.append(f"p90/p10 = {p90 / p10:.2f}")
    if med > 0 and abs(block_us - med) / med > NOISY_BLOCK:
        reasons.append(f"block/median = {block_us / med:.2f}")
    return SampleStats(
        median_us=med,
        p10_us=p10,
        p25_us=percentile(s, 25),
        p75_us=percentile(s, 75),
        p90_us=p90,
        min_us=s[0] if s else math.nan,
        max_us=s[-1] if s else math.nan,
        block_us=block_us,
        noisy=bool(reasons),
        noise_reason="; ".join(reasons) or None,
    )


def algbw_gbps(nbytes: int, time_us: float) -> float:
    """nccl-tests' algorithm bandwidth S / t in GB/s (1e9 B/s); 0 for a zero time."""
    return nbytes / (time_us * 1e3) if time_us > 0 else 0.0
