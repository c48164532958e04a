"""Regression checks where the network sets the time: runs of the same code on the emulated cluster, and a planted
10 % slowdown of the ring all-reduce (a scratch copy whose ring sends 10 % more bytes), compared with
``collbench compare``. Needs root (``collbench emulate``). Prints, per trial, how many points >= 1 MiB of two
same-code runs agree within 5 %, and what compare says of the planted copy; then the totals.

    sudo python scripts/emulated_compare_checks.py --trials 3 --out results/_scratch/ecompare
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "collectives", "analysis", "collbench", "pyproject.toml")
#: the planted regression: the copy's ring all-reduce runs on a buffer 10 % longer (zeros appended), so it sends
#: 10 % more bytes and, network-bound, takes about 10 % longer; the result stays exact
PADDED_RING = '''

def _ring_padded(tensor, op=ReduceOp.SUM, group=None, **kw):
    import torch

    flat = tensor.reshape(-1)
    buf = torch.cat([flat, torch.zeros(max(1, flat.numel() // 10), dtype=flat.dtype, device=flat.device)])
    ALGORITHMS_UNPADDED["ring"](buf, op, group, **kw)
    flat.copy_(buf[: flat.numel()])


ALGORITHMS_UNPADDED = dict(ALGORITHMS)
ALGORITHMS["ring"] = _ring_padded
'''
RUN = ["run", "--collectives", "all_reduce", "--algorithms", "builtin,ring", "-b", "1M", "-e", "8M", "-f", "2",
       "-n", "20", "-w", "2", "--timeout", "120"]  # fmt: skip
EMULATE = ["--nodes", "3", "--ranks-per-node", "1", "--nic-gbps", "0.4"]


def planted_copy(dest: Path) -> Path:
    """A scratch copy of the packages whose ring all-reduce sends 10 % more bytes."""
    for name in PACKAGES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    (dest / "collectives" / "all_reduce.py").open("a").write(PADDED_RING)
    return dest


def emulate(code_root: Path, out: Path) -> Path:
    """One emulated run of RUN with the packages of ``code_root``; its run directory."""
    env = dict(os.environ, PYTHONPATH=str(code_root))
    cmd = [sys.executable, "-m", "collbench", "emulate", *EMULATE, "--out", str(out), "--", *RUN]
    proc = subprocess.run(cmd, cwd=code_root, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"emulate failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    folder = Path(proc.stdout.strip().splitlines()[-1].split("results in ")[-1])
    (run,) = [d for d in folder.iterdir() if (d / "run.json").is_file()]
    return run


def busbw(run: Path) -> dict[tuple[str, int], float]:
    with (run / "results.csv").open() as f:
        return {(r["algorithm"], int(r["bytes"])): float(r["busbw_gbps"]) for r in csv.DictReader(f)}


def compare(base: Path, new: Path) -> dict:
    cmd = [sys.executable, "-m", "collbench", "compare", str(base), str(new), "--threshold", "0.05", "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    return {"exit": proc.returncode, **json.loads(proc.stdout)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--out", default="results/_scratch/ecompare")
    ap.add_argument("--json", action="store_true", help="print the totals as one JSON object at the end")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    copy = planted_copy(Path(subprocess.check_output(["mktemp", "-d"], text=True).strip()))
    agree = total = caught = false_flags = 0
    for trial in range(args.trials):
        order = [("base", ROOT), ("planted", copy), ("again", ROOT)] if trial % 2 == 0 else \
            [("again", ROOT), ("planted", copy), ("base", ROOT)]  # fmt: skip
        runs = {name: emulate(code, out) for name, code in order}
        a, b = busbw(runs["base"]), busbw(runs["again"])
        close = [k for k in a if abs(b[k] / a[k] - 1) <= 0.05]
        agree, total = agree + len(close), total + len(a)
        same, slow = compare(runs["base"], runs["again"]), compare(runs["base"], runs["planted"])
        flagged = lambda c, alg: [p for p in c.get("points", []) if p.get("algorithm") == alg  # noqa: E731
                                  and p.get("verdict") in ("regression", "regressed")]  # fmt: skip
        ring_caught = bool(flagged(slow, "ring"))
        false = flagged(same, "ring") + flagged(same, "builtin") + flagged(slow, "builtin")
        caught += ring_caught
        false_flags += bool(false)
        ratios = {k: round(busbw(runs["planted"])[k] / a[k], 3) for k in a}
        print(f"trial {trial}: same code within 5 %: {len(close)}/{len(a)}; planted ring caught: {ring_caught} "
              f"(exit {slow['exit']}); false flags: {len(false)}; planted/base busbw {ratios}", flush=True)
    print(f"total: same-code points within 5 %: {agree}/{total}; planted 10 % ring caught in {caught}/{args.trials} "
          f"trials; trials with a false flag: {false_flags}/{args.trials}")
    if args.json:
        print(json.dumps({"trials": args.trials, "same_within_5pct": agree, "same_points": total, "caught": caught,
                          "trials_with_false_flag": false_flags}))


if __name__ == "__main__":
    main()
