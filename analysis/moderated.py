"""Empirical-Bayes moderation of per-point variances: limma's ``squeezeVar`` with a trend (Smyth 2004).

With three to five runs per side, a point's own spread between runs is a noisy figure (2-8 degrees of freedom),
so ``collbench compare`` borrows strength from the other points of the comparison. How much it borrows, and
from which points, is estimated from the data instead of fixed:

- the prior spread is a **trend over the point's time** (the mean of the bias-corrected log variances of its
  nearest neighbours in log ``time_us``), because on every host measured so far the spread depends on it: a
  launch-bound 20 us call moves by 5-20 % between runs while a 500 us transfer moves by 0.1 % (two H200 runs
  of the same code, results/README.md), and a prior taken from the median of all points would lend the quiet
  points the noisy points' spread;
- the prior's weight ``d0`` (in degrees of freedom) comes from how much the log variances scatter about that
  trend beyond what sampling explains (``fit_f_dist``): similar spreads give a large d0 (strong moderation),
  spreads that differ for no visible reason give a small one (each point mostly on its own).

The posterior variance is (d0 s0^2 + d s^2) / (d0 + d) on d0 + d degrees of freedom (Smyth 2004, eq. 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

#: the trend at a point is the mean over the points within this distance in log time (a factor of 2 either way),
#: and over at least its MIN_NEIGHBOURS nearest where fewer are that close. Narrower windows follow the trend
#: more closely but estimate it from fewer spreads, and a prior taken as exact when it is not calls too much
#: changed: 2.1 % of same-code comparisons (K = 3, equal spreads, 1000 simulated) at a factor 1.5, 7 neighbours
#: and a weight up to 60, 0.5 % with these settings (at most 1 % is the promise of --alpha 0.01)
TREND_HALF_WIDTH = math.log(2.0)
MIN_NEIGHBOURS = 11
#: the largest prior weight used (degrees of freedom): beyond it the t distribution hardly changes, and a cap
#: keeps a comparison of few points from trusting a trend it estimated from few spreads without limit
MAX_PRIOR_DF = 20.0


@dataclass(frozen=True)
class Prior:
    """The moderation's prior: weight ``d0`` (degrees of freedom) and the prior variance at each point."""

    d0: float
    s0_sq: np.ndarray


def _trigamma_inverse(y: float) -> float:
    """x with trigamma(x) = y (y > 0): trigamma falls from +inf to 0 on (0, inf)."""
    return math.exp(optimize.brentq(lambda lx: special.polygamma(1, math.exp(lx)) - y, -30.0, 30.0, xtol=1e-12))


def prior_df(evar: float) -> float:
    """d0 from the log variances' scatter beyond sampling, ``evar`` = trigamma(d0 / 2), at most MAX_PRIOR_DF (also
    where ``evar`` is too small for a root to be bracketed, or not positive: the spreads agree with the trend)."""
    if evar <= special.polygamma(1, MAX_PRIOR_DF / 2):
        return MAX_PRIOR_DF
    return 2 * _trigamma_inverse(evar)


def _neighbour_sets(covariate: np.ndarray) -> list[np.ndarray]:
    """Per point, the indices of its neighbours: every point within TREND_HALF_WIDTH of its covariate, and at
    least its MIN_NEIGHBOURS nearest (itself included)."""
    out = []
    for x in covariate:
        dist = np.abs(covariate - x)
        near = np.flatnonzero(dist <= TREND_HALF_WIDTH)
        if near.size < MIN_NEIGHBOURS:
            near = np.argsort(dist, kind="stable")[:MIN_NEIGHBOURS]
        out.append(near)
    return out


def fit_f_dist(s2: np.ndarray, df: np.ndarray, covariate: np.ndarray) -> Prior:
    """The prior of the variances ``s2`` (each on ``df`` > 0 degrees of freedom) as a trend over ``covariate``.

    Smyth's moment estimates: e = log s^2 - digamma(d/2) + log(d/2) has mean log s0^2 + digamma(d0/2) - log(d0/2)
    and variance trigamma(d/2) + trigamma(d0/2); the trend estimates the mean, the scatter about it the variance.
    Points whose s^2 is 0 (identical runs) are left out of the fit.
    """
    s2, df, covariate = (np.asarray(a, dtype=float) for a in (s2, df, covariate))
    ok = (s2 > 0) & (df > 0) & np.isfinite(s2) & np.isfinite(covariate)
    if ok.sum() < 2:
        # one spread or none to fit: the median of those there are (0 when the runs were identical), weighted as
        # much as a point's own runs; nan when no point has a spread at all
        known = (df > 0) & np.isfinite(s2)
        fallback = float(np.median(s2[known])) if known.any() else math.nan
        return Prior(float(np.median(df[known])) if known.any() else 0.0, np.full(s2.size, fallback))
    e = np.log(s2[ok]) - special.digamma(df[ok] / 2) + np.log(df[ok] / 2)
    sets = _neighbour_sets(covariate[ok])
    trend = np.array([e[near].mean() for near in sets])
    n = int(ok.sum())
    used = min(n - 1.0, max(1.0, n / float(np.mean([near.size for near in sets]))))  # the trend's df, roughly
    evar = float(((e - trend) ** 2).sum() / max(n - used, 1.0) - special.polygamma(1, df[ok] / 2).mean())
    d0 = prior_df(evar)
    offset = special.digamma(d0 / 2) - math.log(d0 / 2)
    # the trend at the points left out of the fit too: the nearest fitted point's value (the median without a time)
    full = np.full(s2.size, float(np.median(trend)))
    full[ok] = trend
    xs = covariate[ok]
    for i in np.flatnonzero(~ok & np.isfinite(covariate)):
        full[i] = trend[np.argmin(np.abs(xs - covariate[i]))]
    return Prior(d0, np.exp(full - offset))


def squeeze(s2: np.ndarray, df: np.ndarray, prior: Prior) -> np.ndarray:
    """Posterior variances: (d0 s0^2 + d s^2) / (d0 + d); the prior alone where a point has no df."""
    s2, df = np.asarray(s2, dtype=float), np.asarray(df, dtype=float)
    own = np.where(df > 0, np.nan_to_num(s2), 0.0)
    total = prior.d0 + df
    with np.errstate(invalid="ignore", divide="ignore"):
        post = (prior.d0 * prior.s0_sq + df * own) / total
    return np.where(total > 0, post, prior.s0_sq)
