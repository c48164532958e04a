#!/usr/bin/env python
"""The pytest plugin's figure vs ``collbench run``'s for the same case, side by side in one run.

In ABBA-ordered rounds (to cancel drift) it runs (a) pytest on a one-test suite through collbench's plugin
(``collective_benchmark``, ``--benchmark-json``) and (b) ``collbench run`` with the same options, both as a
user would, each in its own processes. Reported: per round each side's median per-iteration time (what
pytest-benchmark's ``median`` and run.json's ``time_us`` are), and the ratio of the medians pooled over
all samples of each side. Target: plugin / run within 10 %. Exit 1 if missed.

    PYTHONPATH=$PWD python scripts/bench_plugin_vs_run.py --rounds 4 --iters 200 --size 4K
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = """
import os
def test_case(collective_benchmark):
    collective_benchmark(os.environ["CB_COLL"], os.environ["CB_ALG"], nbytes=int(os.environ["CB_BYTES"]),
                         iters=int(os.environ["CB_ITERS"]), warmup=int(os.environ["CB_WARMUP"]))
"""


def _plugin(tmp: Path, args: argparse.Namespace, nbytes: int, env: dict[str, str]) -> list[float]:
    """Per-iteration samples (us) as pytest-benchmark stored them (``--benchmark-json`` with data)."""
    out = tmp / "bench.json"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp / "test_case.py"), "--rootdir",
           str(tmp), "-o", "addopts=", f"--benchmark-json={out}", f"--collbench-nprocs={args.nprocs}"]  # fmt: skip
    case = {"CB_COLL": args.collective, "CB_ALG": args.algorithm, "CB_BYTES": str(nbytes),
            "CB_ITERS": str(args.iters), "CB_WARMUP": str(args.warmup)}  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp, env={**env, **case}, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"pytest failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return [x * 1e6 for x in json.loads(out.read_text())["benchmarks"][0]["stats"]["data"]]


def _run(tmp: Path, args: argparse.Namespace, env: dict[str, str]) -> list[float]:
    """Per-iteration samples (us) of the one point ``collbench run`` writes to run.json."""
    cmd = [sys.executable, "-m", "collbench", "run", "--nprocs", str(args.nprocs), "--collectives", args.collective,
           "--algorithms", args.algorithm, "-b", args.size, "-e", args.size, "-n", str(args.iters),
           "-w", str(args.warmup), "--out", str(tmp / "runs"), "--json"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"collbench run failed:\n{proc.stderr[-2000:]}")
    run_dir = Path(json.loads(proc.stdout)["run_dir"])
    return json.loads((run_dir / "run.json").read_text())["points"][0]["samples_us"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--iters", type=int, default=200, help="timed calls per side per round")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--collective", default="all_reduce")
    parser.add_argument("--algorithm", default="builtin")
    parser.add_argument("--size", default="4K")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.sizes import parse_size

    nbytes = parse_size(args.size)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    samples: dict[str, list[float]] = {"plugin": [], "run": []}
    print(f"{args.collective} {args.algorithm} {args.size}, gloo, {args.nprocs} ranks, {args.iters} iterations "
          f"per side per round, ABBA order")  # fmt: skip
    print(f"{'round':>5} {'plugin median us':>17} {'run median us':>14} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "test_case.py").write_text(SUITE)
        for rnd in range(args.rounds):
            got = {}
            for side in ("plugin", "run") if rnd % 2 == 0 else ("run", "plugin"):
                got[side] = _plugin(tmp, args, nbytes, env) if side == "plugin" else _run(tmp, args, env)
                samples[side].extend(got[side])
            p, r = statistics.median(got["plugin"]), statistics.median(got["run"])
            print(f"{rnd:5d} {p:17.1f} {r:14.1f} {p / r:7.2f}")
    p, r = statistics.median(samples["plugin"]), statistics.median(samples["run"])
    ratio = p / r
    ok = abs(ratio - 1) <= 0.10
    print(f"{'all':>5} {p:17.1f} {r:14.1f} {ratio:7.2f}   plugin / run within 10 %: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
