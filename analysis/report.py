"""``collbench report RUN...``: a Markdown report and a self-contained HTML report (figures embedded) that a
person reads top-down: the verdicts first (peak busbw against the link / network roof, analysis.verdict), the
"which algorithm when" table with crossover sizes, warnings, the figures (roofline with spec roofs first), the
runs, and last the full fit table, collapsed.

Both documents are rendered from one list of blocks; every string taken from a result file is escaped
(HTML: ``html.escape``; Markdown tables: ``|`` and newlines), so a hostile run.json cannot inject markup.
"""

from __future__ import annotations

import base64
import html
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import compare, fits_table, fitting, plots, verdict
from analysis.errors import AnalysisError
from analysis.fitting import fit_all
from analysis.predict import scaling_table
from analysis.read_runs import Run
from analysis.selection import one_variant
from analysis.units import size_label
from collectives.spec import SEND_RECV, is_point_to_point


@dataclass(frozen=True)
class Block:
    """One piece of the report: a heading, a paragraph, a table, a list or a figure."""

    kind: str  # h1 | h2 | p | table | list | img | details (opens a collapsed section; text = summary) | end
    text: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    path: Path | None = None


def md_cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def to_markdown(blocks: list[Block], base: Path) -> str:
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2"):
            out.append(f"{'#' if b.kind == 'h1' else '##'} {md_cell(b.text)}\n")
        elif b.kind == "p":
            out.append(md_cell(b.text) + "\n")
        elif b.kind == "list":
            out.append("\n".join(f"- {md_cell(r[0])}" for r in b.rows) + "\n")
        elif b.kind == "table":
            out.append("| " + " | ".join(md_cell(h) for h in b.header) + " |")
            out.append("|" + "---|" * len(b.header))
            out.extend("| " + " | ".join(md_cell(c) for c in r) + " |" for r in b.rows)
            out.append("")
        elif b.kind == "img" and b.path is not None:
            out.append(f"![{md_cell(b.text)}]({b.path.relative_to(base).as_posix()})\n")
        elif b.kind == "details":
            out.append(f"<details><summary>{html.escape(md_cell(b.text))}</summary>\n")
        elif b.kind == "end":
            out.append("</details>\n")
    return "\n".join(out)


def to_html(blocks: list[Block], title: str) -> str:
    e = html.escape
    body = []
    for b in blocks:
        if b.kind in ("h1", "h2"):
            body.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "list":
            body.append("<ul>" + "".join(f"<li>{e(r[0])}</li>" for r in b.rows) + "</ul>")
        elif b.kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b.kind == "img" and b.path is not None:
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{e(b.text)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{e(b.text)}</figcaption></figure>")  # fmt: skip
        elif b.kind == "details":
            body.append(f"<details><summary>{e(b.text)}</summary>")
        elif b.kind == "end":
            body.append("</details>")
    style = ("body{font-family:sans-serif;max-width:1400px;margin:auto;padding:1em}table{border-collapse:collapse;"
             "font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "td:last-child{text-align:left}"
             "img{max-width:100%}figcaption{color:#555}"
             "summary{cursor:pointer;font-weight:bold;margin:1em 0}")  # fmt: skip
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")  # fmt: skip


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


def _metadata(runs: list[Run]) -> Block:
    header = ("run", "status", "host", "backend/device", "p", "nodes x ranks", "torch", "cpu / gpu", "start (UTC)",
              "command")  # fmt: skip
    rows = []
    for r in runs:
        m = r.meta
        hw = m.get("hardware") or {}
        cpu_gpu = " / ".join(str(x) for x in (hw.get("cpu_model"), hw.get("gpu_model")) if x)
        status = f"{m.get('status')}" + (f" ({m.get('status_reason')})" if m.get("status_reason") else "")
        per_node = m.get("ranks_per_node") or hw.get("gpus_per_node")
        topo = f"{m.get('nnodes') or '?'} x {per_node or '?'}"
        rows.append((r.run_id, status,
                     str(m.get("host")), f"{m.get('backend')}/{m.get('device')}", str(m.get("world_size")), topo,
                     str((m.get("versions") or {}).get("torch")), cpu_gpu, str(m.get("start_time")),
                     " ".join(str(c) for c in m.get("command") or [])))  # fmt: skip
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


def _verdict_blocks(runs: list[Run], overrides: dict | None) -> list[Block]:
    """The opening section: the machine each run ran on and one verdict row per (collective, p, algorithm)."""
    vs, ms = verdict.verdicts(runs, overrides)
    several = len(runs) > 1
    header = (("run",) if several else ()) + VERDICT_HEADER
    rows = []
    unknown = []  # why a roof is unknown: said once below the table, not on every row
    for v in vs:
        why = v.roof_why
        if v.roof_gbps is None:
            unknown.append(why)
            why = "unknown: see below"
        alg = v.algorithm + ("" if v.role == "builtin" else f" ({v.role})")
        peak = f"{v.peak_busbw_gbps:.4g}" if v.world_size >= 2 else f"algbw {v.peak_algbw_gbps:.4g}"
        roof = f"{v.roof_gbps:.4g} {v.roof_kind}" if v.roof_gbps else "unknown"
        share = f"{100 * v.ratio:.0f} %" if v.ratio is not None else "-"
        rows.append(((v.run_id,) if several else ()) + (v.collective, str(v.world_size), alg, peak,
                                                         size_label(v.peak_bytes), roof, share, v.rating, why))
    machines = [f"{k}: {m.describe()}" if several else m.describe() for k, m in ms.items()]
    notes = list(dict.fromkeys([f"No roof: {w}" for w in unknown] + [n for m in ms.values() for n in m.notes] +
                               [f"{v.collective} p={v.world_size} {v.algorithm}: {n}" for v in vs for n in v.notes]))
    blocks = [Block("h2", "Verdict: peak bus bandwidth against the roof"),
              Block("list", rows=tuple((f"Machine: {m}",) for m in machines)),
              Block("table", header=header, rows=tuple(rows))]  # fmt: skip
    if notes:
        blocks.append(Block("list", rows=tuple((n,) for n in notes)))
    blocks.append(Block("p", "Roof: inside one node (or NVLink domain) the GPU's link per direction; across nodes "
                             "the network per GPU (NICs per node x Gb/s / 8 / GPUs per node); for reductions the "
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
          scale_dir: Path | None = None) -> list[Block]:  # fmt: skip
    """The report's blocks; its figures are drawn into ``figs``. Fitting and writing are the caller's steps.

    Order: verdicts (is the number good?), which algorithm when, warnings, figures (roofline first), the
    scaling table, the runs, and last the full fit table, collapsed."""
    df = points(runs)
    overrides = dict(hardware_overrides or {})
    title = title or f"collbench report: {', '.join(r.run_id for r in runs)}"
    blocks = [Block("h1", title)]
    blocks += _verdict_blocks(runs, overrides)
    blocks += changes_blocks(df, baseline or [])
    blocks += [Block("h2", "Which algorithm when (fastest by the fitted lines; crossover sizes)"),
               Block("table", header=("collective", "p", "sizes", "fastest", "crossover", "from"),
                     rows=tuple(which_algorithm_when(df, fits)))]  # fmt: skip
    notes = [f"{r.run_id}: status {r.meta.get('status')} ({r.meta.get('status_reason')})" for r in runs
             if r.meta.get("status") != "complete"]  # fmt: skip
    if fits is None:
        notes.append(f"Fit unavailable: {fit_error or 'not fitted'}")
    elif fits.empty:
        notes.append("No fit: every curve has fewer than 3 sizes and no model has 2 world sizes.")
    if df["collective"].map(is_point_to_point).any():
        notes.append(f"{SEND_RECV.name} (point-to-point between two ranks) has no roofline and no row in 'which "
                     "algorithm when': latency, bw and bibw are three measurements of one link, not algorithms to "
                     f"choose from, and it has no busbw factor or cost model; its bytes moved per second are in "
                     "'Bus bandwidth vs size' and its times in 'Time vs size'")  # fmt: skip
    wrong = df[~df["correct"].astype(bool)]
    notes += [f"WRONG result: {w.collective}/{w.algorithm} {w.bytes} B p={w.world_size}" for w in wrong.itertuples()]
    noisy = int(df["noisy"].sum())
    if noisy:
        notes.append(f"{noisy} of {len(df)} points are noisy (95% CI of the estimate wider than the target; "
                     "v1 files: p90/p10 > 1.5 or block vs median > 20%): read them with care")  # fmt: skip
    for r in runs:
        notes += [f"{r.run_id}: {w}" for w in (r.meta.get("warnings") or []) if "noisy" not in str(w)][:20]
    blocks += [Block("h2", "Warnings"), Block("list", rows=tuple((n,) for n in notes) or (("none",),))]
    roofs = spec_roofs(runs, overrides)
    sections = [("Communication roofline (spec roofs from the hardware catalog)",
                 plots.roofline(df, fits, figs, peak_gbps, gamma_gbps, spec_roofs=roofs)),
                ("Bus bandwidth vs size", plots.busbw_vs_size(df, figs)),
                ("Time vs size with fitted models", plots.time_vs_size(df, fits, figs)),
                ("Fastest algorithm per size and world size", plots.best_algorithm_map(df, figs)),
                ("Fit residuals", plots.residuals(df, fits, figs))]  # fmt: skip
    tail: list[Block] = []
    if grad_bytes and compute_ms and fits is not None:
        try:
            table = scaling_table(fits, grad_bytes=grad_bytes, compute_ms=compute_ms, overlap=overlap,
                                  world_sizes=[2**k for k in range(11)])  # fmt: skip
            caption = f"Will more GPUs help? ring all-reduce of {size_label(grad_bytes)}, compute {compute_ms} ms"
            sections.append((caption, plots.scaling(table, figs, caption)))
            tail += [Block("h2", caption + ": table"),
                     Block("table", header=tuple(table.columns),
                           rows=tuple(tuple(_num(v, "{:.4g}") for v in row) for row in table.itertuples(index=False)))]
        except AnalysisError as exc:
            tail.append(Block("p", f"Scaling prediction unavailable: {exc}"))
    for name, paths in sections:
        if paths:
            blocks.append(Block("h2", name))
            blocks += [Block("img", p.stem.replace("_", " "), path=p) for p in paths]
    blocks += tail
    if scale_dir is not None:
        blocks += scale_blocks(scale_dir, figs)
    blocks += [Block("h2", "Runs"), _metadata(runs)]
    if fits is not None and not fits.empty:
        blocks += [Block("h2", "Fits"),
                   Block("details", f"Full fit table ({len(fits)} rows): alpha_us [95% CI], bw_gbps, gamma, R2, "
                                    "MAPE, loo"),
                   Block("p", fits_table.CAPTION),
                   Block("table", header=fits_table.HEADER, rows=tuple(fits_table.rows(fits))),
                   Block("end")]  # fmt: skip
    return blocks
