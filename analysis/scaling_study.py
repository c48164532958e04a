"""``collbench scale``'s analysis (torch-free): one run's step summary, and the scaling study of several runs
held against the prediction from collective fits of the same machine.

One run (``bench.scale_step`` measured it): a step's figure is its slowest rank's; the run's step time is the
robust estimate of ``bench.stats`` (fast-mode median, 95 % order-statistic CI) over its timed steps, like any
point of ``collbench run``.

The study: one row per (mode, world size, bucket size, algorithm, ranks per node), the runs of one key pooled.
Speedup and efficiency against the one-rank run of the same mode (docs/scale.md): strong scaling (fixed global batch)
speedup = T(1) / T(p), efficiency = speedup / p; weak scaling (fixed per-rank batch) speedup = p T(1) / T(p),
efficiency = T(1) / T(p). Without a one-rank run, T(1) is the compute time alone (said in the notes).

The prediction replays the step's schedule with bucket all-reduce times from the fits (``analysis.predict``:
each bucket's time and 95 % interval from the algorithm's fitted alpha and bandwidth): buckets ready evenly over
the backward half of the compute phase, all-reduced one after another on one queue, the step ending at the later
of compute and the last all-reduce. ``predict --scaling``'s ``--overlap`` is a fixed hidden share; here the
hidden share follows from the schedule. The difference between measured and predicted step is split into
its terms, step = compute + comm - hidden: compute (the phase ran longer than asked), communication (the
all-reduces took longer than the fits say: exposed communication, or bucketing when many small buckets pay
their latency each) and overlap (compute hid less of it than the schedule predicts); the largest names the
cause. Amdahl's law (strong) and Gustafson's law (weak) are fitted to the measured speedups by least squares
in their linear forms: 1 / S - 1 / p = s (1 - 1 / p) and p - S = s (p - 1).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import AnalysisError
from bench.stats import estimate

STEP_COLUMNS = ("step", "total_ms", "compute_ms", "exposed_ms", "comm_ms", "slowest_rank", "n_wrong")
STEPS_CSV = "steps.csv"
STUDY_OUTPUTS = ("scale.csv", "scale.md", "figures")
WITHIN = 0.10  # the prediction is called good within this share of the measured step


# --- one run ------------------------------------------------------------------------------------------------


def step_rows(ranks: list[list[dict[str, float]]]) -> list[dict[str, Any]]:
    """One row per timed step: the figures of its slowest rank (largest total), wrong elements over all ranks."""
    n = min((len(r) for r in ranks), default=0)
    rows = []
    for i in range(n):
        slowest = max(range(len(ranks)), key=lambda r: ranks[r][i]["total_ms"])
        rec = ranks[slowest][i]
        rows.append({"step": i, "total_ms": rec["total_ms"], "compute_ms": rec["compute_ms"],
                     "exposed_ms": rec["exposed_ms"], "comm_ms": rec["comm_ms"], "slowest_rank": slowest,
                     "n_wrong": sum(int(r[i]["n_wrong"]) for r in ranks)})  # fmt: skip
    return rows


def summarize_steps(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's figures: estimate and 95 % CI of the step, and the estimates of compute, exposed and comm."""
    if not rows:
        raise AnalysisError("no timed steps")
    out: dict[str, Any] = {"n_steps": len(rows), "n_wrong": sum(r["n_wrong"] for r in rows)}
    for key, name in (("total_ms", "step_ms"), ("compute_ms", "compute_ms"), ("exposed_ms", "comm_exposed_ms"),
                      ("comm_ms", "comm_ms")):  # fmt: skip
        est = estimate([max(r[key], 1e-9) for r in rows])
        out[name] = est.time_us  # bench.stats is unit-free: these are ms
        if key == "total_ms":
            out["step_ms_lo"], out["step_ms_hi"] = est.ci_lo_us, est.ci_hi_us
            out["slow_fraction"] = est.slow_fraction
    return out


def write_steps_csv(rows: list[dict[str, Any]], run_dir: Path) -> Path:
    """The run's own per-step file (new; never replaces one)."""
    path = run_dir / STEPS_CSV
    with open(path, "x", newline="") as f:
        w = csv.DictWriter(f, fieldnames=STEP_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return path


# --- the schedule and its prediction ------------------------------------------------------------------------


def buckets(grad_bytes: int, bucket_bytes: int) -> list[int]:
    """Bucket sizes in bytes in ready order: full buckets, then the remainder (``bench.scale_step``'s split)."""
    full, rest = divmod(grad_bytes, bucket_bytes)
    return [bucket_bytes] * full + ([rest] if rest else [])


def schedule_ms(compute_ms: float, bucket_ms: list[float], bucket_bytes: list[int]) -> tuple[float, float]:
    """(step, exposed communication) of one step: bucket i ready when the backward half (the second half of
    ``compute_ms``) has produced its share of the bytes, all-reduced one after another."""
    total = sum(bucket_bytes)
    half, acc, end = compute_ms / 2, 0, 0.0
    for nbytes, t in zip(bucket_bytes, bucket_ms, strict=True):
        acc += nbytes
        ready = half + half * acc / total
        end = max(end, ready) + t
    step = max(compute_ms, end)
    return step, step - compute_ms


@dataclass
class StepPrediction:
    step_ms: float
    step_ms_lo: float
    step_ms_hi: float
    comm_ms: float
    comm_exposed_ms: float
    basis: str


def predict_step(predictor: Any, algorithm: str, p: int, grad_bytes: int, bucket_bytes: int,
                 compute_ms: float) -> StepPrediction | None:  # fmt: skip
    """The step at world size ``p`` from ``predictor`` (an ``analysis.predict`` predictor of all_reduce), None
    when it has no model for ``algorithm``; at p = 1 the step is the compute alone."""
    sizes = buckets(grad_bytes, bucket_bytes)
    if p <= 1:
        return StepPrediction(compute_ms, compute_ms, compute_ms, 0.0, 0.0, "p = 1: compute only")
    preds = [predictor.predict(algorithm, p, n) for n in sizes]
    if any(r is None for r in preds):
        return None
    mid = [r.time_us / 1e3 for r in preds]
    lo = [r.time_us_lo / 1e3 if math.isfinite(r.time_us_lo) else r.time_us / 1e3 for r in preds]
    hi = [r.time_us_hi / 1e3 if math.isfinite(r.time_us_hi) else r.time_us / 1e3 for r in preds]
    step, exposed = schedule_ms(compute_ms, mid, sizes)
    return StepPrediction(step, schedule_ms(compute_ms, lo, sizes)[0], schedule_ms(compute_ms, hi, sizes)[0],
                          sum(mid), exposed, preds[0].basis)  # fmt: skip


# --- the study ----------------------------------------------------------------------------------------------


@dataclass
class ScaleRun:
    """One ``collbench scale`` run directory, as the study reads it."""

    path: Path
    run_id: str
    world_size: int
    nnodes: int
    ranks_per_node: int
    mode: str
    algorithm: str
    grad_bytes: int
    bucket_bytes: int
    compute_ms: float  # one-rank compute as given
    rank_compute_ms: float
    steps: list[dict[str, Any]] = field(default_factory=list)


def _is_scale_run(d: Path) -> bool:
    try:
        meta = json.loads((d / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and (meta.get("config") or {}).get("command_kind") == "scale"


def find_scale_runs(paths: list[str]) -> list[Path]:
    """Scale run directories among ``paths`` and below them (any depth)."""
    found: list[Path] = []
    for text in paths:
        p = Path(text)
        if not p.exists():
            raise AnalysisError(f"{text}: no such file or directory")
        cands = [p] if (p / "run.json").is_file() else sorted(x.parent for x in p.rglob("run.json"))
        found += [d for d in cands if _is_scale_run(d) and d not in found]
    if not found:
        raise AnalysisError(f"no collbench scale runs under {', '.join(paths)}")
    return found


def load_scale_run(d: Path) -> ScaleRun:
    """One scale run directory; AnalysisError (one line) when it is incomplete or its files are damaged."""
    try:
        meta = json.loads((d / "run.json").read_text())
        cfg, scale = meta.get("config") or {}, meta.get("scale") or {}
        if meta.get("status") != "complete" or not (d / STEPS_CSV).is_file():
            raise IncompleteRun(f"{d}: scale run not complete (status {meta.get('status')})")
        with open(d / STEPS_CSV, newline="") as f:
            steps = [{k: float(row[k]) for k in STEP_COLUMNS} for row in csv.DictReader(f)]
        return ScaleRun(d, str(meta.get("run_id", d.name)), int(meta["world_size"]), int(meta.get("nnodes") or 1),
                        int(meta.get("ranks_per_node") or meta["world_size"]), str(cfg["mode"]), str(cfg["algorithm"]),
                        int(cfg["grad_bytes"]), int(cfg["bucket_bytes"]), float(cfg["compute_ms"]),
                        float(cfg["rank_compute_ms"]), steps if scale else [])  # fmt: skip
    except IncompleteRun:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AnalysisError(f"{d}: not a readable collbench scale run ({type(exc).__name__}: {exc})") from None


class IncompleteRun(AnalysisError):
    """A scale run that did not finish (killed, timed out, still running): the study leaves it out."""


def load_study(paths: list[str], skipped: list[str] | None = None) -> list[ScaleRun]:
    """The scale runs under ``paths`` (one step shape). Runs that did not finish are left out and named in
    ``skipped`` when a list is given, else refused."""
    runs = []
    for d in find_scale_runs(paths):
        try:
            runs.append(load_scale_run(d))
        except IncompleteRun as exc:
            if skipped is None:
                raise
            skipped.append(f"left out: {exc}")
    if not runs:
        raise AnalysisError(f"no complete collbench scale runs under {', '.join(paths)}")
    shapes = {(r.grad_bytes, r.compute_ms) for r in runs}
    if len(shapes) > 1:
        raise AnalysisError("the runs differ in --grad-bytes or --compute-ms: one study holds one step "
                            f"({', '.join(f'{g} B / {c:g} ms' for g, c in sorted(shapes))})")  # fmt: skip
    return runs


def _least_squares(xs: list[float], ys: list[float]) -> float:
    """s minimising sum (y - s x)^2 over s in [0, 1] (one parameter: the clamped unconstrained optimum)."""
    den = sum(x * x for x in xs)
    return min(1.0, max(0.0, sum(x * y for x, y in zip(xs, ys, strict=True)) / den)) if den else math.nan


def fit_amdahl(p: list[float], speedup: list[float]) -> float:
    """Serial fraction s in [0, 1] of Amdahl's law S = 1 / (s + (1 - s) / p), least squares on
    1/S - 1/p = s (1 - 1/p). s = 1 says the law cannot explain the points: no speedup at all, or a slowdown
    (communication that grows with p is no serial fraction)."""
    pts = [(q, s) for q, s in zip(p, speedup, strict=True) if q > 1]
    return _least_squares([1 - 1 / q for q, _ in pts], [1 / s - 1 / q for q, s in pts])


def fit_gustafson(p: list[float], speedup: list[float]) -> float:
    """Serial fraction s in [0, 1] of Gustafson's law S = p - s (p - 1), least squares on p - S = s (p - 1)."""
    pts = [(q, s) for q, s in zip(p, speedup, strict=True) if q > 1]
    return _least_squares([q - 1 for q, _ in pts], [q - s for q, s in pts])


def amdahl(p: float, s: float) -> float:
    return 1 / (s + (1 - s) / p)


def gustafson(p: float, s: float) -> float:
    return p - s * (p - 1)


def explain(row: dict[str, Any]) -> str:
    """Which term explains measured - predicted (module docstring); '' without a prediction."""
    if not math.isfinite(row.get("step_ms_predicted", math.nan)) or row["world_size"] <= 1:
        return ""
    d_compute = row["compute_ms_measured"] - row["compute_ms"]
    d_comm = row["comm_ms_measured"] - row["comm_ms_predicted"]
    hidden_meas = row["comm_ms_measured"] - row["comm_exposed_ms"]
    hidden_pred = row["comm_ms_predicted"] - row["comm_exposed_ms_predicted"]
    d_hidden = hidden_pred - hidden_meas  # positive: compute hid less than predicted
    terms = {"compute": d_compute, "comm": d_comm, "overlap": d_hidden}
    name = max(terms, key=lambda k: abs(terms[k]))
    nb = row["n_buckets"]
    if name == "compute":
        return f"compute: the phase ran {d_compute:+.1f} ms against the {row['compute_ms']:.1f} ms asked"
    if name == "overlap":
        return (f"overlap: compute hid {hidden_meas:.1f} ms of the all-reduces, the schedule predicts "
                f"{hidden_pred:.1f} ms")  # fmt: skip
    what = "bucketing" if nb > 2 else "exposed communication"
    return (f"{what}: the {nb} bucket all-reduce(s) took {row['comm_ms_measured']:.1f} ms, the fits say "
            f"{row['comm_ms_predicted']:.1f} ms ({d_comm:+.1f} ms)")  # fmt: skip


def study_table(runs: list[ScaleRun], predictor: Any | None = None,
                gpu_hour_usd: float | None = None) -> tuple[pd.DataFrame, list[str]]:  # fmt: skip
    """scale.csv's rows (module docstring) and notes for the reader."""
    notes: list[str] = []
    groups: dict[tuple[str, int, int, str, int], list[ScaleRun]] = {}
    for r in runs:
        groups.setdefault((r.mode, r.world_size, r.bucket_bytes, r.algorithm, r.ranks_per_node), []).append(r)
    rows = []
    for (mode, p, bucket, alg, _), rs in sorted(groups.items()):
        steps = [s for r in rs for s in r.steps]
        if not steps:
            continue
        est = estimate([s["total_ms"] for s in steps])
        first = rs[0]

        def med(key: str, steps: list[dict[str, Any]] = steps) -> float:
            return estimate([max(s[key], 1e-9) for s in steps]).time_us

        row: dict[str, Any] = {
            "world_size": p, "mode": mode, "nnodes": first.nnodes, "ranks_per_node": first.ranks_per_node,
            "algorithm": alg, "grad_bytes": first.grad_bytes, "bucket_bytes": bucket,
            "n_buckets": len(buckets(first.grad_bytes, bucket)), "one_rank_compute_ms": first.compute_ms,
            "compute_ms": first.rank_compute_ms,
            "step_ms_measured": est.time_us, "step_ms_measured_lo": est.ci_lo_us, "step_ms_measured_hi": est.ci_hi_us,
            "n_steps": len(steps), "n_runs": len(rs), "compute_ms_measured": med("compute_ms"),
            "comm_ms_measured": med("comm_ms"), "comm_exposed_ms": med("exposed_ms"),
            "n_wrong": int(sum(s["n_wrong"] for s in steps)),
        }  # fmt: skip
        pred = predict_step(predictor, alg, p, first.grad_bytes, bucket, first.rank_compute_ms) if predictor else None
        row.update(step_ms_predicted=pred.step_ms if pred else math.nan,
                   step_ms_predicted_lo=pred.step_ms_lo if pred else math.nan,
                   step_ms_predicted_hi=pred.step_ms_hi if pred else math.nan,
                   comm_ms_predicted=pred.comm_ms if pred else math.nan,
                   comm_exposed_ms_predicted=pred.comm_exposed_ms if pred else math.nan)  # fmt: skip
        row["comm_to_compute"] = row["comm_ms_measured"] / row["compute_ms"] if row["compute_ms"] > 0 else math.inf
        if predictor is not None and pred is None:
            notes.append(f"no fitted model for all_reduce/{alg}: no prediction at p = {p}")
        rows.append(row)
    if not rows:
        raise AnalysisError("the scale runs hold no timed steps")
    df = pd.DataFrame(rows)
    df["speedup"] = df["efficiency"] = df["speedup_predicted"] = df["efficiency_predicted"] = math.nan
    for mode, part in df.groupby("mode"):
        ones = part[part["world_size"] == 1]
        t1_pred = float(part["one_rank_compute_ms"].iloc[0])
        if ones.empty:
            t1 = t1_pred
            notes.append(f"{mode}: no one-rank run; T(1) is the compute time alone ({t1:g} ms)")
        else:
            t1 = float(ones.sort_values("bucket_bytes")["step_ms_measured"].iloc[-1])
        for i in part.index:
            p = df.at[i, "world_size"]
            for suffix, base in (("", t1), ("_predicted", t1_pred)):
                t = df.at[i, "step_ms_measured" if not suffix else "step_ms_predicted"]
                s = base / t * (p if mode == "weak" else 1)
                df.at[i, "speedup" + suffix] = s
                df.at[i, "efficiency" + suffix] = s / p
    df["error_pct"] = 100 * (df["step_ms_predicted"] - df["step_ms_measured"]) / df["step_ms_measured"]
    df["within_10pct"] = df["error_pct"].abs() <= 100 * WITHIN
    df["explained_by"] = [explain(r) for r in df.to_dict(orient="records")]
    if gpu_hour_usd is not None:
        per_ms = df["world_size"] * gpu_hour_usd / 3.6e6
        df["usd_per_step"] = df["step_ms_measured"] * per_ms
        df["usd_per_1000_steps"] = 1000 * df["usd_per_step"]
        df["usd_per_step_predicted"] = df["step_ms_predicted"] * per_ms
        df["usd_per_1000_steps_predicted"] = 1000 * df["usd_per_step_predicted"]
    fracs = serial_fractions(df)
    for mode, law in (("strong", "Amdahl"), ("weak", "Gustafson")):
        part = df[df["mode"] == mode]
        if (part["world_size"] > 1).any():
            s = fracs[mode]
            notes.append(f"{law} ({mode} scaling) fitted to the measured speedups: serial fraction s = {s:.3f}")
            if s >= 1 and law == "Amdahl":
                notes.append("Amdahl's law cannot follow these points (s reaches its bound 1): the step slows down as "
                             "p grows, since the all-reduce time grows with p while compute shrinks; a serial "
                             "fraction alone never makes more ranks slower")  # fmt: skip
    return df, notes


def main_rows(part: pd.DataFrame) -> pd.DataFrame:
    """The scaling curve of one mode: the rows of the (bucket size, ranks per node) measured at the most world
    sizes (on a tie the largest bucket, then the fewest ranks per node), by world size; the other bucket sizes
    are the bucket curve."""
    counts = part.groupby(["bucket_bytes", "ranks_per_node"])["world_size"].nunique()
    bucket, rpn = max(counts.index, key=lambda k: (counts[k], k[0], -k[1]))
    return part[(part["bucket_bytes"] == bucket) & (part["ranks_per_node"] == rpn)].sort_values("world_size")


def serial_fractions(df: pd.DataFrame) -> dict[str, float]:
    """Amdahl's s from the strong scaling curve, Gustafson's from the weak one (nan without rows)."""
    out = {}
    for mode, fitter in (("strong", fit_amdahl), ("weak", fit_gustafson)):
        part = df[df["mode"] == mode]
        main = main_rows(part) if len(part) else part
        out[mode] = fitter(list(main["world_size"]), list(main["speedup"])) if len(main) else math.nan
    return out


def plot(df: pd.DataFrame, figs: Path) -> list[Path]:
    """speedup and efficiency vs p, measured (95 % CI) next to predicted (interval) with the fitted law; and
    exposed communication vs bucket size where the runs hold several bucket sizes at one world size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs.mkdir(parents=True, exist_ok=True)
    paths = []
    fracs = serial_fractions(df)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"strong": "tab:blue", "weak": "tab:red"}
    for mode, part in df.groupby("mode"):
        color = colors.get(str(mode), "tab:green")
        main = main_rows(part)
        p = main["world_size"].to_numpy(dtype=float)
        t, lo, hi = (main[c].to_numpy(dtype=float) for c in ("step_ms_measured", "step_ms_measured_lo",
                                                              "step_ms_measured_hi"))  # fmt: skip
        s = main["speedup"].to_numpy(dtype=float)
        err = [s - s * t / hi, s * t / lo - s]  # speedup ~ 1 / T: the step's CI mapped onto the speedup
        buckets_label = f"{main['bucket_bytes'].iloc[0] / 2**20:g} MiB buckets"
        axes[0].errorbar(p, s, yerr=err, marker="o", capsize=3, color=color,
                         label=f"{mode} ({buckets_label}): measured")  # fmt: skip
        axes[1].errorbar(p, s / p, yerr=[e / p for e in err], marker="o", capsize=3, color=color,
                         label=f"{mode}: measured (95% CI)")  # fmt: skip
        if main["step_ms_predicted"].notna().any():
            sp = main["speedup_predicted"].to_numpy(dtype=float)
            tp = main["step_ms_predicted"].to_numpy(dtype=float)
            s_lo = sp * tp / main["step_ms_predicted_hi"].to_numpy(dtype=float)
            s_hi = sp * tp / main["step_ms_predicted_lo"].to_numpy(dtype=float)
            axes[0].plot(p, sp, "--", color=color, alpha=0.7, label=f"{mode}: predicted (fits)")
            axes[0].fill_between(p, s_lo, s_hi, color=color, alpha=0.15)
            axes[1].plot(p, sp / p, "--", color=color, alpha=0.7, label=f"{mode}: predicted (fits, interval)")
            axes[1].fill_between(p, s_lo / p, s_hi / p, color=color, alpha=0.15)
        sfrac = fracs.get(mode, math.nan)
        if math.isfinite(sfrac):
            grid = [1 + (max(p) - 1) * k / 50 for k in range(51)]
            law = amdahl if mode == "strong" else gustafson
            name = "Amdahl" if mode == "strong" else "Gustafson"
            axes[0].plot(grid, [law(q, sfrac) for q in grid], ":", color=color,
                         label=f"{mode}: {name} fit, s = {sfrac:.3f}")  # fmt: skip
            axes[1].plot(grid, [law(q, sfrac) / q for q in grid], ":", color=color, label=f"{mode}: {name} fit")
    top = float(df["world_size"].max())
    axes[0].plot([1, top], [1, top], color="grey", lw=0.8, label="ideal")
    axes[0].set(xlabel="world size p", ylabel="speedup", title="Speedup vs p")
    axes[1].set(xlabel="world size p", ylabel="efficiency", title="Efficiency vs p", ylim=(0, 1.15))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(figs / "scaling_measured_vs_predicted.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    keys = ["mode", "world_size", "ranks_per_node"]
    multi = df.groupby(keys).filter(lambda g: g["bucket_bytes"].nunique() > 1)
    if not multi.empty:
        fig, ax = plt.subplots(figsize=(6, 4))
        for (mode, p, _), g in multi.groupby(keys):
            g = g.sort_values("bucket_bytes")
            mib = g["bucket_bytes"] / 2**20
            line = ax.plot(mib, g["comm_exposed_ms"], "o-", label=f"{mode}, p = {p}: measured")[0]
            if g["comm_exposed_ms_predicted"].notna().any():
                ax.plot(mib, g["comm_exposed_ms_predicted"], "--", color=line.get_color(), label="predicted")
        ax.set(xscale="log", xlabel="bucket size (MiB)", ylabel="exposed communication (ms)",
               title="Exposed communication vs bucket size")  # fmt: skip
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(figs / "exposed_vs_bucket.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


MD_COLUMNS = ("world_size", "mode", "bucket_bytes", "step_ms_measured", "step_ms_predicted", "error_pct",
              "comm_exposed_ms", "comm_exposed_ms_predicted", "speedup", "speedup_predicted", "efficiency",
              "efficiency_predicted", "comm_to_compute", "explained_by")  # fmt: skip


def _cell(v: object) -> str:
    if isinstance(v, float):
        return "-" if not math.isfinite(v) else f"{v:.4g}"
    return str(v).replace("|", "\\|")


def markdown(df: pd.DataFrame, notes: list[str], figures: list[Path], base: Path) -> str:
    """scale.md: the table (measured with CI next to predicted with interval), the notes and the figures."""
    lines = ["# collbench scale: measured vs predicted", "",
             "| p | nodes x ranks | mode | bucket | step ms measured [95% CI] | predicted [interval] | error % | "
             "exposed ms | predicted exposed | speedup | predicted | efficiency | predicted | comm/compute | "
             "explained by |",
             "|" + "---|" * 15]  # fmt: skip
    for r in df.to_dict(orient="records"):
        meas = f"{r['step_ms_measured']:.1f} [{r['step_ms_measured_lo']:.1f}, {r['step_ms_measured_hi']:.1f}]"
        pred = ("-" if not math.isfinite(r["step_ms_predicted"]) else
                f"{r['step_ms_predicted']:.1f} [{r['step_ms_predicted_lo']:.1f}, {r['step_ms_predicted_hi']:.1f}]")
        cells = [r["world_size"], f"{r['nnodes']} x {r['ranks_per_node']}", r["mode"],
                 f"{r['bucket_bytes'] / 2**20:g} MiB", meas, pred, r["error_pct"],
                 r["comm_exposed_ms"], r["comm_exposed_ms_predicted"], r["speedup"], r["speedup_predicted"],
                 r["efficiency"], r["efficiency_predicted"], r["comm_to_compute"], r["explained_by"] or "-"]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += [""] + [f"- {n}" for n in notes] + [""]
    lines += [f"![{f.stem}]({f.relative_to(base)})" for f in figures]
    return "\n".join(lines) + "\n"


def write_study(df: pd.DataFrame, notes: list[str], out: Path) -> list[Path]:
    """scale.csv, scale.md and the figures into ``out`` (already claimed through analysis.outputs)."""
    figures = plot(df, out / "figures")
    df.to_csv(out / "scale.csv", index=False)
    (out / "scale.md").write_text(markdown(df, notes, figures, out))
    return [out / "scale.csv", out / "scale.md", *figures]


def report_section(path: Path) -> tuple[list[str], list[list[str]], list[str], list[Path]]:
    """What ``collbench report --scale DIR`` shows: (header, rows, notes, figures) of the study in ``DIR``."""
    csv_path = path / "scale.csv"
    if not csv_path.is_file():
        raise AnalysisError(f"{path}: no scale.csv (write it with collbench scale --study RUN...)")
    df = pd.read_csv(csv_path).fillna({"explained_by": ""})
    cols = [c for c in MD_COLUMNS if c in df.columns]
    rows = [[_cell(v) for v in rec] for rec in df[cols].itertuples(index=False)]
    figs = sorted((path / "figures").glob("*.png")) if (path / "figures").is_dir() else []
    fr = serial_fractions(df)
    notes = [f"Amdahl (strong) serial fraction s = {fr['strong']:.3f}" if math.isfinite(fr["strong"]) else "",
             f"Gustafson (weak) serial fraction s = {fr['weak']:.3f}" if math.isfinite(fr["weak"]) else ""]
    return cols, rows, [n for n in notes if n], figs
