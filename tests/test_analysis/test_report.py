"""collbench report: every figure is produced (valid, >= 1200x800, not blank), Markdown + HTML, escaping,
single-size / incomplete / imported runs, bad input."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from analysis import synthetic
from collbench import cli

HW = synthetic.Hardware(alpha_us=30.0, bw_gbps=1.5, gamma_gbps=2.0)
CASES = (("all_reduce", "ring"), ("all_reduce", "builtin"), ("all_gather", "ring"), ("all_gather", "bruck"))
A2A = (("all_to_all", "pairwise"), ("all_to_all", "bruck"))  # no ring: the bandwidth algorithm is pairwise
DATA = Path(__file__).resolve().parents[1] / "data" / "nccl-tests"
SIZES = tuple(1 << k for k in range(10, 22, 2))


def _report(capsys, *args: str) -> Path:
    assert cli.main(["report", *args, "--boot", "10"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    return Path(re.search(r"wrote (\S+)/report\.md", out).group(1))


def _figures(report: Path) -> list[Path]:
    md = (report / "report.md").read_text()
    return [report / m for m in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)]


def _check_png(path: Path) -> None:
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert w >= 1200 and h >= 800, f"{path.name}: {w}x{h}"
    rgb = img[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05 and n_colours(rgb) > 20, f"{path.name} is blank"


def n_colours(rgb: np.ndarray) -> int:
    """Distinct 8-bit colours among all pixels (rows of floats in [0, 1]), each packed into one integer:
    np.unique over 1-D ints takes ~0.1 s for a 1.2 M-pixel figure, row-wise (axis=0) several seconds."""
    q = (rgb * 255).astype(np.uint32)
    return len(np.unique(q[:, 0] << 16 | q[:, 1] << 8 | q[:, 2]))


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two world sizes of all_reduce, all_gather and all_to_all: every model fit and every kind of figure, built
    once for the tests that read it."""
    tmp = tmp_path_factory.mktemp("full")
    for p in (2, 4):  # two world sizes: the joint model is fitted, so every roofline draws a link roof
        synthetic.write_run(tmp / "runs", HW, cases=CASES + A2A, world_size=p, sizes=SIZES, seed=p)
    args = ["report", str(tmp / "runs"), "--out", str(tmp / "rep"), "--peak-gbps", "5", "--link-gbps", "5",
            "--gamma-gbps", "2", "--grad-bytes", "1G", "--compute-ms", "300", "--boot", "10"]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert cli.main(args) == 0
    return Path(re.search(r"wrote (\S+)/report\.md", out.getvalue()).group(1))


@pytest.mark.timeout(180)
def test_full_report(full_report: Path) -> None:
    report = full_report
    figs = _figures(report)
    kinds = {f.name.split("_")[0] for f in figs}
    assert kinds == {"busbw", "roofline", "time", "best", "residuals", "scaling.png"}
    assert len(figs) == 2 + 3 * 2 + 3 * 2 + 3 + 2 + 1  # busbw, roofline, time, best, residuals, scaling
    for f in figs:
        _check_png(f)
    md, page = (report / "report.md").read_text(), (report / "report.html").read_text()
    for text in (
        "Which algorithm when",
        "crossover",
        "alpha_us [95% CI]",
        "Will more GPUs help?",
        "Communication roofline",
    ):
        assert text in md and text in page
    # self-contained: the PNGs as data URIs, busbw interactive instead (Bokeh, library inlined once); no script in md
    busbw = [f for f in figs if f.name.startswith("busbw_")]
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == len(figs) - len(busbw)
    fetch = r'<(script|link|img|iframe)[^>]+(src|href)="?(?!data:)[a-z]+:'  # a URL the page would load
    assert 'src="figures/' not in page and not re.search(fetch, page)
    assert page.count("data-root-id=") == 3 * 2  # one interactive busbw figure per (collective, p)
    assert page.count("/* BEGIN bokeh.min.js */") == 1 and "<script" not in md
    # the answer first: headline cards, busbw, then the detail; the full fit table last and collapsed
    glance, first_fig = page.index("At a glance"), page.index("data-root-id=")
    verdict_at, first_img, last_img = page.index("Verdict:"), page.index("<img "), page.rindex("<img ")
    details_at, fits_at = page.index("<details><summary>Full fit table"), page.index("alpha_us [95% CI]")
    assert glance < first_fig < verdict_at < page.index("Which algorithm when") < first_img < last_img < details_at
    assert details_at < fits_at < page.index("</details>", fits_at) and page.count("<tr>", 0, first_fig) <= 25
    assert page.count('<section class="card">') == 2  # one headline card per machine (p = 2 and p = 4)
    assert "the GPU link, 5 GB/s per GPU per direction, from option" in md and " % |" in md  # verdict vs --link-gbps
    assert (report / "fits.csv").read_text().startswith("scope,collective,algorithm,backend,world_size,alpha_us")


def test_html_and_markdown_escape_result_strings(tmp_path: Path, capsys) -> None:
    run = synthetic.write_run(tmp_path, HW, cases=CASES[:1], world_size=2, sizes=SIZES)
    meta = json.loads((run / "run.json").read_text())
    meta["host"] = "<script>alert(1)</script>|evil"
    meta["status"], meta["status_reason"] = "incomplete", "rank 1 exited with code -9 <b>boom</b>"
    meta["warnings"] = ["<img src=x onerror=alert(2)> | pipe\nnewline"]
    (run / "run.json").write_text(json.dumps(meta))
    report = _report(capsys, str(run))
    page = (report / "report.html").read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "<b>boom" not in page
    md = (report / "report.md").read_text()
    assert "\\|evil" in md and "incomplete" in md
    assert all(line.count("|") == line.count("\\|") or line.startswith("|") for line in md.splitlines())


def test_single_size_and_imported_runs(tmp_path: Path, capsys) -> None:
    one = synthetic.write_run(tmp_path / "one", HW, cases=CASES[:2], world_size=2, sizes=(4096,))
    report = _report(capsys, str(one), "--out", str(tmp_path / "r1"))
    assert "No fit" in (report / "report.md").read_text()
    for f in _figures(report):
        _check_png(f)
    assert cli.main(["import", str(DATA / "gb10-2node-all_reduce.log"), "--out", str(tmp_path / "imp")]) == 0
    capsys.readouterr()
    report = _report(capsys, str(tmp_path / "imp"), "--out", str(tmp_path / "r2"), "--peak-gbps", "25")
    figs = _figures(report)
    assert any(f.name.startswith("roofline_all_reduce_p2") for f in figs)
    for f in figs:
        _check_png(f)


def test_bad_input(tmp_path: Path, capsys) -> None:
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    run = synthetic.write_run(tmp_path, HW, cases=CASES[:1], world_size=2, sizes=SIZES)
    (run / "results.csv").write_text("garbage\n")
    assert cli.main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("collbench: error:") and "not a collbench" in err


def test_report_opens_with_what_changed_against_a_baseline(tmp_path: Path, capsys) -> None:
    """--baseline: the report says what changed, by compare's rule; a planted 2x slower link is found."""
    sizes = tuple(1 << k for k in range(16, 24, 2))  # bandwidth-bound sizes, where half the link doubles t
    base = synthetic.write_run(tmp_path / "base", HW, cases=CASES[:1], world_size=2, sizes=sizes, seed=1)
    slow = synthetic.Hardware(alpha_us=HW.alpha_us, bw_gbps=HW.bw_gbps / 2, gamma_gbps=HW.gamma_gbps)
    new = synthetic.write_run(tmp_path / "new", slow, cases=CASES[:1], world_size=2, sizes=sizes, seed=2)
    report = _report(capsys, str(new), "--baseline", str(base), "--out", str(tmp_path / "rep"))
    md = (report / "report.md").read_text()
    assert "## What changed" in md and md.index("## What changed") < md.index("## Which algorithm when")
    assert f"Against {base.name}: {len(sizes)} points compared (0 unmatched); {len(sizes)} slower" in md
    assert md.index(f"Against the baseline: {len(sizes)} point(s) slower, 0 faster") < md.index("## What changed")
    same = _report(capsys, str(base), "--baseline", str(base), "--out", str(tmp_path / "same"))
    assert "0 slower, 0 faster" in (same / "report.md").read_text()


def test_roofline_of_all_to_all_uses_its_bandwidth_algorithm(full_report: Path) -> None:
    """all_to_all has no ring: its roofline's link roof and model come from pairwise (asking for a ring model
    of all_to_all raises KeyError 'no cost model for all_to_all/ring')."""
    figs = {f.name for f in _figures(full_report)}
    assert {"roofline_all_to_all_p2.png", "roofline_all_to_all_p4.png"} <= figs
    _check_png(full_report / "figures" / "roofline_all_to_all_p4.png")


def test_scaling_section_of_a_node_count_series(tmp_path: Path, capsys) -> None:
    """2 and 4 nodes of 8 GPUs (imported-like: builtin only): the one-tier fits have no ring model across world
    sizes, yet predict --scaling answers from the two-tier fit; the report's scaling section uses the same."""
    from analysis import predict
    from analysis.fitting import fit_all
    from analysis.read_runs import load_runs

    hw = synthetic.TwoTierHardware(alpha_intra_us=4.0, bw_intra_gbps=150.0, alpha_inter_us=12.0, bw_inter_gbps=40.0)
    runs = [synthetic.write_two_tier_run(tmp_path / "runs", hw, nnodes=n, gpus_per_node=8, seed=n) for n in (2, 4)]
    with pytest.raises(Exception, match="fit runs at >= 2 world sizes"):  # what the report used to print
        predict.scaling_table(fit_all(load_runs(runs), n_boot=0), grad_bytes=1 << 30, compute_ms=300.0,
                              world_sizes=[16, 32])  # fmt: skip
    assert cli.main(["predict", "--fits", str(tmp_path / "runs"), "--scaling", "--grad-bytes", "1G", "--boot",
                     "10", "--world-sizes", "16,32,64"]) == 0  # fmt: skip
    capsys.readouterr()
    report = _report(capsys, str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), "--grad-bytes", "1G",
                     "--compute-ms", "300")  # fmt: skip
    md = (report / "report.md").read_text()
    assert "unavailable" not in md and "## Will more GPUs help? ring all-reduce of 1 GiB, compute 300.0 ms: table" in md
    assert "| 64 |" in md and "| 12 |" not in md  # world sizes are multiples of the 8 GPUs per node
    assert "world sizes 2, 4, 8 left out" in md  # one node: the intra-node tier is not measured


def test_imported_reference_run_report(tmp_path: Path, capsys) -> None:
    """results/nccl-tests-gb200-nvl72 (one rank line, topology from its hardware.toml): the headline says 93 % of
    NVLink 5's 900 GB/s, and the runs table agrees with the machine line (18 x 4) and prints '-' where an import
    has no torch version or start time."""
    root = Path(__file__).resolve().parents[2] / "results" / "nccl-tests-gb200-nvl72"
    report = _report(capsys, str(root), "--out", str(tmp_path / "rep"))
    md = (report / "report.md").read_text()
    assert "| all_reduce | 72 | 839 (builtin, 4 GiB) | 93 % of 900 link: near the roof | builtin at every size |" in md
    runs_table = md[md.index("## Runs") :]
    row = next(line for line in runs_table.splitlines() if line.startswith("| 2026"))
    assert "| 18 x 4 |" in row and "None" not in row and row.count("| - |") == 2
    assert "18 node(s) x 4 ranks" in md
