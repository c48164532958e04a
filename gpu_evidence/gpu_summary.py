#!/usr/bin/env python
"""SUMMARY.md of a GPU evidence folder (gpu_evidence/gpu_evidence.py): the headline figures from its result files.

Standard library only (no torch, no pandas), so it runs wherever the folder is, including on a device machine
without the analysis packages and on the dry-run output. Reads what is there and says what is missing:

- steps.json (what ran, how it ended), env.json (GPU, driver, torch, NCCL);
- runs/<label>/<run>/results.csv: hand-written ring and tree vs the builtin at the size nearest 4 KiB and the
  largest size (busbw for p >= 2, algbw at p = 1 where busbw is 0 by definition);
- timing.json: CUDA events vs host clock, CUDA graph vs eager (launch overhead removed per call);
- runs nccl-w1 vs nccl-w1-graph: the same saving as collbench run measures it;
- roof.json: out = a + b bandwidth vs the HBM spec, and the gamma fed to the report;
- fit/gloo/fits.csv: the across-world-size alpha-beta(-gamma) model fits.

    python gpu_evidence/gpu_summary.py results/gpu-<gpu>-<date>      # writes <dir>/SUMMARY.md, prints it
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.units import size_label  # noqa: E402 - stdlib-only module of the checkout
from collectives.spec import COLLECTIVES, spec  # noqa: E402 - stdlib-only module of the checkout

HEADLINE_ALGORITHMS = ("builtin", "ring", "tree")  # columns; ring/tree stand for each collective's own pair


def headline_algorithms(collective: str) -> tuple[str, str, str]:
    """builtin, the bandwidth algorithm and the log-latency one: ring and tree; pairwise and bruck for all_to_all."""
    s = spec(collective)
    return ("builtin", s.bandwidth_algorithm, s.latency_algorithm)
NEAR_BYTES = 4096


def _load_json(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def find_run(folder: Path, label: str) -> Path | None:
    """The newest run directory (one holding results.csv) under folder/runs/label."""
    parent = folder / "runs" / label
    runs = sorted(p.parent for p in parent.glob("*/results.csv")) if parent.is_dir() else []
    return runs[-1] if runs else None


def read_points(run: Path) -> list[dict]:
    """results.csv rows, typed by the result schema's own reader (bench.schema: standard library only)."""
    from bench.schema import read_results_csv

    rows, _ = read_results_csv((run / "results.csv").read_text(), str(run / "results.csv"))
    for r in rows:
        for k in ("time_us", "block_time_us", "algbw_gbps", "busbw_gbps"):
            r[k] = math.nan if r[k] is None else r[k]
    return rows


def _variant(points: list[dict]) -> list[dict]:
    """Out-of-place where a collective has it (nccl-tests' first column), correct points only."""
    oop = {(p["collective"], p["algorithm"], p["bytes"]) for p in points if not p["in_place"]}
    return [
        p
        for p in points
        if p["correct"] and (not p["in_place"] or (p["collective"], p["algorithm"], p["bytes"]) not in oop)
    ]


def headline_rows(points: list[dict]) -> list[tuple[str, ...]]:
    """Per (collective, size nearest 4 KiB / largest): builtin, ring and tree bandwidth and their ratio to builtin
    (pairwise and bruck for all_to_all, named in the cell)."""
    rows = []
    pts = _variant(points)
    for coll in COLLECTIVES:
        cp = [p for p in pts if p["collective"] == coll]
        if not cp:
            continue
        p_world = cp[0]["world_size"]
        metric = "busbw_gbps" if p_world > 1 else "algbw_gbps"
        sizes = sorted({p["bytes"] for p in cp})
        picks = [min(sizes, key=lambda s: abs(math.log(s / NEAR_BYTES)))] + [sizes[-1]]
        for size in dict.fromkeys(picks):
            by_alg = {p["algorithm"]: p for p in cp if p["bytes"] == size}
            base = by_alg.get("builtin")
            cells = []
            for column, alg in zip(HEADLINE_ALGORITHMS, headline_algorithms(coll), strict=True):
                p = by_alg.get(alg)
                if p is None:
                    cells.append("-")
                    continue
                text = ("" if alg == column else f"{alg}: ") + f"{p[metric]:.3g} GB/s ({p['time_us']:.1f} us)"
                if alg != "builtin" and base is not None and base[metric] > 0:
                    text += f" x{p[metric] / base[metric]:.2f}"
                cells.append(text)
            rows.append((coll, str(p_world), size_label(size), metric.split("_")[0], *cells))
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return out + [""]


def _num(x: object, fmt: str = "{:.3g}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return fmt.format(x)


def _step_note(steps: list[dict], name: str) -> str:
    for s in steps:
        if s["name"] == name:
            return f"{s['status']}" + (f": {s['note']}" if s.get("note") else "")
    return "not run"


def graph_saving_from_runs(eager: list[dict], graph: list[dict]) -> list[tuple[str, ...]]:
    """builtin all_reduce per size: eager vs --cuda-graph median and block times, and the difference."""

    def index(points: list[dict]) -> dict[int, dict]:
        return {
            p["bytes"]: p for p in _variant(points) if p["collective"] == "all_reduce" and p["algorithm"] == "builtin"
        }

    e, g = index(eager), index(graph)
    rows = []
    for size in sorted(set(e) & set(g)):
        a, b = e[size], g[size]
        rows.append(
            (
                size_label(size),
                f"{a['time_us']:.2f}",
                f"{b['time_us']:.2f}",
                f"{a['time_us'] - b['time_us']:.2f}",
                f"{a['block_time_us']:.2f}",
                f"{b['block_time_us']:.2f}",
                f"{a['block_time_us'] - b['block_time_us']:.2f}",
            )
        )
    return rows


def fit_model_rows(fits_csv: Path) -> list[tuple[str, ...]]:
    """Model rows (across world sizes) of the joint fit and of builtin/ring/tree (pairwise/bruck for all_to_all),
    out-of-place where both exist."""
    with open(fits_csv, newline="") as f:
        models = [r for r in csv.DictReader(f) if r["scope"] == "model"]
    keep = []
    for r in models:
        if r["collective"] == "*" or r["algorithm"] in headline_algorithms(r["collective"]):
            twin = any(
                o is not r
                and o["collective"] == r["collective"]
                and o["algorithm"] == r["algorithm"]
                and o["in_place"] == "False"
                for o in models
            )
            if r["in_place"] == "True" and twin:
                continue
            keep.append(r)

    def val(r: dict, k: str) -> float:
        return float(r[k]) if r.get(k) not in (None, "") else math.nan

    rows = []
    for r in keep:
        ws = r["method"].rsplit("world sizes ", 1)[-1] if "world sizes" in r["method"] else "-"
        rows.append(
            (
                r["collective"],
                r["algorithm"],
                ws,
                f"{_num(val(r, 'alpha_us'))} [{_num(val(r, 'alpha_us_lo'))}, {_num(val(r, 'alpha_us_hi'))}]",
                f"{_num(val(r, 'bw_gbps'))} [{_num(val(r, 'bw_gbps_lo'))}, {_num(val(r, 'bw_gbps_hi'))}]",
                _num(val(r, "gamma_gbps")),
                _num(val(r, "mape"), "{:.0f}"),
                _num(val(r, "loo_mape"), "{:.0f}"),
            )
        )
    return rows


def summarise(folder: Path) -> str:
    steps = _load_json(folder / "steps.json") or []
    env = _load_json(folder / "env.json") or {}
    meta = _load_json(folder / "evidence.json") or {}
    out = [f"# GPU evidence: {env.get('gpu_name') or 'no GPU'} ({folder.name})", ""]
    mode = meta.get("mode", "?")
    out += [
        f"- mode: {mode}"
        + (" (dry run on the host: sizes and process counts shrunk, CUDA steps skipped)" if mode == "cpu" else ""),
        f"- host: {env.get('host', '?')}, {env.get('cpu_count', '?')} CPUs; started {meta.get('started', '?')}; "
        f"budget {meta.get('budget_s', '?')} s, used {meta.get('elapsed_s', '?')} s",
        f"- GPU {env.get('gpu_name') or '-'}, driver {env.get('driver') or '-'}, torch {env.get('torch') or '-'}, "
        f"CUDA {env.get('cuda') or '-'}, NCCL {env.get('nccl') or '-'}, python {env.get('python') or '-'}",
        *(
            [
                f"- analysed again (--analyse-only): started {a.get('started', '?')}, {a.get('elapsed_s', '?')} s, "
                f"python {a.get('python', '?')}"
            ]
            if isinstance(a := meta.get("analysis"), dict)
            else []
        ),
        f"- outcome: {meta.get('outcome', 'unknown (the script did not finish)')}",
        "",
    ]

    out += ["## Steps", ""]
    out += _table(
        ("step", "status", "seconds", "note"),
        [(s["name"], s["status"], f"{s.get('seconds', 0):.0f}", s.get("note") or "") for s in steps],
    )

    out += [
        "## Hand-written ring and tree vs the builtin",
        "",
        "Bandwidth at the size nearest 4 KiB and at the largest size (busbw for p >= 2; algbw at p = 1, where "
        "busbw is 0 by definition), median time in brackets, xR = ratio to the builtin.",
        "",
    ]
    any_runs = False
    for label in [
        "nccl-w1",
        "nccl-multirank",
        *sorted(
            (p.name for p in (folder / "runs").glob("gloo-p*")), key=lambda n: int(n[6:]) if n[6:].isdigit() else 0
        ),
    ]:
        run = find_run(folder, label)
        if run is None:
            continue
        points = read_points(run)
        rj = _load_json(run / "run.json") or {}
        status = rj.get("status", "?") + (f" ({rj.get('status_reason')})" if rj.get("status_reason") else "")
        wrong = sum(1 for p in points if not p["correct"])
        out += [
            f"### {label}: {rj.get('backend', '?')} on {rj.get('device', '?')}, p = {rj.get('world_size', '?')}, "
            f"{len(points)} points, {wrong} wrong, run {status}",
            "",
        ]
        out += _table(("collective", "p", "size", "metric", *HEADLINE_ALGORITHMS), headline_rows(points))
        any_runs = True
    if not any_runs:
        out += ["No sweep was measured.", ""]

    out += ["## Several ranks on one GPU (NCCL)", "", _step_note(steps, "nccl-multirank"), ""]

    out += ["## Timing: CUDA events vs host clock; CUDA graph vs eager", ""]
    timing = _load_json(folder / "timing.json")
    if timing:
        keys = (
            "events_us",
            "events_block_us",
            "host_sync_us",
            "host_block_us",
            "graph_us",
            "graph_block_us",
            "graph_saving_us",
        )
        out += [
            f"{timing.get('backend')} world 1, builtin all_reduce float32, us per call (definitions in timing.json):",
            "",
        ]
        out += _table(
            ("size", *keys),
            [(size_label(p["bytes"]), *(_num(p.get(k), "{:.2f}") for k in keys)) for p in timing.get("points", [])],
        )
        small = (timing.get("points") or [{}])[0]
        if "graph_saving_us" in small:
            out += [
                f"**Launch overhead a CUDA graph removes: {small['graph_saving_us']:.2f} us per call** "
                f"(eager {small['events_block_us']:.2f} us vs graph {small['graph_block_us']:.2f} us per call, "
                f"back-to-back, {size_label(small['bytes'])}).",
                "",
            ]
        if "events_us" in small:
            out += [
                f"Host clock with a sync per call reads {small['host_sync_us']:.2f} us where CUDA events read "
                f"{small['events_us']:.2f} us ({size_label(small['bytes'])}).",
                "",
            ]
    else:
        out += [f"timing.json missing: {_step_note(steps, 'timing')}", ""]
    eager, graph = find_run(folder, "nccl-w1"), find_run(folder, "nccl-w1-graph")
    if eager and graph:
        out += ["collbench run, builtin all_reduce at p = 1: eager vs --cuda-graph (us per call):", ""]
        out += _table(
            ("size", "eager median", "graph median", "saving", "eager block", "graph block", "saving"),
            graph_saving_from_runs(read_points(eager), read_points(graph)),
        )

    out += ["## Reduction roof: out = a + b vs the HBM spec", ""]
    roof = _load_json(folder / "roof.json")
    if roof:
        spec = roof.get("spec_gbps")
        for dtype, b in (roof.get("best") or {}).items():
            frac = (
                f", {100 * b['fraction_of_spec']:.0f}% of the {spec:g} GB/s spec" if b.get("fraction_of_spec") else ""
            )
            out.append(
                f"- {dtype}: {b['mem_gbps']:.1f} GB/s of memory traffic (3 S / t) at S = {size_label(b['bytes'])}{frac}"
            )
        out += [
            f"- spec: {_num(spec, '{:g}')} GB/s ({roof.get('spec_source')})",
            f"- reduction rate 1/gamma = {_num(roof['gamma_gbps'])} GB/s of result combined per second (float32, "
            f"largest size; = memory bandwidth / 3; spec counterpart {_num(roof.get('spec_gamma_gbps'), '{:.0f}')} "
            "GB/s)"
            + (": passed to the NCCL report as --gamma-gbps" if roof.get("device") == "cuda" else " (host: not used)"),
            "",
        ]
    else:
        out += [f"roof.json missing: {_step_note(steps, 'roof')}", ""]

    out += ["## Across world sizes: gloo on the host, model fits", ""]
    fits = folder / "fit" / "gloo" / "fits.csv"
    if fits.is_file():
        rows = fit_model_rows(fits)
        if rows:
            out += [
                "t = L(p) alpha + W(p) S beta [+ G(p) S gamma] with each algorithm's own L, W, G; `*` = joint fit "
                "over every hand-written algorithm; 95% bootstrap CIs; loo = leave-one-world-size-out error.",
                "",
            ]
            out += _table(
                (
                    "collective",
                    "algorithm",
                    "p",
                    "alpha_us [CI]",
                    "1/beta GB/s [CI]",
                    "1/gamma GB/s",
                    "MAPE %",
                    "loo %",
                ),
                rows,
            )
        else:
            out += ["No model fit: the sweep has one world size only (a model needs two).", ""]
    else:
        out += [f"fit/gloo/fits.csv missing: {_step_note(steps, 'fit')}", ""]

    out += ["## Compare", "", _step_note(steps, "compare"), ""]
    out += ["## Files", ""]
    for rel in (
        "env.txt",
        "steps.json",
        "progress.log",
        "timing.json",
        "roof.json",
        "report/nccl/report.md",
        "report/gloo/report.md",
        "fit/gloo/fits.csv",
        "fit/nccl/fits.csv",
        "fit/nccl-graph/fits.csv",
        "compare",
    ):
        if (folder / rel).exists():
            out.append(f"- [{rel}]({rel})")
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: gpu_summary.py EVIDENCE_DIR", file=sys.stderr)
        return 2
    folder = Path(args[0])
    if not folder.is_dir():
        print(f"gpu_summary: {folder} is not a directory", file=sys.stderr)
        return 2
    text = summarise(folder)
    (folder / "SUMMARY.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
