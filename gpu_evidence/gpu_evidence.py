#!/usr/bin/env python3
"""The GPU evidence in one unattended shot: run from the repository root on a bare GPU machine with Python.

    python3 gpu_evidence/gpu_evidence.py                  # GPU: everything below, within --budget-s (default 480 s)
    python3 gpu_evidence/gpu_evidence.py --cpu            # dry run on a machine without a GPU (also: --dry-run)
    python3 gpu_evidence/gpu_evidence.py --analyse-only results/gpu-h100-...   # fit/report/compare/summary again

Steps (a progress line each; every command's output in <dir>/logs/<step>.log):

  install          a CUDA torch: the one importable by --python / --venv / this python, else pip install
                   (recorded either way); collbench from this checkout (PYTHONPATH, ``python -m bench``);
                   the analysis packages (pandas, scipy, matplotlib, seaborn, bokeh): missing -> fit/report skipped
  env              env.txt + env.json: nvidia-smi, driver, torch, CUDA, NCCL, CPU, memory, packages
  nccl-w1          collbench run, NCCL world 1 on the GPU: every collective and algorithm, results checked
  timing           gpu_evidence/gpu_timing.py: CUDA events vs host clock, CUDA graph vs eager, same sizes
  roof             gpu_evidence/gpu_roof.py: out = a + b (fp32, bf16) bandwidth vs the HBM spec -> gamma
  nccl-w1-graph    the nccl-w1 sweep with --cuda-graph
  nccl-multirank   NCCL_MULTI_RANK_GPU_ENABLE=1 collbench run --nprocs 2 on the one GPU: NCCL's answer recorded
  scale            collbench scale --backend nccl --nprocs 1: the training step's CUDA compute phase and timing
  cuda-tests       the CUDA tests the CPU-only CI skips (tests/test_collectives/test_coll_cuda.py,
                   tests/test_bench/test_bench_cuda.py; needs pytest, else skipped with the reason)
  gloo-pP          collbench run, gloo on the host CPUs, P = 2, 4, 8, 16 processes, all collectives/algorithms
  fit              collbench fit: gloo across world sizes, NCCL eager, NCCL graph
  report           collbench report: gloo; NCCL with --peak-gbps = HBM spec, --gamma-gbps = measured add rate
  compare          collbench compare against the newest earlier folder of the same GPU (--baseline to choose);
                   a first run records that there is nothing to compare against
  summary          SUMMARY.md (gpu_evidence/gpu_summary.py): the headline figures

Everything goes into one new folder <out>/gpu-<gpu>-<UTC time>/ (a second run gets a new folder; nothing is
overwritten). If $OUT is set (the device tool returns what is written there), the folder is packed into
$OUT/<folder name>.tar.gz after every step, so a run cut short still returns what it measured. A measurement step
that fails is recorded and the script goes on; at the end it exits 1 naming every failed step (0 when all
ran). A failed install stops the script (exit 1, step named). Bad options: exit 2.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.errors import EXIT_FAIL, EXIT_OK, EXIT_USAGE  # noqa: E402 - stdlib-only module of the checkout

ANALYSIS_PACKAGES = ("pandas", "scipy", "matplotlib", "seaborn", "bokeh")  # bokeh: the report's interactive charts

# What the dry run (--cpu) and the GPU run measure. Sizes are collbench's -b/-e/-f.
GPU_PLAN = {
    "nccl_sweep": ["-b", "1K", "-e", "1G", "-f", "4"],
    "multirank_sweep": ["-b", "1K", "-e", "1M", "-f", "8", "-n", "10", "-w", "2"],
    "gloo_sweep": ["-b", "1K", "-e", "1M", "-f", "4", "-n", "10", "-w", "3"],
    "gloo_procs": "2,4,8,16",
    "timing": ["--device", "cuda", "--sizes", "1K,4K,16K,64K,256K,1M,4M,16M,64M", "--iters", "50"],
    "roof": ["--device", "cuda", "--sizes", "64M,256M,1G", "--iters", "20"],
    "fit_boot": "100",
    "report_boot": "50",
    "reserve_s": 110,  # kept back from the measurements for fit, report, compare and summary
}
CPU_PLAN = {
    "nccl_sweep": [],
    "multirank_sweep": [],
    "gloo_sweep": ["-b", "1K", "-e", "16K", "-f", "4", "-n", "3", "-w", "1"],
    "gloo_procs": "2",
    "timing": ["--device", "cpu", "--sizes", "1K,4K,16K", "--iters", "5", "--warmup", "1"],
    "roof": ["--device", "cpu", "--sizes", "64K,256K", "--iters", "3", "--warmup", "1"],
    "fit_boot": "20",
    "report_boot": "10",
    "reserve_s": 40,
}
# per-step time limits in seconds (further capped by what is left of the budget)
STEP_LIMIT_S = {
    "install": 240,
    "env": 60,
    "nccl-w1": 150,
    "timing": 90,
    "roof": 60,
    "nccl-w1-graph": 120,
    "nccl-multirank": 90,
    "scale": 90,
    "cuda-tests": 150,
    "gloo": 150,
    "fit": 120,
    "report": 180,
    "compare": 60,
    "summary": 30,
}
STAMP_RE = re.compile(r"-\d{8}T\d{6}Z(-\d+)?$")  # the UTC time (and -N) ending a folder name
MIN_STEP_S = 10  # a measurement step with less time than this left is skipped (budget)


@dataclass
class Step:
    name: str
    status: str  # ok | failed | timeout | skipped | info
    seconds: float = 0.0
    note: str = ""
    commands: list[str] = field(default_factory=list)

    @property
    def counts_as_failure(self) -> bool:
        return self.status in ("failed", "timeout") or (self.status == "skipped" and self.note.startswith("budget"))


class Evidence:
    """The output folder, the clock, the step records, the progress lines and the copies to $OUT."""

    def __init__(self, folder: Path, budget_s: float, mode: str, python: str, collect: Path | None):
        self.folder = folder
        self.budget_s = budget_s
        self.mode = mode
        self.python = python
        self.collect = collect
        self.t0 = time.monotonic()
        self.steps: list[Step] = []
        self.analysis_ok = True
        self.analysis_missing: list[str] = []
        self.probe: dict = {}
        self.measured: dict | None = None  # --analyse-only: the measuring run's evidence.json, kept as it was
        self.child: subprocess.Popen | None = None
        self.started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        (folder / "logs").mkdir(parents=True, exist_ok=True)

    # -- time and progress -------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def say(self, text: str) -> None:
        line = f"gpu_evidence [{self.elapsed():5.0f}s/{self.budget_s:.0f}s] {text}"
        print(line, flush=True)
        with open(self.folder / "progress.log", "a") as f:
            f.write(line + "\n")

    # -- records ---------------------------------------------------------------------------------------
    def record(self, step: Step) -> None:
        self.steps.append(step)
        self.say(
            f"{step.name}: {step.status.upper()} in {step.seconds:.1f} s" + (f" - {step.note}" if step.note else "")
        )
        self.write_state()
        self.sync()

    def write_state(self, outcome: str | None = None) -> None:
        steps = [
            {"name": s.name, "status": s.status, "seconds": round(s.seconds, 1), "note": s.note, "commands": s.commands}
            for s in self.steps
        ]
        (self.folder / "steps.json").write_text(json.dumps(steps, indent=1) + "\n")
        this = {
            "started": self.started,
            "budget_s": self.budget_s,
            "elapsed_s": round(self.elapsed(), 1),
            "python": self.python,
            "root": str(ROOT),
            "command": sys.argv,
        }
        if self.measured is not None:  # the measuring run's start, budget and machine stay; this run is the analysis
            meta = {**{k: v for k, v in self.measured.items() if k != "analysis"}, "outcome": outcome, "analysis": this}
        else:
            meta = {"mode": self.mode, **this, "outcome": outcome}
        (self.folder / "evidence.json").write_text(json.dumps(meta, indent=1) + "\n")

    def sync(self) -> None:
        """Pack the folder into $OUT/<name>.tar.gz (the device tool returns $OUT, but at most 8 files and 2
        folders deep, so one archive), and copy SUMMARY.md beside it; an interrupted run keeps its data."""
        if self.collect is None:
            return
        dest = self.collect / f"{self.folder.name}.tar.gz"
        try:
            if self.collect.resolve() in self.folder.resolve().parents:
                return
            self.collect.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            with tarfile.open(tmp, "w:gz") as tar:
                tar.add(self.folder, arcname=self.folder.name)
            tmp.replace(dest)
            summary = self.folder / "SUMMARY.md"
            if summary.exists():
                shutil.copyfile(summary, self.collect / "SUMMARY.md")
        except OSError as exc:
            print(f"gpu_evidence: warning: copy to {dest} failed: {exc}", file=sys.stderr)

    # -- running commands --------------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.update(extra)
        return env

    def run(self, cmd: list[str], log: Path, timeout: float, env: dict[str, str] | None = None) -> tuple[int, bool]:
        """Run cmd with output appended to log; (exit code, timed out). On timeout: SIGTERM (collbench then
        marks its run incomplete and keeps every point), then SIGKILL of the whole process group."""
        with open(log, "a") as f:
            f.write(f"$ {shlex.join(cmd)}\n")
            f.flush()
            proc = subprocess.Popen(
                cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env or self.env(), start_new_session=True
            )
            self.child = proc
            try:
                return proc.wait(timeout=max(timeout, 1)), False
            except subprocess.TimeoutExpired:
                f.write(f"\n# gpu_evidence: time limit {timeout:.0f} s reached: SIGTERM\n")
                f.flush()
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
                    proc.wait()
                _kill_group(proc)
                return proc.returncode, True
            finally:
                self.child = None

    def python_json(self, code: str, timeout: float, log: Path) -> dict | None:
        """Run a snippet under the chosen python; its last stdout line as JSON (None if it failed)."""
        try:
            proc = subprocess.run(
                [self.python, "-c", code], cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=timeout
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            with open(log, "a") as f:
                f.write(f"probe failed: {exc}\n")
            return None
        with open(log, "a") as f:
            f.write(f"$ {self.python} -c <probe>\n{proc.stdout}{proc.stderr}")
        lines = proc.stdout.strip().splitlines()
        try:
            return json.loads(lines[-1]) if lines else None
        except ValueError:
            return None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


PROBE = r"""
import json, sys
out = {"python": sys.version.split()[0], "executable": sys.executable}
try:
    import torch
    out["torch"] = torch.__version__
    out["cuda"] = torch.version.cuda
    out["cuda_available"] = bool(torch.cuda.is_available())
    out["gpu_count"] = torch.cuda.device_count() if out["cuda_available"] else 0
    if out["gpu_count"]:
        out["gpu_name"] = torch.cuda.get_device_name(0)
        out["gpu_memory_bytes"] = torch.cuda.get_device_properties(0).total_memory
        out["nccl"] = ".".join(str(v) for v in torch.cuda.nccl.version())
    import torch.distributed as dist
    out["nccl_backend"] = bool(dist.is_available() and dist.is_nccl_available())
except Exception as exc:
    out["torch_error"] = f"{type(exc).__name__}: {exc}"
import importlib.util
out["missing"] = [m for m in PROBED if importlib.util.find_spec(m) is None]
try:
    import collbench.cli, bench.run, collectives
    out["collbench"] = "ok"
except Exception as exc:
    out["collbench"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""
#: the modules the probe looks for: numpy, the analysis packages, tqdm, and pytest (the cuda-tests step)
PROBED = ("numpy", *ANALYSIS_PACKAGES, "tqdm", "pytest")
PROBE = PROBE.replace("PROBED", repr(PROBED), 1)


# -- helpers -------------------------------------------------------------------------------------------------
def nvidia_smi(*args: str, timeout: float = 20) -> tuple[int, str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 127, "nvidia-smi: not found"
    try:
        p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)
        return p.returncode, (p.stdout + p.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, f"nvidia-smi {' '.join(args)}: {exc}"


def gpu_slug(name: str | None) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'h100-80gb-hbm3'."""
    text = re.sub(r"^nvidia\s+", "", (name or "unknown").strip().lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:40] or "unknown"


def new_folder(parent: Path, prefix: str) -> Path:
    """parent/prefix-<UTC time>[-N]: created here (mkdir without exist_ok), so two runs never share one."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for k in range(1, 1000):
        folder = parent / (f"{prefix}-{stamp}" + (f"-{k}" if k > 1 else ""))
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise SystemExit(f"gpu_evidence: cannot create a new folder under {parent}")


def run_dir_of(label_dir: Path) -> Path | None:
    runs = sorted(p.parent for p in label_dir.glob("*/run.json")) if label_dir.is_dir() else []
    return runs[-1] if runs else None


def last_lines(path: Path, n: int = 3, width: int = 300) -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-width:]


def choose_python(args: argparse.Namespace) -> str:
    venv = args.venv or os.environ.get("COLLBENCH_VENV")
    if args.python:
        return args.python
    if venv:
        return str(Path(venv) / "bin" / "python")
    return os.environ.get("COLLBENCH_PYTHON") or sys.executable


# -- steps ---------------------------------------------------------------------------------------------------
def step_install(ev: Evidence, args: argparse.Namespace) -> Step:
    """A torch (with CUDA unless --cpu), numpy and collbench importable; the analysis packages noted."""
    t0, log = time.monotonic(), ev.folder / "logs" / "install.log"
    limit = min(STEP_LIMIT_S["install"], max(ev.left(), 30))
    notes, commands = [], []

    def pip(*packages: str) -> str:
        if args.no_install:
            return "pip not tried (--no-install)"
        left = limit - (time.monotonic() - t0) - 30
        if left < 15:
            return "pip not tried (no time left)"
        cmd = [
            ev.python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--retries",
            "0",
            "--timeout",
            "5",
            *packages,
        ]
        commands.append(shlex.join(cmd))
        rc, timed_out = ev.run(cmd, log, timeout=left)
        return f"pip install {' '.join(packages)}: " + ("timed out" if timed_out else "ok" if rc == 0 else f"exit {rc}")

    if not Path(ev.python).exists() and shutil.which(ev.python) is None:
        return Step("install", "failed", time.monotonic() - t0, f"python {ev.python} not found (--python/--venv)")
    probe = ev.python_json(PROBE, timeout=120, log=log)
    if probe is None:
        return Step(
            "install",
            "failed",
            time.monotonic() - t0,
            f"{ev.python} could not run the probe (see logs/install.log)",
            commands,
        )
    need_cuda = ev.mode == "gpu"
    if "torch_error" in probe or (need_cuda and not probe.get("cuda_available")):
        have = probe.get("torch_error") or f"torch {probe.get('torch')} (CUDA {probe.get('cuda')}) sees no GPU"
        notes.append(have)
        code, smi = nvidia_smi("-L")
        if need_cuda and code != 0:
            notes.append(f"nvidia-smi: {smi.splitlines()[0] if smi else code}")
        notes.append(pip("--upgrade", "torch") if "torch_error" not in probe else pip("torch"))
        probe = ev.python_json(PROBE, timeout=120, log=log) or probe
    if "torch_error" in probe:
        return Step("install", "failed", time.monotonic() - t0, "torch not importable: " + "; ".join(notes), commands)
    if need_cuda and not probe.get("cuda_available"):
        return Step(
            "install",
            "failed",
            time.monotonic() - t0,
            f"torch {probe.get('torch')} has no usable CUDA GPU (torch.version.cuda={probe.get('cuda')}): "
            + "; ".join(notes),
            commands,
        )
    if need_cuda and not probe.get("nccl_backend"):
        return Step(
            "install", "failed", time.monotonic() - t0, f"torch {probe.get('torch')} has no NCCL backend", commands
        )
    core = [m for m in ("numpy",) if m in probe.get("missing", [])]
    if core:
        notes.append(pip(*core))
        probe = ev.python_json(PROBE, timeout=120, log=log) or probe
        if "numpy" in probe.get("missing", []):
            return Step("install", "failed", time.monotonic() - t0, "numpy missing: " + "; ".join(notes), commands)
    missing = [m for m in ANALYSIS_PACKAGES if m in probe.get("missing", [])]
    if missing:
        notes.append(pip(*missing))
        probe = ev.python_json(PROBE, timeout=120, log=log) or probe
        missing = [m for m in ANALYSIS_PACKAGES if m in probe.get("missing", [])]
    if probe.get("collbench") != "ok":
        return Step(
            "install",
            "failed",
            time.monotonic() - t0,
            f"collbench not importable from {ROOT}: {probe.get('collbench')}",
            commands,
        )
    ev.probe = probe
    ev.analysis_ok = not missing and not args.no_analysis
    ev.analysis_missing = missing
    what = f"python {probe.get('python')} ({ev.python}), torch {probe.get('torch')}, CUDA {probe.get('cuda')}"
    what += f", NCCL {probe.get('nccl')}, GPU {probe.get('gpu_name')}" if probe.get("gpu_count") else ", no GPU"
    what += "; collbench from the checkout (PYTHONPATH)"
    if missing:
        what += f"; analysis packages missing ({', '.join(missing)}): fit/report skipped"
    notes = [n for n in notes if n]
    return Step("install", "ok", time.monotonic() - t0, what + ("; " + "; ".join(notes) if notes else ""), commands)


def step_env(ev: Evidence) -> Step:
    t0 = time.monotonic()
    parts = [
        f"# gpu_evidence environment, {ev.started}",
        f"host: {socket.gethostname()}",
        f"platform: {platform.platform()}",
        f"cpus: {os.cpu_count()}",
        "",
    ]
    code, gpu = nvidia_smi(
        "--query-gpu=name,driver_version,memory.total,clocks.max.memory,clocks.max.sm,"
        "pcie.link.gen.max,pcie.link.width.max,power.limit",
        "--format=csv",
    )
    parts += ["## nvidia-smi --query-gpu", gpu, ""]
    driver = None
    if code == 0:
        _, drv = nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
        driver = drv.splitlines()[0].strip() if drv else None
    for args in ((), ("topo", "-m")):
        _, text = nvidia_smi(*args)
        parts += [f"## nvidia-smi {' '.join(args)}".rstrip(), text, ""]
    parts += ["## torch (probe)", json.dumps(ev.probe, indent=1), ""]
    for title, cmd in (
        ("lscpu", ["lscpu"]),
        ("free -g", ["free", "-g"]),
        ("uname -a", ["uname", "-a"]),
        ("pip list", [ev.python, "-m", "pip", "list", "--disable-pip-version-check"]),
    ):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            text = p.stdout.strip() or p.stderr.strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            text = f"unavailable: {exc}"
        if title == "pip list":
            wanted = (
                "torch",
                "nvidia-nccl",
                "nvidia-cuda",
                "numpy",
                "pandas",
                "scipy",
                "matplotlib",
                "seaborn",
                "triton",
            )
            text = "\n".join(x for x in text.splitlines() if x.lower().startswith(wanted)) or text[:2000]
        parts += [f"## {title}", text, ""]
    (ev.folder / "env.txt").write_text("\n".join(parts) + "\n")
    env = {
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "driver": driver,
        "mode": ev.mode,
        **{
            k: ev.probe.get(k) for k in ("python", "torch", "cuda", "nccl", "gpu_name", "gpu_count", "gpu_memory_bytes")
        },
    }
    (ev.folder / "env.json").write_text(json.dumps(env, indent=1) + "\n")
    note = f"GPU {env['gpu_name']}, driver {driver}" if env.get("gpu_name") else "no GPU"
    return Step("env", "ok", time.monotonic() - t0, note)


def measurement_limit(ev: Evidence, name: str, reserve: float) -> float | None:
    """Seconds this step may take, or None when the budget (less the analysis reserve) is spent."""
    key = "gloo" if name.startswith("gloo") else name
    limit = min(STEP_LIMIT_S[key], ev.left() - reserve)
    return limit if limit >= MIN_STEP_S else None


def step_collbench_run(
    ev: Evidence,
    name: str,
    run_args: list[str],
    limit: float,
    *,
    extra_env: dict | None = None,
    informational: bool = False,
) -> Step:
    """One collbench run into runs/<name>/<run dir>; ok when it exits 0 (complete, every point correct)."""
    t0, log = time.monotonic(), ev.folder / "logs" / f"{name}.log"
    out = ev.folder / "runs" / name
    cmd = [ev.python, "-m", "bench", "run", *run_args, "--out", str(out)]
    rc, timed_out = ev.run(cmd, log, limit, env=ev.env(**(extra_env or {})))
    run = run_dir_of(out)
    meta = {}
    if run is not None:
        try:
            meta = json.loads((run / "run.json").read_text())
        except (OSError, ValueError):
            meta = {}
    points = len(meta.get("points") or [])
    status_text = f"run {meta.get('status', 'not written')}" + (
        f" ({meta['status_reason']})" if meta.get("status_reason") else ""
    )
    note = f"{points} points, {status_text}; exit {rc}"
    cmd_text = (" ".join(f"{k}={v}" for k, v in (extra_env or {}).items()) + " " if extra_env else "") + shlex.join(cmd)
    if timed_out:
        return Step(
            name,
            "info" if informational else "timeout",
            time.monotonic() - t0,
            f"time limit {limit:.0f} s: {note}",
            [cmd_text],
        )
    if rc != 0:
        tail = last_lines(log, 2) if run is None or not meta.get("status_reason") else ""
        return Step(
            name,
            "info" if informational else "failed",
            time.monotonic() - t0,
            note + (f"; {tail}" if tail else ""),
            [cmd_text],
        )
    return Step(name, "ok", time.monotonic() - t0, note, [cmd_text])


def step_helper(ev: Evidence, name: str, script: str, helper_args: list[str], out_file: str, limit: float) -> Step:
    t0, log = time.monotonic(), ev.folder / "logs" / f"{name}.log"
    cmd = [ev.python, str(ROOT / "gpu_evidence" / script), *helper_args, "--out", str(ev.folder / out_file)]
    rc, timed_out = ev.run(cmd, log, limit)
    status = "timeout" if timed_out else "ok" if rc == 0 and (ev.folder / out_file).is_file() else "failed"
    note = f"{out_file} written" if status == "ok" else f"exit {rc}: {last_lines(log, 2)}"
    return Step(name, status, time.monotonic() - t0, note, [shlex.join(cmd)])


def step_scale(ev: Evidence, limit: float) -> Step:
    """``collbench scale`` at NCCL world 1: its CUDA compute phase (matmuls sized to the step) beside the gradient
    all-reduce on its own stream; ok when it exits 0 with every step correct. The figures go in the note."""
    t0, log = time.monotonic(), ev.folder / "logs" / "scale.log"
    out = ev.folder / "runs" / "scale"
    cmd = [ev.python, "-m", "bench", "scale", "--backend", "nccl", "--nprocs", "1", "--steps", "5", "--timeout", "60",
           "--out", str(out), "--json"]  # fmt: skip
    rc, timed_out = ev.run(cmd, log, limit)
    summary: dict = {}
    for line in reversed(log.read_text(errors="replace").splitlines() if log.is_file() else []):
        if line.startswith("{"):
            try:
                summary = json.loads(line)
            except ValueError:
                continue
            break
    if timed_out:
        return Step("scale", "timeout", time.monotonic() - t0, f"time limit {limit:.0f} s", [shlex.join(cmd)])
    if rc != 0 or summary.get("n_wrong", 1) != 0:
        note = f"exit {rc}, {summary.get('n_wrong', '?')} wrong: {last_lines(log, 2)}"
        return Step("scale", "failed", time.monotonic() - t0, note, [shlex.join(cmd)])
    note = (
        f"step {summary['step_ms']:.1f} ms [{summary['step_ms_lo']:.1f}, {summary['step_ms_hi']:.1f}], compute "
        f"{summary['compute_ms']:.1f} ms ({summary['compute_kind']}), all-reduce {summary['comm_ms']:.2f} ms, "
        f"exposed {summary['comm_exposed_ms']:.2f} ms, 0 wrong"
    )
    return Step("scale", "ok", time.monotonic() - t0, note, [shlex.join(cmd)])


#: the CUDA tests the CPU-only CI skips; addopts cleared (no xdist needed), no cache written into the checkout
CUDA_TESTS = ["tests/test_collectives/test_coll_cuda.py", "tests/test_bench/test_bench_cuda.py"]


def step_cuda_tests(ev: Evidence, limit: float) -> Step:
    """The suite's CUDA tests on this GPU; skipped with the reason when pytest is not installed."""
    t0, log = time.monotonic(), ev.folder / "logs" / "cuda-tests.log"
    if "pytest" in ev.probe.get("missing", []):  # the install step's probe of ev.python
        return Step("cuda-tests", "skipped", time.monotonic() - t0, f"no pytest for {ev.python}")
    cmd = [ev.python, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider", "-rs", *CUDA_TESTS]
    rc, timed_out = ev.run(cmd, log, limit)
    tail = last_lines(log, 1)
    status = "timeout" if timed_out else "ok" if rc == 0 else "failed"
    return Step("cuda-tests", status, time.monotonic() - t0, tail or f"exit {rc}", [shlex.join(cmd)])


def _roof(ev: Evidence) -> dict:
    try:
        return json.loads((ev.folder / "roof.json").read_text())
    except (OSError, ValueError):
        return {}


def _has_points(run: Path | None) -> bool:
    try:
        return run is not None and len((run / "results.csv").read_text().splitlines()) > 1
    except OSError:
        return False


def analysis_groups(ev: Evidence) -> list[tuple[str, list[Path]]]:
    """(name, run directories with points) fitted and reported together: NCCL eager (p = 1 and any p = 2 on the
    one GPU); NCCL CUDA-graph (kept apart: the fit's curve key does not include the graph flag); gloo across p."""
    runs = ev.folder / "runs"
    gloo = sorted((p for p in runs.glob("gloo-p*")), key=lambda p: (len(p.name), p.name))
    groups = [
        ("nccl", [run_dir_of(runs / "nccl-w1"), run_dir_of(runs / "nccl-multirank")]),
        ("nccl-graph", [run_dir_of(runs / "nccl-w1-graph")]),
        ("gloo", [run_dir_of(p) for p in gloo]),  # last: the largest, and NCCL is the point of the run
    ]
    return [(name, kept) for name, rs in groups if (kept := [r for r in rs if _has_points(r)])]


def step_fit_or_report(ev: Evidence, what: str, plan: dict, limit_total: float) -> Step:
    t0, log = time.monotonic(), ev.folder / "logs" / f"{what}.log"
    groups = analysis_groups(ev) if what == "fit" else [g for g in analysis_groups(ev) if g[0] != "nccl-graph"]
    if not groups:
        return Step(what, "skipped", 0.0, "no run to analyse")
    roof = _roof(ev)
    results, commands, failed = [], [], False
    for name, runs in groups:
        left = limit_total - (time.monotonic() - t0)
        if left < 5:
            results.append(f"{name}: no time left")
            failed = True
            continue
        out = ev.folder / what / name
        # --force: --analyse-only redoes the folder's own fit and report (the commands refuse an earlier output)
        cmd = [ev.python, "-m", "bench", what, *map(str, runs), "--out", str(out), "--force"]
        if what == "fit":
            cmd += ["--boot", plan["fit_boot"]]
        else:
            cmd += ["--boot", plan["report_boot"]]
            if name == "nccl":
                gpu = ev.probe.get("gpu_name") or "GPU"
                if roof.get("spec_gbps"):
                    cmd += ["--peak-gbps", f"{roof['spec_gbps']:g}"]
                if roof.get("gamma_gbps") and roof.get("device") == "cuda":
                    cmd += ["--gamma-gbps", f"{roof['gamma_gbps']:.6g}"]
                spec = (
                    f"HBM spec {roof['spec_gbps']:g} GB/s as the spec roof" if roof.get("spec_gbps") else "no HBM spec"
                )
                cmd += ["--title", f"collbench on {gpu}: NCCL ({spec}; reduction roof from out = a + b)"]
            elif name == "gloo":
                cmd += [
                    "--title",
                    f"collbench: gloo on the host of {ev.probe.get('gpu_name') or 'this machine'}, "
                    f"{os.cpu_count()} CPUs",
                ]
        commands.append(shlex.join(cmd))
        rc, timed_out = ev.run(cmd, log, left)
        ok = rc == 0 and not timed_out
        failed |= not ok
        results.append(f"{name}: " + ("ok" if ok else "timed out" if timed_out else f"exit {rc}"))
    return Step(what, "failed" if failed else "ok", time.monotonic() - t0, "; ".join(results), commands)


def find_baseline(ev: Evidence, args: argparse.Namespace) -> Path | None:
    if args.baseline:
        return Path(args.baseline)
    slug = STAMP_RE.sub("", ev.folder.name)  # gpu-<slug> / cpu-dryrun-<host>
    older = [
        p
        for p in ev.folder.parent.glob(f"{slug}-20*")
        if p.is_dir() and p.name < ev.folder.name and p != ev.folder and (p / "runs").is_dir()
    ]
    return sorted(older)[-1] if older else None


def step_compare(ev: Evidence, args: argparse.Namespace, limit_total: float) -> Step:
    t0 = time.monotonic()
    base = find_baseline(ev, args)
    out = ev.folder / "compare"
    out.mkdir(exist_ok=True)
    if base is None:
        (out / "README.md").write_text(
            f"First run on this GPU ({ev.folder.name}): nothing to compare against. The next run of "
            "gpu_evidence/gpu_evidence.py under the same parent compares its runs with this folder's.\n"
        )
        return Step("compare", "ok", time.monotonic() - t0, "first run: nothing to compare against")
    labels = sorted(
        p.name
        for p in (ev.folder / "runs").glob("*")
        if p.name != "scale"  # a training-step run, not a sweep: compare reads sweeps
        and _has_points(run_dir_of(p))
        and _has_points(run_dir_of(base / "runs" / p.name))
    )
    if not labels:
        (out / "README.md").write_text(f"Baseline {base}: no run label in common with this folder.\n")
        return Step("compare", "ok", time.monotonic() - t0, f"baseline {base.name}: no run in common")
    results, commands, failed = [], [], False
    for label in labels:
        left = limit_total - (time.monotonic() - t0)
        if left < 5:
            results.append(f"{label}: no time left")
            failed = True
            continue
        cmd = [
            ev.python,
            "-m",
            "bench",
            "compare",
            str(run_dir_of(base / "runs" / label)),
            str(run_dir_of(ev.folder / "runs" / label)),
        ]
        commands.append(shlex.join(cmd))
        with open(out / f"{label}.txt", "w") as f:
            f.write(f"$ {shlex.join(cmd)}\n")
        rc, timed_out = ev.run(cmd, out / f"{label}.txt", left)
        if timed_out or rc not in (0, 1):
            failed = True
        results.append(
            f"{label}: "
            + ("timed out" if timed_out else "no regression" if rc == 0 else "REGRESSION" if rc == 1 else f"exit {rc}")
        )
    (out / "README.md").write_text(f"Baseline: {base}\n\n" + "\n".join(f"- {r}" for r in results) + "\n")
    return Step(
        "compare",
        "failed" if failed else "ok",
        time.monotonic() - t0,
        f"vs {base.name}: " + "; ".join(results),
        commands,
    )


def step_summary(ev: Evidence) -> Step:
    t0, log = time.monotonic(), ev.folder / "logs" / "summary.log"
    # the summariser is standard-library Python: run it with this interpreter, whatever the chosen one has
    cmd = [sys.executable, str(ROOT / "gpu_evidence" / "gpu_summary.py"), str(ev.folder)]
    rc, timed_out = ev.run(cmd, log, STEP_LIMIT_S["summary"], env=ev.env())
    ok = rc == 0 and not timed_out and (ev.folder / "SUMMARY.md").is_file()
    return Step(
        "summary",
        "ok" if ok else "failed",
        time.monotonic() - t0,
        "SUMMARY.md written" if ok else f"exit {rc}: {last_lines(log, 2)}",
        [shlex.join(cmd)],
    )


# -- driver --------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="gpu_evidence",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    ap.add_argument(
        "--cpu",
        "--dry-run",
        dest="cpu",
        action="store_true",
        help="no GPU: CUDA steps skipped, gloo with --gloo-procs (default 2), tiny sizes",
    )
    ap.add_argument("--budget-s", type=float, default=480.0, help="hard total budget in seconds (default 480)")
    ap.add_argument("--out", help="parent of the new folder (default results/, results/_scratch/ with --cpu)")
    ap.add_argument(
        "--collect-dir",
        default=os.environ.get("OUT") or None,
        help="also copy the folder here after every step (default: $OUT when set)",
    )
    ap.add_argument("--python", help="python with torch to run collbench (default: $COLLBENCH_PYTHON or this one)")
    ap.add_argument("--venv", help="a prepared virtual environment to use (default: $COLLBENCH_VENV)")
    ap.add_argument("--no-install", action="store_true", help="never call pip; use what is installed")
    ap.add_argument("--no-analysis", action="store_true", help="skip fit and report (run --analyse-only later)")
    ap.add_argument("--gloo-procs", help="gloo world sizes, comma list (default 2,4,8,16; 2 with --cpu)")
    ap.add_argument("--skip", default="", help="comma list of steps (or prefixes such as gloo) not to run")
    ap.add_argument("--baseline", help="evidence folder to compare with (default: newest earlier one, same GPU)")
    ap.add_argument("--analyse-only", metavar="DIR", help="rerun fit, report, compare and summary on a folder")
    args = ap.parse_args(argv)
    if not args.budget_s > 0:
        ap.error("--budget-s must be > 0")
    procs = args.gloo_procs or (CPU_PLAN if args.cpu else GPU_PLAN)["gloo_procs"]
    try:
        args.procs = [int(x) for x in procs.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--gloo-procs must be a comma list of integers, got {procs!r}")
    if not args.procs or any(p < 1 for p in args.procs):
        ap.error("--gloo-procs needs at least one world size >= 1")
    args.skip_list = [s.strip() for s in args.skip.split(",") if s.strip()]
    return args


def skipped(args: argparse.Namespace, name: str) -> bool:
    return any(name == s or name.startswith(s) for s in args.skip_list)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    mode = "cpu" if args.cpu else "gpu"
    plan = CPU_PLAN if args.cpu else GPU_PLAN
    collect = Path(args.collect_dir) if args.collect_dir else None
    python = choose_python(args)

    if args.analyse_only:
        folder = Path(args.analyse_only)
        if not (folder / "runs").is_dir():
            print(f"gpu_evidence: error: {folder} is not an evidence folder (no runs/)", file=sys.stderr)
            return EXIT_USAGE
        try:
            old = json.loads((folder / "evidence.json").read_text())
            mode = old.get("mode", mode)
        except (OSError, ValueError):
            old = None
        plan = CPU_PLAN if mode == "cpu" else GPU_PLAN
        ev = Evidence(folder, args.budget_s, mode, python, collect)
        ev.measured = old if isinstance(old, dict) else None
        try:
            ev.steps = [
                Step(**{k: s[k] for k in ("name", "status", "seconds", "note", "commands")})
                for s in json.loads((folder / "steps.json").read_text())
            ]
            ev.probe = json.loads((folder / "env.json").read_text())
        except (OSError, ValueError, TypeError, KeyError):
            pass
        ev.steps = [s for s in ev.steps if s.name not in ("fit", "report", "compare", "summary")]
        return analyse(ev, args, plan)

    if args.cpu:
        parent = Path(args.out) if args.out else ROOT / "results" / "_scratch"
        prefix = f"cpu-dryrun-{gpu_slug(socket.gethostname())}"
    else:
        code, names = nvidia_smi("--query-gpu=name", "--format=csv,noheader")
        parent = Path(args.out) if args.out else ROOT / "results"
        prefix = f"gpu-{gpu_slug(names.splitlines()[0] if code == 0 and names else None)}"
    folder = new_folder(parent, prefix)
    ev = Evidence(folder, args.budget_s, mode, python, collect)
    ev.write_state()
    ev.say(f"{mode} evidence into {folder} (budget {args.budget_s:.0f} s; python {python})")
    if collect:
        ev.say(f"copying to {collect / folder.name} after every step")

    def on_signal(signum, _frame) -> None:
        child = ev.child
        if child is not None:  # SIGTERM first: collbench then marks its run incomplete, keeping every point
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            _kill_group(child)
        ev.record(Step("interrupted", "failed", 0.0, f"signal {signal.Signals(signum).name}"))
        ev.write_state(f"interrupted by {signal.Signals(signum).name}")
        try:
            subprocess.run([sys.executable, str(ROOT / "gpu_evidence" / "gpu_summary.py"), str(ev.folder)],
                           capture_output=True, timeout=20)  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            pass
        ev.sync()
        os._exit(130)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    ev.say("install: start")
    step = step_install(ev, args)
    ev.record(step)
    if step.status != "ok":
        ev.record(step_env(ev))
        return finish(ev, f"FAILED at step install: {step.note}")
    if not skipped(args, "env"):
        ev.record(step_env(ev))

    reserve = plan["reserve_s"] if ev.analysis_ok else 20
    measurements: list[tuple[str, Callable[[float], Step]]] = []
    nccl = ["--backend", "nccl", "--nprocs", "1", "--timeout", "60"]
    if mode == "gpu":
        measurements += [
            ("nccl-w1", lambda lim: step_collbench_run(ev, "nccl-w1", [*nccl, *plan["nccl_sweep"]], lim)),
            ("timing", lambda lim: step_helper(ev, "timing", "gpu_timing.py", plan["timing"], "timing.json", lim)),
            ("roof", lambda lim: step_helper(ev, "roof", "gpu_roof.py", plan["roof"], "roof.json", lim)),
            (
                "nccl-w1-graph",
                lambda lim: step_collbench_run(ev, "nccl-w1-graph", [*nccl, *plan["nccl_sweep"], "--cuda-graph"], lim),
            ),
            (
                "nccl-multirank",
                lambda lim: step_collbench_run(
                    ev,
                    "nccl-multirank",
                    ["--backend", "nccl", "--nprocs", "2", "--timeout", "45", *plan["multirank_sweep"]],
                    lim,
                    extra_env={"NCCL_MULTI_RANK_GPU_ENABLE": "1"},
                    informational=True,
                ),
            ),
            ("scale", lambda lim: step_scale(ev, lim)),
            ("cuda-tests", lambda lim: step_cuda_tests(ev, lim)),
        ]
    else:
        for name in ("nccl-w1", "nccl-w1-graph", "nccl-multirank", "scale", "cuda-tests"):
            ev.record(Step(name, "skipped", 0.0, "--cpu: needs a CUDA GPU"))
        measurements += [
            ("timing", lambda lim: step_helper(ev, "timing", "gpu_timing.py", plan["timing"], "timing.json", lim)),
            ("roof", lambda lim: step_helper(ev, "roof", "gpu_roof.py", plan["roof"], "roof.json", lim)),
        ]
    for p in args.procs:
        gloo = ["--backend", "gloo", "--nprocs", str(p), "--timeout", "60", *plan["gloo_sweep"]]
        measurements.append((f"gloo-p{p}", lambda lim, p=p, gloo=gloo: step_collbench_run(ev, f"gloo-p{p}", gloo, lim)))

    for i, (name, fn) in enumerate(measurements):
        if skipped(args, name):
            ev.record(Step(name, "skipped", 0.0, "--skip"))
            continue
        limit = measurement_limit(ev, name, reserve)
        if limit is None:
            ev.record(Step(name, "skipped", 0.0, f"budget: {ev.left():.0f} s left, {reserve} s kept for analysis"))
            continue
        ev.say(f"{name}: start ({i + 1}/{len(measurements)} measurements, limit {limit:.0f} s)")
        try:
            ev.record(fn(limit))
        except Exception as exc:  # noqa: BLE001 - a bug in one step must not lose the others
            ev.record(Step(name, "failed", 0.0, f"{type(exc).__name__}: {exc}"))
    return analyse(ev, args, plan)


def analyse(ev: Evidence, args: argparse.Namespace, plan: dict) -> int:
    for name in ("fit", "report"):
        if skipped(args, name):
            ev.record(Step(name, "skipped", 0.0, "--skip"))
        elif not ev.analysis_ok:
            why = (
                "--no-analysis" if args.no_analysis else f"analysis packages missing: {', '.join(ev.analysis_missing)}"
            )
            ev.record(
                Step(
                    name,
                    "skipped",
                    0.0,
                    f"{why}; run gpu_evidence/gpu_evidence.py --analyse-only {ev.folder} where they are installed",
                )
            )
        elif ev.left() < MIN_STEP_S:
            ev.record(
                Step(name, "skipped", 0.0, f"budget: {ev.left():.0f} s left; run --analyse-only {ev.folder} later")
            )
        else:
            ev.say(f"{name}: start")
            try:
                ev.record(step_fit_or_report(ev, name, plan, min(STEP_LIMIT_S[name], ev.left())))
            except Exception as exc:  # noqa: BLE001
                ev.record(Step(name, "failed", 0.0, f"{type(exc).__name__}: {exc}"))
    if skipped(args, "compare"):
        ev.record(Step("compare", "skipped", 0.0, "--skip"))
    elif lacking := [m for m in ("pandas", "scipy") if m in ev.analysis_missing]:  # all that compare needs
        ev.record(Step("compare", "skipped", 0.0, f"compare needs pandas and scipy: {', '.join(lacking)} missing"))
    elif ev.left() < MIN_STEP_S:
        ev.record(Step("compare", "skipped", 0.0, f"budget: {ev.left():.0f} s left"))
    else:
        ev.say("compare: start")
        try:
            ev.record(step_compare(ev, args, min(STEP_LIMIT_S["compare"], ev.left())))
        except Exception as exc:  # noqa: BLE001
            ev.record(Step("compare", "failed", 0.0, f"{type(exc).__name__}: {exc}"))
    failed = [s for s in ev.steps if s.counts_as_failure]
    outcome = (
        ("FAILED steps: " + "; ".join(f"{s.name} ({s.status}: {s.note[:160]})" for s in failed))
        if failed
        else "all steps ok"
    )
    return finish(ev, outcome)


def finish(ev: Evidence, outcome: str) -> int:
    ev.write_state(outcome)
    ev.say("summary: start")
    step = step_summary(ev)  # always, even past the budget: standard library only, a second or two
    ev.record(step)
    failed = [s for s in ev.steps if s.counts_as_failure]
    if failed and not outcome.startswith("FAILED"):
        outcome = "FAILED steps: " + "; ".join(f"{s.name} ({s.status})" for s in failed)
    ev.write_state(outcome)
    ev.sync()
    ev.say(
        f"{outcome}; everything is in {ev.folder}"
        + (f" (copied to {ev.collect / ev.folder.name})" if ev.collect else "")
    )
    if failed:
        print(f"gpu_evidence: error: {outcome}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
