"""``collbench predict``: time, busbw and the best algorithm at sizes and world sizes not measured, and
"will more GPUs help?" for a data-parallel step (docs/theory.md; docs/fitting.md, Model fit, Data-parallel step).

Each algorithm is predicted from its own ``model`` fit (alpha, beta across world sizes) when there is one,
else from the joint hardware fit (collective ``*``: alpha, beta, gamma shared by the hand-written
algorithms) through the algorithm's L(p), W(p), G(p) in ``collectives.costs`` (docs/costs.md), pipelined
algorithms at the segment size of the fitted runs.  builtin follows the backend's algorithm where it is
known; where it is not, its prediction is a lower bound, printed as such and never ranked best.  From a
two-tier fit, builtin is the algorithm NCCL's tuning model would choose at that scale (``nccl_tuning``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import nccl_tuning, twotier
from analysis.errors import AnalysisError
from analysis.fits_table import check_fits
from analysis.fitting import fit_all, model_time_us
from collectives import costs


def load_fits(paths: list[str]) -> pd.DataFrame:
    """A fits.csv, or run directories fitted on the fly."""
    if len(paths) == 1 and paths[0].endswith(".csv"):
        try:
            fits = pd.read_csv(paths[0], dtype=str, keep_default_na=False)
        except FileNotFoundError:
            raise AnalysisError(f"{paths[0]}: no such file") from None
        except IsADirectoryError:
            raise AnalysisError(f"{paths[0]}: is a directory, not a fits.csv") from None
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError):
            raise AnalysisError(f"{paths[0]}: not a fits.csv") from None
        return _typed(check_fits(fits, paths[0]))
    from analysis.read_runs import load_runs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_all(load_runs(paths), n_boot=0)


def _typed(fits: pd.DataFrame) -> pd.DataFrame:
    """The text columns of a checked fits.csv as ``pd.read_csv`` types them (empty -> NaN, true/false -> bool)."""
    out = fits.replace("", math.nan)
    for col in ("in_place",):
        if col in out:
            low = out[col].astype(str).str.lower()
            out[col] = out[col].where(~low.isin(("true", "false")), low.eq("true"))
    return out


def _opt_str(row: pd.Series, name: str) -> str | None:
    v = row.get(name)
    return None if v is None or pd.isna(v) or v == "" else str(v)


def _num(row: pd.Series, name: str) -> float:
    v = row.get(name)
    return float(v) if v is not None and pd.notna(v) else math.nan


def _params(fits: pd.DataFrame, collective: str, algorithm: str) -> dict | None:
    """How to predict ``algorithm``: alpha_us, bw_gbps, gamma_gbps and their intervals, basis, and the segment
    size and backend of the fitted run (pipelined algorithms are predicted at the segment size they were
    measured with).  Without a model fit, a curve at one world size gives alpha and beta through the
    algorithm's L(p0), W(p0) (``one_size``: it extrapolates one tier)."""
    models = fits[fits["scope"] == "model"]
    own = models[(models["collective"] == collective) & (models["algorithm"] == algorithm)]
    own = own.sort_values("in_place", key=lambda s: s.astype(str).str.lower())  # out-of-place first, as nccl-tests
    if not own.empty:
        r, basis = own.iloc[0], "own model fit"
    else:
        joint = models[models["collective"] == "*"]
        if joint.empty or algorithm == "builtin":
            return _one_size_params(fits, collective, algorithm)
        r, basis = joint.iloc[0], "joint hardware fit"
    seg = r.get("segment_bytes")
    return {
        "alpha": float(r["alpha_us"]), "bw": float(r["bw_gbps"]),
        "alpha_lo": _num(r, "alpha_us_lo"), "alpha_hi": _num(r, "alpha_us_hi"),
        "bw_lo": _num(r, "bw_gbps_lo"), "bw_hi": _num(r, "bw_gbps_hi"),
        "gamma": r["gamma_gbps"] if pd.notna(r["gamma_gbps"]) else None, "basis": basis,
        "segment_bytes": int(seg) if seg is not None and pd.notna(seg) else None,
        "backend": _opt_str(r, "backend"), "backend_algorithm": _opt_str(r, "backend_algorithm"),
    }  # fmt: skip


def _one_size_params(fits: pd.DataFrame, collective: str, algorithm: str) -> dict | None:
    """alpha = a / L(p0), beta = b / W(p0) from the curve fit of ``algorithm`` at its one world size p0 > 1
    (first piece's intercept, last piece's slope: small-message latency, large-message bandwidth); the
    reduction time stays folded into beta.  builtin NCCL all_reduce whose algorithm was not recorded is taken
    as NCCL's ring (its choice for large messages inside a node), said in the basis.  None when the curves
    of ``algorithm`` span several world sizes (then a model fit is missing for another reason) or none."""
    cur = fits[(fits["scope"] == "curve") & (fits["collective"] == collective) & (fits["algorithm"] == algorithm)]
    cur = cur[pd.to_numeric(cur["world_size"], errors="coerce") > 1]
    if cur.empty or cur["world_size"].nunique() != 1:
        return None
    if cur["in_place"].nunique() > 1:
        cur = cur[~cur["in_place"].astype(str).str.lower().eq("true")]
    cur = cur.sort_values("bytes_min")
    first, last = cur.iloc[0], cur.iloc[-1]
    p0 = int(first["world_size"])
    backend, balg = _opt_str(first, "backend"), _opt_str(first, "backend_algorithm")
    basis = f"one world size (p = {p0}): alpha, beta from its curve through L({p0}), W({p0}); extrapolates one tier"
    if algorithm == "builtin" and (backend or "").lower() in ("nccl", "rccl") and collective == "all_reduce" \
            and not balg:
        balg = "ring"
        basis += "; builtin NCCL taken as ring"
    seg = first.get("segment_bytes")
    seg = int(seg) if seg is not None and pd.notna(seg) else None
    n_small, n_large = float(first["bytes_min"]), float(last["bytes_max"])
    c_small = costs.cost(collective, algorithm, p0, nbytes=n_small, segment_bytes=seg, backend=backend,
                         backend_algorithm=balg)  # fmt: skip
    c_large = costs.cost(collective, algorithm, p0, nbytes=n_large, segment_bytes=seg, backend=backend,
                         backend_algorithm=balg)  # fmt: skip
    if c_small.L <= 0 or c_large.W <= 0:
        return None

    def bw(v: float) -> float:  # algbw of the curve (GB/s of n) -> port rate: b = W beta, 1/beta = W bw
        return v * c_large.W if math.isfinite(v) else v

    return {
        "alpha": float(first["alpha_us"]) / c_small.L, "bw": bw(float(last["bw_gbps"])),
        "alpha_lo": _num(first, "alpha_us_lo") / c_small.L, "alpha_hi": _num(first, "alpha_us_hi") / c_small.L,
        "bw_lo": bw(_num(last, "bw_gbps_lo")), "bw_hi": bw(_num(last, "bw_gbps_hi")),
        "gamma": None, "basis": basis, "segment_bytes": seg, "backend": backend, "backend_algorithm": balg,
        "one_size": p0,
    }  # fmt: skip


def _time_us(collective: str, alg: str, p: int, n: float, par: dict, alpha: float | None = None,
             bw: float | None = None) -> float:  # fmt: skip
    return float(model_time_us(collective, alg, p, n, par["alpha"] if alpha is None else alpha,
                               par["bw"] if bw is None else bw, par["gamma"],
                               segment_bytes=par["segment_bytes"], backend=par["backend"],
                               backend_algorithm=par["backend_algorithm"]))  # fmt: skip


@dataclass
class Prediction:
    time_us: float
    time_us_lo: float
    time_us_hi: float
    basis: str
    lower_bound: bool = False
    nnodes: int | None = None
    gpus_per_node: int | None = None


class FitsPredictor:
    """Predictions from a fits table (one tier): each algorithm's model fit, the joint fit, or one world size.

    The interval propagates the fit's alpha and bandwidth intervals (the time is monotone in both)."""

    def __init__(self, fits: pd.DataFrame, collective: str, measured_nnodes: int | None = None) -> None:
        self.fits, self.collective = fits, collective
        self.measured_nnodes = measured_nnodes  # nodes of the runs behind a one-world-size fit (None: unknown)
        self._cache: dict[str, dict | None] = {}
        self.warnings: list[str] = []

    def why_not(self, p: int) -> str | None:
        """Why nothing can be predicted (None: the reason is not this predictor's to give)."""
        have = sorted(set(self.fits["collective"].dropna().astype(str)) - {"*"}) if "collective" in self.fits else []
        if self.collective not in have:
            return (f"the runs hold no {self.collective} (they hold {', '.join(have) or 'nothing fitted'}): "
                    f"pass --collective {have[0]}" if have else f"the runs hold no {self.collective}")  # fmt: skip
        return None

    def params(self, algorithm: str) -> dict | None:
        if algorithm not in self._cache:
            self._cache[algorithm] = _params(self.fits, self.collective, algorithm)
        return self._cache[algorithm]

    def predict(self, algorithm: str, p: int, n: float) -> Prediction | None:
        par = self.params(algorithm)
        if par is None:
            return None
        try:
            t = _time_us(self.collective, algorithm, p, n, par)
        except ValueError as exc:  # a cost the model cannot give at this p (costs.DBT_SCHEDULE_MAX_P): said, skipped
            msg = f"{self.collective}/{algorithm} at p = {p}, {n} bytes: not predicted ({exc})"
            if msg not in self.warnings:
                self.warnings.append(msg)
            return None
        lo = hi = math.nan
        if all(math.isfinite(par[k]) for k in ("alpha_lo", "alpha_hi", "bw_lo", "bw_hi")) and par["bw_lo"] > 0:
            lo = min(t, _time_us(self.collective, algorithm, p, n, par, par["alpha_lo"], par["bw_hi"]))
            hi = max(t, _time_us(self.collective, algorithm, p, n, par, par["alpha_hi"], par["bw_lo"]))
        c = costs.cost(self.collective, algorithm, p, nbytes=n, segment_bytes=par["segment_bytes"],
                       backend=par["backend"], backend_algorithm=par["backend_algorithm"])  # fmt: skip
        basis = par["basis"] + ("; LOWER BOUND (schedule assumed)" if c.assumed else "")
        if par.get("one_size") and p != par["one_size"]:
            msg = self._one_size_warning(algorithm, par["one_size"], p)
            if msg not in self.warnings:
                self.warnings.append(msg)
            # one world size measures nothing of how the model carries to another: the model error is the wide
            # one of the two-tier fit without a second scale (a factor 2 at 95 %), added to the fit's own spread
            w = math.exp(twotier.Z95 * twotier.WIDE_SIGMA)
            lo = (lo if math.isfinite(lo) else t) / w
            hi = (hi if math.isfinite(hi) else t) * w
            basis += "; interval x/÷ 2: one world size, the model's error at another is not measured"
        return Prediction(t, lo, hi, basis, bool(c.assumed))

    def _one_size_warning(self, algorithm: str, p0: int, p: int) -> str:
        """What a one-world-size extrapolation to ``p`` does not know: which way it goes and which tier is missing."""
        where = "larger" if p > p0 else "smaller"
        head = (f"{self.collective}/{algorithm}: predicted from one world size (p = {p0}): alpha and beta of one "
                f"tier, extrapolated to a {where} machine")  # fmt: skip
        nn = self.measured_nnodes
        if p > p0 and (nn is None or nn <= 1):
            return head + "; a larger machine that crosses the network is not measured"
        if p > p0:
            return head + (f"; the run already crossed the network ({nn} nodes): more nodes are taken to keep its "
                           "per-step latency and bandwidth")  # fmt: skip
        if nn is not None and nn > 1:
            return head + f"; the run crossed the network ({nn} nodes): a machine inside one node is not measured"
        return head + "; fewer GPUs on the same links are taken to keep their per-step latency and bandwidth"

    def algorithms(self, requested: list[str]) -> list[str]:
        return [a for a in requested if (self.collective, a) in costs.COSTS]


class TwoTierPredictor:
    """Predictions from a two-tier fit at N = p / g nodes of g GPUs (``analysis.twotier``).

    ``builtin`` is what NCCL would run there: the algorithm its tuning model picks (``analysis.nccl_tuning``,
    on the fitted tiers), timed by the two-tier model of that algorithm, or by the measured curve of a scale
    kept out of the ring fit as another algorithm at the same node count; the basis names the choice."""

    def __init__(self, fit: twotier.TwoTierFit, gpus_per_node: int) -> None:
        self.fit, self.g, self.collective = fit, int(gpus_per_node), fit.collective
        self.warnings: list[str] = []

    def topology(self, p: int) -> tuple[int, int]:
        if p <= self.g:
            return 1, p
        if p % self.g:
            raise AnalysisError(f"world size {p} is not a multiple of {self.g} GPUs per node (--gpus-per-node)")
        return p // self.g, self.g

    def why_not(self, p: int) -> str | None:
        """Why nothing can be predicted at ``p`` (None: something can)."""
        nn, g = self.topology(p)
        if nn == 1 and math.isnan(self.fit.tiers.bw_intra_gbps):
            return (f"p = {p} is one node of {g} GPUs, and the intra-node tier is not measured (no one-node run "
                    "in the fit): add a run on one node, or predict multi-node world sizes")  # fmt: skip
        return None

    def predict(self, algorithm: str, p: int, n: float) -> Prediction | None:
        nn, g = self.topology(p)
        if algorithm == "builtin":
            return self._builtin(nn, g, n)
        model = twotier.fit_algorithm(self.collective)
        if algorithm not in twotier.ALGORITHMS or (model != "ring" and algorithm != model):
            return None  # all_to_all: only its own model (no ring, tree or hierarchical schedule of it)
        try:
            twotier.tier_cost(self.collective, algorithm, nn, g)  # raises for an algorithm it does not model
        except AnalysisError:
            return None
        t, lo, hi = self.fit.predict_us(algorithm, nn, g, n)
        if not math.isfinite(t):
            return None
        basis = f"two-tier fit, {nn} x {g}"
        if algorithm not in ("ring", twotier.fit_algorithm(self.collective)):
            basis += f"; {algorithm} schedule on tiers fitted from ring data"
        if algorithm == "tree":
            basis += " (NCCL's tree bandwidth: 0.46 of its channels')"
        return Prediction(t, lo, hi, basis, False, nn, g)

    def _builtin(self, nn: int, g: int, n: float) -> Prediction | None:
        model = twotier.fit_algorithm(self.collective)
        if model != "ring":  # all_to_all: the direct model is what NCCL runs (no tuning choice)
            r = self.predict(model, nn * g, n)
            return None if r is None else Prediction(r.time_us, r.time_us_lo, r.time_us_hi,
                                                     r.basis + f"; builtin = NCCL's {model} all-to-all", False, nn, g)
        tiers = self.fit.tiers
        arch = nccl_tuning.arch_of(self.fit.gpu_model)
        choice = nccl_tuning.choose(self.collective, nn, g, n, bw_inter_gbps=tiers.bw_inter_gbps,
                                    bw_intra_gbps=tiers.bw_intra_gbps, arch=arch)  # fmt: skip
        if choice is None:
            return None
        src = f"NCCL {nccl_tuning.NCCL_COMMIT[:7]} tuning.cc"
        chosen = choice.algorithm
        if chosen in ("ring", "tree"):
            r = self.predict(chosen, nn * g, n)
            if r is None:
                return None
            return Prediction(r.time_us, r.time_us_lo, r.time_us_hi, f"{r.basis}; builtin: NCCL would choose "
                              f"{chosen} ({src})", False, nn, g)  # fmt: skip
        measured = self.fit.other.get((nn, g))
        ring = self.predict("ring", nn * g, n)
        if measured is not None:
            b, t = measured
            if b[0] <= n <= b[-1]:
                tm = float(np.exp(np.interp(np.log(n), np.log(b), np.log(t))))
                how = "interpolated"
            else:  # beyond the measured sizes: its largest size's busbw carried on
                tm = float(t[-1] * n / b[-1]) if n > b[-1] else float(t[0])
                how = "extrapolated at its " + ("largest size's bandwidth" if n > b[-1] else "smallest size's time")
            s = self.fit.model_sigma
            return Prediction(tm, tm * math.exp(-twotier.Z95 * s), tm * math.exp(twotier.Z95 * s),
                              f"measured at {nn} x {g} ({how}); builtin: NCCL would choose {chosen} ({src}), the "
                              "other algorithm this scale was flagged as", False, nn, g)  # fmt: skip
        if ring is None:
            return None
        ring_nccl = next(c for c in nccl_tuning.model(self.collective, nn, g, n, bw_inter_gbps=tiers.bw_inter_gbps,
                                                        bw_intra_gbps=tiers.bw_intra_gbps, arch=arch)
                         if c.algorithm == "ring")  # fmt: skip
        speedup = choice.algbw_gbps / ring_nccl.algbw_gbps
        if speedup <= 1.0 + 1e-9:
            # NCCL's model gives it the ring's bandwidth (both bound by the network): the ring fit times it
            return Prediction(ring.time_us, ring.time_us_lo, ring.time_us_hi, f"{ring.basis}; builtin: NCCL would "
                              f"choose {chosen} ({src}) at the ring's network bandwidth", False, nn, g)  # fmt: skip
        # NCCL's model credits it with more than the ring and no scale measured it: its own ratio, uncalibrated
        t, lo, hi = self.fit.predict_us("ring", nn, g, n, extra_sigma=twotier.WIDE_SIGMA)
        t, lo = t / speedup, lo / speedup
        msg = (f"{self.collective}/builtin at {nn} x {g}: NCCL would choose {chosen}, which its model puts "
               f"{speedup:.2f}x above the ring; no run measured it, so the prediction is NCCL's own ratio and the "
               "interval is wide (a run at this node count would calibrate it)")
        if msg not in self.warnings:
            self.warnings.append(msg)
        return Prediction(t, lo, hi, f"two-tier ring / {speedup:.2f} (NCCL's model of {chosen}, optimistic and not "
                          f"measured: a bound, not ranked; {src})", True, nn, g)  # fmt: skip

    def algorithms(self, requested: list[str]) -> list[str]:
        return [a for a in requested if a in twotier.ALGORITHMS or a == "builtin"]


def _bus(factor_gb: float, t_us: float) -> float:
    return factor_gb / t_us if t_us and t_us > 0 and math.isfinite(t_us) else math.nan


def _predictor(fits: pd.DataFrame | FitsPredictor | TwoTierPredictor, collective: str):  # noqa: ANN202
    return FitsPredictor(fits, collective) if isinstance(fits, pd.DataFrame) else fits


def predict_table(fits: pd.DataFrame | FitsPredictor | TwoTierPredictor, collective: str, algorithms: list[str],
                  sizes: list[int], world_sizes: list[int]) -> pd.DataFrame:  # fmt: skip
    """time_us (with its 95 % interval time_us_lo, time_us_hi) and busbw_gbps per (algorithm, world size, bytes),
    with the best algorithm marked.

    A prediction from an assumed schedule (builtin where the backend's algorithm is unknown: lower-bound
    coefficients) is a lower bound on the time: ``lower_bound`` is True, its basis says so, and it is never
    marked best."""
    pred = _predictor(fits, collective)
    rows = []
    for alg in pred.algorithms(algorithms):
        for p in world_sizes:
            for n in sizes:
                r = pred.predict(alg, p, n)
                if r is None:
                    continue
                f = n * 1e-3 * costs.busbw_factor(collective, p)
                rows.append({"collective": collective, "algorithm": alg, "world_size": p, "nnodes": r.nnodes,
                             "gpus_per_node": r.gpus_per_node, "bytes": n, "time_us": r.time_us,
                             "time_us_lo": r.time_us_lo, "time_us_hi": r.time_us_hi, "busbw_gbps": _bus(f, r.time_us),
                             "busbw_gbps_lo": _bus(f, r.time_us_hi), "busbw_gbps_hi": _bus(f, r.time_us_lo),
                             "basis": r.basis, "lower_bound": r.lower_bound})  # fmt: skip
    df = pd.DataFrame(rows)
    if df.empty:
        why = [w for p in world_sizes if (w := pred.why_not(p))]
        if why:
            raise AnalysisError(f"no model for {collective}: " + "; ".join(dict.fromkeys(why)))
        raise AnalysisError(f"no model for {collective} ({', '.join(algorithms)}): fit runs at >= 2 world sizes, "
                            "or one world size of an algorithm with a known schedule")  # fmt: skip
    df["best"] = False
    ranked = df[~df["lower_bound"]]
    if not ranked.empty:
        best = ranked.loc[ranked.groupby(["world_size", "bytes"])["time_us"].idxmin()]
        df.loc[best.index, "best"] = True
    return df


def scaling_table(fits: pd.DataFrame | FitsPredictor | TwoTierPredictor, *, grad_bytes: int, compute_ms: float,
                  world_sizes: list[int], algorithm: str = "ring", overlap: float = 0.0,
                  bucket_bytes: int | None = None, collective: str = "all_reduce",
                  gpu_hour_usd: float | None = None) -> pd.DataFrame:  # fmt: skip
    """Data-parallel step over world sizes (docs/fitting.md, Data-parallel step and scaling).

    comm_ms: all-reduce of ``grad_bytes``, or with ``bucket_bytes`` one all-reduce per bucket (full buckets and
    the remainder), each with its own latency terms and, for a pipelined algorithm, its own pipeline.
    Weak scaling (Gustafson, fixed per-GPU batch): step = compute + (1 - overlap) comm, speedup = p compute / step,
    efficiency = compute / step. Strong scaling (Amdahl, fixed global batch, ``compute_ms`` = one GPU's step):
    step = compute / p + (1 - overlap) comm, speedup = compute / step.
    With ``gpu_hour_usd``: cost of one weak-scaling step on p GPUs, p step / 3600 s x price, per step and per
    1000 steps (and the strong-scaling step's).
    """
    pred = _predictor(fits, collective)
    if not 0 <= overlap <= 1:
        raise AnalysisError("--overlap must be in [0, 1]")
    if gpu_hour_usd is not None and not gpu_hour_usd > 0:
        raise AnalysisError("--gpu-hour-usd must be positive")

    def comm(p: int, n: int) -> float:
        r = pred.predict(algorithm, p, n)
        if r is None:
            why = pred.why_not(p) or "fit runs at >= 2 world sizes, or one of an algorithm with a known schedule"
            raise AnalysisError(f"no model for {collective}/{algorithm}: {why}")
        return r.time_us

    rows = []
    for p in world_sizes:
        if p <= 1:
            comm_us = 0.0
        elif bucket_bytes and bucket_bytes < grad_bytes:
            full, rest = divmod(grad_bytes, bucket_bytes)
            comm_us = full * comm(p, bucket_bytes) + (comm(p, rest) if rest else 0.0)
        else:
            comm_us = comm(p, grad_bytes)
        comm_ms = comm_us / 1e3
        exposed = (1 - overlap) * comm_ms
        weak_step = compute_ms + exposed
        strong_step = compute_ms / p + exposed
        row = {
            "world_size": p, "comm_ms": comm_ms, "compute_ms": compute_ms, "step_ms": weak_step,
            "comm_to_compute": comm_ms / compute_ms, "speedup": p * compute_ms / weak_step,
            "efficiency": compute_ms / weak_step, "strong_step_ms": strong_step,
            "strong_speedup": compute_ms / strong_step, "strong_efficiency": compute_ms / strong_step / p,
        }  # fmt: skip
        if gpu_hour_usd is not None:
            usd_per_ms = p * gpu_hour_usd / 3.6e6
            row.update(usd_per_step=weak_step * usd_per_ms, usd_per_1000_steps=1000 * weak_step * usd_per_ms,
                       strong_usd_per_step=strong_step * usd_per_ms)  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def _gpus_per_node(points: pd.DataFrame) -> int:
    """The one GPUs-per-node count of the runs' multi-node scales."""
    multi = points[points["nnodes"] > 1]["gpus_per_node"].unique()
    if len(multi) != 1:
        raise AnalysisError(f"the runs have {len(multi)} GPUs-per-node counts ({sorted(int(g) for g in multi)}): "
                            "pass --gpus-per-node")  # fmt: skip
    return int(multi[0])


def build_predictor(paths: list[str], collective: str, *, gpus_per_node: int | None = None,
                    n_boot: int = 200) -> tuple[FitsPredictor | TwoTierPredictor, list[str]]:  # fmt: skip
    """The predictor for ``paths`` and summary lines: a two-tier fit when the runs hold ``collective`` at two
    or more scales with a multi-node one, else the one-tier fits (model across world sizes, or one size)."""
    if n_boot < 0:
        raise AnalysisError("--boot must be >= 0")
    if gpus_per_node is not None and gpus_per_node < 1:
        raise AnalysisError("--gpus-per-node must be >= 1")
    if len(paths) == 1 and paths[0].endswith(".csv"):
        return FitsPredictor(load_fits(paths), collective), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        points = twotier.load_points(paths, gpus_per_node)
        mine = points[points["collective"] == collective]
        if mine.empty:
            have = sorted(points["collective"].dropna().unique())
            raise AnalysisError(f"the runs hold no {collective} (they hold {', '.join(have)}): pass --collective "
                                f"{have[0]}")  # fmt: skip
        if twotier.multi_scale(mine) and mine["algorithm"].isin(twotier.RING_SOURCES).any():
            fit = twotier.fit_two_tier(points, collective, n_boot=n_boot)
            g = gpus_per_node or _gpus_per_node(mine)
            return TwoTierPredictor(fit, g), fit.summary()
        nodes = mine[mine["world_size"] > 1]["nnodes"].unique()
        one = int(nodes[0]) if len(nodes) == 1 else None
        return FitsPredictor(fit_all(points, n_boot=n_boot), collective, measured_nnodes=one), []


def json_records(df: pd.DataFrame) -> list[dict]:
    """The table's rows as JSON-ready dicts (non-finite numbers and missing values as null)."""
    out = []
    for rec in df.to_dict(orient="records"):
        clean = {}
        for k, v in rec.items():
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            elif hasattr(v, "item"):
                v = v.item()
            clean[k] = None if v is pd.NA else v
        out.append(clean)
    return out
