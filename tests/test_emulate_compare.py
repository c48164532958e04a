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
