"""Figures of a report (seaborn/matplotlib, Agg): busbw and time vs size, the communication roofline,
the best algorithm per (size, world size), fit residuals, and data-parallel scaling. docs/fitting.md.

Every figure is a PNG of at least 1200x800 px with units on its axes; sizes are labelled in KiB/MiB/GiB on
log2 axes, bandwidths in GB/s (1e9 B/s). Each function returns the paths it wrote.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator  # noqa: E402

from analysis.fitting import curve_time_us, model_time_us  # noqa: E402
from analysis.selection import one_variant  # noqa: E402
from analysis.units import size_label  # noqa: E402
from collectives import costs  # noqa: E402
from collectives.spec import (  # noqa: E402
    SEND_RECV,
    is_point_to_point,
    spec,  # noqa: E402
)

FIGSIZE = (12, 8)
DPI = 110  # 1320 x 880 px


def size_range(sizes: pd.Series) -> tuple[float, float]:
    """(smallest, largest) message size for a log-spaced grid: 0-byte rows (old nccl-tests tables) left out."""
    pos = sizes[sizes > 0]
    if pos.empty:
        return 1.0, 1.0
    return float(pos.min()), float(pos.max())


def _size_axis(ax: plt.Axes) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=4))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: size_label(x)))
    ax.set_xlabel("message size S (bytes, binary units)")


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def busbw_vs_size(df: pd.DataFrame, out: Path) -> list[Path]:
    """busbw vs size, one panel per collective, one line per algorithm; one file per world size."""
    paths = []
    data = one_variant(df)
    for p, g in data.groupby("world_size"):
        colls = [c for c in (*costs.COLLECTIVES, SEND_RECV.name) if c in set(g["collective"])]
        cols = min(3, len(colls))
        rows = math.ceil(len(colls) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=FIGSIZE, squeeze=False)
        for ax, coll in zip(axes.flat, colls, strict=False):
            sub = g[g["collective"] == coll].sort_values("bytes")
            sns.lineplot(data=sub, x="bytes", y="busbw_gbps", hue="algorithm", marker="o", ax=ax, errorbar=None)
            _size_axis(ax)
            if is_point_to_point(coll):
                ax.set_title(f"{coll} between ranks 0 and 1 (p = {p})")
                ax.set_ylabel("bytes moved per second (GB/s)")
            else:
                ax.set_title(f"{coll} (p = {p})")
                ax.set_ylabel("busbw (GB/s)")
            ax.legend(fontsize=7)
        for ax in list(axes.flat)[len(colls) :]:
            ax.remove()
        fig.suptitle(f"Bus bandwidth vs message size, {g['backend'].iloc[0]}/{g['device'].iloc[0]}, world size {p}")
        fig.tight_layout()
        paths.append(_save(fig, out / f"busbw_p{p}.png"))
    return paths


def time_vs_size(df: pd.DataFrame, fits: pd.DataFrame | None, out: Path) -> list[Path]:
    """Time vs size on log-log axes with the fitted curve models (pieces at breakpoints)."""
    paths = []
    data = one_variant(df)
    for (coll, p), g in data.groupby(["collective", "world_size"]):
        fig, ax = plt.subplots(figsize=FIGSIZE)
        palette = dict(zip(sorted(g["algorithm"].unique()), sns.color_palette(n_colors=g["algorithm"].nunique()),
                           strict=True))  # fmt: skip
        for alg, sub in g.groupby("algorithm"):
            sub = sub.sort_values("bytes")
            yerr = _yerr(sub["time_us"], sub["time_us_p10"], sub["time_us_p90"])
            ax.errorbar(
                sub["bytes"], sub["time_us"], yerr=yerr, fmt="o", ms=4, color=palette[alg], label=alg, capsize=2
            )
            if fits is not None and not fits.empty:
                key = {"collective": coll, "algorithm": alg, "world_size": p, "in_place": bool(sub["in_place"].iloc[0])}
                try:
                    n = np.geomspace(*size_range(sub["bytes"]), 100)
                    ax.plot(n, curve_time_us(fits, key, n), color=palette[alg], lw=1)
                except Exception:  # noqa: BLE001 - a curve without a fit is drawn without a line
                    pass
        _size_axis(ax)
        ax.set_yscale("log")
        ax.set_ylabel("time per call (µs, median; bars p10-p90)")
        ax.set_title(f"{coll}, world size {p}: time vs size, lines = fitted t = a + b·S")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(_save(fig, out / f"time_{coll}_p{p}.png"))
    return paths


def _yerr(t: pd.Series, p10: pd.Series, p90: pd.Series) -> np.ndarray | None:
    if p10.isna().all() or p90.isna().all():
        return None
    lo = np.clip((t - p10.fillna(t)).to_numpy(), 0, None)
    hi = np.clip((p90.fillna(t) - t).to_numpy(), 0, None)
    return np.vstack([lo, hi])


def _hardware(fits: pd.DataFrame | None, coll: str) -> tuple[float, float, float | None] | None:
    """(alpha_us, bw_gbps, gamma_gbps) for the roofline: the joint fit, else the collective's ring model."""
    if fits is None or fits.empty:
        return None
    models = fits[fits["scope"] == "model"]
    own = models[(models["collective"] == coll) & (models["algorithm"] == spec(coll).bandwidth_algorithm)]
    for sel in (models[models["collective"] == "*"], own):
        if not sel.empty:
            r = sel.iloc[0]
            return float(r["alpha_us"]), float(r["bw_gbps"]), (float(r["gamma_gbps"]) if pd.notna(r["gamma_gbps"])
                                                                 else None)  # fmt: skip
    return None


def _curve_alpha(fits: pd.DataFrame | None, coll: str, p: int) -> tuple[float, str] | None:
    """(smallest fitted intercept alpha in µs, its algorithm) over the curve fits of (coll, p): the fitted
    latency floor of runs without a model fit (imported runs: one curve per variant)."""
    if fits is None or fits.empty:
        return None
    sel = fits[(fits["scope"] == "curve") & (fits["collective"] == coll) & (fits["world_size"] == p)]
    sel = sel[sel["alpha_us"] > 0]
    if sel.empty:
        return None
    r = sel.loc[sel["alpha_us"].idxmin()]
    return float(r["alpha_us"]), str(r["algorithm"])


def y_limits(busbw: pd.Series, roofs: list[float]) -> tuple[float, float] | None:
    """Log y limits of a roofline: a factor 3 beyond the measured busbw and every horizontal roof drawn, so no
    roof in the legend lies off the axis; None without a positive busbw (a log axis needs positive limits)."""
    positive = busbw[busbw > 0]
    if positive.empty:
        return None
    values = [float(positive.min()), float(positive.max()), *(y for y in roofs if y > 0)]
    return max(min(values) / 3, 1e-6), max(values) * 3


#: line styles of the spec roofs (analysis.verdict.plot_roofs kinds)
ROOF_STYLE = {"link": ("k", "--"), "network": ("tab:blue", "--"), "reduction": ("tab:red", ":")}


def roofline(df: pd.DataFrame, fits: pd.DataFrame | None, out: Path, peak_gbps: float | None = None,
             gamma_gbps: float | None = None,
             spec_roofs: dict[tuple[str, int], list[tuple[str, float, str]]] | None = None) -> list[Path]:  # fmt: skip
    """Communication roofline per (collective, world size): measured busbw with p10-p90 bars, the measured
    link roof, the spec roofs (link, network, reduction from memory: ``spec_roofs`` from the hardware catalog,
    or ``peak_gbps``), the fitted latency floor, the ridge point, the reduction roof (docs/fitting.md).
    send_recv has none (no busbw factor F(p) or cost model: SEND_RECV.p2p.no_cost_model)."""
    paths = []
    data = one_variant(df)
    data = data[~data["collective"].map(is_point_to_point)]
    for (coll, p), g in data.groupby(["collective", "world_size"]):
        if p < 2:
            continue
        fig, ax = plt.subplots(figsize=FIGSIZE)
        f = costs.busbw_factor(coll, p)
        for alg, sub in g.groupby("algorithm"):
            sub = sub.sort_values("bytes")
            bus = sub["busbw_gbps"].to_numpy()
            p10, p90 = sub["time_us_p10"].to_numpy(dtype=float), sub["time_us_p90"].to_numpy(dtype=float)
            t = sub["time_us"].to_numpy(dtype=float)
            yerr = None
            if np.isfinite(p10).all() and np.isfinite(p90).all():
                yerr = np.vstack([np.clip(bus - bus * t / p90, 0, None), np.clip(bus * t / p10 - bus, 0, None)])
            ax.errorbar(sub["bytes"], bus, yerr=yerr, fmt="o-", ms=4, lw=0.8, capsize=2, label=alg)
        n = np.geomspace(size_range(g["bytes"])[0], size_range(g["bytes"])[1] * 4, 200)
        hw = _hardware(fits, coll)
        notes = []
        flat = []  # every horizontal roof drawn: the y axis spans them all, so no legend entry is off the axis
        if hw is not None:
            alpha, bw, gamma_fit = hw
            ref = spec(coll).bandwidth_algorithm  # ring; pairwise for all_to_all
            ring = costs.cost(coll, ref, p, nbytes=float(n[-1]))
            ax.axhline(bw * f / ring.W, color="k", lw=1.5, label=f"link roof (fit) {bw * f / ring.W:.2f} GB/s")
            flat.append(bw * f / ring.W)
            lat = f * n / (ring.L * alpha) * 1e-3
            ax.plot(n, lat, "k-", lw=0.8, alpha=0.6, label=f"latency limit F·S/(L·α), α = {alpha:.1f} µs")
            ridge = ring.L / ring.W * alpha * 1e-6 * bw * 1e9
            ax.axvline(ridge, color="grey", ls=":", lw=1)
            notes.append(f"ridge {size_label(ridge)}")
            model = [f * x / float(model_time_us(coll, ref, p, x, alpha, bw, gamma_fit)) * 1e-3 for x in n]
            ax.plot(n, model, color="grey", lw=0.8, ls="-.", label=f"{ref} model")
            gamma = gamma_gbps or gamma_fit
            if coll in costs.REDUCING and gamma and ring.G > 0:
                roof = f * gamma / ring.G
                ax.axhline(roof, color="tab:red", ls="-.", lw=1, label=f"reduction roof {roof:.2f} GB/s")
                flat.append(roof)
        else:
            floor = _curve_alpha(fits, coll, int(p))
            if floor is not None:
                alpha, alg = floor
                ax.plot(n, f * n / alpha * 1e-3, "k-", lw=0.8, alpha=0.6,
                        label=f"latency floor F·S/α, fitted α = {alpha:.3g} µs ({alg})")  # fmt: skip
        roofs = list((spec_roofs or {}).get((coll, int(p)), []))
        if peak_gbps:
            roofs = [r for r in roofs if r[2] != "link"] + [(f"spec roof {peak_gbps:g} GB/s (--peak-gbps)",
                                                               peak_gbps, "link")]  # fmt: skip
        for label, gbps, kind in roofs:
            color, ls = ROOF_STYLE.get(kind, ("k", "--"))
            ax.axhline(gbps, color=color, ls=ls, lw=1.2, label=label)
        if not roofs:
            notes.append("no spec roof: GPU/network unknown")
        _size_axis(ax)
        ax.set_yscale("log")
        flat += [r[1] for r in roofs]
        limits = y_limits(g["busbw_gbps"], flat)
        if limits is not None:
            ax.set_ylim(*limits)
        ax.set_ylabel("bus bandwidth (GB/s)")
        ax.set_title(f"Communication roofline: {coll}, world size {p}" + (f" ({', '.join(notes)})" if notes else ""))
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        paths.append(_save(fig, out / f"roofline_{coll}_p{p}.png"))
    return paths


def best_algorithm(df: pd.DataFrame) -> pd.DataFrame:
    """Fastest algorithm (median time) per (collective, world size, bytes); send_recv's latency, bw and bibw
    are three measurements of one link, not algorithms to choose from, and are left out."""
    data = one_variant(df)
    data = data[~data["collective"].map(is_point_to_point)]
    idx = data.groupby(["collective", "world_size", "bytes"])["time_us"].idxmin()
    return data.loc[idx, ["collective", "world_size", "bytes", "algorithm", "time_us"]].reset_index(drop=True)


#: More distinct sizes than this and the heat map shows power-of-two bins (one labelled cell per size would
#: draw tens of thousands of labels for a dense sweep).
MAP_MAX_SIZES = 64


def _by_power_of_two(best: pd.DataFrame) -> pd.DataFrame:
    """The winners binned to the nearest power of two of the size: per (world size, bin) the algorithm that is
    fastest at the most sizes of the bin (ties: the name first in order)."""
    binned = best.assign(bytes=np.exp2(np.round(np.log2(best["bytes"].astype(float)))).astype("int64"))
    wins = binned.groupby(["collective", "world_size", "bytes", "algorithm"]).size().reset_index(name="wins")
    wins = wins.sort_values(["collective", "world_size", "bytes", "wins", "algorithm"],
                            ascending=[True, True, True, False, True])  # fmt: skip
    return wins.drop_duplicates(["collective", "world_size", "bytes"]).drop(columns="wins")


def best_algorithm_map(df: pd.DataFrame, out: Path) -> list[Path]:
    """Heat map of the fastest algorithm per (size, world size), one file per collective."""
    best = best_algorithm(df)
    paths = []
    for coll, g in best.groupby("collective"):
        if g["bytes"].nunique() > MAP_MAX_SIZES:
            g = _by_power_of_two(g)
        names = sorted(g["algorithm"].unique())
        code = g.assign(code=g["algorithm"].map({a: i for i, a in enumerate(names)}))
        grid = code.pivot(index="world_size", columns="bytes", values="code")
        labels = code.pivot(index="world_size", columns="bytes", values="algorithm").fillna("")
        fig, ax = plt.subplots(figsize=FIGSIZE)
        cmap = sns.color_palette("tab10", n_colors=max(len(names), 1))
        sns.heatmap(grid, annot=labels, fmt="", cmap=cmap, cbar=False, ax=ax, linewidths=0.5,
                    annot_kws={"fontsize": 7, "rotation": 90}, vmin=-0.5, vmax=len(names) - 0.5)  # fmt: skip
        ax.set_xticklabels([size_label(float(t.get_text())) for t in ax.get_xticklabels()], rotation=45)
        ax.set_xlabel("message size S (bytes)")
        ax.set_ylabel("world size p (ranks)")
        ax.set_title(f"Fastest algorithm by size and world size: {coll}")
        fig.tight_layout()
        paths.append(_save(fig, out / f"best_{coll}.png"))
    return paths


def residuals(df: pd.DataFrame, fits: pd.DataFrame | None, out: Path) -> list[Path]:
    """Relative residuals (measured / fitted - 1) of every curve fit vs size, one file per world size."""
    if fits is None or fits.empty:
        return []
    paths = []
    data = one_variant(df)
    for p, g in data.groupby("world_size"):
        rows = []
        for (coll, alg), sub in g.groupby(["collective", "algorithm"]):
            key = {"collective": coll, "algorithm": alg, "world_size": p, "in_place": bool(sub["in_place"].iloc[0])}
            try:
                pred = curve_time_us(fits, key, sub["bytes"].to_numpy(dtype=float))
            except Exception:  # noqa: BLE001 - curves without a fit have no residuals
                continue
            rows.append(sub.assign(residual_pct=100 * (sub["time_us"].to_numpy() / pred - 1), curve=f"{coll}/{alg}"))
        if not rows:
            continue
        res = pd.concat(rows)
        fig, ax = plt.subplots(figsize=FIGSIZE)
        sns.scatterplot(data=res, x="bytes", y="residual_pct", hue="curve", ax=ax, s=25)
        ax.axhline(0, color="k", lw=0.8)
        _size_axis(ax)
        ax.set_ylabel("residual: measured / fitted - 1 (%)")
        ax.set_title(f"Fit residuals, world size {p}")
        ax.legend(fontsize=6, ncol=3)
        fig.tight_layout()
        paths.append(_save(fig, out / f"residuals_p{p}.png"))
    return paths


def scaling(table: pd.DataFrame, out: Path, title: str) -> list[Path]:
    """Speedup and efficiency vs world size of a data-parallel step (weak and strong scaling)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=FIGSIZE)
    a1.plot(table["world_size"], table["speedup"], "o-", label="weak scaling (Gustafson)")
    a1.plot(table["world_size"], table["strong_speedup"], "s-", label="strong scaling (Amdahl)")
    a1.plot(table["world_size"], table["world_size"], "k:", label="ideal")
    a2.plot(table["world_size"], 100 * table["efficiency"], "o-", label="weak")
    a2.plot(table["world_size"], 100 * table["strong_efficiency"], "s-", label="strong")
    for ax in (a1, a2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("world size p (GPUs)")
        ax.legend()
    a1.set_yscale("log", base=2)
    a1.set_ylabel("speedup over one GPU (x)")
    a2.set_ylabel("parallel efficiency (%)")
    fig.suptitle(title)
    fig.tight_layout()
    return [_save(fig, out / "scaling.png")]
