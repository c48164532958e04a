"""analysis.hunt on simulated searches (torch-free): the table, hunt.csv rows, the files never overwritten, and
the report text."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from analysis.hunt import CSV_FIELDS, links_crossed, report_markdown, rows, summary_lines, write_files
from bench.hunt_sim import ModelNetwork, Planted
from bench.hunt_strategy import HuntSettings, hunt


def _data(planted: list[Planted], rails: int = 1) -> dict:
    result = hunt(ModelNetwork(32, rails, planted, 0.03, 5), HuntSettings(group_size=8, seed=5))
    return {**result.to_json(), "node_names": [f"host{i}" for i in range(32)]}


def test_blamed_lines_name_the_host_and_the_nic() -> None:
    data = _data([Planted(9, 1, 0.5)], rails=2)
    lines = summary_lines(data)
    assert any(line.startswith("host9 NIC 1") and " network " in line for line in lines), lines
    assert not any("no slow node found" in line for line in lines)


def test_nothing_blamed_says_the_smallest_slowdown_it_could_see() -> None:
    data = _data([])
    (line,) = [x for x in summary_lines(data) if "no slow node found" in x]
    assert f"{100 * data['min_detectable_slowdown']:.0f} %" in line


def test_files_hold_every_test_and_are_never_overwritten(tmp_path: Path) -> None:
    data = _data([Planted(3, None, 0.5)])
    paths = write_files(data, tmp_path)
    with open(paths[1], newline="") as f:
        got = list(csv.DictReader(f))
    assert len(got) == data["n_tests"] == len(rows(data))
    low = [r for r in got if "3" in r["nodes"].split() and r["phase"] == "confirm"]
    assert low and all(float(r["ratio"]) < 0.6 for r in low)
    assert json.loads(paths[0].read_text())["blamed"][0]["node"] == 3
    with pytest.raises(FileExistsError):
        write_files(data, tmp_path)


def test_report_lists_the_blamed_and_every_round() -> None:
    data = _data([Planted(3, None, 0.5)])
    text = report_markdown(data, "run-x", "figures/hunt.png")
    assert "| host3 | network |" in text and "![nodes by rounds](figures/hunt.png)" in text
    table_rows = text.split("## Rounds")[1].count("\n| ") - 1  # less the header
    assert text.count("| screen |") == 2 and len(data["rounds"]) == table_rows


def _link_data() -> dict:
    planted = [Planted(4, 0, 0.5, peer=17)]
    result = hunt(ModelNetwork(32, 1, planted, 0.03, 5), HuntSettings(group_size=8, seed=5, sweep_links=True))
    return {**result.to_json(), "node_names": [f"host{i}" for i in range(32)]}


def test_a_blamed_link_names_both_hosts_in_the_table_report_and_figure(tmp_path: Path) -> None:
    data = _link_data()
    assert [(b["kind"], b["nodes"]) for b in data["blamed"]] == [("link", [4, 17])]
    assert any(line.startswith("host4 - host17") and " link " in line for line in summary_lines(data))
    assert "| host4 - host17 | link |" in report_markdown(data, "run-x", "figures/hunt.png")
    paths = write_files(data, tmp_path)
    assert paths[2].stat().st_size > 0
    with open(paths[1], newline="") as f:
        assert next(csv.reader(f)) == list(CSV_FIELDS)  # the same columns with links


def test_without_the_sweep_nothing_blamed_says_how_many_links_were_crossed() -> None:
    data = _data([])
    (line,) = [x for x in summary_lines(data) if x.startswith("# links crossed")]
    crossed, links = links_crossed(data)
    assert f"{crossed} of {links}" in line and links == 32 * 31 // 2 and 0 < crossed < links
