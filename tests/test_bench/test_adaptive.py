"""Adaptive sampling, interleaving and the robust estimate end to end: a planted slow mode does not
drag the reported time, the stopping rule is recorded per point, ``-n``/``--no-interleave`` keep the fixed
protocol, and the options are checked before any process starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_helpers import read_run, run_cli, run_dir_from

from bench.launch import _exits
from bench.plan import (
    MAX_AUTO_TIME_PER_POINT_S,
    MIN_AUTO_TIME_PER_POINT_S,
    SWEEP_BUDGET_S,
    auto_time_per_point,
    point_groups,
    visit_blocks,
)
from bench.records import CaseSpec
from bench.timing import visit_floor

BASE = ["run", "--nprocs", "2", "--collectives", "all_reduce", "-b", "4K", "-e", "4K", "-w", "2"]


def _points(run_dir: Path) -> dict[str, dict]:
    _, meta = read_run(run_dir)
    return {p["algorithm"]: p for p in meta["points"]}


@pytest.mark.alone
@pytest.mark.timeout(120)
def test_planted_slow_mode_is_left_out_of_the_estimate(tmp_path: Path) -> None:
    """test_tick sleeps 30 ms before a pseudo-random 60 % of its calls on every rank (a slow majority, like
    the scheduler ticks of the 2-core VM, but far enough above them that the host's own 4 ms ticks cannot
    hide it): the median lands in the slow mode, the estimate does not, and the share is reported."""
    proc = run_cli([*BASE, "--algorithms", "builtin,test_tick", "--max-time-per-point", "0.6", "--out",
                    str(tmp_path)], timeout=100, COLLBENCH_TESTING="1", COLLBENCH_TEST_SLOW_US="30000",
                   COLLBENCH_TEST_TICK_FRACTION="0.6")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_dir = run_dir_from(proc.stdout)
    tick = _points(run_dir)["test_tick"]
    assert tick["time_us_median"] > 30000  # the plain median is dragged into the planted mode
    assert 0.4 <= tick["slow_fraction"] <= 0.85, tick["slow_fraction"]
    assert tick["time_us"] < tick["time_us_median"] / 4, (tick["time_us"], tick["time_us_median"])
    assert tick["time_us_ci_lo"] <= tick["time_us"] <= tick["time_us_ci_hi"]
    assert tick["iters"] == len(tick["samples_us"]) >= 10
    assert "slow-mode" in proc.stdout and any("interference" in w for w in read_run(run_dir)[1]["warnings"])


@pytest.mark.timeout(120)
def test_fixed_count_and_no_interleave_measure_one_point_at_a_time(tmp_path: Path) -> None:
    proc = run_cli([*BASE, "-n", "7", "--algorithms", "builtin,ring", "--no-interleave", "--out", str(tmp_path)],
                   timeout=100)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_dir = run_dir_from(proc.stdout)
    rows, meta = read_run(run_dir)
    assert {r["iters"] for r in rows} == {"7"} and all(len(p["samples_us"]) == 7 for p in meta["points"])
    assert meta["schema_version"] == 2 and meta["config"]["interleave"] is False
    assert meta["config"]["iters_policy"] == "fixed"
    proc = run_cli([*BASE, "-n", "5", "--algorithms", "builtin,ring", "--out", str(tmp_path)], timeout=100)
    assert proc.returncode == 0, proc.stderr
    rows, meta = read_run(run_dir_from(proc.stdout))
    assert {r["iters"] for r in rows} == {"5"} and meta["config"]["interleave"] is True


@pytest.mark.alone
@pytest.mark.timeout(120)
def test_adaptive_points_record_their_ci_and_stop_within_budget(tmp_path: Path) -> None:
    proc = run_cli([*BASE, "-b", "1K", "-e", "16K", "--algorithms", "builtin,ring,tree", "--target-ci", "0.2",
                    "--max-time-per-point", "0.1", "--out", str(tmp_path)], timeout=100)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows, meta = read_run(run_dir_from(proc.stdout))
    assert len(rows) == 9 and meta["config"]["iters_policy"].startswith("adaptive")
    for p in meta["points"]:
        assert p["iters"] == len(p["samples_us"]) >= 10
        assert p["ci_met"] in (True, False) and p["time_us_ci_lo"] <= p["time_us"] <= p["time_us_ci_hi"]
        if p["ci_met"]:  # the recorded CI is what the rule checked
            assert (p["time_us_ci_hi"] - p["time_us_ci_lo"]) / 2 <= 0.2 * p["time_us"] * 1.0001
        # a group of 3 points has 3 x 0.1 s; a point stops at the budget once it has its minimum
        assert sum(p["samples_us"]) / 1e6 < 3 * 0.1 + 1.0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--target-ci", "0"], "--target-ci must be between 0 and 1"),
        (["--target-ci", "5"], "--target-ci must be between 0 and 1"),
        (["--max-time-per-point", "0"], "--max-time-per-point must be > 0"),
        (["--max-iters", "0"], "--max-iters must be >= 1"),
        (["--transport-nice", "20"], "--transport-nice must be between 0 and 19"),
        (["--visits", "0"], "--visits must be >= 1"),
    ],
)
def test_bad_sampling_options_are_one_line_errors(args: list[str], message: str, capsys) -> None:
    from collbench.cli import main

    assert main(["run", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"collbench: error: {message}"), err


def _case(collective: str, algorithm: str, nbytes: int, in_place: bool = True, adaptive: bool = False,
          budget_s: float = 0.25) -> CaseSpec:  # fmt: skip
    return CaseSpec(collective, algorithm, "gloo", "cpu", 2, "float32", "sum", nbytes, nbytes // 4, -1, in_place, 5, 1,
                    adaptive=adaptive, max_time_per_point_s=budget_s)  # fmt: skip


@pytest.mark.alone
@pytest.mark.timeout(120)
def test_visits_spread_each_points_samples_over_the_run(tmp_path: Path) -> None:
    """--visits V: every point takes at least its per-visit minimum in each of V visits. With a target every
    estimate meets at once, one visit would stop near the 10-sample minimum; three visits take 3 x 7."""
    proc = run_cli([*BASE, "-b", "1K", "-e", "4K", "--algorithms", "builtin,ring", "--target-ci", "0.9",
                    "--max-time-per-point", "0.5", "--visits", "3", "--out", str(tmp_path)], timeout=100)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows, meta = read_run(run_dir_from(proc.stdout))
    assert meta["config"]["visits"] == 3 and len(rows) == 4
    assert visit_floor(10, 1000, 3) == 7 and visit_floor(10, 1000, 1) == 10 and visit_floor(10, 1000, 8) == 3
    assert all(p["iters"] >= 3 * 7 for p in meta["points"]), [p["iters"] for p in meta["points"]]


def test_visit_blocks_span_adaptive_groups_within_the_budget() -> None:
    """Adaptive groups of several collectives share a block up to MAX_BLOCK_S of budget; a fixed-count group
    is a block of its own (one stretch, as nccl-tests)."""
    ar = [[_case("all_reduce", a, n, adaptive=True, budget_s=10.0) for a in ("builtin", "ring")] for n in (1024, 4096)]
    ag = [[_case("all_gather", "builtin", 1024, adaptive=True, budget_s=10.0)]]
    fixed = [[_case("all_gather", "ring", 4096)]]
    blocks = visit_blocks([*ar, *ag, *fixed, *ag])
    assert [len(b) for b in blocks] == [3, 1, 1]  # 20 + 20 + 10 s of budget fit 60 s; the fixed group splits
    assert [len(b) for b in visit_blocks([*ar, *ar], max_block_s=45.0)] == [2, 2]


def test_auto_budget_shares_the_sweep_time_within_bounds() -> None:
    assert auto_time_per_point(54) == pytest.approx(SWEEP_BUDGET_S / 54)
    assert auto_time_per_point(3) == MAX_AUTO_TIME_PER_POINT_S
    assert auto_time_per_point(100000) == MIN_AUTO_TIME_PER_POINT_S


class _Proc:
    def __init__(self, exitcode: int | None) -> None:
        self.exitcode = exitcode


class _Conn:
    def __init__(self, pending: bool) -> None:
        self.pending = pending

    def poll(self) -> bool:
        return self.pending


def test_a_rank_that_exited_is_judged_only_after_its_messages_are_read() -> None:
    """A block's last visit sends its points in a burst; rank 0 may exit (code 0, done still in the pipe)
    before the supervisor has read them. That is not a crash, and neither are the points lost."""
    procs, conns = [_Proc(0), _Proc(None)], [_Conn(True), _Conn(False)]
    assert _exits(procs, conns, list(conns), done=set()) == {}
    conns[0].pending = False  # read everything, and no done among it: that exit is a failure
    assert _exits(procs, conns, list(conns), done=set()) == {0: 0}
    assert _exits(procs, conns, list(conns), done={0}) == {}
    assert _exits([_Proc(3), _Proc(None)], conns, [conns[1]], done=set()) == {0: 3}


def test_point_groups_interleave_the_algorithms_of_one_size() -> None:
    plan = [_case("all_reduce", a, n) for n in (1024, 4096) for a in ("builtin", "ring")]
    plan += [_case("all_gather", a, 1024, ip) for a in ("builtin", "ring") for ip in (False, True)]
    groups = point_groups(plan, interleave=True)
    assert [[(c.algorithm, c.bytes) for c in g] for g in groups] == [
        [("builtin", 1024), ("ring", 1024)], [("builtin", 4096), ("ring", 4096)],
        [("builtin", 1024), ("builtin", 1024), ("ring", 1024), ("ring", 1024)],
    ]  # fmt: skip
    assert [len(g) for g in point_groups(plan, interleave=False)] == [1] * len(plan)



@pytest.mark.timeout(90)
def test_gloo_transport_threads_are_niced(tmp_path: Path) -> None:
    """The work-around for the tick-per-message mode (docs/protocol.md): every rank's gloo transport threads go
    to nice 19 (recorded in run.json); --transport-nice 0 leaves them."""
    for nice, expect in (("19", True), ("0", False)):
        proc = run_cli([*BASE, "-n", "3", "--algorithms", "ring", "--transport-nice", nice, "--out", str(tmp_path)],
                       timeout=80)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        meta = read_run(run_dir_from(proc.stdout))[1]
        assert (meta["hardware"]["gloo_transport_threads_niced"] >= 1) is expect, meta["hardware"]
        assert meta["config"]["transport_nice"] == int(nice)
