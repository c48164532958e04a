"""``collbench emulate ... -- hunt``: the search across emulated nodes names the node whose NIC runs at half
speed, and no other. Needs root and iproute2 (skips with that reason otherwise)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(t) is None for t in ("ip", "tc", "unshare")),
    reason="collbench emulate needs root and iproute2 (ip, tc) and unshare",
)


@NEEDS_ROOT
@pytest.mark.alone
@pytest.mark.timeout(200)
def test_hunt_names_the_half_speed_node_and_no_other(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("OMP_NUM_THREADS", "1")
    args = ["emulate", "--nodes", "4", "--nic-gbps", "0.2", "--slow-nic", "2:0.5", "--out", str(tmp_path), "--",
            "hunt", "--seed", "1", "--timeout", "30"]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "collbench", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=190)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # something blamed
    (emu,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    (run,) = [d for d in emu.iterdir() if (d / "hunt.json").is_file()]
    data = json.loads((run / "hunt.json").read_text())
    assert [(data["node_names"][b["node"]], b["kind"]) for b in data["blamed"]] == [("node2", "network")], data
    blamed = data["blamed"][0]
    assert 0.35 < blamed["busbw_gbps"] / blamed["reference_gbps"] < 0.65  # the NIC at half the rate
    assert data["n_rounds"] <= 5 and json.loads((run / "run.json").read_text())["status"] == "complete"


@NEEDS_ROOT
@pytest.mark.alone
@pytest.mark.timeout(120)
def test_hunt_names_the_half_speed_link_and_no_node(tmp_path: Path) -> None:
    """Nodes 1 and 2 talk at half the NIC rate, each of them at full rate with the others: the link is blamed, with
    its two nodes, and no node."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("OMP_NUM_THREADS", "1")
    args = ["emulate", "--nodes", "4", "--nic-gbps", "0.2", "--slow-link", "1-2:0.5", "--out", str(tmp_path), "--",
            "hunt", "--seed", "1", "--sweep-links", "--timeout", "30"]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "collbench", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=110)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # something blamed
    (emu,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    (run,) = [d for d in emu.iterdir() if (d / "hunt.json").is_file()]
    data = json.loads((run / "hunt.json").read_text())
    assert [(b["kind"], [data["node_names"][n] for n in b["nodes"]]) for b in data["blamed"]] == [
        ("link", ["node1", "node2"])], data  # fmt: skip
    blamed = data["blamed"][0]
    assert 0.35 < blamed["busbw_gbps"] / blamed["reference_gbps"] < 0.65  # the link at half the NIC rate
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
