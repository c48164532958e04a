"""collbench scale on the ranks: bad values refused before any process starts, and one tiny real run on gloo
(2 ranks, small gradients, a 20 ms compute phase, 3 steps) whose record has every field and honest timings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from bench_helpers import run_cli, run_dir_from


@pytest.mark.parametrize(("args", "words"), [
    (["--compute-ms", "-1"], "--compute-ms must be a finite number"),
    (["--compute-ms", "nan"], "--compute-ms must be a finite number"),
    (["--grad-bytes", "0"], "--grad-bytes must be at least 4 bytes"),
    (["--grad-bytes", "1M", "--bucket-bytes", "2M"], "larger than --grad-bytes"),
    (["--bucket-bytes", "0"], "--bucket-bytes must be at least 4 bytes"),
    (["--algorithm", "nosuch"], "unknown algorithm 'nosuch' for all_reduce"),
    (["--steps", "0"], "--steps must be between"),
    (["--mode", "medium"], "invalid choice"),
    (["--grad-bytes", "x"], "--grad-bytes"),
])  # fmt: skip
def test_bad_values_are_one_line_and_exit_2_before_any_process(tmp_path: Path, args: list[str], words: str) -> None:
    proc = run_cli(["scale", "--nprocs", "2", *args, "--out", str(tmp_path / "out")], timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("collbench: error: ") and words in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""
    assert not (tmp_path / "out").exists()  # no run directory: nothing started


def test_study_of_nothing_is_one_line(tmp_path: Path) -> None:
    proc = run_cli(["scale", "--study", str(tmp_path / "missing"), "--out", str(tmp_path / "s")], timeout=60)
    assert proc.returncode == 2 and "no such file" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _steps(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "steps.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.mark.timeout(120)
def test_tiny_gloo_run_records_every_field(tmp_path: Path) -> None:
    args = ["scale", "--nprocs", "2", "--grad-bytes", "64K", "--bucket-bytes", "16K", "--compute-ms", "20",
            "--steps", "3", "-w", "1", "--mode", "strong", "--out", str(tmp_path)]  # fmt: skip
    proc = run_cli(args, timeout=110)
    assert proc.returncode == 0, proc.stderr
    assert "timed wait (CPU ranks share cores" in proc.stdout
    run_dir = run_dir_from(proc.stdout)
    meta = json.loads((run_dir / "run.json").read_text())
    cfg, scale = meta["config"], meta["scale"]
    assert meta["status"] == "complete" and meta["world_size"] == 2
    assert cfg["command_kind"] == "scale" and cfg["mode"] == "strong" and cfg["algorithm"] == "builtin"
    assert cfg["grad_bytes"] == 64 * 1024 and cfg["bucket_bytes"] == 16 * 1024 and cfg["n_buckets"] == 4
    assert cfg["compute_ms"] == 20 and cfg["rank_compute_ms"] == 10  # strong: the one-rank compute / p
    assert "timed wait" in cfg["compute_kind"] and "timed wait" in scale["compute_kind"]
    assert scale["n_steps"] == 3 and scale["n_wrong"] == 0 and scale["files"] == ["steps.csv"]
    assert scale["step_ms_lo"] <= scale["step_ms"] <= scale["step_ms_hi"]
    for key in ("compute_ms", "comm_exposed_ms", "comm_ms", "wall_s"):
        assert scale[key] >= 0, key
    steps = _steps(run_dir)
    assert len(steps) == 3
    for s in steps:
        assert 0 <= s["exposed_ms"] <= s["total_ms"] and s["n_wrong"] == 0
        assert s["compute_ms"] >= 10 * 0.99  # the compute phase lasts at least what was asked
        assert s["total_ms"] == pytest.approx(s["compute_ms"] + s["exposed_ms"], abs=1e-6)
        assert s["comm_ms"] > 0
    # run.json's step is the estimate over the steps' totals
    totals = sorted(s["total_ms"] for s in steps)
    assert scale["step_ms"] == pytest.approx(totals[1])


@pytest.mark.timeout(120)
def test_one_bucket_cannot_overlap(tmp_path: Path) -> None:
    """With one bucket the all-reduce starts when compute ends: every step's exposed communication is at least
    the all-reduce's own time (a run that hid communication it never started would fail here)."""
    args = ["scale", "--nprocs", "2", "--grad-bytes", "256K", "--compute-ms", "20", "--steps", "3", "-w", "1",
            "--out", str(tmp_path), "--json"]  # fmt: skip
    proc = run_cli(args, timeout=110)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "complete" and summary["mode"] == "weak"
    for s in _steps(Path(summary["run_dir"])):
        assert s["exposed_ms"] >= s["comm_ms"] - 0.01


def test_emulate_runs_scale_across_nodes() -> None:
    from collbench.commands.emulate import _command

    assert _command(["--", "scale", "--grad-bytes", "16M"]) == ("scale", "--grad-bytes", "16M")


@pytest.mark.timeout(120)
def test_a_hand_written_algorithm_with_a_remainder_bucket(tmp_path: Path) -> None:
    """Any registry algorithm carries the buckets; 3 ranks, 40 KiB in 16 KiB buckets: two full ones and a
    remainder, every gradient checked."""
    args = ["scale", "--nprocs", "3", "--grad-bytes", "40K", "--bucket-bytes", "16K", "--algorithm", "ring",
            "--compute-ms", "20", "--steps", "2", "-w", "1", "--out", str(tmp_path), "--json"]  # fmt: skip
    proc = run_cli(args, timeout=110)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    meta = json.loads((Path(summary["run_dir"]) / "run.json").read_text())
    assert meta["config"]["algorithm"] == "ring" and meta["config"]["n_buckets"] == 3 and meta["world_size"] == 3
    assert summary["n_wrong"] == 0 and summary["n_steps"] == 2
