"""``collbench emulate``: real multi-node runs over rate-limited veth NICs between network namespaces.

Needs root and iproute2 (the tests skip with that reason otherwise). The network sets the time here (a 4 MiB
all-reduce at 0.4 Gb/s takes ~85 ms a call, the 2-core host's noise is ~4 ms), so the busbw check holds on a
loaded machine. Every test also checks that nothing of the emulation is left: no namespace, link, process.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from emulated_marks import NEEDS_ROOT

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def emulate(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collbench", "emulate", *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _ours() -> list[str]:
    """Namespaces and links of collbench emulations that exist now."""
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return re.findall(r"collbench-cb[0-9a-f]+-node\d+", ns) + re.findall(r"\d+: (cb[0-9a-f]+(?:br|n)\d+\S*?)[:@]",
                                                                         links)  # fmt: skip


def _run_dir(folder: Path) -> Path:
    (emu,) = [d for d in folder.iterdir() if d.is_dir()]
    (run,) = [d for d in emu.iterdir() if (d / "run.json").is_file()]
    return run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "0", "--", "run"], "--nodes must be between 1"),
        (["--nodes", "2", "--nic-gbps", "0", "--", "run"], "--nic-gbps must be > 0"),
        (["--nodes", "2", "--nic-gbps", "nan", "--", "run"], "--nic-gbps must be > 0"),
        (["--nodes", "2", "--slow-nic", "5:0.5", "--", "run"], "node 5 does not exist"),
        (["--nodes", "2", "--slow-nic", "1:1:0.5", "--", "run"], "NIC 1 does not exist"),
        (["--nodes", "2", "--slow-nic", "x", "--", "run"], "expected NODE[:NIC]:FACTOR"),
        (["--nodes", "2", "--slow-link", "0-2:0.5", "--", "run"], "--slow-link: node 2 does not exist"),
        (["--nodes", "2", "--slow-link", "1-1:0.5", "--", "run"], "joins two different nodes"),
        (["--nodes", "2", "--slow-link", "0-1:0", "--", "run"], "the factor must be in (0, 1]"),
        (["--nodes", "2", "--slow-link", "0-1:1.5", "--", "run"], "the factor must be in (0, 1]"),
        (["--nodes", "2", "--slow-link", "0-1:nan", "--", "run"], "the factor must be in (0, 1]"),
        (["--nodes", "2", "--slow-link", "0-1:1:0.5", "--", "run"], "--slow-link: NIC 1 does not exist"),
        (["--nodes", "2", "--slow-link", "0:0.5", "--", "run"], "expected A-B[:NIC]:FACTOR"),
        (["--nodes", "2", "--down", "2:5", "--", "run"], "node 2 does not exist"),
        (["--nodes", "2", "--", "fit", "x"], "not 'fit'"),
        (["--nodes", "2"], "give the command to run after --"),
        (["--nodes", "2", "--", "run", "--out", "x"], "--out belongs to emulate"),
        (["--nodes", "2", "--launcher", "slurm", "--", "pairs"], "batch script, whose command is collbench run"),
        (["--nodes", "2", "--sbatch", "x.sbatch", "--", "run"], "--sbatch needs --launcher slurm"),
        (["--nodes", "2", "--launcher", "slurm", "--sbatch", "/nonexistent.sbatch", "--", "run"], "is not a file"),
    ],
)
def test_bad_values_one_line_exit_2_nothing_created(tmp_path: Path, args: list[str], message: str) -> None:
    proc = emulate(["--out", str(tmp_path), *args], timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("collbench: error:") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not list(tmp_path.iterdir())


@NEEDS_ROOT
@pytest.mark.alone
@pytest.mark.timeout(300)
def test_two_nodes_reach_the_nic_roof_and_record_the_topology(tmp_path: Path) -> None:
    before = _ours()
    proc = emulate(["--nodes", "2", "--ranks-per-node", "2", "--nic-gbps", "0.4", "--out", str(tmp_path), "--",
                    "run", "--collectives", "all_reduce", "--algorithms", "builtin", "-b", "4M", "-e", "4M",
                    "-n", "5", "-w", "1", "--timeout", "60"])  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run = _run_dir(tmp_path)
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete" and meta["world_size"] == 4
    assert meta["nnodes"] == 2 and meta["ranks_per_node"] == 2 and meta["launcher"] == "torchrun"
    hardware = json.loads((run.parent / "hardware.json").read_text())
    assert hardware["nic_gbps"] == 0.4 and hardware["nics_per_node"] == 1
    (row,) = list(csv.DictReader((run / "results.csv").open()))
    # a ring crosses each node's NIC once: busbw is bounded by the node's NIC rate, 0.4 Gb/s = 0.05 GB/s
    share = float(row["busbw_gbps"]) / 0.05
    assert 0.6 <= share <= 1.05, f"busbw {row['busbw_gbps']} GB/s is {share:.0%} of the 0.05 GB/s NIC"
    assert _ours() == before


@NEEDS_ROOT
@pytest.mark.alone
@pytest.mark.timeout(300)
def test_the_slurm_script_runs_across_the_nodes(tmp_path: Path) -> None:
    """scripts/slurm_sweep.sbatch itself, with srun and scontrol emulated: its srun line starts one torchrun agent
    per node and they meet on the first node, as on a cluster."""
    before = _ours()
    proc = emulate(["--launcher", "slurm", "--nodes", "3", "--nic-gbps", "0.4", "--out", str(tmp_path), "--",
                    "run", "--collectives", "all_reduce", "--algorithms", "builtin", "-b", "4M", "-e", "4M",
                    "-n", "3", "-w", "1", "--timeout", "60"])  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run = _run_dir(tmp_path)
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete" and meta["world_size"] == 3 and meta["nnodes"] == 3
    # the script's own command line ran (its defaults, then what was given after --)
    assert meta["launcher"] == "torchrun" and meta["command"][:4] == ["collbench", "run", "--backend", "nccl"]
    assert meta["command"][-4:-2] == ["--backend", "gloo"]
    logs = run.parent / "logs"
    assert {f.name for f in logs.iterdir()} == {"sbatch.log", "node0.log", "node1.log", "node2.log"}
    (row,) = list(csv.DictReader((run / "results.csv").open()))
    assert row["backend"] == "gloo" and 0.6 <= float(row["busbw_gbps"]) / 0.05 <= 1.05, row["busbw_gbps"]
    assert _ours() == before


@NEEDS_ROOT
@pytest.mark.alone
@pytest.mark.timeout(300)
def test_link_down_ends_the_run_keeps_points_and_cleans_up(tmp_path: Path) -> None:
    before = _ours()
    start = time.monotonic()
    proc = emulate(["--nodes", "2", "--nic-gbps", "0.4", "--down", "1:4", "--grace", "10", "--out", str(tmp_path),
                    "--", "run", "--collectives", "all_reduce", "--algorithms", "builtin", "-b", "1M", "-e", "16M",
                    "-n", "40", "-w", "1", "--timeout", "8"])  # fmt: skip
    took = time.monotonic() - start
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "node1's links taken down" in proc.stdout
    run = _run_dir(tmp_path)
    meta = json.loads((run / "run.json").read_text())
    reason = meta.get("status_reason") or ""
    assert meta["status"] in ("incomplete", "failed") and "timeout" in reason, meta
    assert "stopped answering" in reason and "host node1" in reason and "node0" not in reason, reason
    assert len(list(csv.DictReader((run / "results.csv").open()))) >= 1  # what was measured before stays
    assert took < 4 + 8 + 5 + 10 + 90  # fault + timeout + grace + the start of two agents, generously
    assert _ours() == before


@NEEDS_ROOT
@pytest.mark.alone
@pytest.mark.timeout(200)
def test_ctrl_c_cleans_up_and_exits_130(tmp_path: Path) -> None:
    before = _ours()
    proc = subprocess.Popen([sys.executable, "-m", "collbench", "emulate", "--nodes", "2", "--out", str(tmp_path),
                             "--", "run", "--collectives", "all_reduce", "-b", "16M", "-e", "16M", "-n", "50"],
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not _ours() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # a second one changes nothing
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    assert "Traceback" not in err and "interrupted" in out
    assert _ours() == before


@NEEDS_ROOT
@pytest.mark.alone
@pytest.mark.timeout(120)
def test_leftovers_refused_then_cleaned(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"collbench-cb{dead.pid:x}-node0"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        proc = emulate(["--nodes", "2", "--out", str(tmp_path), "--", "run"], timeout=60)
        assert proc.returncode == 2 and "emulate --clean" in proc.stderr and stale in proc.stderr, proc.stderr
        assert not list(tmp_path.iterdir())
        clean = emulate(["--clean"], timeout=60)
        assert clean.returncode == 0 and stale in clean.stdout, clean.stdout + clean.stderr
        assert stale not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True)


def test_the_cpu_warning_says_whose_load_it_was() -> None:
    """Pure logic, no root needed: a busy machine is flagged, and the line names the emulation or the others."""
    from collbench.emulated.launch import CpuLoad

    assert CpuLoad(machine=0.6, own=0.55).warning() is None
    own = CpuLoad(machine=0.97, own=0.9).warning()
    assert own is not None and "emulation's own processes used 90%" in own and "--ranks-per-node" in own
    others = CpuLoad(machine=0.98, own=0.3).warning()
    assert others is not None and "other processes used about 68%" in others and "quieter machine" in others
