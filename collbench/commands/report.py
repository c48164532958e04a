"""``collbench report RUN...``: a Markdown + HTML report with plots of one or more runs (``analysis.report``),
and fits.csv beside it."""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis import fits_table, hardware
from analysis.outputs import claim_output_dir, default_output_dir
from analysis.read_runs import find_runs, unique_runs
from analysis.report import REPORT_OUTPUTS, build, fit, points, to_html, to_markdown
from analysis.verdict import machines
from collbench.commands.options import add_force_argument, add_hardware_arguments, check_numbers, parse_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run directories (or parents of run directories)")
    parser.add_argument("--out", help="report directory (default: <run>.report beside a run directory, "
                        "<folder>/report in a folder of runs; never inside a run directory); an earlier report there "
                        "is refused unless --force")
    add_force_argument(parser)
    parser.add_argument("--title", help="report title")
    parser.add_argument("--peak-gbps", type=float, help="a spec roof drawn on the roofline in place of the link "
                        "roof (GB/s; e.g. HBM); the verdict's link roof is --link-gbps")
    parser.add_argument("--gamma-gbps", type=float, help="reduction rate 1/gamma for the reduction roof (GB/s)")
    parser.add_argument("--grad-bytes", help="gradient size for the 'will more GPUs help?' plot, e.g. 1G")
    parser.add_argument("--compute-ms", type=float, help="compute time per step for that plot (ms)")
    parser.add_argument("--overlap", type=float, default=0.0, help="share of the all-reduce hidden by compute")
    parser.add_argument("--boot", type=int, default=100, help="bootstrap replicates of the fits (default 100)")
    parser.add_argument("--baseline", nargs="+", help="earlier run(s): the report opens with what changed against "
                        "them (collbench compare's rule, 10%% threshold)")
    parser.add_argument("--scale", metavar="DIR", help="a collbench scale --study directory: its measured scaling "
                        "study (scale.csv and figures) joins the report")
    add_hardware_arguments(parser)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Fit the runs, write report.md, report.html and fits.csv into the report directory."""
    check_numbers(args, positive=("peak_gbps", "gamma_gbps", "compute_ms"), fraction=("overlap",), boot=True)
    runs = unique_runs([r for p in args.runs for r in find_runs(p)])
    baseline = [r for p in args.baseline or [] for r in find_runs(p)]
    overrides = hardware.overrides_from_args(args)
    hunts = all((r.path / "hunt.json").is_file() for r in runs)  # a hunt's run directories hold no points
    machines(runs, overrides)  # hardware and topology checked (exit 2) before anything is written
    grad = parse_bytes(args.grad_bytes) if args.grad_bytes else None  # checked before the directory is claimed
    pts = points(runs) if not hunts else None  # none: refused before the directory is claimed
    default = default_output_dir(args.runs[0], "report")
    out = claim_output_dir(args.out or default, REPORT_OUTPUTS, args.force, default=not args.out, instead=default)
    if hunts:
        return _hunt_report(runs, out)
    fits, why = fit(pts, n_boot=args.boot)
    written = [fits_table.write_csv(fits, out)] if fits is not None else []
    blocks = build(runs, fits, out / "figures", peak_gbps=args.peak_gbps, gamma_gbps=args.gamma_gbps, n_boot=args.boot,
                   grad_bytes=grad, compute_ms=args.compute_ms, overlap=args.overlap, title=args.title,
                   fit_error=why, hardware_overrides=overrides,
                   baseline=baseline, scale_dir=Path(args.scale) if args.scale else None)  # fmt: skip
    (out / "report.md").write_text(to_markdown(blocks, out))
    (out / "report.html").write_text(to_html(blocks, blocks[0].text))
    n_figs = sum(b.kind == "img" for b in blocks)
    also = f" and {written[0]}" if written else ""
    print(f"wrote {out / 'report.md'}, {out / 'report.html'} ({n_figs} figures){also}")
    return 0


def _hunt_report(runs: list, out) -> int:  # noqa: ANN001 - analysis.read_runs.Run, pathlib.Path
    """Run directories of ``collbench hunt``: report.md and report.html with the verdict, the blamed and the rounds,
    the nodes-by-rounds figure under figures/."""
    import html
    import json
    import shutil

    from analysis.hunt import report_markdown

    (out / "figures").mkdir(exist_ok=True)
    parts = []
    for r in runs:
        fig = out / "figures" / f"hunt-{r.run_id}.png"
        shutil.copyfile(r.path / "hunt.png", fig)
        parts.append(report_markdown(json.loads((r.path / "hunt.json").read_text()), r.run_id,
                                     f"figures/{fig.name}"))  # fmt: skip
    text = "\n".join(parts)
    (out / "report.md").write_text(text)
    (out / "report.html").write_text(f"<!doctype html><meta charset=utf-8><title>collbench hunt</title>"
                                     f"<pre>{html.escape(text)}</pre>\n")  # fmt: skip
    print(f"wrote {out / 'report.md'}, {out / 'report.html'} (hunt)")
    return 0
