"""Faults: a crashed rank, a hung rank, a wrong result and Ctrl-C end the run cleanly, keep earlier points,
exit non-zero and leave no rank behind (test-only fault algorithms, COLLBENCH_TESTING=1).

Spawned runs go through ``run_main`` (the supervisor in this process, ranks spawned as always: one torch import
fewer per run); Ctrl-C and torchrun need a collbench process of their own."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench_helpers import ROOT, cli_env, new_marker, processes_with_marker, read_run, run_dir_from, run_main

# sizes 1K, 2K, 4K, 8K, 16K: faults fire from 8K on, so three good points come first
SWEEP = [
    "run",
    "--nprocs",
    "2",
    "--collectives",
    "all_reduce",
    "-b",
    "1K",
    "-e",
    "16K",
    "-f",
    "2",
    "-n",
    "3",
    "-w",
    "1",
]


def _fault_env(marker: str) -> dict[str, str]:
    return {"COLLBENCH_TESTING": "1", "COLLBENCH_TEST_FAULT_BYTES": "8192", "COLLBENCH_TEST_MARK": marker}


def _assert_no_orphans(marker: str) -> None:
    deadline = time.monotonic() + 5
    while processes_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with_marker(marker) == [], "a rank outlived its run"


def _assert_kept_three_points(run_dir: Path, reason_part: str) -> dict:
    rows, meta = read_run(run_dir)
    assert meta["status"] == "incomplete" and reason_part in meta["status_reason"], meta["status_reason"]
    assert meta["end_time"] is not None
    assert [int(r["bytes"]) for r in rows] == [1024, 2048, 4096]
    assert [p["bytes"] for p in meta["points"]] == [1024, 2048, 4096]
    assert all(r["correct"] == "true" for r in rows)
    return meta


@pytest.mark.timeout(90)
def test_killed_rank_keeps_points(tmp_path: Path, capfd) -> None:
    marker = new_marker()
    start = time.monotonic()
    proc = run_main(
        [*SWEEP, "--algorithms", "test_crash", "--timeout", "30", "--out", str(tmp_path)], capfd, **_fault_env(marker)
    )
    assert time.monotonic() - start < 30  # a crash is noticed at once, not at the timeout
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "run incomplete" in proc.stderr
    _assert_kept_three_points(run_dir_from(proc.stdout), "rank 1 exited with code 3")
    _assert_no_orphans(marker)


@pytest.mark.timeout(90)
def test_hung_rank_ends_within_timeout(tmp_path: Path, capfd) -> None:
    marker = new_marker()
    start = time.monotonic()
    args = [*SWEEP, "--algorithms", "test_hang", "--timeout", "6", "--out", str(tmp_path)]
    proc = run_main(args, capfd, **_fault_env(marker))
    elapsed = time.monotonic() - start
    assert proc.returncode == 1, proc.stderr
    assert elapsed < 6 + 15, elapsed  # timeout plus start-up, three points and shutdown
    assert "Traceback" not in proc.stderr
    _assert_kept_three_points(run_dir_from(proc.stdout), "rank 0")
    _assert_no_orphans(marker)


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("signals", "code", "reason"),
    [((signal.SIGINT,), 130, "interrupted"), ((signal.SIGINT, signal.SIGINT), 130, "interrupted"),
     ((signal.SIGTERM, signal.SIGTERM), 143, "terminated"), ((signal.SIGTERM, signal.SIGINT), 143, "terminated")],
    ids=["ctrl-c", "ctrl-c-twice", "sigterm-twice", "sigterm-then-ctrl-c"],
)
def test_ctrl_c_stops_everything(tmp_path: Path, signals: tuple[int, ...], code: int, reason: str) -> None:
    """The first SIGINT/SIGTERM ends the run (130/143); a second one 50 ms later, inside the shutdown, changes
    nothing: no traceback, run.json finished and `incomplete`, the points kept, no rank left."""
    marker = new_marker()
    args = [
        sys.executable,
        "-m",
        "bench",
        *SWEEP,
        "--algorithms",
        "test_hang",
        "--timeout",
        "60",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.Popen(
        args, cwd=ROOT, env=cli_env(**_fault_env(marker)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 40
    csv_files: list[Path] = []
    while time.monotonic() < deadline:
        csv_files = list(tmp_path.glob("*/results.csv"))
        if csv_files and len(csv_files[0].read_text().splitlines()) >= 4:  # header + three points
            break
        time.sleep(0.2)
    time.sleep(0.5)  # rank 1 is now asleep inside the 8K call
    for i, sig in enumerate(signals):
        if i:
            time.sleep(0.05)
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    _assert_kept_three_points(run_dir_from(out), reason)
    _assert_no_orphans(marker)


@pytest.mark.timeout(90)
def test_wrong_result_fails_the_run(tmp_path: Path, capfd) -> None:
    marker = new_marker()
    args = [
        *SWEEP,
        "--collectives",
        "all_reduce,all_gather",
        "--algorithms",
        "builtin,test_wrong",
        "--out",
        str(tmp_path),
    ]
    proc = run_main(args, capfd, **_fault_env(marker))
    assert proc.returncode == 1
    assert "WRONG" in proc.stderr and "Traceback" not in proc.stderr
    rows, meta = read_run(run_dir_from(proc.stdout))
    assert meta["status"] == "complete"
    for row in rows:
        bad = row["algorithm"] == "test_wrong" and int(row["bytes"]) >= 8192
        assert row["correct"] == ("false" if bad else "true"), row
        assert (int(row["n_wrong"]) > 0) == bad
    assert any(row["correct"] == "false" for row in rows)
    assert any("WRONG" in w for w in meta["warnings"])
    assert "!" in proc.stdout  # the table marks wrong points


@pytest.mark.timeout(120)
def test_torchrun_launch(tmp_path: Path) -> None:
    marker = new_marker()
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "collbench"]
    args += ["run", "--collectives", "all_reduce,reduce_scatter", "-b", "1K", "-e", "4K", "-n", "3", "--quiet"]
    args += ["--algorithms", "builtin"]
    proc = subprocess.run(
        [*args, "--out", str(tmp_path)],
        cwd=ROOT,
        env=cli_env(COLLBENCH_TEST_MARK=marker),
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dirs = list(tmp_path.iterdir())
    assert len(dirs) == 1  # only rank 0 writes
    rows, meta = read_run(dirs[0])
    assert meta["launcher"] == "torchrun" and meta["world_size"] == 2 and meta["status"] == "complete"
    assert meta["environment"].get("WORLD_SIZE") == "2"
    assert meta["nnodes"] == 1 and meta["ranks_per_node"] == 2  # torchrun: one agent, LOCAL_WORLD_SIZE 2
    assert len(rows) == 2 + 4 and all(r["correct"] == "true" for r in rows)
    _assert_no_orphans(marker)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault,timeout_s", [("test_crash", 30), ("test_hang", 5)])
def test_torchrun_fault_keeps_points(tmp_path: Path, fault: str, timeout_s: int) -> None:
    marker = new_marker()
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "collbench"]
    args += [*SWEEP[:1], *SWEEP[3:], "--algorithms", fault, "--timeout", str(timeout_s), "--quiet"]
    start = time.monotonic()
    proc = subprocess.run(
        [*args, "--out", str(tmp_path)],
        cwd=ROOT,
        env=cli_env(**_fault_env(marker)),
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert time.monotonic() - start < timeout_s + 20
    assert proc.returncode != 0
    (run_dir,) = list(tmp_path.iterdir())
    meta = _assert_kept_three_points(run_dir, "")
    assert meta["launcher"] == "torchrun" and meta["status_reason"]
    _assert_no_orphans(marker)


@pytest.mark.timeout(90)
def test_rejected_case_is_skipped_and_reported(tmp_path: Path, capfd) -> None:
    marker = new_marker()
    args = [*SWEEP, "--algorithms", "builtin,test_reject", "--out", str(tmp_path)]
    proc = run_main(args, capfd, **_fault_env(marker))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("skipped, algorithm rejected the case (ValueError: test_reject") == 2
    rows, meta = read_run(run_dir_from(proc.stdout))
    assert meta["status"] == "complete"
    assert [(r["algorithm"], int(r["bytes"])) for r in rows if r["algorithm"] == "test_reject"] == [
        ("test_reject", 1024),
        ("test_reject", 2048),
        ("test_reject", 4096),
    ]
    assert sum(r["algorithm"] == "builtin" for r in rows) == 5
    assert sum("skipped" in w for w in meta["warnings"]) == 2


@pytest.mark.timeout(90)
@pytest.mark.parametrize("launcher", ["spawn", "torchrun"])
def test_watchdog_ends_a_hang_outside_the_backend(tmp_path: Path, launcher: str) -> None:
    """Every rank hangs in Python (no gloo timeout can fire): collbench's own watchdog must end the run."""
    marker = new_marker()
    env = {**_fault_env(marker), "COLLBENCH_TEST_FAULT_RANK": "all"}
    args = [*SWEEP, "--algorithms", "test_hang", "--timeout", "4", "--out", str(tmp_path)]
    if launcher == "torchrun":
        args = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "collbench", *args]
    else:
        args = ["-m", "collbench", *args]
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=cli_env(**env), capture_output=True, text=True, timeout=80
    )
    assert time.monotonic() - start < 4 + 20
    assert proc.returncode != 0
    (run_dir,) = list(tmp_path.iterdir())
    _assert_kept_three_points(run_dir, "timeout")
    _assert_no_orphans(marker)
