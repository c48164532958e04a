"""``collbench emulate ... -- hunt``: the search across emulated nodes names the node whose NIC runs at half
speed, and no other; and a link between two nodes at half speed, and no node. Needs root and iproute2 (skips
with that reason otherwise)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from emulated_marks import NEEDS_ROOT

ROOT = Path(__file__).resolve().parents[1]


def _hunt(tmp_path: Path, plant: list[str], hunt: list[str], timeout: float) -> dict[str, Any]:
    """hunt.json of hunt (seed 1, ``hunt`` options) on 4 emulated nodes at 0.2 Gb/s with ``plant`` (emulate's)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("OMP_NUM_THREADS", "1")
    args = ["emulate", "--nodes", "4", "--nic-gbps", "0.2", *plant, "--out", str(tmp_path), "--",
            "hunt", "--seed", "1", "--timeout", "30", *hunt]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "collbench", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # something blamed
    (emu,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    (run,) = [d for d in emu.iterdir() if (d / "hunt.json").is_file()]
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    return json.loads((run / "hunt.json").read_text())


@NEEDS_ROOT
@pytest.mark.alone
@pytest.mark.timeout(200)
def test_hunt_names_the_half_speed_node_and_no_other(tmp_path: Path) -> None:
    data = _hunt(tmp_path, ["--slow-nic", "2:0.5"], [], timeout=190)
    assert [(data["node_names"][b["node"]], b["kind"]) for b in data["blamed"]] == [("node2", "network")], data
    blamed = data["blamed"][0]
    assert 0.35 < blamed["busbw_gbps"] / blamed["reference_gbps"] < 0.65  # the NIC at half the rate
    assert data["n_rounds"] <= 5


@NEEDS_ROOT
@pytest.mark.alone
@pytest.mark.timeout(120)
def test_hunt_names_the_half_speed_link_and_no_node(tmp_path: Path) -> None:
    """Nodes 1 and 2 talk at half the NIC rate, each of them at full rate with the others: the link is blamed, with
    its two nodes, and no node."""
    data = _hunt(tmp_path, ["--slow-link", "1-2:0.5"], ["--sweep-links"], timeout=110)
    assert [(b["kind"], [data["node_names"][n] for n in b["nodes"]]) for b in data["blamed"]] == [
        ("link", ["node1", "node2"])], data  # fmt: skip
    blamed = data["blamed"][0]
    assert 0.35 < blamed["busbw_gbps"] / blamed["reference_gbps"] < 0.65  # the link at half the NIC rate
