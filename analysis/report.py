"""``collbench report RUN...``: a Markdown report and a self-contained HTML page that give the answer first and
the detail on demand: a headline card per machine (analysis.report_headline), busbw vs size (interactive on the
page), what changed against a baseline, the verdict detail (peak busbw against the link / network roof,
analysis.verdict) and "which algorithm when" (long tables collapsed under a summary row), warnings with repeated
notes folded (analysis.report_notes), the figures in a grid (roofline with spec roofs first), the scaling
prediction, the runs, and last the full fit table, collapsed.

Both documents are rendered from one list of blocks (analysis.report_blocks: Markdown; analysis.report_html: the
page); every string taken from a result file is escaped, so a hostile run.json cannot inject markup.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import compare, fits_table, fitting, plots, report_interactive, twotier, verdict
from analysis.errors import AnalysisError
from analysis.fitting import fit_all
from analysis.hardware import Machine
from analysis.predict import TwoTierPredictor, build_predictor, scaling_table
from analysis.read_runs import Run
from analysis.report_blocks import LONG_TABLE_ROWS, Block, md_cell, to_markdown
from analysis.report_headline import Counts, headline
from analysis.report_html import to_html
from analysis.report_notes import Note, fold
from analysis.selection import one_variant
from analysis.units import size_label
from collectives.spec import SEND_RECV, is_point_to_point


def _num(x: object, fmt: str = "{:.3g}") -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x))):
        return "-"
    return fmt.format(x) if isinstance(x, (int, float)) else str(x)


def _ranges(best: list[tuple[str, float]]) -> list[list]:
    """[(algorithm, size)...] ascending -> [[algorithm, first size, last size], ...] runs."""
    runs: list[list] = []
    for alg, n in best:
        if runs and runs[-1][0] == alg:
            runs[-1][2] = n
        else:
            runs.append([alg, n, n])
    return runs


def which_algorithm_when(df: pd.DataFrame, fits: pd.DataFrame | None = None) -> list[tuple[str, ...]]:
    """Rows (collective, p, size range, fastest algorithm, crossover, basis).

    With curve fits the winner comes from the fitted lines on a fine size grid (smooth, so noise does not
    flip the answer at every size); curves without a fit fall back to the measured medians.
    """
    data = one_variant(df)
    data = data[~data["collective"].map(is_point_to_point)]  # three measurements, not competing algorithms
    rows = []
    for (coll, p), g in data.groupby(["collective", "world_size"]):
        grid = np.geomspace(*plots.size_range(g["bytes"]), 256)
        preds = {}
        if fits is not None and not fits.empty:
            for alg, sub in g.groupby("algorithm"):
                key = {"collective": coll, "algorithm": alg, "world_size": p, "in_place": bool(sub["in_place"].iloc[0])}
                try:
                    preds[alg] = fitting.curve_time_us(fits, key, grid)
                except AnalysisError:
                    continue
        if len(preds) >= 2:
            names = list(preds)
            winner = np.argmin(np.vstack([preds[a] for a in names]), axis=0)
            runs, basis = _ranges([(names[i], n) for i, n in zip(winner, grid, strict=True)]), "fitted lines"
        else:
            best = g.loc[g.groupby("bytes")["time_us"].idxmin()].sort_values("bytes")
            runs, basis = _ranges(list(zip(best["algorithm"], best["bytes"], strict=True))), "measured medians"
        for i, (alg, lo, hi) in enumerate(runs):
            cross = f"-> {runs[i + 1][0]} at {size_label(runs[i + 1][1])}" if i + 1 < len(runs) else ""
            rows.append((coll, str(p), f"{size_label(lo)} - {size_label(hi)}", alg, cross, basis))
    return rows


def _text(x: object) -> str:
    """A run.json value for a table cell: '-' where the run has none (an import has no torch, no start time)."""
    return "-" if x is None or x == "" else str(x)


def _metadata(runs: list[Run], machines: dict[str, Machine]) -> Block:
    """The runs table; nodes x ranks per node as the verdict resolved them (an import's hardware file or
    options included), so it agrees with the machine line."""
    header = ("run", "status", "host", "backend/device", "p", "nodes x ranks", "torch", "cpu / gpu", "start (UTC)",
              "command")  # fmt: skip
    rows = []
    for r in runs:
        m, mach = r.meta, machines[r.run_id]
        hw = m.get("hardware") or {}
        cpu_gpu = " / ".join(str(x) for x in (hw.get("cpu_model"), hw.get("gpu_model")) if x) or "-"
        status = f"{m.get('status')}" + (f" ({m.get('status_reason')})" if m.get("status_reason") else "")
        per_node = mach.gpus_per_node or m.get("ranks_per_node") or hw.get("gpus_per_node")
        topo = f"{mach.nnodes or m.get('nnodes') or '?'} x {per_node or '?'}"
        rows.append((r.run_id, status,
                     _text(m.get("host")), f"{m.get('backend')}/{m.get('device')}", _text(m.get("world_size")), topo,
                     _text((m.get("versions") or {}).get("torch")), cpu_gpu, _text(m.get("start_time")),
                     " ".join(str(c) for c in m.get("command") or []) or "-"))  # fmt: skip
    return Block("table", header=header, rows=tuple(rows))


#: what a report writes into its --out directory (analysis.outputs.claim_output_dir refuses an earlier one)
REPORT_OUTPUTS = ("report.md", "report.html", "fits.csv", "figures")
VERDICT_HEADER = ("collective", "p", "algorithm", "peak busbw (GB/s)", "at size", "roof (GB/s)", "share of roof",
                  "verdict", "roof: why")  # fmt: skip


def changes_blocks(df: pd.DataFrame, baseline: list[Run], threshold: float = 0.10, alpha: float = 0.01) -> list[Block]:
    """'What changed' against a baseline run, by ``collbench compare``'s rule (ratio CI past the threshold,
    significant, confirmed by a neighbouring size): counts, then the changed points, largest first."""
    if not baseline:
        return []
    base_ids = ", ".join(r.run_id for r in baseline)
    changes, unmatched = compare.compare_frames(points(baseline), df, threshold, alpha)
    if not changes:
        return [Block("h2", "What changed"), Block("p", f"Against {base_ids}: no point in common.")]
    counts = {v: sum(c.verdict == v for c in changes) for v in ("regression", "improvement", "isolated", "same")}
    summary = (f"Against {base_ids}: {len(changes)} points compared ({len(unmatched)} unmatched); "
               f"{counts['regression']} slower, {counts['improvement']} faster by more than {threshold:.0%} "
               f"(95% CI, confirmed by a neighbouring size), {counts['isolated']} isolated, "
               f"{counts['same']} unchanged.")  # fmt: skip
    moved = sorted((c for c in changes if c.verdict in ("regression", "improvement")),
                   key=lambda c: -abs(math.log(c.ratio)))[:15]  # fmt: skip
    rows = tuple((c.collective, c.algorithm, str(c.world_size), size_label(c.bytes), c.verdict,
                  f"{c.ratio:.2f} [{c.ratio_lo:.2f}, {c.ratio_hi:.2f}]", _num(c.base_time_us), _num(c.new_time_us))
                 for c in moved)  # fmt: skip
    blocks = [Block("h2", "What changed"), Block("p", summary)]
    if rows:
        blocks.append(Block("table", header=("collective", "algorithm", "p", "size", "change", "time ratio [CI]",
                                             "base time_us", "new time_us"), rows=rows))  # fmt: skip
    return blocks


def _verdict_blocks(runs: list[Run], vs: list[verdict.Verdict], ms: dict[str, Machine]) -> list[Block]:
    """The verdict detail: the machine each run ran on, one row per (collective, p, algorithm) (collapsed when
    long, under a summary row), and its notes folded (one line per note, with a count)."""
    several = len(runs) > 1
    header = (("run",) if several else ()) + VERDICT_HEADER
    rows = []
    for v in vs:
        alg = v.algorithm + ("" if v.role == "builtin" else f" ({v.role})")
        peak = f"{v.peak_busbw_gbps:.4g}" if v.world_size >= 2 else f"algbw {v.peak_algbw_gbps:.4g}"
        roof = f"{v.roof_gbps:.4g} {v.roof_kind}" if v.roof_gbps else "unknown"
        share = f"{100 * v.ratio:.0f} %" if v.ratio is not None else "-"
        why = v.roof_why if v.roof_gbps is not None else "unknown: see below"
        rows.append(((v.run_id,) if several else ()) + (v.collective, str(v.world_size), alg, peak,
                                                         size_label(v.peak_bytes), roof, share, v.rating, why))
    machines = [f"{k}: {m.describe()}" if several else m.describe() for k, m in ms.items()]
    notes = ([Note("", f"No roof: {v.roof_why}") for v in vs if v.roof_gbps is None]
             + [Note("", n) for m in ms.values() for n in m.notes]
             + [Note(f"{v.collective} p={v.world_size} {v.algorithm}", n) for v in vs for n in v.notes])  # fmt: skip
    ratings = {r: sum(v.rating == r for v in vs) for r in dict.fromkeys(v.rating for v in vs)}
    summary = (f"Verdict table, {len(rows)} rows: " + ", ".join(f"{n} {r}" for r, n in ratings.items())
               if len(rows) > LONG_TABLE_ROWS else "")  # fmt: skip
    blocks = [Block("h2", "Verdict: peak bus bandwidth against the roof"),
              Block("list", rows=tuple((f"Machine: {m}",) for m in machines)),
              Block("table", header=header, rows=tuple(rows), summary=summary)]  # fmt: skip
    if notes:
        blocks.append(Block("list", rows=tuple((n,) for n in fold(notes))))
    blocks.append(Block("p", "Roof: inside one node (or NVLink domain) the GPU's link per direction; across nodes "
                             "(or domains) a ring-type collective's busbw is bounded by the node's (or domain's) NIC "
                             "total (NICs x Gb/s / 8), capped by the link; all-to-all by its inter-node share "
                             "B (n - 1) / (g (n - g)); send_recv by one NIC; for reductions the "
                             "memory-bound combine (B_mem / 3 per byte combined) when lower. docs/fitting.md, "
                             "section Verdict; hardware from docs/hardware.md, a hardware.toml beside the results "
                             "or --gpu / --nic-gbps / --nics-per-node."))  # fmt: skip
    return blocks


def spec_roofs(runs: list[Run], overrides: dict | None) -> dict[tuple[str, int], list[tuple[str, float, str]]]:
    """(collective, p) -> spec roofs for the roofline, from the first run that has that (collective, p)."""
    ms = verdict.machines(runs, overrides)
    out: dict[tuple[str, int], list[tuple[str, float, str]]] = {}
    for r in runs:
        for coll, p in r.points[["collective", "world_size"]].drop_duplicates().itertuples(index=False):
            out.setdefault((str(coll), int(p)), verdict.plot_roofs(ms[r.run_id], str(coll), int(p)))
    return out


def points(runs: list[Run]) -> pd.DataFrame:
    """Every point of ``runs`` as one table; AnalysisError when there is none."""
    df = pd.concat([r.points for r in runs], ignore_index=True)
    if df.empty:
        raise AnalysisError("the runs hold no measured points")
    return df


def fit(df: pd.DataFrame, n_boot: int = 100) -> tuple[pd.DataFrame | None, str | None]:
    """The fits of ``df`` for the report, or (None, why not): a report without fits is still a report."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit_all(df, n_boot=n_boot), None
    except Exception as exc:  # noqa: BLE001 - shown in the report instead
        return None, str(exc)


#: what each figure section shows and what to look at in it (the caption above its grid)
LOOK = {
    "busbw": "where each line flattens is the bandwidth the backend reaches; the highest line at a size is the "
             "algorithm to use there. A line still rising at the right edge has not reached its peak.",
    "roofline": "how far the measured points stay below the roofs; points on the sloped latency line are bound by "
                "the per-call latency alpha, points near a flat roof by bandwidth. A dashed roof above every point "
                "is what the hardware allows.",
    "time": "the points should sit on their fitted line; a bend where the line misses them is a protocol or "
            "algorithm switch (a breakpoint) or a noisy size.",
    "best": "the colour of each cell is the fastest algorithm at that size and world size; a change of colour "
            "along a row is a crossover.",
    "residuals": "residuals should scatter around 0 within a few %; a trend or one far point means the line "
                 "model does not describe that curve there.",
    "scaling": "where the weak-scaling efficiency drops, communication is no longer hidden by compute.",
}


def _notes_of(runs: list[Run], df: pd.DataFrame, fits: pd.DataFrame | None, fit_error: str | None) -> list[Note]:
    """The Warnings section's notes (folded on the page)."""
    notes = [Note(r.run_id, f"status {r.meta.get('status')} ({r.meta.get('status_reason')})") for r in runs
             if r.meta.get("status") != "complete"]  # fmt: skip
    if fits is None:
        notes.append(Note("", f"Fit unavailable: {fit_error or 'not fitted'}"))
    elif fits.empty:
        notes.append(Note("", "No fit: every curve has fewer than 3 sizes and no model has 2 world sizes."))
    if df["collective"].map(is_point_to_point).any():
        notes.append(Note("", f"{SEND_RECV.name} (point-to-point between two ranks) has no roofline and no row in "
                              "'which algorithm when': latency, bw and bibw are three measurements of one link, not "
                              "algorithms to choose from, and it has no busbw factor or cost model; its bytes moved "
                              "per second are in 'Bus bandwidth vs size' and its times in 'Time vs size'"))  # fmt: skip
    wrong = df[~df["correct"].astype(bool)]
    notes += [Note("", f"WRONG result: {w.collective}/{w.algorithm} {w.bytes} B p={w.world_size}")
              for w in wrong.itertuples()]  # fmt: skip
    noisy = int(df["noisy"].sum())
    if noisy:
        notes.append(Note("", f"{noisy} of {len(df)} points are noisy (95% CI of the estimate wider than the target; "
                              "v1 files: p90/p10 > 1.5 or block vs median > 20%): read them with care"))  # fmt: skip
    for r in runs:
        notes += [_run_note(r.run_id, str(w)) for w in (r.meta.get("warnings") or []) if "noisy" not in str(w)]
    return notes


#: a run warning about one case ('all_reduce/ring 2048 B in-place: interference: ...'): the case is its subject
CASE_NOTE = re.compile(r"([a-z_]+/[\w.-]+(?: [^:]*)?): (.+)", re.S)


def _run_note(run_id: str, text: str) -> Note:
    """A run warning as a note; one about a case names the case in its subject, so the same warning on many cases
    folds into one line."""
    m = CASE_NOTE.fullmatch(text)
    return Note(f"{run_id} {m.group(1)}", m.group(2)) if m else Note(run_id, text)


def _counts(runs: list[Run], vs: list[verdict.Verdict]) -> dict[str, Counts]:
    """Per run: warnings (incomplete status, wrong results, its own warnings), noisy points, verdict notes."""
    out = {}
    for r in runs:
        pts = r.points
        warn = int(r.meta.get("status") != "complete") + int((~pts["correct"].astype(bool)).sum())
        warn += sum("noisy" not in str(w) for w in r.meta.get("warnings") or [])
        notes = sum(len(v.notes) for v in vs if v.run_id == r.run_id)
        out[r.run_id] = Counts(warnings=warn, noisy=int(pts["noisy"].sum()), notes=notes)
    return out


def _changed(runs: list[Run], baseline: list[Run], threshold: float = 0.10, alpha: float = 0.01) -> dict[str, str]:
    """Per run, the headline's 'what changed' line against the baseline (collbench compare's rule)."""
    if not baseline:
        return {}
    base = points(baseline)
    out = {}
    for r in runs:
        changes, _ = compare.compare_frames(base, r.points, threshold, alpha)
        slower = sum(c.verdict == "regression" for c in changes)
        faster = sum(c.verdict == "improvement" for c in changes)
        out[r.run_id] = (f"Against the baseline: {slower} point(s) slower, {faster} faster by more than "
                         f"{threshold:.0%} of {len(changes)} compared" if changes else
                         "Against the baseline: no point in common")  # fmt: skip
    return out


def _which_blocks(which: list[tuple[str, ...]]) -> list[Block]:
    """'Which algorithm when': collapsed under a summary row (how many crossovers) when long."""
    rows = tuple(which)
    curves = len({(r[0], r[1]) for r in rows})
    summary = (f"Which algorithm when, {len(rows)} rows for {curves} (collective, p): {len(rows) - curves} "
               "crossover(s)") if len(rows) > LONG_TABLE_ROWS else ""  # fmt: skip
    return [Block("h2", "Which algorithm when (fastest by the fitted lines; crossover sizes)"),
            Block("table", header=("collective", "p", "sizes", "fastest", "crossover", "from"), rows=rows,
                  summary=summary)]  # fmt: skip


def _figure_blocks(name: str, look: str, paths: list[Path]) -> list[Block]:
    if not paths:
        return []
    return [Block("h2", name), Block("look", look), *(Block("img", _caption(p), path=p) for p in paths)]


def _caption(path: Path) -> str:
    """A figure file's name, readable: 'roofline_all_reduce_p4' -> 'roofline: all_reduce, p = 4'."""
    kind, _, rest = path.stem.partition("_")
    m = re.fullmatch(r"(?:(.*)_)?p(\d+)", rest)
    if m:
        rest = ", ".join(x for x in (m.group(1), f"p = {m.group(2)}") if x)
    return f"{kind}: {rest}" if rest else kind


def scaling_predictor(runs: list[Run], fits: pd.DataFrame, gpus_per_node: int | None, n_boot: int):
    """What ``collbench predict --scaling`` uses for these runs: the two-tier fit when the all_reduce points span
    two scales with a multi-node one (a series of node counts), else the fits across world sizes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pts = twotier.load_points([str(r.path) for r in runs], gpus_per_node)
    mine = pts[pts["collective"] == "all_reduce"]
    if twotier.multi_scale(mine) and mine["algorithm"].isin(twotier.RING_SOURCES).any():
        return build_predictor([str(r.path) for r in runs], "all_reduce", gpus_per_node=gpus_per_node,
                               n_boot=n_boot)[0]  # fmt: skip
    return fits


def _world_sizes(pred: object, grad_bytes: int) -> tuple[list[int], str]:
    """World sizes of the scaling table and what was left out: powers of 2; with a two-tier fit (g GPUs per node)
    those up to g, then g x 2^k, less the scales the fit cannot predict (a tier it has not measured)."""
    if not isinstance(pred, TwoTierPredictor):
        return [2**k for k in range(11)], ""
    g = pred.g
    sizes = sorted({1, *(2**k for k in range(11) if 2**k <= g), *(g * 2**k for k in range(9))})
    kept = [p for p in sizes if p == 1 or pred.predict("ring", p, grad_bytes) is not None]
    left = [p for p in sizes if p not in kept]
    why = (f"world sizes {', '.join(map(str, left))} left out: the two-tier fit has not measured the tier they use "
           "(collbench predict says which)") if left else ""  # fmt: skip
    return kept, why


def scale_blocks(study: Path, figs: Path) -> list[Block]:
    """The measured scaling study of ``collbench scale --study`` (its scale.csv; its figures copied into
    ``figs``, so the report stays one folder), when given."""
    import shutil

    from analysis.scaling_study import report_section

    header, rows, notes, found = report_section(study)
    figs.mkdir(parents=True, exist_ok=True)
    figures = [Path(shutil.copyfile(f, figs / f"scale_{f.name}")) for f in found]
    return [Block("h2", "Scaling study: measured step vs prediction from the fits"),
            Block("table", header=tuple(header), rows=tuple(tuple(r) for r in rows)),
            Block("list", rows=tuple((n,) for n in notes) or (("no law fitted (no p > 1)",),)),
            *[Block("img", f.stem.replace("_", " "), path=f) for f in figures]]  # fmt: skip


def build(runs: list[Run], fits: pd.DataFrame | None, figs: Path, *, peak_gbps: float | None = None,
          gamma_gbps: float | None = None, grad_bytes: int | None = None, compute_ms: float | None = None,
          overlap: float = 0.0, title: str | None = None, fit_error: str | None = None,
          hardware_overrides: dict | None = None, baseline: list[Run] | None = None,
          n_boot: int = 100, scale_dir: Path | None = None) -> list[Block]:  # fmt: skip
    """The report's blocks; its figures are drawn into ``figs``. Fitting and writing are the caller's steps.

    Order: the headline cards (is the number good?), busbw vs size, what changed, the verdict detail, which
    algorithm when, warnings, the other figures (roofline first), the scaling table, the runs, and last the
    full fit table, collapsed."""
    df = points(runs)
    overrides = dict(hardware_overrides or {})
    title = title or f"collbench report: {', '.join(r.run_id for r in runs)}"
    vs, ms = verdict.verdicts(runs, overrides)
    which = which_algorithm_when(df, fits)
    blocks = [Block("h1", title)]
    blocks += headline(runs, vs, ms, which, _counts(runs, vs), _changed(runs, baseline or []))
    busbw = plots.busbw_vs_size(df, figs)
    if busbw:
        blocks += [Block("h2", "Bus bandwidth vs size"), Block("look", LOOK["busbw"])]
        blocks += [Block("interactive", caption, figure=fig) for caption, fig in report_interactive.busbw_figures(df)]
        blocks += [Block("img", _caption(p), path=p, md_only=True) for p in busbw]
    blocks += changes_blocks(df, baseline or [])
    blocks += _verdict_blocks(runs, vs, ms)
    blocks += _which_blocks(which)
    notes = _notes_of(runs, df, fits, fit_error)
    blocks += [Block("h2", "Warnings"), Block("list", rows=tuple((n,) for n in fold(notes)) or (("none",),))]
    roofs = spec_roofs(runs, overrides)
    blocks += _figure_blocks("Communication roofline (spec roofs from the hardware catalog)", LOOK["roofline"],
                             plots.roofline(df, fits, figs, peak_gbps, gamma_gbps, spec_roofs=roofs))
    blocks += _figure_blocks("Time vs size with fitted models", LOOK["time"], plots.time_vs_size(df, fits, figs))
    blocks += _figure_blocks("Fastest algorithm per size and world size", LOOK["best"],
                             plots.best_algorithm_map(df, figs))
    blocks += _figure_blocks("Fit residuals", LOOK["residuals"], plots.residuals(df, fits, figs))
    if grad_bytes and compute_ms and fits is not None:
        caption = f"Will more GPUs help? ring all-reduce of {size_label(grad_bytes)}, compute {compute_ms} ms"
        try:
            pred = scaling_predictor(runs, fits, overrides.get("gpus_per_node"), n_boot)
            world_sizes, left_out = _world_sizes(pred, grad_bytes)
            table = scaling_table(pred, grad_bytes=grad_bytes, compute_ms=compute_ms, overlap=overlap,
                                  world_sizes=world_sizes)  # fmt: skip
            blocks += _figure_blocks(caption, LOOK["scaling"], plots.scaling(table, figs, caption))
            blocks += [Block("p", left_out)] if left_out else []
            rows = tuple(tuple(_num(v, "{:.4g}") for v in row) for row in table.itertuples(index=False))
            blocks += [Block("h2", caption + ": table"), Block("table", header=tuple(table.columns), rows=rows)]
        except AnalysisError as exc:
            blocks += [Block("h2", caption), Block("p", f"Scaling prediction unavailable: {exc}")]
    if scale_dir is not None:
        blocks += scale_blocks(scale_dir, figs)
    blocks += [Block("h2", "Runs"), _metadata(runs, ms)]
    if fits is not None and not fits.empty:
        blocks += [Block("h2", "Fits"),
                   Block("details", f"Full fit table ({len(fits)} rows): alpha_us [95% CI], bw_gbps, gamma, R2, "
                                    "MAPE, loo"),
                   Block("p", fits_table.CAPTION),
                   Block("table", header=fits_table.HEADER, rows=tuple(fits_table.rows(fits))),
                   Block("end")]  # fmt: skip
    return blocks

__all__ = ["Block", "build", "fit", "md_cell", "points", "to_html", "to_markdown", "which_algorithm_when"]
