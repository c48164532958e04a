"""Regression checks where the network sets the time: on the emulated cluster two runs of the same code agree
within a few percent and ``collbench compare`` catches a ring all-reduce that sends 10 % more bytes, with one run
per side (``scripts/emulated_compare_checks.py``, one trial). Needs root and iproute2; skips otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from emulated_marks import NEEDS_ROOT

ROOT = Path(__file__).resolve().parents[1]


@NEEDS_ROOT
@pytest.mark.alone
@pytest.mark.timeout(600)
def test_a_ten_percent_slower_ring_is_caught_and_the_same_code_is_not(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "scripts/emulated_compare_checks.py", "--trials", "1", "--json",
                           "--out", str(tmp_path / "runs")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=580)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    totals = json.loads(proc.stdout.strip().splitlines()[-1])
    assert totals["caught"] == 1, proc.stdout  # compare says the planted ring regressed (exit 1)
    assert totals["trials_with_false_flag"] == 0, proc.stdout  # nothing else, and nothing in the same-code compare
    # two runs of the same code: busbw within 5 % on (nearly) every point of 1-8 MiB
    assert totals["same_within_5pct"] >= totals["same_points"] - 1, proc.stdout


def test_repeat_checks_reuse_counts_what_compare_says(tmp_path: Path) -> None:
    """``scripts/emulated_repeat_checks.py --reuse`` on pools written here (no root: nothing is emulated): runs
    that agree within 0.5 %, a planted pool whose ring is 12 % slower; the same code is never flagged and the
    planted ring regresses in every draw, in the code and in the samples x 1.1."""
    import numpy as np

    from analysis import synthetic

    hw = synthetic.Hardware(alpha_us=50.0, bw_gbps=0.05)
    rng = np.random.default_rng(5)
    pool: dict[str, list[str]] = {"base": [], "planted": []}
    for side, ring in (("base", 1.0), ("planted", 1.12)):
        for i in range(10):
            level = float(np.exp(rng.normal(0.0, 0.005)))

            def time_fn(c: str, a: str, p: int, n: float, level: float = level, ring: float = ring) -> float:
                return hw.time_us(c, a, p, n, None) * level * (ring if a == "ring" else 1.0)

            run = synthetic.write_run(tmp_path / "runs", hw, cases=(("all_reduce", "builtin"), ("all_reduce", "ring")),
                                      world_size=3, sizes=(1 << 20, 1 << 22), noise=0.002, iters=20,
                                      seed=100 * i + len(side), time_fn=time_fn)  # fmt: skip
            pool[side].append(str(run.relative_to(tmp_path)))
    (tmp_path / "pool.json").write_text(json.dumps(pool))
    proc = subprocess.run([sys.executable, "scripts/emulated_repeat_checks.py", "--out", str(tmp_path), "--reuse",
                           "--draws", "2"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    totals = json.loads(proc.stdout)["totals"]
    assert totals["same_k3"]["comparisons_with_a_flag"] == 0 and totals["same_k5"]["comparisons_with_a_flag"] == 0
    assert totals["code_k5"]["answers"]["regressed"] == 2 and totals["samples_k5"]["answers"]["regressed"] == 2
    assert totals["samples_k5"]["ring_points_regressed"] == totals["samples_k5"]["ring_points"] == 4
    assert len(list(tmp_path.glob("summary-*.json"))) == 1
