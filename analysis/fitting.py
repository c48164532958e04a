"""Alpha-beta(-gamma) fits of measured times (docs/fitting.md).

- ``curve`` fits: t(n) = a + b n per curve (one collective, algorithm, backend, world size, ...), by
  relative-error WLS with a, b >= 0 (NNLS on rows scaled by 1/t), optionally Huber or Theil-Sen;
  piecewise when the backend switches protocol (binary segmentation, BIC); bootstrap CIs over
  per-iteration samples where the run has them, over sizes otherwise.
- ``model`` fits: t = L(p) alpha + W(p) n beta [+ G(p) n gamma] per collective and algorithm across world
  sizes with the algorithm's own coefficients from ``collectives.costs`` (builtin: the backend's algorithm
  where known, else the lower bound, flagged); gamma only where the design separates it from beta (G/W
  varies at least GAMMA_SPREAD-fold across the points, the scaled design's condition number is below
  COND_LIMIT, and the bootstrap interval of gamma stays away from 0), otherwise left out and said so in
  ``method``; leave-one-world-size-out prediction error.

Times are in µs and sizes in bytes throughout: b is µs per byte, bw_gbps = 1e-3 / b.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from analysis.errors import AnalysisError
from bench.schema import CURVE_KEY
from bench.stats import fast_mode
from collectives import costs

#: fits.csv columns: the fixed ones of docs/fitting.md (section fits.csv), in order, then the extras
FIT_COLUMNS: tuple[str, ...] = (
    "scope", "collective", "algorithm", "backend", "world_size", "alpha_us", "alpha_us_lo", "alpha_us_hi",
    "bw_gbps", "bw_gbps_lo", "bw_gbps_hi", "gamma_gbps", "r2", "mape", "n_points",
    "device", "dtype", "op", "in_place", "piece", "bytes_min", "bytes_max", "method", "loo_mape", "breaks_bytes",
    "segment_bytes",
)  # fmt: skip
MODEL_KEY = ("collective", "algorithm", "backend", "device", "dtype", "op", "in_place")
ROBUST = (None, "huber", "theil-sen")
MIN_SIZES = 3  # a line needs at least this many sizes
#: each piece of a split curve needs this many sizes: a line through 3 sizes has one degree of freedom left, and
#: a 6-size import split 3 + 3 fitted noise (alpha of a millisecond); with 4 a split needs at least 8 sizes
MIN_PIECE_SIZES = 4
MAX_PIECES = 3
SPLIT_GAIN = 0.25  # a split must cut the weighted SSE at least 4x (on top of BIC) to count as a breakpoint
COND_LIMIT = 1e3  # a worse-conditioned scaled [L, W n, G n] design leaves gamma unidentified
GAMMA_SPREAD = 2.0  # G/W must vary at least this much across the design points, or G n is W n rescaled


@dataclass(frozen=True)
class Line:
    """t = a + b n on [n_min, n_max]: a in µs, b in µs per byte."""

    a_us: float
    b_us_per_byte: float
    n_min: float
    n_max: float

    def time_us(self, n: np.ndarray | float) -> np.ndarray:
        return self.a_us + self.b_us_per_byte * np.asarray(n, dtype=float)


def bw_gbps(b_us_per_byte: float) -> float:
    """1/slope in GB/s (inf for a flat line)."""
    return 1e-3 / b_us_per_byte if b_us_per_byte > 0 else math.inf


# --- one line -------------------------------------------------------------------------------------------


def _nnls_line(n: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Relative-error WLS with a, b >= 0: minimise sum(((a + b n) - t) / t)^2 (docs/fitting.md, Per-curve fit)."""
    scale = 1.0 / t
    n_ref = max(float(n.max()), 1.0)  # column scaling keeps NNLS well conditioned over many decades
    design = np.column_stack([scale, n / n_ref * scale])
    (a, b), _ = optimize.nnls(design, np.ones_like(t))
    return float(a), float(b / n_ref)


def _huber_line(n: np.ndarray, t: np.ndarray, delta: float = 0.05) -> tuple[float, float]:
    """Huber loss on relative residuals, started from the WLS solution, a, b >= 0."""
    a0, b0 = _nnls_line(n, t)
    n_ref = max(float(n.max()), 1.0)
    t_ref = float(np.median(t))

    def resid(x: np.ndarray) -> np.ndarray:
        return (x[0] * t_ref + x[1] * t_ref * n / n_ref - t) / t

    x0 = np.array([max(a0 / t_ref, 0.0), max(b0 * n_ref / t_ref, 0.0)])
    res = optimize.least_squares(resid, x0, loss="huber", f_scale=delta, bounds=([0, 0], [np.inf, np.inf]))
    return float(res.x[0] * t_ref), float(res.x[1] * t_ref / n_ref)


def _theil_sen_line(n: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    slope, intercept, _, _ = stats.theilslopes(t, n)
    return max(float(intercept), 0.0), max(float(slope), 0.0)


def fit_line(n: Sequence[float], t: Sequence[float], robust: str | None = None) -> tuple[float, float]:
    """(a_us, b_us_per_byte) of t = a + b n by the chosen method."""
    n_arr, t_arr = np.asarray(n, dtype=float), np.asarray(t, dtype=float)
    if robust is None:
        return _nnls_line(n_arr, t_arr)
    if robust == "huber":
        return _huber_line(n_arr, t_arr)
    if robust == "theil-sen":
        return _theil_sen_line(n_arr, t_arr)
    raise AnalysisError(f"unknown robust method {robust!r}; choose huber or theil-sen")


def _sse_rel(n: np.ndarray, t: np.ndarray, a: float, b: float) -> float:
    return float(np.sum(((a + b * n) - t) ** 2 / t**2))


# --- breakpoints (docs/fitting.md, Breakpoints) ---------------------------------------------------------------


def _bic(sse: float, n_points: int, n_pieces: int) -> float:
    k = 2 * n_pieces + (n_pieces - 1)
    return n_points * math.log(max(sse, 1e-300) / n_points) + k * math.log(n_points)


#: A piece with more points than this is split by running sums (``_best_split``); smaller ones fit each side.
PREFIX_SPLIT_POINTS = 256


def _nnls_sse(sxx: np.ndarray, sxy: np.ndarray, syy: np.ndarray, sx: np.ndarray, sy: np.ndarray,
              cnt: np.ndarray) -> np.ndarray:  # fmt: skip
    """Least SSE of sum((a x + b y - 1)^2) over a, b >= 0 from the sums of x^2, xy, y^2, x, y and the count:
    the unconstrained optimum where it is in the quadrant, else the better of the two axes (a convex problem
    in two unknowns: what ``optimize.nnls`` returns)."""
    def sse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cnt - 2 * (a * sx + b * sy) + a * a * sxx + 2 * a * b * sxy + b * b * syy

    with np.errstate(divide="ignore", invalid="ignore"):
        det = sxx * syy - sxy * sxy
        a_u, b_u = (syy * sx - sxy * sy) / det, (sxx * sy - sxy * sx) / det
        a_x = np.where(sxx > 0, np.maximum(sx / sxx, 0.0), 0.0)
        b_y = np.where(syy > 0, np.maximum(sy / syy, 0.0), 0.0)
    inside = (det > 0) & (a_u >= 0) & (b_u >= 0)
    zero = np.zeros_like(cnt)
    edge = np.minimum(sse(a_x, zero), sse(zero, b_y))
    return np.where(inside, np.minimum(sse(np.where(inside, a_u, 0.0), np.where(inside, b_u, 0.0)), edge), edge)


def _best_split(n: np.ndarray, t: np.ndarray, min_sizes: int) -> tuple[int | None, float]:
    """(split index, left + right SSE) of the best split of one piece into two relative-error WLS lines with
    a, b >= 0 and at least ``min_sizes`` points each, every split scored from running sums (O(points))."""
    x = 1.0 / t
    y = n / max(float(n.max()), 1.0) / t  # column scaling, as _nnls_line
    terms = np.stack([x * x, x * y, y * y, x, y, np.ones_like(x)])
    run = np.concatenate([np.zeros((6, 1)), np.cumsum(terms, axis=1)], axis=1)  # sums of the first s points
    splits = np.arange(min_sizes, len(n) - min_sizes + 1)
    if not len(splits):
        return None, math.inf
    left = _nnls_sse(*run[:, splits])
    right = _nnls_sse(*(run[:, -1:] - run[:, splits]))
    total = left + right
    k = int(np.argmin(total))
    return int(splits[k]), float(total[k])


def find_breaks(n: np.ndarray, t: np.ndarray, max_pieces: int = MAX_PIECES, min_sizes: int = MIN_SIZES) -> list[int]:
    """Indices (into ascending-sorted sizes) where a new piece starts, chosen by binary segmentation + BIC."""
    pieces = [(0, len(n))]
    while len(pieces) < max_pieces:
        total = sum(_sse_rel(n[i:j], t[i:j], *_nnls_line(n[i:j], t[i:j])) for i, j in pieces)
        best: tuple[float, int, int] | None = None  # (total SSE after split, piece index, split)
        for k, (i, j) in enumerate(pieces):
            whole = _sse_rel(n[i:j], t[i:j], *_nnls_line(n[i:j], t[i:j]))
            if j - i > PREFIX_SPLIT_POINTS:  # every split from running sums: linear in the points, not quadratic
                s, sse = _best_split(n[i:j], t[i:j], min_sizes)
                if s is not None and (best is None or total - whole + sse < best[0]):
                    best = (total - whole + sse, k, i + s)
                continue
            for s in range(i + min_sizes, j - min_sizes + 1):
                left = _sse_rel(n[i:s], t[i:s], *_nnls_line(n[i:s], t[i:s]))
                right = _sse_rel(n[s:j], t[s:j], *_nnls_line(n[s:j], t[s:j]))
                cand = total - whole + left + right
                if best is None or cand < best[0]:
                    best = (cand, k, s)
        if best is None or _bic(best[0], len(n), len(pieces) + 1) >= _bic(total, len(n), len(pieces)):
            break
        if best[0] > SPLIT_GAIN * total:  # noise alone also lowers SSE a little; a real switch lowers it a lot
            break
        _, k, s = best
        i, j = pieces[k]
        pieces[k : k + 1] = [(i, s), (s, j)]
    return [i for i, _ in pieces[1:]]


# --- bootstrap (docs/fitting.md, Confidence intervals) --------------------------------------------------------


def _bootstrap(
    n: np.ndarray,
    t: np.ndarray,
    samples: list[np.ndarray] | None,
    robust: str | None,
    n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n_boot, 2) replicates of (a, b): resample each size's iterations, or whole sizes without samples."""
    out = np.empty((n_boot, 2))
    for k in range(n_boot):
        if samples is not None:
            tb = np.array([np.median(rng.choice(s, size=s.size)) for s in samples])
            out[k] = fit_line(n, tb, robust)
        else:
            idx = rng.integers(0, n.size, n.size)
            while np.unique(n[idx]).size < 2:
                idx = rng.integers(0, n.size, n.size)
            out[k] = fit_line(n[idx], t[idx], robust)
    return out


def _quality(n: np.ndarray, t: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(R² of ln t, MAPE %), docs/fitting.md, Fit quality."""
    mape = float(100.0 * np.mean(np.abs(pred - t) / t))
    y, yhat = np.log(t), np.log(np.maximum(pred, 1e-12))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - yhat) ** 2)) / ss_tot if ss_tot > 0 else math.nan
    return r2, mape


# --- curve fits -------------------------------------------------------------------------------------------


def _curve_points(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[np.ndarray] | None]:
    """Sizes ascending, times (the robust estimate), per-size samples the estimate comes from (its fast mode,
    ``bench.stats.fast_mode``; None unless every size has samples), so the bootstrap CIs resample what
    time_us is the median of."""
    g = group.sort_values("bytes")
    g = g[g["time_us"] > 0]
    n = g["bytes"].to_numpy(dtype=float)
    t = g["time_us"].to_numpy(dtype=float)
    raw = list(g["samples_us"]) if "samples_us" in g else [None] * len(g)
    samples = [np.asarray(fast_mode(s), dtype=float) for s in raw if s] if all(raw) else None
    return n, t, samples


def fit_curve(
    group: pd.DataFrame, *, robust: str | None = None, n_boot: int = 200, seed: int = 0, breaks: bool = True
) -> list[dict]:
    """fits.csv rows (one per piece) of one curve; [] when it has fewer than MIN_SIZES sizes."""
    n, t, samples = _curve_points(group)
    if np.unique(n).size < MIN_SIZES:
        return []
    cuts = find_breaks(n, t, min_sizes=MIN_PIECE_SIZES) if breaks and robust is None else []
    bounds = [0, *cuts, len(n)]
    first = group.iloc[0]
    rng = np.random.default_rng(seed)
    rows = []
    for piece, (i, j) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        pn, pt = n[i:j], t[i:j]
        ps = samples[i:j] if samples is not None else None
        a, b = fit_line(pn, pt, robust)
        boot = _bootstrap(pn, pt, ps, robust, n_boot, rng) if n_boot > 0 else np.array([[a, b]])
        a_lo, a_hi = np.percentile(boot[:, 0], [2.5, 97.5])
        b_lo, b_hi = np.percentile(boot[:, 1], [2.5, 97.5])
        r2, mape = _quality(pn, pt, a + b * pn)
        rows.append(
            {
                "scope": "curve",
                **{k: first[k] for k in ("collective", "algorithm", "backend", "device", "dtype", "op", "in_place")},
                "world_size": int(first["world_size"]),
                "alpha_us": a,
                "alpha_us_lo": float(a_lo),
                "alpha_us_hi": float(a_hi),
                "bw_gbps": bw_gbps(b),
                "bw_gbps_lo": bw_gbps(float(b_hi)),  # CI of 1/b from the slope's percentiles (docs/fitting.md)
                "bw_gbps_hi": bw_gbps(float(b_lo)),
                "gamma_gbps": math.nan,
                "r2": r2,
                "mape": mape,
                "n_points": int(j - i),
                "piece": piece,
                "bytes_min": int(pn.min()),
                "bytes_max": int(pn.max()),
                "method": f"{robust or 'wls-rel'}; ci: {'samples' if ps is not None else 'sizes'} bootstrap",
                "loo_mape": math.nan,
                "breaks_bytes": ";".join(str(int(n[c])) for c in cuts),
                "segment_bytes": _segment_bytes(group),
            }
        )
    return rows


# --- model fits across world sizes (docs/fitting.md, Model fit) ----------------------------------------------


def _segment_bytes(group: pd.DataFrame) -> int | None:
    """The one segment size the group's pipelined runs used (None: not pipelined, or not recorded)."""
    if "segment_bytes" not in group:
        return None
    seg = pd.to_numeric(group["segment_bytes"], errors="coerce").dropna().unique()
    return int(seg[0]) if len(seg) == 1 else None


def _opt(rec: object, name: str) -> object:
    v = getattr(rec, name, None)
    return None if v is None or pd.isna(v) else v


def _design(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, bool, str]:
    """Rows [L, W n, G n] per point, target t (µs), whether any schedule is only assumed (builtin on an
    unknown backend algorithm: lower bound), and what builtin's coefficients model."""
    rows, assumed, bases = [], False, set()
    for rec in group.itertuples(index=False):
        p, n = int(rec.world_size), float(rec.bytes)
        seg = _opt(rec, "segment_bytes")
        c = costs.cost(rec.collective, rec.algorithm, p, nbytes=n, segment_bytes=int(seg) if seg is not None else None,
                       backend=_opt(rec, "backend"), backend_algorithm=_opt(rec, "backend_algorithm"))  # fmt: skip
        assumed |= c.assumed
        if c.basis and p > 1:
            bases.add(c.basis)
        rows.append([c.L, c.W * n, c.G * n])
    return np.array(rows, dtype=float), group["time_us"].to_numpy(dtype=float), assumed, "; ".join(sorted(bases))


def _solve_model(design: np.ndarray, t: np.ndarray, with_gamma: bool) -> np.ndarray:
    """(alpha_us, beta_us_per_byte, gamma_us_per_byte) >= 0 by NNLS on rows scaled by 1/t, columns unit-norm."""
    cols = design if with_gamma else design[:, :2]
    scaled = cols / t[:, None]
    norms = np.linalg.norm(scaled, axis=0)
    norms[norms == 0] = 1.0
    x, _ = optimize.nnls(scaled / norms, np.ones_like(t))
    x = x / norms
    return np.array([x[0], x[1], x[2] if with_gamma else 0.0])


def gamma_problem(design: np.ndarray, t: np.ndarray) -> str | None:
    """None when the design can separate gamma from beta, else why it cannot.

    Both columns grow with n, so only a G/W ratio that differs between points tells them apart: it must vary
    at least GAMMA_SPREAD-fold (a non-reducing collective, G = 0, next to a reducing one always does), and the
    scaled design must be conditioned better than COND_LIMIT."""
    w, g = design[:, 1], design[:, 2]
    if not np.any(g > 0):
        return "no reduction in the design"
    ok = w > 0
    if not np.any(ok):
        return "no bandwidth term in the design"
    ratio = g[ok] / w[ok]
    lo, hi = float(ratio.min()), float(ratio.max())
    spread = math.inf if lo <= 0 else hi / lo
    if spread < GAMMA_SPREAD:
        return f"G/W varies only {spread:.3g}-fold across the points (needs {GAMMA_SPREAD:g})"
    scaled = design / t[:, None]
    norms = np.linalg.norm(scaled, axis=0)
    if np.any(norms == 0):
        return "a zero column in the design"
    cond = float(np.linalg.cond(scaled / norms))
    if not cond < COND_LIMIT:
        return f"design condition number {cond:.3g} >= {COND_LIMIT:g}"
    return None


def gamma_identified(design: np.ndarray, t: np.ndarray) -> bool:
    """True when the design separates gamma from beta (``gamma_problem`` finds nothing)."""
    return gamma_problem(design, t) is None


def model_time_us(
    collective: str,
    algorithm: str,
    world_size: int,
    nbytes: float | np.ndarray,
    alpha_us: float,
    bw_gbps_: float,
    gamma_gbps: float | None = None,
    segment_bytes: int | None = None,
    backend: str | None = None,
    backend_algorithm: str | None = None,
) -> float | np.ndarray:
    """Model time in µs: L(p) alpha + W(p) n / bw + G(p) n / gamma_bw, coefficients from collectives.costs
    (pipelined algorithms at ``segment_bytes``; builtin per ``backend``)."""
    beta = 1e-3 / bw_gbps_ if bw_gbps_ and math.isfinite(bw_gbps_) else 0.0
    gamma = 1e-3 / gamma_gbps if gamma_gbps and math.isfinite(gamma_gbps) and gamma_gbps > 0 else 0.0

    def one(n: float) -> float:
        c = costs.cost(collective, algorithm, world_size, nbytes=n, segment_bytes=segment_bytes, backend=backend,
                       backend_algorithm=backend_algorithm)  # fmt: skip
        return c.L * alpha_us + (c.W * beta + c.G * gamma) * n

    if np.ndim(nbytes) == 0:
        return one(float(nbytes))
    return np.array([one(float(n)) for n in np.asarray(nbytes, dtype=float)])


def fit_model(group: pd.DataFrame, *, n_boot: int = 200, seed: int = 0, need_gamma: bool = False) -> dict | None:
    """One ``model`` row for a collective + algorithm across world sizes (needs >= 2 world sizes > 1);
    with ``need_gamma`` None unless gamma is identified."""
    group = group[(group["world_size"] > 1) & (group["time_us"] > 0)]
    sizes = sorted(group["world_size"].unique())
    if len(sizes) < 2 or len(group) < 4:
        return None
    design, t, assumed, basis = _design(group)
    why_not = gamma_problem(design, t)
    with_gamma = why_not is None
    if need_gamma and not with_gamma:
        return None
    rng = np.random.default_rng(seed)

    def boot_fit(gamma: bool) -> np.ndarray:
        out = np.empty((n_boot, 3))
        for k in range(n_boot):  # case bootstrap over points
            idx = rng.integers(0, len(t), len(t))
            out[k] = _solve_model(design[idx], t[idx], gamma)
        return out

    boot = boot_fit(with_gamma)
    if with_gamma and n_boot and float(np.percentile(boot[:, 2], 2.5)) <= 0.0:
        with_gamma, why_not = False, "its bootstrap 95% interval reaches 0 (reduction rate unbounded)"
        if need_gamma:
            return None
        boot = boot_fit(False)
    x = _solve_model(design, t, with_gamma)
    pred = design @ x
    r2, mape = _quality(group["bytes"].to_numpy(dtype=float), t, pred)
    a_lo, a_hi = np.percentile(boot[:, 0], [2.5, 97.5]) if n_boot else (x[0], x[0])
    b_lo, b_hi = np.percentile(boot[:, 1], [2.5, 97.5]) if n_boot else (x[1], x[1])
    loo = []
    ws = group["world_size"].to_numpy()
    for p in sizes:  # leave one world size out: refit without it, predict its whole curve
        keep = ws != p
        if np.unique(ws[keep]).size < 1 or keep.sum() < 2:
            continue
        xp = _solve_model(design[keep], t[keep], with_gamma and gamma_identified(design[keep], t[keep]))
        loo.append(float(np.mean(np.abs(design[~keep] @ xp - t[~keep]) / t[~keep])))
    first = group.iloc[0]
    if with_gamma:
        method = "nnls-rel; alpha, beta, gamma"
    elif why_not == "no reduction in the design":
        method = "nnls-rel; alpha, beta (no reduction)"
    else:
        method = f"nnls-rel; alpha, beta (gamma not identified: {why_not}; left out, reduction time folded into beta)"
    if assumed:
        method += f"; builtin: {basis} - predictions from this fit are lower bounds"
    elif basis:
        method += f"; builtin modelled as {basis}"
    return {
        "scope": "model",
        **{k: first[k] for k in MODEL_KEY},
        "world_size": None,
        "alpha_us": float(x[0]),
        "alpha_us_lo": float(a_lo),
        "alpha_us_hi": float(a_hi),
        "bw_gbps": bw_gbps(float(x[1])),
        "bw_gbps_lo": bw_gbps(float(b_hi)),
        "bw_gbps_hi": bw_gbps(float(b_lo)),
        "gamma_gbps": bw_gbps(float(x[2])) if with_gamma else math.nan,
        "r2": r2,
        "mape": mape,
        "n_points": len(t),
        "piece": 0,
        "bytes_min": int(group["bytes"].min()),
        "bytes_max": int(group["bytes"].max()),
        "method": method + f"; world sizes {','.join(str(int(p)) for p in sizes)}",
        "loo_mape": 100.0 * float(np.mean(loo)) if loo else math.nan,
        "breaks_bytes": "",
        "segment_bytes": _segment_bytes(group),
    }


def fit_joint(df: pd.DataFrame, *, n_boot: int = 200, seed: int = 0) -> list[dict]:
    """Shared alpha, beta, gamma over every hand-written algorithm of one backend/device/dtype (docs/fitting.md):
    reducing and non-reducing collectives together make gamma identifiable. Rows only where it is."""
    rows = []
    hand = df[(df["algorithm"] != "builtin") & (df["world_size"] > 1)]
    for _, group in hand.groupby(["backend", "device", "dtype"], sort=True):
        if group["collective"].nunique() < 2:
            continue
        row = fit_model(group.assign(op="*", in_place=False), n_boot=n_boot, seed=seed, need_gamma=True)
        if row is not None:
            row.update(collective="*", algorithm="*", op="*", in_place=None)
            row["method"] = "joint over hand-written algorithms; " + row["method"]
            rows.append(row)
    return rows


# --- everything ------------------------------------------------------------------------------------------


def usable_points(df: pd.DataFrame) -> pd.DataFrame:
    """Points a fit may use: correct, timed (time_us > 0)."""
    ok = df["time_us"].notna() & (df["time_us"] > 0)
    if "correct" in df:
        ok &= df["correct"].astype(bool)
    return df[ok]


def fit_all(
    df: pd.DataFrame, *, robust: str | None = None, n_boot: int = 200, seed: int = 0, breaks: bool = True
) -> pd.DataFrame:
    """The fits table (FIT_COLUMNS): every curve with >= MIN_SIZES sizes (send_recv's too: t = a + b S of one
    message), a model per collective + algorithm measured at >= 2 world sizes, and a joint model (collective
    ``*``) where gamma is identified; send_recv has no cost model and takes part in neither."""
    if robust not in ROBUST:
        raise AnalysisError(f"unknown robust method {robust!r}; choose huber or theil-sen")
    pts = usable_points(df)
    rows: list[dict] = []
    for _, group in pts.groupby(list(CURVE_KEY), sort=True, dropna=False):
        rows += fit_curve(group, robust=robust, n_boot=n_boot, seed=seed, breaks=breaks)
    # the cost-model fits need L(p), W(p), G(p): collectives only (send_recv: SEND_RECV.p2p.no_cost_model)
    modelled = pts[pts["collective"].isin(costs.COLLECTIVES)]
    for _, group in modelled.groupby(list(MODEL_KEY), sort=True, dropna=False):
        if (row := fit_model(group, n_boot=n_boot, seed=seed)) is not None:
            rows.append(row)
    rows += fit_joint(modelled, n_boot=n_boot, seed=seed)
    return pd.DataFrame(rows, columns=list(FIT_COLUMNS))


def curve_time_us(fits: pd.DataFrame, row_key: dict, nbytes: np.ndarray | float) -> np.ndarray:
    """Predicted time of a fitted curve at ``nbytes``, each size through the piece whose range covers it."""
    sel = fits[fits["scope"] == "curve"]
    for k, v in row_key.items():
        sel = sel[sel[k] == v]
    if sel.empty:
        raise AnalysisError(f"no curve fit for {row_key}")
    sel = sel.sort_values("bytes_min")
    n = np.atleast_1d(np.asarray(nbytes, dtype=float))
    starts = sel["bytes_min"].to_numpy(dtype=float)
    idx = np.clip(np.searchsorted(starts, n, side="right") - 1, 0, len(sel) - 1)
    a = sel["alpha_us"].to_numpy(dtype=float)[idx]
    bw = sel["bw_gbps"].to_numpy(dtype=float)[idx]
    return a + np.where(np.isfinite(bw), n * 1e-3 / np.where(np.isfinite(bw), bw, 1.0), 0.0)
