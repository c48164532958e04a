"""send_recv through ``collbench run`` (gloo, CPU): OSU latency, bw and bibw between ranks 0 and 1 over the sweep's
sizes, the other ranks idle; data checked by the receivers (a planted wrong element is counted); bad input is one
line and exit 2 before any process starts; torchrun; the analysis commands on runs holding send_recv points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench_helpers import ROOT, cli_env, read_run, run_cli, run_dir_from
from run_copies import copy_run

from analysis.synthetic import Hardware, write_run
from collbench import cli
from collectives.spec import SEND_RECV

MEASURED = SEND_RECV.p2p.measured
messages_per_iteration = SEND_RECV.p2p.messages_per_iteration

SMALL = ["-b", "1K", "-e", "16K", "-f", "4", "-n", "3", "-w", "1", "--window", "4"]
TWO_SIZES = ["-b", "1K", "-e", "4K", "-f", "4", "--window", "4"]


def _check_rows(rows: list[dict[str, str]], world: int, sizes: list[int]) -> None:
    mine = [r for r in rows if r["collective"] == "send_recv"]
    assert [(int(r["bytes"]), r["algorithm"]) for r in mine] == [(n, a) for n in sizes for a in MEASURED]
    for r in mine:
        t = float(r["time_us"])
        assert t > 0 and int(r["world_size"]) == world and r["correct"] == "true" and r["n_wrong"] == "0"
        assert (r["op"], r["root"], r["in_place"], r["cuda_graph"]) == ("none", "-1", "false", "false")
        # bandwidth = bytes moved per second: S / (iteration time / messages it moves), busbw = algbw
        assert float(r["algbw_gbps"]) == pytest.approx(int(r["bytes"]) / t / 1e3, rel=1e-5)
        assert r["busbw_gbps"] == r["algbw_gbps"]


@pytest.mark.timeout(90)
def test_send_recv_between_two_ranks(tmp_path: Path) -> None:
    proc = run_cli(["run", "--nprocs", "2", "--collectives", "send_recv", *SMALL, "--out", str(tmp_path)], timeout=80)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "# send_recv  backend gloo" in proc.stdout and " latency " in proc.stdout and " bibw " in proc.stdout
    rows, meta = read_run(run_dir_from(proc.stdout))
    _check_rows(rows, 2, [1024, 4096, 16384])
    assert meta["config"]["window"] == 4
    assert meta["config"]["algorithms_per_collective"] == {"send_recv": list(MEASURED)}
    for pt in meta["points"]:  # one sample per timed iteration, already divided by the messages it moves
        assert len(pt["samples_us"]) == 3 and pt["time_us_min"] <= pt["time_us"] <= pt["time_us_max"]
    assert messages_per_iteration("latency", 4) == 2 and messages_per_iteration("bibw", 4) == 8


@pytest.mark.timeout(120)
def test_send_recv_next_to_a_collective_with_an_idle_rank(tmp_path: Path, capsys) -> None:
    """p = 3: rank 2 only waits at the barriers of send_recv; the run directory goes through fit, compare and
    verdict (the report: test_analysis_of_send_recv_at_two_world_sizes, on synthetic runs, for time)."""
    args = ["run", "--nprocs", "3", "--collectives", "all_reduce,send_recv", "--algorithms", "builtin,latency,bw,bibw",
            "-b", "1K", "-e", "4K", "-f", "2", "--window", "4", "-n", "3", "-w", "1", "--json",
            "--out", str(tmp_path / "runs")]  # fmt: skip
    proc = run_cli(args, timeout=100)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["points"] == 3 + 3 * 3 and summary["wrong_points"] == 0
    run_dir = Path(summary["run_dir"])
    rows, meta = read_run(run_dir)
    assert [r["collective"] for r in rows] == ["all_reduce"] * 3 + ["send_recv"] * 9
    _check_rows(rows, 3, [1024, 2048, 4096])
    # fit (curves; no cost model for send_recv), compare and verdict take it without a traceback
    assert cli.main(["fit", str(run_dir), "--boot", "10"]) == 0
    assert "curve  send_recv   latency" in capsys.readouterr().out
    assert cli.main(["compare", str(run_dir), str(copy_run(run_dir, tmp_path))]) == 0
    assert cli.main(["verdict", str(run_dir)]) == 0
    assert "uni-directional bw" in capsys.readouterr().out


@pytest.mark.timeout(90)
def test_wrong_data_is_counted_by_the_receivers(tmp_path: Path) -> None:
    """Rank 0 sends one wrong element per message in the checked iteration from 4 KiB on (test-only hook)."""
    env = {"COLLBENCH_TESTING": "1", "COLLBENCH_TEST_P2P_WRONG": "1", "COLLBENCH_TEST_FAULT_RANK": "0",
           "COLLBENCH_TEST_FAULT_BYTES": "4096"}  # fmt: skip
    args = ["run", "--nprocs", "2", "--collectives", "send_recv", *TWO_SIZES, "-n", "2", "-w", "0"]
    proc = run_cli([*args, "--out", str(tmp_path)], timeout=80, **env)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "WRONG" in proc.stderr and "!" in proc.stdout
    rows, meta = read_run(run_dir_from(proc.stdout))
    wrong = {(int(r["bytes"]), r["algorithm"]): int(r["n_wrong"]) for r in rows}
    # rank 1 receives one ping (latency) and a window of 4 messages (bw, bibw); rank 0's receipts are right
    assert wrong == {(1024, "latency"): 0, (1024, "bw"): 0, (1024, "bibw"): 0,
                     (4096, "latency"): 1, (4096, "bw"): 4, (4096, "bibw"): 4}  # fmt: skip
    assert [r["correct"] for r in rows] == ["true"] * 3 + ["false"] * 3


BAD = [
    (["--collectives", "send_recv", "--nprocs", "1"], "send_recv needs at least 2 ranks"),
    (["--collectives", "send_recv", "--algorithms", "ring"], "unknown algorithm 'ring' for send_recv; known: bibw, bw"),
    (["--collectives", "all_reduce,send_recv", "--algorithms", "ring"], "--algorithms names no send_recv measurement"),
    (["--collectives", "send_recv", "--window", "0"], "--window must be >= 1"),
    (["--collectives", "sendrecv"], "unknown collective 'sendrecv'; choose from broadcast"),
]


def test_bad_send_recv_options_exit_2_with_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    from collbench.cli import main

    monkeypatch.setenv("COLLBENCH_TESTING", "0")
    for args, message in BAD:
        assert main(["run", *args, "--out", str(tmp_path)]) == 2, args
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("collbench: error: ") and message in lines[0], (args, err)
        assert out == ""
    assert not list(tmp_path.iterdir())  # no run directory: nothing started


@pytest.mark.timeout(120)
def test_send_recv_under_torchrun(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "collbench",
            "run", "--collectives", "send_recv", "-b", "1K", "-e", "1K", "-n", "2", "-w", "1", "--window", "4",
            "--quiet", "--out", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(args, cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run_dir,) = tmp_path.iterdir()  # rank 0 writes
    rows, meta = read_run(run_dir)
    assert meta["launcher"] == "torchrun" and meta["status"] == "complete"
    _check_rows(rows, 2, [1024])


def test_analysis_of_send_recv_at_two_world_sizes(tmp_path: Path, capsys) -> None:
    """Two world sizes would give send_recv a cost-model fit if the analysis looked for one; it has none: curve fits
    only, and the all_reduce model, the report and compare are unaffected."""
    cases = (("all_reduce", "ring"), *(("send_recv", a) for a in MEASURED))
    runs = [write_run(tmp_path / "runs", Hardware(alpha_us=30.0, bw_gbps=2.0), cases=cases, world_size=p, seed=p)
            for p in (2, 3)]  # fmt: skip
    out = tmp_path / "fit"
    assert cli.main(["fit", *map(str, runs), "--out", str(out), "--boot", "10"]) == 0
    fits = (out / "fits.csv").read_text().splitlines()
    assert sum(ln.startswith("curve,send_recv,") for ln in fits) == 6  # 3 measurements x 2 world sizes
    assert any(ln.startswith("model,all_reduce,ring") for ln in fits)
    assert not any(ln.startswith("model,send_recv") for ln in fits)
    latency = next(ln for ln in fits if ln.startswith("curve,send_recv,latency"))
    assert 25 < float(latency.split(",")[5]) < 35  # alpha of one message
    assert cli.main(["report", *map(str, runs), "--boot", "10", "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "send_recv (point-to-point between two ranks) has no roofline" in report
    assert "| send_recv | 3 | bw (uni-directional) |" in report  # verdict rows: bw and bibw, no latency
    assert not (tmp_path / "report" / "figures" / "roofline_send_recv_p3.png").exists()
    assert (tmp_path / "report" / "figures" / "time_send_recv_p3.png").exists()
    assert cli.main(["compare", str(runs[0]), str(copy_run(runs[0], tmp_path))]) == 0
    assert cli.main(["verdict", *map(str, runs)]) == 0
    capsys.readouterr()
