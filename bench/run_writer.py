"""The run directory: exclusive creation, metadata, results.csv appended per point, run.json rewritten atomically."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import secrets
import socket
import subprocess
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.measurement import CSV_COLUMNS, Measurement, csv_field

SCHEMA_VERSION = 1
ENV_PREFIXES = ("NCCL_", "TORCH_", "GLOO_", "CUDA_", "SLURM_", "OMPI_COMM_WORLD_")
ENV_NAMES = frozenset(
    {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "LOCAL_WORLD_SIZE"}
    | {"RANK", "LOCAL_RANK", "GROUP_RANK", "TORCHELASTIC_RUN_ID", "COLLBENCH_TESTING"}
)
ENV_DENY = ("TOKEN", "SECRET", "PASS", "KEY", "CREDENTIAL", "AUTH", "PRIVATE", "COOKIE", "SESSION")
SLURM_NAMES = frozenset({"SLURM_JOB_ID", "SLURM_NNODES", "SLURM_JOB_NUM_NODES", "SLURM_JOB_PARTITION", "SLURM_NTASKS"})


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def allowed_environment(env: dict[str, str]) -> dict[str, str]:
    """Allow-listed variables only (never the whole environment, never names that look secret)."""
    out = {}
    for name, value in env.items():
        if any(bad in name.upper() for bad in ENV_DENY):
            continue
        if name.startswith("SLURM_") and name not in SLURM_NAMES:
            continue
        if name in ENV_NAMES or name.startswith(ENV_PREFIXES):
            out[name] = value
    return dict(sorted(out.items()))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """The project's git commit (None outside a checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (/proc/PID/stat field 22); None if gone, a zombie, or
    not Linux. With the pid it names one process for good: a recycled pid has a different start time.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def writer_identity() -> dict[str, Any]:
    """Who writes this run: host, pid and the pid's start time (run.json ``writer``)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_start_ticks": process_start_ticks(pid)}


def _writer_gone(writer: Any) -> bool | None:
    """True/False when the writer ran on this host (is it gone?), None when this host cannot tell."""
    if not isinstance(writer, dict) or writer.get("host") != socket.gethostname():
        return None
    pid, start = writer.get("pid"), writer.get("pid_start_ticks")
    if not isinstance(pid, int) or pid <= 0:
        return None
    now = process_start_ticks(pid)
    if now is None:
        return True if Path("/proc/self").exists() else None  # no /proc (not Linux): cannot tell
    return start is not None and now != start


def effective_status(meta: dict[str, Any]) -> str:
    """The status to believe: ``running`` becomes ``incomplete`` when its writer process is gone.

    A writer killed with SIGKILL (or a lost machine) cannot finish run.json, which then says ``running``
    for ever. On the writer's own host the recorded pid and start time tell whether it still runs; on
    another host (or without ``writer``) ``running`` is returned unchanged.
    """
    status = str(meta.get("status"))
    if status == "running" and _writer_gone(meta.get("writer")):
        return "incomplete"
    return status


def effective_status_reason(meta: dict[str, Any]) -> str | None:
    """``status_reason``, or why a ``running`` run is really incomplete (its writer is gone)."""
    if meta.get("status") == "running" and effective_status(meta) == "incomplete":
        w = meta["writer"]
        return f"writer process {w['pid']} on {w['host']} is gone without finishing the run (killed?)"
    return meta.get("status_reason")


def create_run_dir(parent: str | os.PathLike) -> Path:
    """A new, never-reused directory under ``parent`` (os.mkdir is exclusive; a random suffix avoids races)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    host = socket.gethostname().split(".")[0] or "host"
    host = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in host)[:32]
    for _ in range(100):
        path = parent / f"{stamp}-{host}-{secrets.token_hex(3)}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise OSError(f"could not create a unique run directory under {parent}")


def base_metadata(run_dir: Path, command: list[str], launcher: str, config: dict[str, Any]) -> dict[str, Any]:
    """run.json before the first point; versions a rank reports (nccl, cuda, gpu) are filled in later."""
    try:
        from importlib.metadata import version

        torch_version = version("torch")
    except Exception:  # noqa: BLE001 - metadata only
        torch_version = None
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": "collbench",
        "collbench_version": _collbench_version(),
        "run_id": run_dir.name,
        "status": "running",
        "status_reason": None,
        "start_time": utc_now(),
        "end_time": None,
        "command": command,
        "host": socket.gethostname(),
        "writer": writer_identity(),
        "launcher": launcher,
        "backend": config.get("backend"),
        "device": config.get("device"),
        "world_size": config.get("world_size"),
        "nnodes": config.get("nnodes", 1),
        "versions": {"python": platform.python_version(), "torch": torch_version, "nccl": None, "cuda": None},
        "hardware": {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "gpu_model": None, "gpu_count": 0},
        "environment": allowed_environment(dict(os.environ)),
        "git_commit": git_commit(),
        "config": {k: v for k, v in config.items() if k not in ("world_size", "nnodes", "backend", "device")},
        "warnings": [],
        "source": None,
        "points": [],
    }


def _collbench_version() -> str:
    try:
        from importlib.metadata import version

        return version("collbench")
    except Exception:  # noqa: BLE001 - not installed: running from a checkout
        return "0.1.0"


def csv_line(values: list[str] | tuple[str, ...]) -> bytes:
    """One complete results.csv record (csv quoting, CRLF like csv.writer), as bytes for a single write."""
    buf = io.StringIO()
    csv.writer(buf).writerow(values)
    return buf.getvalue().encode()


def append_line(fd: int, line: bytes) -> None:
    """Append ``line`` to an O_APPEND file with one write(2) (a loop only if the kernel writes it short).

    One write of a whole record means a process killed between points leaves no torn line, and a
    record is never interleaved with another writer's.
    """
    view = memoryview(line)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class RunWriter:
    """Writes one run directory; thread-safe (the torchrun watchdog may finish it)."""

    def __init__(self, run_dir: Path, meta: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.meta = meta
        self._lock = threading.Lock()
        self._finished = False
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self._csv_fd: int | None = os.open(run_dir / "results.csv", flags, 0o644)
        append_line(self._csv_fd, csv_line(CSV_COLUMNS))
        self._write_json()

    @property
    def n_points(self) -> int:
        return len(self.meta["points"])

    def _write_json(self) -> None:
        tmp = self.run_dir / f".run.json.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.meta, f, indent=1, allow_nan=False)
            f.write("\n")
        os.replace(tmp, self.run_dir / "run.json")

    def set_rank_meta(self, info: dict[str, Any]) -> None:
        with self._lock:
            for key in ("torch", "nccl", "cuda"):
                if info.get(key) is not None:
                    self.meta["versions"][key] = info[key]
            self.meta["hardware"]["gpu_model"] = info.get("gpu_model")
            self.meta["hardware"]["gpu_count"] = info.get("gpu_count", 0)
            self.meta["hardware"]["torch_threads_per_rank"] = info.get("torch_threads")
            self._write_json()

    def add(self, m: Measurement) -> None:
        """Append one point to results.csv (flushed) and rewrite run.json."""
        with self._lock:
            if self._finished:
                return
            row = m.row()
            if self._csv_fd is not None:
                append_line(self._csv_fd, csv_line([csv_field(row[c]) for c in CSV_COLUMNS]))
            self.meta["points"].append(m.json_point())
            if m.stats.noisy:
                self.meta["warnings"].append(f"{m.spec.label}: noisy ({m.stats.noise_reason})")
            if not m.correct:
                self.meta["warnings"].append(f"{m.spec.label}: WRONG result, {m.n_wrong} wrong elements")
            self._write_json()

    def warn(self, message: str) -> None:
        with self._lock:
            self.meta["warnings"].append(message)
            self._write_json()

    def finish(self, status: str, reason: str | None) -> None:
        """Final status (complete, incomplete, failed) and end time; later calls are ignored."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            self.meta["status"] = status
            self.meta["status_reason"] = reason
            self.meta["end_time"] = utc_now()
            self._write_json()
            if self._csv_fd is not None:
                try:
                    os.fsync(self._csv_fd)
                except OSError:
                    pass
                os.close(self._csv_fd)
                self._csv_fd = None
