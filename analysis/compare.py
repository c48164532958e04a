"""``collbench compare BASE NEW``: per-point change between two runs, with significance (pyperf-style).

Points are matched on ``bench.schema.POINT_KEY``. Per point: ratio of the robust estimates NEW/BASE with a
bootstrap 95% CI (resampling the samples each estimate comes from: the fast mode when a run's samples have a
slow mode, ``bench.stats``), and a two-sided Mann-Whitney U test on their log times with Holm's correction
across points. A point regressed when the CI's lower bound exceeds 1 + threshold AND the
corrected p-value is below --alpha; improved symmetrically; otherwise "same". Imported nccl-tests runs have
one number per point: there the threshold on the ratio alone decides (verdict marked "threshold only").

``--relative-to ALGO`` compares each point relative to the same run's ALGO at the same size instead:
the ratio is (NEW / NEW's ALGO) / (BASE / BASE's ALGO), the bootstrap resamples all four sample sets, and the
test compares each run's samples divided by its ALGO estimate. The algorithms of one size are sampled in the
same rounds (interleaved), so a shift of the host between the two runs hits a point and its reference alike
and cancels; a change of ALGO itself is not seen (its points are the reference and get no verdict).

Per-iteration samples of one point are taken within milliseconds, so they miss run-to-run shifts (a rank
scheduled onto a busy core for the whole point doubles its median on a small shared machine). A change is
therefore only confirmed when a neighbouring size of the same curve changed the same way; a lone significant
point is reported as ``isolated`` and does not fail the comparison (a real slowdown of an algorithm or a
backend shows at several sizes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import AnalysisError
from bench.schema import POINT_KEY
from bench.stats import fast_mode

N_BOOT = 2000


@dataclass(frozen=True)
class PointChange:
    """One matched point: medians, ratio NEW/BASE with its CI, corrected p-value and the verdict."""

    collective: str
    algorithm: str
    world_size: int
    bytes: int
    in_place: bool
    base_time_us: float
    new_time_us: float
    ratio: float
    ratio_lo: float
    ratio_hi: float
    p_value: float  # Holm-corrected; nan without samples
    verdict: str  # regression | improvement | same | isolated (significant, but no neighbouring size agrees)
    basis: str  # "samples" or "threshold only"
    relative_to: str = ""  # the reference algorithm of --relative-to ("" = absolute times)


def _boot_medians(samples: np.ndarray | None, rng: np.random.Generator) -> np.ndarray | float:
    """N_BOOT bootstrap medians of ``samples`` (1.0 for no samples: a reference that is not there)."""
    if samples is None:
        return 1.0
    return np.median(rng.choice(samples, (N_BOOT, samples.size)), axis=1)


def _ratio_ci(base: np.ndarray, new: np.ndarray, rng: np.random.Generator,
              base_ref: np.ndarray | None = None, new_ref: np.ndarray | None = None) -> tuple[float, float]:
    """Bootstrap 95% CI of median(new)/median(base), each over its reference's median when one is given."""
    b = _boot_medians(base, rng) / _boot_medians(base_ref, rng)
    n = _boot_medians(new, rng) / _boot_medians(new_ref, rng)
    lo, hi = np.percentile(n / b, [2.5, 97.5])
    return float(lo), float(hi)


def with_reference(frame: pd.DataFrame, algorithm: str, label: str) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` without ``algorithm``'s points, each other point given ``ref_time_us`` and ``ref_samples_us``
    of ``algorithm`` at the same key (size, dtype, world size...); points without one are named and dropped."""
    if not (frame["algorithm"] == algorithm).any():
        raise AnalysisError(f"--relative-to {algorithm}: {label} has no {algorithm} points "
                            f"(it has {', '.join(sorted(frame['algorithm'].unique()))})")  # fmt: skip
    key = [k for k in POINT_KEY if k != "algorithm"]
    ref = frame[frame["algorithm"] == algorithm].drop_duplicates(key, keep="last").set_index(key)
    rest = frame[frame["algorithm"] != algorithm]
    at = pd.MultiIndex.from_frame(rest[key])
    found = at.isin(ref.index)
    missing = [f"{label}: no {algorithm} point for {k}" for k in rest[~found][list(POINT_KEY)].itertuples(index=False)]
    rest = rest[found].copy()
    hit = ref.loc[pd.MultiIndex.from_frame(rest[key])]
    rest["ref_time_us"] = hit["time_us"].to_numpy()
    rest["ref_samples_us"] = list(hit["samples_us"])
    return rest, missing


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (nan stays nan)."""
    idx = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    order = sorted(idx, key=lambda i: p_values[i])
    out = list(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[i]))
        out[i] = running
    return out


def compare_frames(base: pd.DataFrame, new: pd.DataFrame, threshold: float, alpha: float, seed: int = 0,
                   relative_to: str = ""):
    """(list of PointChange, unmatched labels). Pure function of two loaded runs; ``relative_to``: module doc."""
    key = list(POINT_KEY)
    no_ref: list[str] = []
    if relative_to:
        base, miss_b = with_reference(base, relative_to, "BASE")
        new, miss_n = with_reference(new, relative_to, "NEW")
        no_ref = miss_b + miss_n
    b = base.drop_duplicates(key, keep="last").set_index(key)
    n = new.drop_duplicates(key, keep="last").set_index(key)
    common = b.index.intersection(n.index)
    unmatched = [f"base only: {k}" for k in b.index.difference(n.index)]
    unmatched += [f"new only: {k}" for k in n.index.difference(b.index)] + no_ref
    rng = np.random.default_rng(seed)
    rows, p_raw = [], []
    for k in common:
        rb, rn = b.loc[k], n.loc[k]
        tb, tn = float(rb["time_us"]), float(rn["time_us"])
        # absolute: the reference is 1 (time itself); relative: the same run's reference point
        ref_b, ref_n = (float(rb["ref_time_us"]), float(rn["ref_time_us"])) if relative_to else (1.0, 1.0)
        ratio = (tn / ref_n) / (tb / ref_b)
        sb, sn = fast_mode(rb["samples_us"] or []), fast_mode(rn["samples_us"] or [])
        refs = [np.asarray(fast_mode(r["ref_samples_us"] or []), dtype=float) for r in (rb, rn)] if relative_to else []
        if min(len(sb), len(sn), *(r.size for r in refs)) >= 3:
            sb_a, sn_a = np.asarray(sb, dtype=float), np.asarray(sn, dtype=float)
            lo, hi = _ratio_ci(sb_a, sn_a, rng, *refs)
            p = float(stats.mannwhitneyu(np.log(sn_a / ref_n), np.log(sb_a / ref_b), alternative="two-sided").pvalue)
            basis = "samples"
        else:
            lo = hi = ratio
            p = math.nan
            basis = "threshold only"
        rows.append((k, tb, tn, ratio, lo, hi, basis))
        p_raw.append(p)
    p_adj = holm(p_raw)
    changes = []
    for (k, tb, tn, ratio, lo, hi, basis), p in zip(rows, p_adj, strict=True):
        kd = dict(zip(key, k, strict=True))
        significant = basis == "threshold only" or p < alpha
        if lo > 1 + threshold and significant:
            verdict = "regression"
        elif hi < 1 / (1 + threshold) and significant:
            verdict = "improvement"
        else:
            verdict = "same"
        changes.append(
            PointChange(
                kd["collective"],
                kd["algorithm"],
                int(kd["world_size"]),
                int(kd["bytes"]),
                bool(kd["in_place"]),
                tb,
                tn,
                ratio,
                lo,
                hi,
                p,
                verdict,
                basis,
                relative_to,
            )  # fmt: skip
        )
    return _confirm(changes), unmatched


def _confirm(changes: list[PointChange]) -> list[PointChange]:
    """Demote a regression/improvement to ``isolated`` unless an adjacent size of its curve agrees."""
    curves: dict[tuple, list[int]] = {}
    for i, c in enumerate(changes):
        curves.setdefault((c.collective, c.algorithm, c.world_size, c.in_place), []).append(i)
    out = list(changes)
    for idx in curves.values():
        idx.sort(key=lambda i: changes[i].bytes)
        for pos, i in enumerate(idx):
            v = changes[i].verdict
            if v == "same" or len(idx) == 1:
                continue
            neighbours = [changes[idx[q]].verdict for q in (pos - 1, pos + 1) if 0 <= q < len(idx)]
            if v not in neighbours:
                out[i] = replace(changes[i], verdict="isolated")
    return out


def count_verdicts(changes: list[PointChange]) -> dict[str, int]:
    """Points per verdict."""
    return {v: sum(c.verdict == v for c in changes) for v in ("regression", "improvement", "isolated", "same")}


def has_builtin(frame: pd.DataFrame) -> bool:
    return bool((frame["algorithm"] == "builtin").any()) and bool((frame["algorithm"] != "builtin").any())


#: a median ratio over every point further than this from 1, with most points moving with it, is named
RUN_SHIFT = 0.05


def run_shift(changes: list[PointChange]) -> dict:
    """How the whole run moved: the median of the points' ratios and the share of points on its side of 1.
    Per-point samples cannot see a shift of the host between two runs (docs/noise.md: on the 2-core VM every point
    of one run was 5-32 % faster than in the run 30 s before); when all points move together the verdicts
    above carry it, and this line says so instead of leaving 30 separate "improved" to be read as code."""
    ratios = np.array([c.ratio for c in changes], dtype=float)
    med = float(np.median(ratios))
    same = float(np.mean(ratios > 1) if med >= 1 else np.mean(ratios < 1))
    note = ""
    if abs(med - 1) > RUN_SHIFT and same >= 0.8:
        note = ("every curve moved together: a change of the host between the runs (load, clock, placement) "
                "or of something all algorithms share; rerun both, or compare --relative-to builtin")  # fmt: skip
    return {"median_ratio": med, "same_direction": same, "note": note}


def with_mde(changes: list[PointChange], threshold: float, alpha: float,
              power: float) -> tuple[list[PointChange], list[float]]:
    """Each point's MDE from the spread of its samples (its 95 % bootstrap CI of the ratio; nan without samples),
    and "same" made "inconclusive" where that MDE exceeds the threshold or is unknown."""
    z = stats.norm.ppf(1 - alpha / (2 * len(changes))) + stats.norm.ppf(power)
    limit = math.log1p(threshold)
    out, mdes = [], []
    for c in changes:
        if c.basis == "samples" and c.ratio_lo > 0:
            se = (math.log(c.ratio_hi) - math.log(c.ratio_lo)) / (2 * 1.959964)
            mde = z * se
        else:
            mde = math.nan
        if c.verdict == "same" and not mde <= limit:
            c = replace(c, verdict="inconclusive")
        out.append(c)
        mdes.append(math.expm1(mde) if not math.isnan(mde) else math.nan)
    return out, mdes
