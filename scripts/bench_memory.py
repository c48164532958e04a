"""Resident memory of a long ``collbench run`` sweep: does the writer or any rank grow as iterations pile up?

Starts ``collbench run`` (default: all_reduce builtin+ring, 4K..64K, -n 2000, 2 ranks), samples VmRSS of the
parent and of every rank from /proc/<pid>/status (no psutil) every ``--interval`` seconds, and prints the
memory curve: RSS when 10 %, 50 % and 100 % of the points are written (progress read from results.csv) per
process and the growth from 10 % to 100 % (before 10 %: start-up, imports, process group, first buffers).
Exit 1 if a process grew more than ``--max-growth-pct``.

    PYTHONPATH=$PWD python scripts/bench_memory.py --iters 2000
    PYTHONPATH=$PWD python scripts/bench_memory.py --csv /tmp/rss.csv -- --nprocs 4 -e 256K
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sample:
    """One reading: seconds since start, points written so far, process role, pid, resident set size in KiB."""

    t_s: float
    points: int
    role: str
    pid: int
    rss_kib: int


def rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB (None once it is gone or a zombie)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def children(pid: int) -> dict[int, str]:
    """Direct children of ``pid`` with their role: rank<i> (spawn order) or helper (resource tracker)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid != pid:
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        found[int(entry.name)] = "helper" if "resource_tracker" in cmd else "rank"
    ranks = sorted(p for p, role in found.items() if role == "rank")  # pids grow in spawn order
    return {p: (f"rank{ranks.index(p)}" if role == "rank" else role) for p, role in found.items()}


def points_written(out: Path) -> int:
    """Complete rows in the results.csv under ``out`` (header excluded)."""
    total = 0
    for path in out.glob("*/results.csv"):
        try:
            total += max(0, path.read_bytes().count(b"\n") - 1)
        except OSError:
            continue
    return total


def sample_run(command: list[str], out: Path, interval_s: float) -> tuple[list[Sample], subprocess.CompletedProcess]:
    """Run ``command`` and sample the RSS of it and its children (and the points written) until it exits."""
    start = time.monotonic()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[Sample] = []
    roles: dict[int, str] = {}
    while proc.poll() is None:
        now = time.monotonic() - start
        points = points_written(out)
        for pid, role in children(proc.pid).items():
            roles.setdefault(pid, role)
        for pid, role in [(proc.pid, "parent"), *roles.items()]:
            value = rss_kib(pid)
            if value is not None:
                samples.append(Sample(now, points, role, pid, value))
        time.sleep(interval_s)
    out, err = proc.communicate()
    return samples, subprocess.CompletedProcess(command, proc.returncode, out, err)


def at_fraction(samples: list[Sample], role: str, fraction: float, total_points: int) -> Sample | None:
    """The first sample of ``role`` taken once ``fraction`` of the points were written (1.0: its last sample)."""
    mine = [s for s in samples if s.role == role]
    if not mine:
        return None
    if fraction >= 1.0:
        return mine[-1]
    need = max(1, round(fraction * total_points))
    return next((s for s in mine if s.points >= need), mine[-1])


def summarize(samples: list[Sample], total_points: int) -> list[dict[str, float | str]]:
    """Per role: RSS (MiB) at 10/50/100 % of the points, peak, and growth from 10 % to 100 % in percent."""
    rows = []
    for role in sorted({s.role for s in samples}, key=lambda r: (r != "parent", r)):
        if role == "helper":
            continue
        p10, p50, p100 = (at_fraction(samples, role, f, total_points) for f in (0.1, 0.5, 1.0))
        assert p10 and p50 and p100
        peak = max(s.rss_kib for s in samples if s.role == role)
        rows.append(
            {
                "role": role,
                "rss_10pct_mib": p10.rss_kib / 1024,
                "rss_50pct_mib": p50.rss_kib / 1024,
                "rss_100pct_mib": p100.rss_kib / 1024,
                "peak_mib": peak / 1024,
                "growth_pct": 100.0 * (p100.rss_kib - p10.rss_kib) / p10.rss_kib,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000, help="timed iterations per point (default 2000)")
    parser.add_argument("--nprocs", type=int, default=2, help="ranks (default 2)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples (default 0.5)")
    parser.add_argument("--max-growth-pct", type=float, default=5.0, help="fail above this growth (default 5)")
    parser.add_argument("--csv", type=Path, help="write every sample (t_s, role, pid, rss_kib) here")
    parser.add_argument("extra", nargs="*", help="more collbench run options (after --)")
    ns = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="collbench-mem-") as out:
        command = [sys.executable, "-m", "collbench", "run", "--nprocs", str(ns.nprocs), "--collectives", "all_reduce"]
        command += ["--algorithms", "builtin,ring", "-b", "4K", "-e", "64K", "-f", "2", "-n", str(ns.iters)]
        command += ["-w", "10", "--quiet", "--out", out, *ns.extra]
        samples, proc = sample_run(command, Path(out), ns.interval)
        total_points = points_written(Path(out))
    if proc.returncode != 0:
        print(f"collbench run failed ({proc.returncode}): {proc.stderr.strip()[-500:]}", file=sys.stderr)
        return 1
    if ns.csv:
        with open(ns.csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("t_s", "points", "role", "pid", "rss_kib"))
            writer.writerows((f"{s.t_s:.2f}", s.points, s.role, s.pid, s.rss_kib) for s in samples)
    duration_s = max(s.t_s for s in samples)
    print(f"# {' '.join(command[2:])}")
    print(f"# {duration_s:.0f} s, {total_points} points, {len(samples)} samples every {ns.interval:g} s")
    print(f"{'process':<8} {'10%':>9} {'50%':>9} {'100%':>9} {'peak':>9} {'growth':>8}")
    rows = summarize(samples, total_points)
    for r in rows:
        print(
            f"{r['role']:<8} {r['rss_10pct_mib']:>7.1f}Mi {r['rss_50pct_mib']:>7.1f}Mi {r['rss_100pct_mib']:>7.1f}Mi"
            f" {r['peak_mib']:>7.1f}Mi {r['growth_pct']:>7.2f}%"
        )
    worst = max(float(r["growth_pct"]) for r in rows)
    return 0 if worst <= ns.max_growth_pct else 1


if __name__ == "__main__":
    raise SystemExit(main())
