#!/usr/bin/env python3
"""How honest is ``collbench compare`` on repeated runs on this host? (results/README.md, "Repeated runs").

1. Measures ``--sets`` directories of ``collbench run --repeat K`` of the same code (all_reduce, ring and builtin,
   1 KiB-4 MiB, short budgets), one after another, with the load average before each.
2. Same code: compares disjoint pairs of them (independent comparisons) and counts the answers, the points
   flagged, and the MDE printed next to the spread measured over all runs.
3. Planted slowdown: a copy of NEW's runs with every ring point at >= 1 MiB 10 % slower (time_us, its
   percentiles, CI and every sample x 1.1, bandwidths / 1.1, a new run_id), compared with BASE. Counts
   regressed / inconclusive / no change on the planted points.
4. K = 5: sides of 5 runs drawn (seeded) from all runs measured, same code and planted.

    python scripts/repeat_compare_checks.py --out /tmp/repeat-checks            # measure and compare
    python scripts/repeat_compare_checks.py --out /tmp/repeat-checks --reuse    # compare what is there

Prints one JSON summary (and writes it to OUT/summary.json, a new file).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_ARGS = ["--collectives", "all_reduce", "--algorithms", "ring,builtin", "-b", "1K", "-e", "4M", "-f", "4",
            "--nprocs", "2", "--max-time-per-point", "0.25", "--quiet"]  # fmt: skip
PLANT_MIN_BYTES = 1 << 20
TIME_FIELDS = ("time_us", "time_us_p10", "time_us_p25", "time_us_p75", "time_us_p90", "time_us_min", "time_us_max",
               "time_us_median", "time_us_ci_lo", "time_us_ci_hi", "block_time_us")  # fmt: skip
BW_FIELDS = ("algbw_gbps", "busbw_gbps")
ANSWERS = ("no change", "inconclusive", "regressed", "improved")


def collbench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "collbench", *args], capture_output=True, text=True, env=env,
                          timeout=900, check=False)  # fmt: skip


def measure(out: Path, sets: int, repeat: int) -> list[dict]:
    log = []
    for i in range(sets):
        load = os.getloadavg()[0]
        t0 = time.time()
        res = collbench("run", "--repeat", str(repeat), *RUN_ARGS, "--out", str(out / "sets"))
        if res.returncode != 0:
            raise SystemExit(f"run failed ({res.returncode}): {res.stderr.strip()[-500:]}")
        log.append({"set": Path(res.stdout.strip().splitlines()[-1]).name, "load1": load, "seconds": time.time() - t0})
        print(f"set {i + 1}/{sets}: {log[-1]}", file=sys.stderr, flush=True)
    return log


def planted_copy(src: Path, dst: Path, factor: float) -> Path:
    """A copy of a --repeat directory (or a folder of runs) whose ring points >= 1 MiB are ``factor`` slower."""
    shutil.copytree(src, dst, symlinks=False)
    for run in sorted(p for p in dst.iterdir() if (p / "run.json").exists()):
        meta = json.loads((run / "run.json").read_text())
        meta["run_id"] = f"{meta['run_id']}-planted"
        for pt in meta["points"]:
            if pt["algorithm"] == "ring" and int(pt["bytes"]) >= PLANT_MIN_BYTES:
                for f in TIME_FIELDS:
                    if pt.get(f) is not None:
                        pt[f] = float(pt[f]) * factor
                for f in BW_FIELDS:
                    pt[f] = float(pt[f]) / factor
                pt["samples_us"] = [float(x) * factor for x in pt.get("samples_us") or []]
        (run / "run.json").write_text(json.dumps(meta))
        rows = list(csv.DictReader(io.StringIO((run / "results.csv").read_text())))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            if row["algorithm"] == "ring" and int(row["bytes"]) >= PLANT_MIN_BYTES:
                for f in TIME_FIELDS:
                    if row.get(f):
                        row[f] = f"{float(row[f]) * factor:.6g}"
                for f in BW_FIELDS:
                    row[f] = f"{float(row[f]) / factor:.6g}"
            writer.writerow(row)
        (run / "results.csv").write_text(buf.getvalue())
    return dst


def compare(base: Path, new: Path, *extra: str) -> dict:
    res = collbench("compare", str(base), str(new), "--json", *extra)
    if res.returncode not in (0, 1):
        raise SystemExit(f"compare failed ({res.returncode}): {res.stderr.strip()}")
    out = json.loads(res.stdout)
    out["exit_code"] = res.returncode
    return out


def planted_points(out: dict) -> list[dict]:
    return [p for p in out["points"] if p["algorithm"] == "ring" and p["bytes"] >= PLANT_MIN_BYTES]


def folder_of(runs: list[Path], dst: Path) -> Path:
    """A folder of symlinks to ``runs`` (a multi-run side made of runs from several sets)."""
    dst.mkdir(parents=True)
    for r in runs:
        (dst / r.name).symlink_to(r.resolve())
    return dst


def spread_by_point(run_dirs: list[Path]) -> dict[str, float]:
    """sd of log(time_us) over every run measured, per point (the spread between runs, measured)."""
    values: dict[str, list[float]] = {}
    for run in run_dirs:
        for row in csv.DictReader(io.StringIO((run / "results.csv").read_text())):
            values.setdefault(f"{row['algorithm']} {row['bytes']}", []).append(math.log(float(row["time_us"])))
    out = {}
    for k, v in values.items():
        m = sum(v) / len(v)
        out[k] = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else math.nan
    return out


def pairs(sets: list[Path], work: Path, factor: float, extra: tuple[str, ...]) -> dict:
    """Disjoint pairs of sets: same code, and NEW with the planted slowdown; answers, flags, MDE."""
    same, planted = [], []
    for i in range(0, len(sets) - 1, 2):
        base, new = sets[i], sets[i + 1]
        r = compare(base, new, *extra)
        same.append({"pair": [base.name, new.name], "answer": r["overall"]["answer"], "exit": r["exit_code"],
                     "counts": r["counts"], "points": len(r["points"]), "mde_median": r["overall"]["mde_median"],
                     "between_run_sd_median": r["overall"]["between_run_sd_median"]})  # fmt: skip
        slow = compare(base, planted_copy(new, work / f"planted-{i}", factor), *extra)
        pp = planted_points(slow)
        planted.append({"pair": [base.name, new.name], "answer": slow["overall"]["answer"],
                        "planted_verdicts": [p["verdict"] for p in pp], "planted_ratios": [p["ratio"] for p in pp],
                        "planted_mde": [p["mde"] for p in pp],
                        "other_flagged": sum(p["verdict"] in ("regression", "improvement") for p in slow["points"]
                                             if p not in pp)})  # fmt: skip
    n_points = sum(s["points"] for s in same)
    verdicts = [v for p in planted for v in p["planted_verdicts"]]
    return {
        "same_code": same, "planted": planted,
        "same_code_totals": {
            "comparisons": len(same), "no_regression": sum(s["answer"] != "regressed" for s in same),
            "answers": {a: sum(s["answer"] == a for s in same) for a in ANSWERS},
            "points": n_points,
            "points_flagged": sum(s["counts"]["regression"] + s["counts"]["improvement"] for s in same),
            "mde_median_of_medians": median([s["mde_median"] for s in same]),
        },
        "planted_totals": {v: verdicts.count(v) for v in ("regression", "inconclusive", "same", "improvement",
                                                             "isolated")},
        "planted_answers": {a: sum(p["answer"] == a for p in planted) for a in ANSWERS},
    }  # fmt: skip


def one_run_pairs(sets: list[Path]) -> dict:
    """The first run of each set of a disjoint pair against the other's: what one run per side answers."""
    answers = []
    for i in range(0, len(sets) - 1, 2):
        a, b = (sorted(p for p in s.iterdir() if (p / "run.json").exists())[0] for s in (sets[i], sets[i + 1]))
        answers.append(compare(a, b)["overall"]["answer"])
    return {"comparisons": len(answers), "answers": {a: answers.count(a) for a in ANSWERS}}


def median(values: list) -> float | None:
    known = sorted(v for v in values if v is not None)
    return known[len(known) // 2] if known else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--sets", type=int, default=12, help="--repeat directories to measure (default 12)")
    ap.add_argument("--repeat", type=int, default=3, help="K runs per directory (default 3)")
    ap.add_argument("--factor", type=float, default=1.10, help="planted slowdown (default 1.10)")
    ap.add_argument("--k5-trials", type=int, default=10)
    ap.add_argument("--reuse", action="store_true", help="compare the sets already under OUT/sets")
    args = ap.parse_args()
    out = Path(args.out)
    log = [] if args.reuse else measure(out, args.sets, args.repeat)
    sets = sorted(p for p in (out / "sets").iterdir() if (p / "repeat.json").exists())
    work = out / f"work-{int(time.time())}"
    summary: dict = {"sets": len(sets), "repeat": args.repeat, "measure_log": log, "run_args": RUN_ARGS}

    for mode, extra in (("absolute", ()), ("relative_to_builtin", ("--relative-to", "builtin"))):
        summary[mode] = pairs(sets, work / mode, args.factor, extra)
    summary["one_run_per_side"] = one_run_pairs(sets)

    runs = sorted(r for s in sets for r in s.iterdir() if (r / "run.json").exists())
    sd = spread_by_point(runs)
    summary["measured_between_run_sd"] = sd
    summary["measured_between_run_sd_median"] = sorted(sd.values())[len(sd) // 2]
    rng = random.Random(0)
    k5 = []
    for t in range(args.k5_trials if len(runs) >= 10 else 0):
        pick = rng.sample(runs, 10)
        base = folder_of(pick[:5], work / f"k5-{t}-base")
        new = folder_of(pick[5:], work / f"k5-{t}-new")
        slow = planted_copy(new, work / f"k5-{t}-planted", args.factor)
        for mode, extra in (("absolute", ()), ("relative_to_builtin", ("--relative-to", "builtin"))):
            r_same, r_slow = compare(base, new, *extra), compare(base, slow, *extra)
            k5.append({"mode": mode, "same_answer": r_same["overall"]["answer"],
                       "planted_answer": r_slow["overall"]["answer"],
                       "planted_verdicts": [p["verdict"] for p in planted_points(r_slow)],
                       "mde_median": r_same["overall"]["mde_median"]})  # fmt: skip
    summary["k5"] = k5
    text = json.dumps(summary, indent=1)
    target = out / f"summary-{int(time.time())}.json"
    with open(target, "x") as fh:
        fh.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
