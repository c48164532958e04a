"""Compare two sides of several runs each with a between-run term (``collbench compare``, docs/regression.md).

The unit of evidence is a run, not a sample: on a shared host the level of a whole run moves (docs/noise.md),
and samples taken within milliseconds of each other cannot see it. Per point, each run gives one number, the
log of its robust estimate ``time_us`` (over the same run's reference algorithm with ``relative_to``). The model
is one-way random effects on those numbers: y = mu_side + b_run + e, with b_run the between-run term; the
variance of one run's y about its side's mean is estimated from the runs of both sides (pooled, df = k_base +
k_new - 2), moderated toward a trend of that variance over the points' times with a weight estimated from the
data (limma's squeezeVar with a trend, ``analysis.moderated``: three runs per side give a noisy spread per
point, and a launch-bound point spreads more than a transfer), and never below the run's own within-run
precision (from its CI columns). The change d = mean(y_new) - mean(y_base) has standard
error se = s * sqrt(1/k_base + 1/k_new) and a t distribution.

Every point is tested at alpha / m (Bonferroni over the m matched points: ``--alpha`` is the chance that any
point of a same-code comparison is called changed). Per point, with T = log(1 + threshold):

- the minimum detectable effect (MDE) is (t[1 - alpha/2m] + t[power]) * se: the smallest change the
  comparison finds with probability ``power``; ``runs_needed`` is the runs per side that bring it to T;
- ``same``: the CI lies within (-T, T) and the MDE is at most T (no change of the threshold's size);
- ``regression``: the CI lies above 0 (a significant slowdown) and either the estimate reaches T, or the MDE
  is at most T and the CI reaches T (a threshold-sized slowdown is not ruled out); ``improvement``
  symmetrically. The second arm is what makes the printed MDE true of the verdict: a change of T where the
  MDE is T is called a regression with probability ``power`` (it is significant that often), where "the
  estimate reaches T" alone would call it half the time, whatever the runs;
- ``inconclusive``: anything else: the data cannot tell a threshold-sized change from none (the MDE
  exceeds T, or a significant change whose size is below T is not ruled out to reach it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis import moderated
from analysis.compare import with_reference
from analysis.read_runs import Run
from bench.schema import POINT_KEY

#: the most runs per side ``runs_needed`` looks for (beyond: None, "more than MAX_RUNS")
MAX_RUNS = 1000
Z95 = 1.959964


@dataclass(frozen=True)
class RepeatedChange:
    """One matched point over several runs per side: the change, its CI, MDE and verdict."""

    collective: str
    algorithm: str
    world_size: int
    bytes: int
    in_place: bool
    base_runs: int
    new_runs: int
    base_time_us: float  # geometric mean of the runs' estimates
    new_time_us: float
    ratio: float
    ratio_lo: float  # CI at 1 - alpha/m
    ratio_hi: float
    p_value: float  # Bonferroni-adjusted
    between_run_sd: float  # this point's spread of one run's log estimate (pooled over both sides; nan: unknown)
    sd_used: float  # the spread the test used (moderated toward the trend over time, floored by within-run)
    within_run_sd: float  # one run's own precision of its estimate (from its CI), median over its runs
    mde: float  # minimum detectable effect, a fraction (0.12 = 12 %)
    runs_needed: int | None  # runs per side for an MDE at the threshold (None: more than MAX_RUNS)
    verdict: str  # regression | improvement | same | inconclusive
    relative_to: str = ""


def _run_values(run: Run, relative_to: str) -> pd.DataFrame:
    """Per point of one run: y (log estimate, over the reference's when ``relative_to``) and w (its own variance)."""
    frame = run.points
    if relative_to:
        frame, _ = with_reference(frame, relative_to, str(run.path))
        ref = np.log(frame["ref_time_us"].to_numpy(dtype=float))
    else:
        ref = 0.0
    key = list(POINT_KEY)
    out = frame[key].copy()
    out["y"] = np.log(frame["time_us"].to_numpy(dtype=float)) - ref
    lo, hi = frame["time_us_ci_lo"].to_numpy(dtype=float), frame["time_us_ci_hi"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = ((np.log(hi) - np.log(lo)) / (2 * Z95)) ** 2
    out["w"] = np.where(np.isfinite(w) & (lo > 0), w, 0.0)
    out["x"] = np.log(frame["time_us"].to_numpy(dtype=float))  # the point's own log time: the spread's covariate
    out["run"] = run.run_id
    return out.drop_duplicates(key, keep="first")


def _order(key: tuple) -> tuple:
    """Sort key of a point key: numbers as numbers (sizes ascending), the rest as text."""
    return tuple((0, float(x), "") if isinstance(x, (int, float, np.number)) and not isinstance(x, bool)
                 else (1, 0.0, str(x)) for x in key)  # fmt: skip


def _mde(se: float, df: float, alpha_point: float, power: float) -> float:
    """Minimum detectable change of the log time at this se (two-sided test at ``alpha_point``)."""
    return (stats.t.ppf(1 - alpha_point / 2, df) + stats.t.ppf(power, df)) * se


def runs_needed(sd: float, df_prior: float, alpha_point: float, power: float, limit: float) -> int | None:
    """Fewest runs per side (equal sides) whose MDE is at most ``limit`` (log scale) at spread ``sd``.

    The MDE falls as n grows (smaller se, more degrees of freedom), so a bisection finds it."""

    def enough(n: int) -> bool:
        return _mde(sd * math.sqrt(2 / n), 2 * n - 2 + df_prior, alpha_point, power) <= limit

    if not enough(MAX_RUNS):
        return None
    lo, hi = 2, MAX_RUNS  # enough(hi) holds
    while lo < hi:
        mid = (lo + hi) // 2
        if enough(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def compare_repeated(base: list[Run], new: list[Run], threshold: float, alpha: float, power: float,
                     relative_to: str = "") -> tuple[list[RepeatedChange], list[str], dict]:
    """(per-point changes, unmatched labels, summary) of two sides with at least three runs between them."""
    key = list(POINT_KEY)
    tb = pd.concat([_run_values(r, relative_to) for r in base], ignore_index=True)
    tn = pd.concat([_run_values(r, relative_to) for r in new], ignore_index=True)
    gb, gn = tb.groupby(key, dropna=False), tn.groupby(key, dropna=False)
    kb, kn = set(gb.groups), set(gn.groups)
    common = sorted(kb & kn, key=_order)
    unmatched = [f"base only: {k}" for k in sorted(kb - kn, key=str)]
    unmatched += [f"new only: {k}" for k in sorted(kn - kb, key=str)]
    rows = []
    for k in common:
        yb, yn = gb.get_group(k), gn.get_group(k)
        a, b = yb["y"].to_numpy(), yn["y"].to_numpy()
        df = a.size + b.size - 2
        ss = float(((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum())
        within = float(np.median(np.concatenate([yb["w"].to_numpy(), yn["w"].to_numpy()])))
        x = float(np.concatenate([yb["x"].to_numpy(), yn["x"].to_numpy()]).mean())  # the point's log time
        rows.append((k, a, b, df, ss / df if df > 0 else math.nan, within, x))
    m = len(rows)
    alpha_point = alpha / max(m, 1)
    dfs = np.array([r[3] for r in rows], dtype=float)
    s2s = np.array([r[4] if r[3] > 0 else math.nan for r in rows])
    prior = moderated.fit_f_dist(s2s, dfs, np.array([r[6] for r in rows]))
    posterior = moderated.squeeze(s2s, dfs, prior)
    known = s2s[dfs > 0]
    if known.size:
        typical_df = float(np.median(dfs[dfs > 0]))
        # the median of s^2 over points, scaled to an estimate of its mean (the median of chi2_df / df is < 1)
        pooled = float(np.median(known)) / (stats.chi2.median(typical_df) / typical_df)
    else:
        pooled = math.nan
    limit = math.log1p(threshold)
    changes = []
    d0 = prior.d0
    for (k, a, b, df, s2, within, _), s2_post in zip(rows, posterior, strict=True):
        s2_used = max(float(s2_post), within)
        df_used = df + d0
        se = math.sqrt(s2_used * (1 / a.size + 1 / b.size))
        d = float(b.mean() - a.mean())
        tcrit = stats.t.ppf(1 - alpha_point / 2, df_used)
        lo, hi = d - tcrit * se, d + tcrit * se
        if not math.isfinite(se):  # no point of the comparison has two runs on a side: no spread at all
            p = math.nan
        else:
            p = min(1.0, 2 * stats.t.sf(abs(d) / se, df_used) * m) if se > 0 else (0.0 if d else 1.0)
        mde = _mde(se, df_used, alpha_point, power)
        powered = mde <= limit  # a threshold-sized change would be significant with probability >= power
        if -limit < lo and hi < limit and powered:
            verdict = "same"
        elif lo > 0 and (d >= limit or (powered and hi >= limit)):
            verdict = "regression"
        elif hi < 0 and (d <= -limit or (powered and lo <= -limit)):
            verdict = "improvement"
        else:
            verdict = "inconclusive"
        needed = None if verdict != "inconclusive" else runs_needed(math.sqrt(s2_used), d0, alpha_point, power, limit)
        kd = dict(zip(key, k, strict=True))
        changes.append(RepeatedChange(
            str(kd["collective"]), str(kd["algorithm"]), int(kd["world_size"]), int(kd["bytes"]),
            bool(kd["in_place"]), a.size, b.size, float(math.exp(a.mean())), float(math.exp(b.mean())), math.exp(d),
            math.exp(lo), math.exp(hi), p,
            math.sqrt(s2) if df > 0 else math.nan, math.sqrt(s2_used), math.sqrt(within), math.expm1(mde), needed,
            verdict, relative_to,
        ))  # fmt: skip
    return changes, unmatched, summarize(changes, threshold, alpha, power, alpha_point, pooled)


def summarize(changes: list[RepeatedChange], threshold: float, alpha: float, power: float, alpha_point: float,
              pooled_var: float) -> dict:
    """The overall answer, the MDE over the points and the runs per side that would resolve the inconclusive."""
    counts = {v: sum(c.verdict == v for c in changes) for v in ("regression", "improvement", "inconclusive", "same")}
    if counts["regression"]:
        answer = "regressed"
    elif counts["inconclusive"]:
        answer = "inconclusive"
    elif counts["improvement"]:
        answer = "improved"
    else:
        answer = "no change"
    mdes = np.array([c.mde for c in changes])
    needed = [c.runs_needed for c in changes if c.verdict == "inconclusive"]
    known = [n for n in needed if n is not None]
    return {
        "answer": answer,
        "counts": counts,
        "threshold": threshold,
        "alpha": alpha,
        "alpha_per_point": alpha_point,
        "power": power,
        "mde_median": float(np.median(mdes)) if mdes.size else math.nan,
        "mde_max": float(np.max(mdes)) if mdes.size else math.nan,
        "between_run_sd_median": math.sqrt(pooled_var) if pooled_var == pooled_var else math.nan,
        "within_run_sd_median": float(np.median([c.within_run_sd for c in changes])) if changes else math.nan,
        "runs_needed_median": int(np.median(known)) if known else None,
        "runs_needed_max": (max(known) if len(known) == len(needed) else None) if needed else None,
        "runs_needed_beyond_limit": len(needed) - len(known),
    }
