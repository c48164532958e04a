"""collbench hunt end to end: the simulator's JSON, bad options, and real runs on gloo with a planted slow rank
(the test-only fault hook COLLBENCH_TEST_SLOW_US on COLLBENCH_TEST_FAULT_RANK) and a rank that goes silent
(COLLBENCH_TEST_HUNT_CUT)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from bench_helpers import run_cli, run_dir_from


def test_simulate_json_holds_blamed_planted_and_rounds() -> None:
    proc = run_cli(["hunt", "--simulate", "1024", "--slow", "2", "--seed", "7", "--json"], timeout=120)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    planted = {p["node"] for p in data["planted"]}
    assert len(planted) == 2 and {b["node"] for b in data["blamed"]} == planted and data["found"] is True
    assert data["n_rounds"] == len(data["rounds"]) <= 30 and data["pairs_rounds"] == 1023
    assert all(b["confidence"] > 0.99 and b["evidence"] for b in data["blamed"])


def test_simulate_a_slow_link_is_blamed_with_its_two_nodes_and_exit_1() -> None:
    proc = run_cli(["hunt", "--simulate", "16", "--slow-links", "1", "--sweep-links", "--seed", "2", "--json"],
                   timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    (p,) = data["planted"]
    (b,) = data["blamed"]
    assert b["kind"] == "link" and b["nodes"] == sorted([p["node"], p["peer"]]) and data["found"] is True
    assert b["node"] == b["nodes"][0] and b["rail"] == 0 and b["confidence"] > 0.99


def test_simulate_healthy_exits_0_and_names_the_smallest_slowdown_it_could_see() -> None:
    proc = run_cli(["hunt", "--simulate", "64", "--seed", "1"], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "no slow node found: the smallest slowdown this search could see is" in proc.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--simulate", "1"], "at least 2 nodes"),
        (["--simulate", "8", "--slow", "9"], "plant at most 8"),
        (["--simulate", "8", "--noise", "nan"], "--noise"),
        (["--simulate", "8", "--slow-factor", "1.5"], "--slow-factor"),
        (["--threshold", "2"], "--threshold"),
        (["--slow", "1"], "only goes with --simulate"),
        (["--slow-links", "1"], "only goes with --simulate"),
        (["--simulate", "4", "--slow-links", "7"], "--slow-links must be in 0..6"),
        (["--simulate", "4", "--slow", "3", "--slow-links", "1"], "--slow-links must be in 0..0"),
        (["--group-size", "1"], "--group-size"),
        (["--budget-s", "inf"], "--budget-s"),
        (["--nprocs", "4", "--ranks-per-node", "3"], "--ranks-per-node must divide"),
        (["--nprocs", "1"], "at least 2 nodes"),
        (["--size", "8"], "--size must be at least"),
        (["--size", "x"], "x"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    proc = run_cli(["hunt", *args, "--out", str(tmp_path)], timeout=60)
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("collbench: error: ")
    assert not list(tmp_path.iterdir())


@pytest.mark.alone
@pytest.mark.timeout(240)
def test_planted_slow_rank_is_blamed_and_no_other(tmp_path: Path) -> None:
    # 100 ms before each ring step of rank 2: its tests take >= 200 ms, a healthy 64 KiB one a few ms even on a
    # loaded 2-core host
    args = ["hunt", "--nprocs", "4", "--size", "64K", "-n", "5", "--seed", "3", "--out", str(tmp_path)]
    env = {"COLLBENCH_TESTING": "1", "COLLBENCH_TEST_FAULT_RANK": "2", "COLLBENCH_TEST_SLOW_US": "100000"}
    proc = run_cli(args, timeout=230, **env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run_dir = run_dir_from(proc.stdout)
    data = json.loads((run_dir / "hunt.json").read_text())
    assert [(b["node"], b["kind"]) for b in data["blamed"]] == [(2, "network")], data["blamed"]
    assert data["n_rounds"] <= 6 and data["node_names"][2] == "node2"  # 2 screens, at most 4 confirms
    confirm = [e for e in data["blamed"][0]["evidence"] if e["kind"] == "confirm"]
    assert len({tuple(e["nodes"]) for e in confirm}) >= 2 and all(e["ratio"] < 0.5 for e in confirm)
    with open(run_dir / "hunt.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == data["n_tests"] and all(int(r["n_wrong"]) == 0 for r in rows)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "complete" and meta["hunt"]["blamed"][0]["node"] == 2
    assert (run_dir / "hunt.png").stat().st_size > 1000
    assert "node2" in proc.stdout and "network" in proc.stdout
    report = run_cli(["report", str(run_dir), "--out", str(tmp_path / "report")], timeout=120)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| node2 | network |" in text and "## Rounds" in text and list((tmp_path / "report" / "figures").iterdir())


@pytest.mark.timeout(240)
def test_a_rank_that_goes_silent_is_blamed_unreachable_and_the_tests_are_kept(tmp_path: Path) -> None:
    args = ["hunt", "--nprocs", "6", "--size", "64K", "--timeout", "15", "--seed", "1", "--out", str(tmp_path)]
    t0 = time.monotonic()
    proc = run_cli(args, timeout=230, COLLBENCH_TESTING="1", COLLBENCH_TEST_HUNT_CUT="3:1")
    took = time.monotonic() - t0
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads((run_dir_from(proc.stdout) / "hunt.json").read_text())
    assert data["status"] == "unreachable" and [(b["node"], b["kind"]) for b in data["blamed"]] == [(3, "unreachable")]
    first = data["rounds"][0]["tests"]
    assert len(data["rounds"]) == 2 and all(t["busbw_gbps"] for t in first)  # round 0 kept whole
    assert took < 15 + 5 + 60  # the timeout, the supervisor's grace and starting the ranks, generously
