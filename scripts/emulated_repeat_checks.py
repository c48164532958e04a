#!/usr/bin/env python3
"""Repeated runs where the network sets the time: can ``collbench compare`` with K runs per side tell a 10 %
slower ring from none on the emulated cluster (issue 26, results/README.md "Repeated runs")? Needs root.

1. Measures a pool of emulated runs (3 nodes x 1 rank, 0.4 Gb/s NICs, all_reduce builtin and ring at 1-8 MiB,
   ``-n 20``), alternating this checkout and a scratch copy whose ring sends 10 % more bytes
   (``emulated_compare_checks.planted_copy``), ``--pool`` of each. Every finished run is recorded in
   OUT/pool.json at once (paths relative to OUT), so an interrupted measurement keeps what it has.
2. Compares sides drawn (seeded) from the pools: same code (base runs against other base runs) at K = 3 and
   K = 5, the planted code at K = 5 (``--threshold 0.05``: the padding adds about 10 % to a transfer-bound time,
   less where latency counts), and base runs with every ring sample x 1.1 (exactly 10 %, planted in the files as
   ``repeat_compare_checks.planted_copy`` does) at K = 5 with the default threshold 0.10.

    sudo python scripts/emulated_repeat_checks.py --out /tmp/erep --pool 12          # measure and compare
    sudo python scripts/emulated_repeat_checks.py --out /tmp/erep --reuse            # compare what is there

Prints one JSON summary and writes it to OUT/summary-<time>.json (a new file).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emulated_compare_checks as ecc  # noqa: E402
import repeat_compare_checks as rcc  # noqa: E402


def measure(out: Path, pool: int) -> None:
    """``pool`` runs of each side, alternating which goes first; OUT/pool.json lists them as they finish."""
    copy = ecc.planted_copy(Path(tempfile.mkdtemp()))
    record = out / "pool.json"
    done = json.loads(record.read_text()) if record.exists() else {"base": [], "planted": []}
    for i in range(pool):
        order = [("base", ecc.ROOT), ("planted", copy)] if i % 2 == 0 else [("planted", copy), ("base", ecc.ROOT)]
        for name, code in order:
            t0 = time.time()
            run = ecc.emulate(code, out / "runs")
            done[name].append(str(run.relative_to(out)))  # relative: the folder can be moved or archived
            record.write_text(json.dumps(done, indent=1) + "\n")
            print(f"round {i + 1}/{pool} {name}: {run.name} in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)


def answer(r: dict, algorithm: str) -> dict:
    """What one comparison said: overall answer, the verdicts of ``algorithm``'s points, MDE, spread."""
    pts = [p for p in r["points"] if p["algorithm"] == algorithm]
    return {"answer": r["overall"]["answer"], "exit": r["exit_code"], "verdicts": [p["verdict"] for p in pts],
            "ratios": [round(p["ratio"], 4) for p in pts], "mde": [round(p["mde"], 4) for p in pts],
            "flagged": sum(p["verdict"] in ("regression", "improvement") for p in r["points"])}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--pool", type=int, default=12, help="emulated runs of each side to measure (default 12)")
    ap.add_argument("--draws", type=int, default=10, help="comparisons drawn per check (default 10)")
    ap.add_argument("--reuse", action="store_true", help="compare the runs already listed in OUT/pool.json")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not args.reuse:
        measure(out, args.pool)
    pool = json.loads((out / "pool.json").read_text())
    base, planted = ([out / p for p in pool[side]] for side in ("base", "planted"))
    work = out / f"work-{int(time.time())}"
    rng = random.Random(0)
    summary: dict = {"pool": {"base": len(base), "planted": len(planted)}, "emulate": ecc.EMULATE, "run": ecc.RUN,
                     "measured_between_run_sd": rcc.spread_by_point(base)}  # fmt: skip
    checks: dict[str, list] = {"same_k3": [], "same_k5": [], "code_k5": [], "samples_k5": []}
    for t in range(args.draws):
        for k, name in ((3, "same_k3"), (5, "same_k5")):
            if len(base) >= 2 * k:
                pick = rng.sample(base, 2 * k)
                a, b = rcc.folder_of(pick[:k], work / f"{name}-{t}-a"), rcc.folder_of(pick[k:], work / f"{name}-{t}-b")
                checks[name].append(answer(rcc.compare(a, b), "ring"))
        if len(base) >= 5 and len(planted) >= 5:
            a = rcc.folder_of(rng.sample(base, 5), work / f"code-{t}-base")
            b = rcc.folder_of(rng.sample(planted, 5), work / f"code-{t}-planted")
            checks["code_k5"].append(answer(rcc.compare(a, b, "--threshold", "0.05"), "ring"))
        if len(base) >= 10:
            pick = rng.sample(base, 10)
            a = rcc.folder_of(pick[:5], work / f"samples-{t}-base")
            b = rcc.planted_copy(rcc.folder_of(pick[5:], work / f"samples-{t}-src"), work / f"samples-{t}-new", 1.10)
            checks["samples_k5"].append(answer(rcc.compare(a, b), "ring"))
    summary.update(checks)
    summary["totals"] = {name: {"answers": {a: sum(c["answer"] == a for c in v) for a in rcc.ANSWERS},
                                "comparisons_with_a_flag": sum(c["flagged"] > 0 for c in v),
                                "ring_points_regressed": sum(x == "regression" for c in v for x in c["verdicts"]),
                                "ring_points": sum(len(c["verdicts"]) for c in v)}
                         for name, v in checks.items()}  # fmt: skip
    text = json.dumps(summary, indent=1)
    with open(out / f"summary-{int(time.time())}.json", "x") as fh:
        fh.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
