"""Reliability beyond test_bench_faults: backend init failure, busy ports, a SIGKILLed collbench, atomic rows,
concurrent runs into one --out, p = 16 on two cores, and --segment-bytes (its default: test_bench_cli).

Runs whose subject is not the collbench process itself go through ``run_main`` (in this process: one torch
import fewer per run); kills, signals, launcher environments and concurrent runs use real processes."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench_helpers import ROOT, cli_env, new_marker, processes_with_marker, read_run, run_cli, run_dir_from, run_main

from bench.schema import effective_status, effective_status_reason, writer_identity

QUICK = ["run", "--nprocs", "2", "--collectives", "all_reduce", "--algorithms", "builtin", "-b", "1K", "-e", "4K"]
QUICK += ["-n", "3", "-w", "1", "--quiet"]


def _testing(marker: str, **extra: str) -> dict[str, str]:
    return {"COLLBENCH_TESTING": "1", "COLLBENCH_TEST_MARK": marker, **extra}


def _assert_no_orphans(marker: str) -> None:
    deadline = time.monotonic() + 5
    while processes_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with_marker(marker) == [], "a rank outlived its run"


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("collbench: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "env,expect",
    [
        ({"COLLBENCH_TEST_INIT_FAIL": "1"}, "backend gloo failed to initialise (rank 1: RuntimeError: test fault"),
        ({"GLOO_SOCKET_IFNAME": "collbench_no_such_if"}, "backend gloo failed to initialise (rank 0:"),
    ],
    ids=["fault", "bad-interface"],
)
def test_backend_init_failure_is_one_line(tmp_path: Path, capfd, env: dict[str, str], expect: str) -> None:
    marker = new_marker()
    start = time.monotonic()
    proc = run_main([*QUICK, "--timeout", "60", "--out", str(tmp_path)], capfd, **_testing(marker, **env))
    assert time.monotonic() - start < 30  # noticed at once, not at the 60 s timeout
    assert proc.returncode == 1
    assert expect in _one_error_line(proc.stderr)
    rows, meta = read_run(run_dir_from(proc.stdout))
    assert rows == [] and meta["status"] == "failed" and expect in meta["status_reason"]
    _assert_no_orphans(marker)


@pytest.mark.timeout(30)
def test_nccl_without_gpu_is_a_usage_error(tmp_path: Path, capfd) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    proc = run_main([*QUICK, "--backend", "nccl", "--out", str(tmp_path)], capfd)
    assert proc.returncode == 2
    assert "needs a visible GPU" in _one_error_line(proc.stderr)
    assert list(tmp_path.iterdir()) == []  # refused before any run directory


def _busy_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("0.0.0.0", 0))
    sock.listen()
    return sock


@pytest.mark.timeout(90)
def test_spawn_retries_when_its_port_was_taken(tmp_path: Path, capfd) -> None:
    """The free-port race: another process takes the port before rank 0 listens -> a new port, same run."""
    marker = new_marker()
    with _busy_port() as sock:
        port = sock.getsockname()[1]
        proc = run_main([*QUICK, "--out", str(tmp_path)], capfd, **_testing(marker, COLLBENCH_TEST_PORT=str(port)))
    assert proc.returncode == 0, proc.stderr
    assert f"port {port} was taken" in proc.stderr
    rows, meta = read_run(run_dir_from(proc.stdout))
    assert meta["status"] == "complete" and len(rows) == 2
    _assert_no_orphans(marker)


@pytest.mark.timeout(60)
def test_master_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    """Ranks given by the environment (as a launcher would) with MASTER_PORT taken by someone else."""
    marker = new_marker()
    with _busy_port() as sock:
        port = sock.getsockname()[1]
        env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1"}
        proc = run_cli([*QUICK[:1], *QUICK[3:], "--timeout", "30", "--out", str(tmp_path)], **_testing(marker, **env))
    assert proc.returncode == 1
    assert f"MASTER_PORT {port} is already in use; choose a free port" in _one_error_line(proc.stderr)
    _, meta = read_run(run_dir_from(proc.stdout))
    assert meta["status"] == "failed"


def _wait_for_rows(out: Path, n_rows: int, timeout_s: float) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in out.glob("*/results.csv"):
            if len(path.read_text().splitlines()) >= n_rows + 1:
                return path.parent
        time.sleep(0.2)
    raise AssertionError(f"no run under {out} reached {n_rows} rows")


@pytest.mark.timeout(90)
def test_sigkilled_collbench_leaves_no_rank_and_reads_incomplete(tmp_path: Path) -> None:
    """SIGKILL cannot be caught: ranks die with their parent (PDEATHSIG) and run.json stays 'running',
    which effective_status turns into 'incomplete' because the recorded writer pid is gone."""
    marker = new_marker()
    args = [sys.executable, "-m", "collbench", "run", "--nprocs", "2", "--collectives", "all_reduce"]
    args += ["--algorithms", "test_hang", "-b", "1K", "-e", "16K", "-f", "2", "-n", "3", "-w", "1", "--quiet"]
    env = cli_env(**_testing(marker, COLLBENCH_TEST_FAULT_BYTES="8192"))
    proc = subprocess.Popen([*args, "--out", str(tmp_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE)
    try:
        run_dir = _wait_for_rows(tmp_path, 3, 40)
        time.sleep(0.5)
        assert processes_with_marker(marker)  # the ranks are alive, rank 1 hangs in the 8K call
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    _assert_no_orphans(marker)
    rows, meta = read_run(run_dir)
    assert [int(r["bytes"]) for r in rows] == [1024, 2048, 4096]  # every measured point kept
    assert meta["status"] == "running" and meta["writer"]["pid"] == proc.pid
    assert effective_status(meta) == "incomplete"
    assert f"writer process {proc.pid}" in effective_status_reason(meta)


def test_effective_status_rules() -> None:
    me = writer_identity()
    assert effective_status({"status": "running", "writer": me}) == "running"  # this very process writes
    assert effective_status({"status": "running", "writer": {**me, "pid_start_ticks": -1}}) == "incomplete"
    assert effective_status({"status": "running", "writer": {**me, "host": "elsewhere"}}) == "running"
    assert effective_status({"status": "running"}) == "running"  # imported or older runs
    assert effective_status({"status": "complete", "writer": {**me, "pid": 2**22 + 1}}) == "complete"
    assert effective_status_reason({"status": "incomplete", "status_reason": "timeout"}) == "timeout"


_WRITER_LOOP = """
import sys
from pathlib import Path
from bench.run_writer import RunWriter
from bench.records import CaseSpec, Measurement
spec = CaseSpec("all_reduce", "ring", "gloo", "cpu", 2, "float32", "sum", 4096, 1024, -1, True, 3, 1)
w = RunWriter(Path(sys.argv[1]), {"points": [], "warnings": []})
w._write_json = lambda **_: None  # rows only: kill it while it appends as fast as it can
m = Measurement(spec, tuple(float(i) for i in range(1, 200)), 1.0, 1.0, 0)
print("ready", flush=True)
while True:
    w.add(m)
    w.meta["points"].clear()
"""


@pytest.mark.timeout(60)
def test_killed_writer_leaves_only_complete_rows(tmp_path: Path) -> None:
    for attempt in range(5):
        run_dir = tmp_path / f"r{attempt}"
        run_dir.mkdir()
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER_LOOP, str(run_dir)], cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(0.3 + 0.1 * attempt)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        text = (run_dir / "results.csv").read_bytes().decode()
        assert text.endswith("\r\n")  # the last record is whole
        rows = list(csv.reader(text.splitlines()))
        assert len(rows) > 2 and all(len(r) == len(rows[0]) for r in rows)
        graph = rows[0].index("cuda_graph")
        assert all(r[:2] == ["all_reduce", "ring"] and r[graph] == "false" for r in rows[1:])


@pytest.mark.timeout(120)
def test_two_runs_at_once_into_one_out(tmp_path: Path) -> None:
    """Two collbench processes at once into one --out get a run directory each; one of them has world size 1,
    where busbw is 0 by definition (and the table says so)."""
    single = ["run", "--nprocs", "1", "--collectives", "all_reduce", "-b", "1K", "-e", "4K", "-f", "4", "-n", "3"]
    single += ["-w", "1"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "collbench", *args, "--out", str(tmp_path)],
            cwd=ROOT,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in (QUICK, single)
    ]
    outs = [p.communicate(timeout=100) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    pair, one = (run_dir_from(out) for out, _ in outs)
    assert pair != one and set(tmp_path.iterdir()) == {pair, one}
    for run_dir in (pair, one):
        rows, meta = read_run(run_dir)
        assert meta["status"] == "complete" and meta["run_id"] == run_dir.name
        assert len(rows) == len(meta["points"]) and all(r["correct"] == "true" for r in rows)
        assert [f.name for f in run_dir.iterdir() if f.name.startswith(".")] == []  # no temp file left
    rows, _ = read_run(pair)
    assert len(rows) == 2 and {r["world_size"] for r in rows} == {"2"}  # all_reduce 1K and 4K
    rows, _ = read_run(one)
    assert "busbw is 0" in outs[1][0] and {r["world_size"] for r in rows} == {"1"} and len(rows) > 2
    assert all(float(r["busbw_gbps"]) == 0.0 and float(r["algbw_gbps"]) > 0 for r in rows)


@pytest.mark.timeout(240)
def test_sixteen_ranks_on_two_cores(tmp_path: Path, capfd) -> None:
    marker = new_marker()
    args = ["run", "--nprocs", "16", "--collectives", "all_reduce,all_gather", "--algorithms", "builtin,ring"]
    args += ["-b", "1K", "-e", "4K", "-n", "2", "-w", "0", "--in-place", "yes", "--timeout", "120", "--json"]
    proc = run_main([*args, "--out", str(tmp_path)], capfd, COLLBENCH_TEST_MARK=marker)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    rows, meta = read_run(Path(summary["run_dir"]))
    assert meta["world_size"] == 16 and meta["status"] == "complete"
    # all_reduce 1K/4K and all_gather 1K/4K (counts rounded to multiples of 16), two algorithms each
    assert len(rows) == 8 and summary["wrong_points"] == 0
    assert all(r["correct"] == "true" and r["world_size"] == "16" for r in rows)
    _assert_no_orphans(marker)


@pytest.mark.timeout(90)
def test_segment_bytes_reach_pipelined_algorithms(tmp_path: Path, capfd) -> None:
    args = ["run", "--nprocs", "2", "--collectives", "broadcast,all_reduce", "--algorithms", "builtin,ring,tree"]
    args += ["-b", "4K", "-e", "16K", "-n", "2", "-w", "1", "--quiet", "--segment-bytes", "1K"]
    proc = run_main([*args, "--out", str(tmp_path / "a")], capfd)
    assert proc.returncode == 0, proc.stderr
    rows, meta = read_run(run_dir_from(proc.stdout))
    seg = {(r["collective"], r["algorithm"]): r["segment_bytes"] for r in rows}
    assert seg[("broadcast", "ring")] == seg[("all_reduce", "tree")] == seg[("all_reduce", "ring")] == "1024"
    assert seg[("broadcast", "builtin")] == seg[("all_reduce", "builtin")] == seg[("broadcast", "tree")] == ""
    assert all(r["correct"] == "true" for r in rows)  # 4 and 16 segments per call, still exact
    assert meta["config"]["segment_bytes"] == 1024
    assert {p["segment_bytes"] for p in meta["points"] if p["algorithm"] == "ring"} == {1024}  # both rings pipelined


@pytest.mark.parametrize("value,message", [("0", "at least 1 byte"), ("1Q", "--segment-bytes: bad size")])
def test_bad_segment_bytes_is_a_usage_error(tmp_path: Path, capsys, value: str, message: str) -> None:
    from collbench.cli import main

    assert main([*QUICK, "--segment-bytes", value, "--out", str(tmp_path)]) == 2
    assert message in _one_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_writer_identity_names_this_process() -> None:
    me = writer_identity()
    assert me["pid"] == os.getpid() and me["host"] == socket.gethostname()
    assert isinstance(me["pid_start_ticks"], int) and me["pid_start_ticks"] > 0


@pytest.mark.timeout(120)
def test_sigkilled_torchrun_agent_leaves_no_rank(tmp_path: Path) -> None:
    """The torchrun agent is SIGKILLed mid-run: its ranks get SIGTERM (PDEATHSIG), rank 0 finishes run.json."""
    marker = new_marker()
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "collbench"]
    args += ["run", "--collectives", "all_reduce", "--algorithms", "test_hang", "-b", "1K", "-e", "16K", "-f", "2"]
    args += ["-n", "3", "-w", "1", "--quiet", "--timeout", "60", "--out", str(tmp_path)]
    env = cli_env(**_testing(marker, COLLBENCH_TEST_FAULT_BYTES="8192"))
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run_dir = _wait_for_rows(tmp_path, 3, 60)
        time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    _assert_no_orphans(marker)
    rows, meta = read_run(run_dir)
    assert [int(r["bytes"]) for r in rows] == [1024, 2048, 4096]
    assert meta["status"] == "incomplete" and "terminated" in meta["status_reason"], meta["status_reason"]
