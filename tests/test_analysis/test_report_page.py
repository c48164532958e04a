"""The report page's parts: notes folded with a count (analysis.report_notes), the headline's fastest-by-size
line (analysis.report_headline), hover data and escaping of the interactive figures (analysis.report_interactive),
long tables collapsed under their summary (analysis.report_html, analysis.report_blocks)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import plots, report_html, report_interactive
from analysis.report_blocks import Block, to_markdown
from analysis.report_headline import fastest_by_size
from analysis.report_notes import SHOWN_SUBJECTS, Note, fold


def test_fold_counts_the_same_note_on_many_subjects() -> None:
    notes = [Note(f"all_gather p=2 alg{i}", f"busbw still rising at the largest size ({1 << i} MiB): larger sizes")
             for i in range(12)]  # fmt: skip
    notes += [Note("", "No roof: 2 ranks inside one node"), Note("", "No roof: 3 ranks inside one node")]
    notes += [Note("run1", "world size 72 from rank lines"), Note("run1", "world size 72 from rank lines")]
    lines = fold(notes)
    assert len(lines) == 3
    assert lines[0].startswith("busbw still rising at the largest size (N): larger sizes (12 x: all_gather p=2 alg0 "
                               "[1 MiB], all_gather p=2 alg1 [2 MiB]")  # fmt: skip
    assert lines[0].endswith(f"+ {12 - SHOWN_SUBJECTS} more)")
    assert lines[1] == "No roof: N ranks inside one node (2 x: [2], [3])"
    assert lines[2] == "run1: world size 72 from rank lines"  # the same note twice is one note


def test_fold_keeps_numbers_that_all_notes_share() -> None:
    lines = fold([Note("a", "interference: 7 % of samples at 1024 B"), Note("b", "interference: 9 % of samples at "
                                                                                 "1024 B")])  # fmt: skip
    assert lines == ["interference: N of samples at 1024 B (2 x: a [7 %], b [9 %])"]


def test_fastest_by_size_reads_the_crossovers() -> None:
    which = [("reduce", "2", "1 KiB - 230.9 KiB", "builtin", "", ""), ("reduce", "2", "239.8 KiB - 16 MiB", "tree",
             "", ""), ("broadcast", "2", "1 KiB - 16 MiB", "ring", "", "")]  # fmt: skip
    assert fastest_by_size(which, "reduce", 2) == "builtin to 230.9 KiB, then tree"
    assert fastest_by_size(which, "broadcast", 2) == "ring at every size"
    assert fastest_by_size(which, "reduce", 4) == "-"


def _points(algorithm: str) -> pd.DataFrame:
    sizes = [1024, 4096, 16384]
    return pd.DataFrame({"collective": "all_reduce", "algorithm": algorithm, "backend": "gloo", "device": "cpu",
                         "world_size": 2, "dtype": "float32", "op": "sum", "in_place": False, "bytes": sizes,
                         "time_us": [10.0, 20.0, 40.0], "time_us_ci_lo": [9.0, 19.0, 38.0],
                         "time_us_ci_hi": [11.0, 21.0, 42.0], "busbw_gbps": [0.1, 0.2, 0.4], "noisy": False,
                         "correct": True})  # fmt: skip


def test_interactive_figure_hover_data_and_escaping() -> None:
    """Hover shows size, time, CI and busbw; a hostile algorithm name stays data inside Bokeh's JSON."""
    hostile = "</script><script>alert(1)</script>"
    figs = report_interactive.busbw_figures(_points(hostile))
    assert len(figs) == 1 and "hover a point" in figs[0][0]
    blocks = [Block("h1", "t"), Block("interactive", figs[0][0], figure=figs[0][1])]
    page = report_html.to_html(blocks, "t")
    assert "alert(1)</script>" not in page and page.count("/* BEGIN bokeh.min.js */") == 1
    for field in ("95% CI of time", "@busbw_gbps", "@size", "[9.0, 11.0]", "16 KiB"):
        assert field in page, field


def test_long_table_is_collapsed_under_its_summary(tmp_path: Path) -> None:
    rows = tuple((str(i), "x") for i in range(30))
    blocks = [Block("table", header=("i", "v"), rows=rows, summary="30 rows: all x"), Block("table", header=("a",),
              rows=(("1",),))]  # fmt: skip
    page = report_html.to_html(blocks, "t")
    assert page.index("<details><summary>30 rows: all x</summary><table>") < page.index("<td>29</td>")
    assert page.count("<details>") == 1  # the short table stays open
    md = to_markdown(blocks, tmp_path)
    assert md.startswith("<details><summary>30 rows: all x</summary>") and "| 29 | x |" in md


def test_roofline_axis_spans_every_roof_it_labels() -> None:
    """A reduction roof of 3.5 GB/s over busbw that peaks at 0.9 GB/s (cpu-2core reduce, p = 3) was drawn above
    the axis (top = 3 x the peak) while the legend listed it; a roof far below the points likewise."""
    busbw = pd.Series([0.001, 0.1, 0.9])
    lo, hi = plots.y_limits(busbw, [2.0, 3.5, 1e-5])
    assert lo <= 1e-5 and hi >= 3.5 * 2 and lo > 0
    assert plots.y_limits(busbw, []) == (0.001 / 3, 0.9 * 3)
    assert plots.y_limits(pd.Series([0.0]), [2.0]) is None
