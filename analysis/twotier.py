"""Two-tier (intra-node, inter-node) cost model, its fit across node counts, predictions with bootstrap
intervals and the leave-one-scale-out back-test (docs/two-tier.md).

A machine of N nodes x g GPUs (p = N g ranks) has two tiers: intra-node links (NVLink, xGMI, PCIe; latency
alpha_intra per step, bus bandwidth bw_intra) and the network (InfiniBand, RoCE, EFA, Slingshot; alpha_inter,
bw_inter).  One call of an algorithm costs

    T = Li alpha_intra + Le alpha_inter + n max(Wi beta_intra, We beta_inter)      (pipelined: ring, tree)
    T = Li alpha_intra + Le alpha_inter + n (Wi beta_intra + We beta_inter)        (phased: hierarchical)

with beta = 1 / bw and the coefficients of ``tier_cost`` (docs/two-tier.md gives each one's source).  Both
bandwidths are in bus-bandwidth units: bw_intra is the busbw a ring reaches inside one node, bw_inter the
busbw a ring reaches across nodes (the node's network bandwidth as NCCL's rings use it).

The fit uses ring data (hand-written ``ring``, or ``builtin`` taken as the backend's ring at large
messages), the large-message regime of each scale (the last piece of its piecewise curve fit), and keeps
out a scale whose large-message busbw no ring can reach (another algorithm: NCCL tree/NVLS/CollNet at a few
nodes), with a note.  all_to_all is fitted with its own model ("direct": the intra share over the link, the
inter share over the node's NICs).  Prediction intervals add the model's error across scales (from the
leave-one-scale-out residuals) to the bootstrap's spread.  Times in µs, sizes in bytes, bandwidths in GB/s
(1e9 B/s).  Never imports torch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from analysis import nccl_tuning
from analysis.errors import AnalysisError
from analysis.fitting import find_breaks, usable_points
from collectives import costs
from collectives.spec import spec

ALGORITHMS = ("ring", "tree", "hierarchical", "direct")
#: the model each collective's fit uses: all-to-all moves every pair's block at once ("direct": intra share over
#: the GPU's link, inter share over the node's NICs); the others NCCL's ring
FIT_ALGORITHM = {"all_to_all": "direct"}
#: a multi-node scale whose large-message busbw exceeds the ring roof of the larger scales by this factor runs
#: another algorithm (NCCL's tree at 2 nodes reaches up to 2(p-1)/p times the ring's network roof)
SWITCH_RATIO = 1.3
#: at 2 nodes NCCL's own model (tuning.cc: tree on the intra graph's bandwidth, NVLSTree's network bandwidth
#: doubled) credits another algorithm with more than the ring, so a smaller excess already means a switch there
SWITCH_RATIO_TWO_NODES = 1.1
#: 95 % normal quantile for the prediction intervals (log-normal model error)
Z95 = 1.959964
#: prior relative model error (log scale) across scales, weighted as one held-out scale: what the back-test on
#: the real H100 series and the synthetic clusters leaves (5-10 %), so two scales cannot claim a +-2 % interval
PRIOR_SIGMA = 0.10
#: log-scale error when no scale can be held out (one multi-node scale in the fit): a factor 2 at 95 %
WIDE_SIGMA = math.log(2.0) / Z95
#: the back-test reports errors at these sizes and above (the bandwidth-bound regime)
BACKTEST_MIN_BYTES = 256 << 20
#: the fit keeps the sizes whose busbw reaches this share of the scale's large-message busbw: n >= n_half / 3, where
#: the bandwidth term is at least a quarter of the time (alpha and beta both measured, small-message protocols out)
MIN_BUSBW_FRACTION = 0.25
#: points within this factor of a scale's largest size give its "large-message busbw"
LARGE_FRACTION = 4
PARAMS = ("alpha_intra_us", "bw_intra_gbps", "alpha_inter_us", "bw_inter_gbps")
#: ring-like measured algorithms the fit accepts, in order of preference
RING_SOURCES = ("ring", "builtin")


@dataclass(frozen=True)
class TierCost:
    """Coefficients of one call on N nodes x g GPUs: steps on each tier, bytes per byte of n on each tier."""

    Li: float
    Le: float
    Wi: float
    We: float
    phased: bool = False  # bandwidth terms add (phases one after another) instead of the slowest tier bounding


@dataclass(frozen=True)
class Tiers:
    """Two-tier hardware: per-step latency (µs) and bus bandwidth (GB/s) of each tier; NaN: not identified."""

    alpha_intra_us: float
    bw_intra_gbps: float
    alpha_inter_us: float
    bw_inter_gbps: float

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, k) for k in PARAMS], dtype=float)


def _beta(bw_gbps: float) -> float:
    """µs per byte of a GB/s rate (0 for an infinite one, NaN for an unknown one)."""
    if bw_gbps is None or (isinstance(bw_gbps, float) and math.isnan(bw_gbps)):
        return math.nan
    return 0.0 if math.isinf(bw_gbps) else 1e-3 / bw_gbps


def tier_cost(collective: str, algorithm: str, nnodes: int, gpus_per_node: int) -> TierCost:
    """Two-tier coefficients (docs/two-tier.md).

    ring (NCCL's ring order: g - 1 NVLink hops then one network hop per node): steps as NCCL's tuning model
    counts them (src/graph/tuning.cc: nsteps, nInterSteps = 2(nNodes - 1) for all-reduce, nNodes - 1 otherwise);
    bytes as the flat ring (costs.py), every hop carrying the same chunk, so the slowest tier bounds the step.
    tree (all_reduce; NCCL's intra-node chain + inter-node double binary tree): latency 2((g - 1) intra +
    log2i(N) inter) (tuning.cc), bytes 2 per byte on the chain and on the network from 3 nodes on (tree ratio
    0.5), 1 on the network at 2 nodes (each node sends and receives n once).  hierarchical (all_reduce):
    intra reduce-scatter, inter ring all-reduce of n/g per GPU, intra all-gather, one after another."""
    N, g = int(nnodes), int(gpus_per_node)
    if N < 1 or g < 1:
        raise AnalysisError(f"bad topology {N} nodes x {g} GPUs")
    p = N * g
    if p == 1:
        return TierCost(0.0, 0.0, 0.0, 0.0)
    multi = N > 1
    if algorithm == "ring":
        # bytes per byte of S on every hop = the busbw factor F (2(p-1)/p, (p-1)/p, or 1 for the rooted chain);
        # passes round the ring: 2 for all-reduce (reduce-scatter + all-gather), else 1
        desc = spec(collective)
        w = desc.busbw(p)
        passes = 1 if desc.rooted else round(w * p / (p - 1))
        steps, inter = passes * (p - 1), passes * (N - 1)
        return TierCost(float(steps - inter), float(inter), w if g > 1 else 0.0, w if multi else 0.0)
    if algorithm == "direct":
        if collective != "all_to_all":
            raise AnalysisError(f"two-tier direct is the all_to_all model (ring for {collective})")
        # each rank sends n/p to every other: (g - 1)/p n over its link, (p - g)/p n through the node's NICs,
        # which carry g of those shares: busbw (p-1)/p n / t = min(link (p-1)/(g-1), B (p-1)/(g (p-g)))
        return TierCost(1.0 if g > 1 else 0.0, 1.0 if multi else 0.0, (g - 1) / p, g * (p - g) / p)
    if collective != "all_reduce":
        raise AnalysisError(f"two-tier {algorithm} is modelled for all_reduce only (ring for {collective})")
    if algorithm == "tree":
        # NCCL's tree bandwidth (tuning.cc): busBw 0.92 x the channels', algorithm bandwidth half of it, so
        # 2/0.92 bytes per byte of n on each tier; at 2 nodes NCCL takes the intra graph's bandwidth, which
        # the network bounds here (the tree's NICs are not faster than the ring's)
        w = 2.0 / nccl_tuning.TREE_EFFICIENCY
        return TierCost(2.0 * (g - 1), 2.0 * costs.lg_floor(N), w if g > 1 else 0.0, w if multi else 0.0)
    if algorithm == "nvls_tree_physical":
        # NVLSTree at 2 nodes as the wires allow (each node sends and receives n once); used by the synthetic
        # clusters to stand for "another algorithm at few nodes", never predicted
        we = 0.0 if N == 1 else (1.0 if N == 2 else 2.0)
        return TierCost(2.0 * (g - 1), 2.0 * costs.lg_floor(N), 2.0 if g > 1 else 0.0, we)
    if algorithm == "hierarchical":
        return TierCost(2.0 * (g - 1), 2.0 * (N - 1), 2.0 * (g - 1) / g, 2.0 * (N - 1) / N, phased=True)
    raise AnalysisError(f"unknown two-tier algorithm {algorithm!r}; choose {', '.join(ALGORITHMS)}")


def tier_time_us(c: TierCost, nbytes: float | np.ndarray, t: Tiers) -> float | np.ndarray:
    """Model time in µs of one call (NaN where it needs a tier that is not identified)."""
    n = np.asarray(nbytes, dtype=float)
    lat = (c.Li * t.alpha_intra_us if c.Li else 0.0) + (c.Le * t.alpha_inter_us if c.Le else 0.0)
    bi = c.Wi * _beta(t.bw_intra_gbps) if c.Wi else 0.0
    be = c.We * _beta(t.bw_inter_gbps) if c.We else 0.0
    if c.phased:
        bw_term = bi + be
    elif c.We and not math.isnan(be) and math.isnan(bi):
        bw_term = be  # intra tier not identified: the network bounds a multi-node ring/tree (model assumption)
    else:
        bw_term = max(bi, be) if not (math.isnan(bi) or math.isnan(be)) else math.nan
    out = lat + bw_term * n
    return float(out) if out.ndim == 0 else out


# --- points with their topology ---------------------------------------------------------------------------


def topology_of(meta: dict, world_size: int, gpus_per_node: int | None = None) -> tuple[int, int]:
    """(nnodes, gpus_per_node) of a run: ``gpus_per_node`` when given, else run.json's ``gpus_per_node`` /
    ``nnodes`` (top level or ``hardware``), else one node (a ``collbench run`` without topology)."""
    p = int(world_size)
    if gpus_per_node:
        if p > gpus_per_node and p % gpus_per_node:
            raise AnalysisError(f"world size {p} is not a multiple of --gpus-per-node {gpus_per_node}")
        return max(1, p // gpus_per_node), min(p, gpus_per_node)
    hw = meta.get("hardware") or {}
    g = meta.get("gpus_per_node") or hw.get("gpus_per_node")
    n = meta.get("nnodes") or hw.get("nnodes")
    if g and int(g) > 0 and p % int(g) == 0:
        return p // int(g), int(g)
    if n and int(n) > 0 and p % int(n) == 0:
        return int(n), p // int(n)
    return 1, p


def load_points(paths: Iterable[str], gpus_per_node: int | None = None) -> pd.DataFrame:
    """Usable points of every run under ``paths`` with ``nnodes`` and ``gpus_per_node`` columns."""
    from analysis.read_runs import find_runs

    frames = []
    for path in paths:
        for run in find_runs(path):
            pts = run.points
            if pts.empty:
                continue
            topo = {int(p): topology_of(run.meta, int(p), gpus_per_node) for p in pts["world_size"].dropna().unique()}
            pts = pts[pts["world_size"].notna()].copy()
            pts["nnodes"] = [topo[int(p)][0] for p in pts["world_size"]]
            pts["gpus_per_node"] = [topo[int(p)][1] for p in pts["world_size"]]
            pts["gpu_model"] = run.meta.get("gpu_model") or (run.meta.get("hardware") or {}).get("gpu_model")
            frames.append(pts)
    if not frames:
        raise AnalysisError("no points in the given runs")
    return usable_points(pd.concat(frames, ignore_index=True))


def _large_regime(curve: pd.DataFrame, collective: str, min_fraction: float) -> pd.DataFrame:
    """The large-message regime of one scale's curve: the last piece of its piecewise fit (all of it when
    the curve has no breakpoint or too few sizes to look for one), and of that the sizes whose busbw reaches
    ``min_fraction`` of the scale's large-message busbw (n >= n_half for 0.5: where beta is measured)."""
    curve = curve.sort_values("bytes")
    n, t = curve["bytes"].to_numpy(dtype=float), curve["time_us"].to_numpy(dtype=float)
    if len(n) >= 6 and (cuts := find_breaks(n, t)):
        curve = curve.iloc[cuts[-1] :]
    if min_fraction > 0:
        busbw = curve["bytes"] / curve["time_us"] * costs.busbw_factor(collective, int(curve["world_size"].iloc[0]))
        top = busbw[curve["bytes"] * LARGE_FRACTION >= curve["bytes"].max()].median()
        keep = curve[busbw >= min_fraction * top]
        if len(keep) >= 3:
            curve = keep
    return curve


def _ring_points(points: pd.DataFrame, collective: str) -> tuple[pd.DataFrame, str]:
    """One curve per world size of ``collective``: ring-like data, out-of-place where both variants exist."""
    df = points[(points["collective"] == collective) & (points["world_size"] > 1)]
    for alg in RING_SOURCES:
        sel = df[df["algorithm"] == alg]
        if not sel.empty:
            break
    else:
        raise AnalysisError(f"no ring or builtin {collective} points to fit the two-tier model")
    if "in_place" in sel and sel["in_place"].nunique() > 1:
        sel = sel[~sel["in_place"].astype(bool)]
    sel = sel.sort_values("bytes").drop_duplicates(["world_size", "nnodes", "gpus_per_node", "bytes"])
    cols = ["world_size", "nnodes", "gpus_per_node", "bytes", "time_us"]
    return sel[cols + (["samples_us"] if "samples_us" in sel else [])].reset_index(drop=True), alg
    return sel, alg


# --- the fit ----------------------------------------------------------------------------------------------


@dataclass
class Scale:
    """One measured scale: N nodes x g GPUs, its large-message busbw, whether the ring fit uses it."""

    nnodes: int
    gpus_per_node: int
    world_size: int
    busbw_large_gbps: float
    bytes_max: int
    in_fit: bool = True
    note: str = ""


@dataclass
class TwoTierFit:
    """A fitted two-tier model of one collective, with bootstrap replicates and the back-test."""

    collective: str
    source_algorithm: str
    tiers: Tiers
    boot: np.ndarray  # (B, 4) replicates of PARAMS
    scales: list[Scale]
    notes: list[str] = field(default_factory=list)
    mape: float = math.nan
    loso: list[dict] = field(default_factory=list)
    #: log-scale model error across scales (from the leave-one-scale-out residuals, PRIOR_SIGMA weighted as one
    #: scale; WIDE_SIGMA when no scale can be held out) and why it has that value
    model_sigma: float = WIDE_SIGMA
    sigma_basis: str = "no scale held out"
    gpu_model: str | None = None
    #: measured curves of the scales kept out as another algorithm: (nnodes, gpus_per_node) -> (bytes, time_us)
    other: dict = field(default_factory=dict)

    def interval(self, name: str) -> tuple[float, float]:
        col = self.boot[:, PARAMS.index(name)]
        col = col[np.isfinite(col)]
        if col.size == 0:
            return math.nan, math.nan
        lo, hi = np.percentile(col, [2.5, 97.5])
        return float(lo), float(hi)

    def predict_us(self, algorithm: str, nnodes: int, gpus_per_node: int, nbytes: float,
                   extra_sigma: float = 0.0) -> tuple[float, float, float]:  # fmt: skip
        """(time, 2.5 %, 97.5 %) in µs at N nodes x g GPUs.  The interval is log-normal with the parameters'
        spread (robust log-scale spread of the bootstrap replicates' predictions) and the model's own error
        across scales (``model_sigma``, plus ``extra_sigma`` for what the caller knows is less certain) added
        in quadrature: the bootstrap alone resamples sizes, not the scales the prediction extrapolates to."""
        c = tier_cost(self.collective, algorithm, nnodes, gpus_per_node)
        t = tier_time_us(c, nbytes, self.tiers)
        if not math.isfinite(t) or t <= 0:
            return t, math.nan, math.nan
        reps = np.array([tier_time_us(c, nbytes, Tiers(*row)) for row in self.boot])
        reps = reps[np.isfinite(reps) & (reps > 0)]
        s_boot = 0.0
        if reps.size >= 2:
            logs = np.log(reps / t)
            s_boot = float(1.4826 * np.median(np.abs(logs - np.median(logs))))
        s = math.sqrt(s_boot**2 + self.model_sigma**2 + extra_sigma**2)
        return t, t * math.exp(-Z95 * s), t * math.exp(Z95 * s)

    def summary(self) -> list[str]:
        lines = [f"two-tier fit of {self.collective} (from {self.source_algorithm} data; MAPE {self.mape:.1f} %):"]
        for tier in ("intra", "inter"):
            a, bw = f"alpha_{tier}_us", f"bw_{tier}_gbps"
            va, vb = getattr(self.tiers, a), getattr(self.tiers, bw)
            (alo, ahi), (blo, bhi) = self.interval(a), self.interval(bw)
            if math.isnan(vb):
                scale = "one-node" if tier == "intra" else "multi-node"
                got = "" if math.isnan(va) else f"alpha {va:.3g} us [{alo:.3g}, {ahi:.3g}]; "
                lines.append(f"  {tier}-node: {got}bus bandwidth not identified (no {scale} scale in the fit)")
                continue
            lines.append(f"  {tier}-node: alpha {va:.3g} us [{alo:.3g}, {ahi:.3g}], bus bandwidth {vb:.4g} GB/s "
                         f"[{blo:.4g}, {bhi:.4g}]")  # fmt: skip
        for s in self.scales:
            mark = "" if s.in_fit else f"  FLAGGED: {s.note}"
            lines.append(f"  scale {s.nnodes} x {s.gpus_per_node} (p = {s.world_size}): large-message busbw "
                         f"{s.busbw_large_gbps:.4g} GB/s{mark}")  # fmt: skip
        lines.append(f"  prediction intervals: model error across scales {100 * self.model_sigma:.1f} % (log sd; "
                     f"{self.sigma_basis}) with the fit's bootstrap spread")
        for r in self.loso:
            err = (
                "no sizes >= 256 MiB"
                if r["n_sizes"] == 0
                else (
                    f"error {r['mape_pct']:.1f} % mean, {r['max_err_pct']:.1f} % max "
                    f"over {r['n_sizes']} sizes >= 256 MiB"
                )
            )
            cov = (f"; {r['n_covered']} of {r['n_sizes']} inside the 95 % interval of the fit without it"
                   if r["n_sizes"] else "")
            lines.append(f"  back-test, {r['nnodes']} nodes left out and predicted: {err}{cov}")
        lines += [f"  note: {n}" for n in self.notes]
        return lines


def algorithms_for(collective: str) -> list[str]:
    """The two-tier algorithms ``collective`` has a model for (predict offers these and builtin)."""
    model = fit_algorithm(collective)
    if model != "ring":
        return [model]
    return ["ring", "tree", "hierarchical"] if collective == "all_reduce" else ["ring"]


def fit_algorithm(collective: str) -> str:
    """The two-tier model the fit of ``collective`` uses (ring, or direct for all_to_all)."""
    return FIT_ALGORITHM.get(collective, "ring")


def _design(pts: pd.DataFrame, collective: str) -> np.ndarray:
    """Rows [Li, Le, Wi n (intra-bound), We n (inter-bound)] of the ring model: the slowest tier bounds the
    bandwidth term, the network from 2 nodes on (checked after the fit: bw_inter <= bw_intra)."""
    rows = []
    for r in pts.itertuples(index=False):
        c = tier_cost(collective, fit_algorithm(collective), int(r.nnodes), int(r.gpus_per_node))
        n = float(r.bytes)
        rows.append([c.Li, c.Le, 0.0 if c.We else c.Wi * n, c.We * n])
    return np.array(rows, dtype=float)


def _solve(design: np.ndarray, t: np.ndarray) -> np.ndarray:
    """PARAMS by relative-error NNLS (rows / t, unit-norm columns); a column that is all zero: NaN."""
    scaled = design / t[:, None]
    norms = np.linalg.norm(scaled, axis=0)
    live = norms > 0
    x = np.full(4, math.nan)
    sol, _ = optimize.nnls(scaled[:, live] / norms[live], np.ones_like(t))
    x[live] = sol / norms[live]
    a_i, b_i, a_e, b_e = x[0], x[2], x[1], x[3]
    bw = lambda b: math.nan if math.isnan(b) else (math.inf if b <= 0 else 1e-3 / b)  # noqa: E731
    return np.array([a_i, bw(b_i), a_e, bw(b_e)])


def _scales(pts: pd.DataFrame, collective: str) -> list[Scale]:
    out = []
    for (p, nn, g), curve in pts.groupby(["world_size", "nnodes", "gpus_per_node"], sort=True):
        top = curve[curve["bytes"] * LARGE_FRACTION >= curve["bytes"].max()]
        busbw = top["bytes"] / top["time_us"] * 1e-3 * costs.busbw_factor(collective, int(p))
        out.append(Scale(int(nn), int(g), int(p), float(busbw.median()), int(curve["bytes"].max())))
    return out


def detect_switches(scales: list[Scale], collective: str) -> None:
    """Flag (in place) every multi-node scale whose large-message busbw exceeds SWITCH_RATIO x the ring roof the
    other scales show: a ring's busbw across nodes is bounded by the same network roof at every node count (its
    bandwidth term is 2(p-1)/p n beta_inter, busbw = 1/beta_inter), so a scale well above the others runs another
    algorithm.  The roof is the larger of the median of the larger scales and the median of the smaller scales
    kept in the fit: a network that slows down at its largest scales (congestion: a GH200 system's 256 and 512
    nodes at 0.7x its 4-128 nodes, results/README.md) lowers the first, and then the smaller ring scales still
    agree with each other.  The largest scale is the reference and is never flagged."""
    if fit_algorithm(collective) != "ring":
        return  # all-to-all busbw depends on the node count (B (p-1)/(g (p-g))): no common roof to compare
    multi = sorted((s for s in scales if s.nnodes > 1), key=lambda s: s.nnodes)
    for i, s in enumerate(multi):
        larger = [m.busbw_large_gbps for m in multi[i + 1 :] if m.nnodes > s.nnodes]
        if not larger:
            continue
        kept_smaller = [m.busbw_large_gbps for m in multi[:i] if m.in_fit and m.nnodes < s.nnodes]
        roof = max(float(np.median(larger)), float(np.median(kept_smaller)) if kept_smaller else 0.0)
        ratio = SWITCH_RATIO_TWO_NODES if s.nnodes == 2 and collective == "all_reduce" else SWITCH_RATIO
        if s.busbw_large_gbps > ratio * roof:
            s.in_fit = False
            s.note = (f"{s.busbw_large_gbps:.4g} GB/s is {s.busbw_large_gbps / roof:.2f}x the ring roof "
                      f"{roof:.4g} GB/s of the other scales: no ring reaches it, so this scale runs another "
                      f"algorithm (above {ratio:g}x: NCCL's NVLSTree/tree at 2 nodes, CollNet); kept out of the "
                      "ring fit")  # fmt: skip


def fit_two_tier(points: pd.DataFrame, collective: str = "all_reduce", *, n_boot: int = 200, seed: int = 0,
                 backtest: bool = True, detect: bool = True,
                 min_fraction: float = MIN_BUSBW_FRACTION) -> TwoTierFit:  # fmt: skip
    """Fit the two-tier ring model of ``collective`` to points with ``nnodes`` / ``gpus_per_node``
    (``load_points``); needs a multi-node scale, and two scales in all (docs/two-tier.md, Fit)."""
    raw, source = _ring_points(points, collective)
    scales = _scales(raw, collective)
    if not any(s.nnodes > 1 for s in scales):
        raise AnalysisError(f"{collective}: no multi-node scale (runs on one node only): the network tier "
                            "cannot be fitted; pass --gpus-per-node if the runs' topology is not recorded")  # fmt: skip
    if detect:
        detect_switches(scales, collective)
    kept = {(s.world_size, s.nnodes) for s in scales if s.in_fit}
    parts = []
    for (p, nn), curve in raw.groupby(["world_size", "nnodes"], sort=True):
        if (int(p), int(nn)) in kept:
            parts.append(_large_regime(curve, collective, min_fraction).assign(scale=f"{int(nn)}x{int(p) // int(nn)}"))
    pts = pd.concat(parts, ignore_index=True)
    if pts["scale"].nunique() < 2 and len(pts) < 3:
        raise AnalysisError(f"{collective}: too few points for the two-tier fit")
    design, t = _design(pts, collective), pts["time_us"].to_numpy(dtype=float)
    x = _solve(design, t)
    tiers = Tiers(*x)
    notes = []
    if source == "builtin" and fit_algorithm(collective) == "ring":
        notes.append("builtin taken as the backend's ring at large messages (NCCL's choice from a few nodes on)")
    elif source == "builtin":
        notes.append(f"builtin taken as the {fit_algorithm(collective)} model: every pair's block at once, the node's "
                     "NICs carrying its share g (p-g)/p (docs/two-tier.md)")
    notes.append(
        "fitted on the large-message regime of each scale (last piece of its piecewise curve fit, "
        f"sizes with busbw >= {min_fraction:g} x its plateau)"
    )
    if not math.isnan(x[1]) and not math.isnan(x[3]) and x[3] > x[1]:
        notes.append(f"fitted network bus bandwidth {x[3]:.4g} GB/s exceeds the intra-node {x[1]:.4g} GB/s: the "
                     "model assumes the network is the slower tier; check the topology")  # fmt: skip
    if pts["scale"].nunique() < 2:
        notes.append("one scale in the fit: latencies of the two tiers are not separated")
    pred = design @ np.nan_to_num(np.array([x[0], x[2], _beta(x[1]), _beta(x[3])]), nan=0.0)
    mape = float(100 * np.mean(np.abs(pred - t) / t))
    rng = np.random.default_rng(seed)
    samples = list(pts["samples_us"]) if "samples_us" in pts else []
    samples = [np.asarray(x, dtype=float) for x in samples] if samples and all(x for x in samples) else None
    groups = [np.flatnonzero(pts["scale"].to_numpy() == s) for s in pts["scale"].unique()]
    boot = np.empty((n_boot, 4))
    for k in range(n_boot):
        if samples is not None:  # resample each point's iterations (docs/fitting.md, Confidence intervals)
            tb = np.array([np.median(rng.choice(x, size=x.size)) for x in samples])
            boot[k] = _solve(design, tb)
        else:  # case bootstrap within each scale: every scale stays in every replicate
            idx = np.concatenate([rng.choice(g, size=g.size) for g in groups])
            boot[k] = _solve(design[idx], t[idx])
    fit = TwoTierFit(collective, source, tiers, boot if n_boot else x[None, :], scales, notes, mape)
    fit.notes.append(
        "intervals: bootstrap over " + ("per-iteration samples" if samples is not None else "sizes within each scale")
        + ", widened by the model's error across scales"
    )
    fit.model_sigma, fit.sigma_basis = model_sigma(raw, collective, [s for s in scales if s.in_fit],
                                                   min_fraction=min_fraction)  # fmt: skip
    models = points[points["collective"] == collective].get("gpu_model")
    if models is not None and models.notna().any():
        fit.gpu_model = str(models.dropna().iloc[0])
    for s in scales:
        if not s.in_fit:
            c = raw[(raw["world_size"] == s.world_size) & (raw["nnodes"] == s.nnodes)].sort_values("bytes")
            fit.other[(s.nnodes, s.gpus_per_node)] = (c["bytes"].to_numpy(dtype=float),
                                                      c["time_us"].to_numpy(dtype=float))  # fmt: skip
    if backtest:
        fit.loso = backtest_scales(raw, collective, scales, min_fraction=min_fraction)
    return fit


def _solve_scales(raw: pd.DataFrame, collective: str, keep: list[Scale], min_fraction: float) -> np.ndarray:
    """PARAMS fitted to the large-message regime of the scales in ``keep``."""
    idx = raw.set_index(["world_size", "nnodes"]).index.isin([(o.world_size, o.nnodes) for o in keep])
    parts = [_large_regime(c, collective, min_fraction) for _, c in raw[idx].groupby(["world_size", "nnodes"])]
    pts = pd.concat(parts, ignore_index=True)
    return _solve(_design(pts, collective), pts["time_us"].to_numpy(dtype=float))


def _held_out(raw: pd.DataFrame, collective: str, s: Scale, rest: list[Scale], min_bytes: int,
              min_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(bytes, measured, predicted µs) of scale ``s`` at sizes >= ``min_bytes``, predicted from ``rest``."""
    x = _solve_scales(raw, collective, rest, min_fraction)
    held = raw[(raw["world_size"] == s.world_size) & (raw["nnodes"] == s.nnodes) & (raw["bytes"] >= min_bytes)]
    c = tier_cost(collective, fit_algorithm(collective), s.nnodes, s.gpus_per_node)
    pred = np.array([tier_time_us(c, n, Tiers(*x)) for n in held["bytes"]], dtype=float)
    return held["bytes"].to_numpy(dtype=float), held["time_us"].to_numpy(dtype=float), pred


def _can_hold_out(s: Scale, scales: list[Scale]) -> bool:
    return s.nnodes > 1 and any(o.nnodes > 1 for o in scales if o is not s)


def model_sigma(raw: pd.DataFrame, collective: str, scales: list[Scale], min_bytes: int = BACKTEST_MIN_BYTES,
                min_fraction: float = MIN_BUSBW_FRACTION) -> tuple[float, str]:  # fmt: skip
    """The model's log-scale error across scales and a phrase saying where it comes from: every multi-node
    scale of ``scales`` that can be held out is predicted from the others, its RMS log error at sizes >=
    ``min_bytes`` is one observation, and PRIOR_SIGMA counts as one more (so two scales that happen to agree
    do not give a +-1 % interval).  With no scale to hold out (one multi-node scale): WIDE_SIGMA (a factor 2
    at 95 %), since nothing measures how the model carries to another node count."""
    rms = []
    for s in scales:
        if not _can_hold_out(s, scales):
            continue
        _, meas, pred = _held_out(raw, collective, s, [o for o in scales if o is not s], min_bytes, min_fraction)
        ok = np.isfinite(pred) & (pred > 0)
        if ok.any():
            rms.append(float(np.sqrt(np.mean(np.log(pred[ok] / meas[ok]) ** 2))))
    if not rms:
        return WIDE_SIGMA, ("one multi-node scale in the fit: nothing measures the model's error at another node "
                            "count, so the interval is a factor 2 either way")  # fmt: skip
    sigma = math.sqrt((PRIOR_SIGMA**2 + sum(r**2 for r in rms)) / (1 + len(rms)))
    return sigma, (f"leave-one-scale-out over {len(rms)} scale{'s' if len(rms) > 1 else ''} "
                   f"({', '.join(f'{100 * r:.1f} %' for r in rms)}) pooled with a {100 * PRIOR_SIGMA:.0f} % prior")


def backtest_scales(raw: pd.DataFrame, collective: str, scales: list[Scale], min_bytes: int = BACKTEST_MIN_BYTES,
                    min_fraction: float = MIN_BUSBW_FRACTION) -> list[dict]:  # fmt: skip
    """Leave each multi-node scale of the fit out, refit on the rest, predict its points at sizes >=
    ``min_bytes``: mean, median and max relative error (%), the median at >= 1 GiB, and how many of them the
    95 % interval of the fit without it holds (its model error from its own leave-one-out: the honest test of
    the intervals).  Scales whose removal leaves no multi-node scale are skipped."""
    out = []
    ring = [s for s in scales if s.in_fit]
    for s in ring:
        if not _can_hold_out(s, ring):
            continue
        rest = [o for o in ring if o is not s]
        n, meas, pred = _held_out(raw, collective, s, rest, min_bytes, min_fraction)
        x = _solve_scales(raw, collective, rest, min_fraction)
        sigma, _ = model_sigma(raw, collective, rest, min_bytes, min_fraction)
        err = np.abs(pred - meas) / meas * 100
        covered = np.abs(np.log(pred / meas)) <= Z95 * sigma
        big = err[n >= 1 << 30]
        out.append({"nnodes": s.nnodes, "gpus_per_node": s.gpus_per_node, "world_size": s.world_size,
                    "n_sizes": int(len(n)), "mape_pct": float(err.mean()) if len(err) else math.nan,
                    "median_err_pct": float(np.median(err)) if len(err) else math.nan,
                    "median_err_1g_pct": float(np.median(big)) if len(big) else math.nan,
                    "max_err_pct": float(err.max()) if len(err) else math.nan,
                    "n_covered": int(covered.sum()), "sigma_without": sigma,
                    "bw_inter_gbps_without": float(x[3])})  # fmt: skip
    return out


def fit_all_two_tier(points: pd.DataFrame, collectives: Sequence[str], **kw) -> dict[str, TwoTierFit]:
    """Two-tier fits of every collective in ``collectives`` that has multi-node ring data (others skipped)."""
    out = {}
    for c in collectives:
        try:
            out[c] = fit_two_tier(points, c, **kw)
        except AnalysisError as exc:
            warnings.warn(str(exc), stacklevel=2)
    return out


def multi_scale(points: pd.DataFrame) -> bool:
    """True when the points hold a multi-node scale and at least two scales (the two-tier fit applies)."""
    scales = points[points["world_size"] > 1][["world_size", "nnodes"]].drop_duplicates()
    return len(scales) >= 2 and bool((scales["nnodes"] > 1).any())
