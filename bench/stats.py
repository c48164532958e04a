"""Statistics of per-iteration samples: percentiles, the robust estimate with its confidence interval, the
slow-mode (interference) detector, the stopping rule of adaptive sampling and bandwidths. Standard library
only: ``analysis`` (compare, fits) uses the same estimate (docs/protocol.md, "Estimate").

Why the fast-mode median. On a shared host the per-iteration times of one point are often a mixture: most
calls take the algorithm's time, some wait one or more scheduler ticks (4 ms on the 2-core VM) or for another
job. The median of such a mixture jumps to the slow mode as soon as half of the calls are hit, so two runs of
the same code disagree by 10x at single sizes. A low quantile (p10) does not jump, but needs many samples for
a tight interval and is biased low when there is no interference. So: split the samples into two modes where
the data show two (the split of log times that explains most of their variance, accepted only when it explains
at least ``MODE_SEPARATION`` of it and the slow mode's median is ``MODE_RATIO`` times the fast one's), and
report the median of the fast mode, with "interference: X % of samples in a slow mode"; with one mode, the
median of all samples. The interval is the distribution-free order-statistic 95 % CI of that median.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

NOISY_SPREAD = 1.5  # p90/p10 above this is a spread worth a note (v1's noise rule)
NOISY_BLOCK = 0.20  # |block - median| / median above this likewise
MODE_SEPARATION = 0.80  # between-mode share of the variance of log times; one normal mode gives about 0.64
MODE_RATIO = 1.5  # slow-mode median / fast-mode median at least this
MIN_SLOW = 2  # samples in the slow mode at least this
MIN_MODE_SAMPLES = 8  # fewer samples: no mode split
MIN_CI_SAMPLES = 10  # an estimate from fewer samples never counts as meeting the CI target
Z95 = 1.959964  # two-sided 95 % normal quantile
DEFAULT_TARGET_CI = 0.05  # half-width of the 95 % CI / estimate


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values, q in [0, 100]."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def median_ci(sorted_values: Sequence[float]) -> tuple[float, float]:
    """Distribution-free 95 % CI of the median of sorted values: the order statistics at n/2 -+ 1.96 sqrt(n)/2
    (normal approximation of the binomial); the extremes when n is too small to say more."""
    n = len(sorted_values)
    if n == 0:
        return math.nan, math.nan
    half = Z95 * math.sqrt(n) / 2.0
    lo = max(int(math.floor(n / 2.0 - half)), 0)
    hi = min(int(math.ceil(n / 2.0 + half)), n - 1)
    return sorted_values[lo], sorted_values[hi]


def slow_mode_start(sorted_values: Sequence[float]) -> int | None:
    """Index of the first sample of a slow mode in sorted positive values, or None when there is one mode.

    Otsu's split of the log times (the cut maximising the between-group variance), accepted when it
    explains >= MODE_SEPARATION of the variance, each group has >= MIN_SLOW samples and the slow group's
    median is >= MODE_RATIO x the fast one's. A slow majority is still a slow mode: the fast mode is the
    algorithm's time, the rest waited for something else (its share is reported).
    """
    n = len(sorted_values)
    if n < MIN_MODE_SAMPLES or sorted_values[0] <= 0:
        return None
    logs = [math.log(v) for v in sorted_values]
    total = sum(logs)
    mean = total / n
    ss = sum((x - mean) ** 2 for x in logs)
    if ss <= 0:
        return None
    best, best_k, left = -1.0, None, 0.0
    for k in range(1, n):  # fast = [:k], slow = [k:]
        left += logs[k - 1]
        if k < MIN_SLOW or n - k < MIN_SLOW:
            continue
        m1, m2 = left / k, (total - left) / (n - k)
        between = k * (n - k) / n * (m1 - m2) ** 2
        if between > best:
            best, best_k = between, k
    if best_k is None or best / ss < MODE_SEPARATION:
        return None
    fast, slow = sorted_values[:best_k], sorted_values[best_k:]
    if percentile(slow, 50) < MODE_RATIO * percentile(fast, 50):
        return None
    return best_k


@dataclass(frozen=True)
class Estimate:
    """The reported time of one point: the fast-mode median (or the median), its 95 % CI, the slow share."""

    time_us: float
    ci_lo_us: float
    ci_hi_us: float
    n: int  # samples taken
    kept: int  # samples in the mode the estimate comes from
    slow_fraction: float  # share of samples in a slow mode (0 with one mode)

    @property
    def rel_half_width(self) -> float:
        """Half the CI's width over the estimate (inf when undefined)."""
        if not self.time_us > 0 or math.isnan(self.ci_lo_us):
            return math.inf
        return (self.ci_hi_us - self.ci_lo_us) / 2.0 / self.time_us

    def meets(self, target: float) -> bool:
        """The CI is within +-target of the estimate, from at least MIN_CI_SAMPLES samples of its mode (two
        fast samples among twelve slow ones can agree by chance; they are not a measurement yet)."""
        return self.kept >= MIN_CI_SAMPLES and self.rel_half_width <= target

    @property
    def interference(self) -> str | None:
        """``interference: 38 % of samples in a slow mode`` when there is one."""
        if self.slow_fraction <= 0:
            return None
        return f"interference: {100 * self.slow_fraction:.0f} % of samples in a slow mode"


def fast_mode(samples_us: Sequence[float]) -> list[float]:
    """The sorted samples the estimate comes from: the fast mode, or all of them with one mode."""
    s = sorted(samples_us)
    k = slow_mode_start(s)
    return s if k is None else s[:k]


def estimate(samples_us: Sequence[float]) -> Estimate:
    """The robust estimate of ``samples_us`` (module docstring)."""
    s = sorted(samples_us)
    k = slow_mode_start(s)
    kept = s if k is None else s[:k]
    lo, hi = median_ci(kept)
    return Estimate(
        time_us=percentile(kept, 50),
        ci_lo_us=lo,
        ci_hi_us=hi,
        n=len(s),
        kept=len(kept),
        slow_fraction=0.0 if k is None else (len(s) - k) / len(s),
    )


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
    estimate: Estimate
    ci_met: bool


def summarize(samples_us: Sequence[float], block_us: float, target_ci: float = DEFAULT_TARGET_CI) -> SampleStats:
    """Percentiles, the robust estimate, whether its CI met ``target_ci`` and the noise verdict.

    A point is noisy when its estimate's CI misses the target; the reason names the interference (a slow
    mode) and the spread or block-vs-median disagreement where present, so a reader sees why.
    """
    s = sorted(samples_us)
    med = percentile(s, 50)
    p10, p90 = percentile(s, 10), percentile(s, 90)
    est = estimate(s)
    met = est.meets(target_ci)
    reasons = []
    if not met:
        reasons.append(f"95% CI +-{100 * est.rel_half_width:.0f}% > {100 * target_ci:.0f}% target")
    if est.interference:
        reasons.append(est.interference)
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
        noisy=not met,
        noise_reason="; ".join(reasons) or None,
        estimate=est,
        ci_met=met,
    )


def algbw_gbps(nbytes: int, time_us: float) -> float:
    """nccl-tests' algorithm bandwidth S / t in GB/s (1e9 B/s); 0 for a zero time."""
    return nbytes / (time_us * 1e3) if time_us > 0 else 0.0
