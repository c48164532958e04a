"""The run directory: exclusive creation, metadata, results.csv appended per point, run.json rewritten atomically."""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.records import Measurement
from bench.schema import (
    CSV_COLUMNS,
    create_run_dir,
    csv_line,
    csv_record,
    effective_status,
    effective_status_reason,
    run_json_skeleton,
    writer_identity,
)

__all__ = ["RunWriter", "base_metadata", "create_run_dir", "effective_status", "effective_status_reason"]


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


#: run.json is rewritten at most this often while points arrive (RunWriter.add)
JSON_INTERVAL_S = 1.0
ENV_PREFIXES = ("NCCL_", "TORCH_", "GLOO_", "CUDA_", "SLURM_", "OMPI_COMM_WORLD_")
ENV_NAMES = frozenset(
    {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "LOCAL_WORLD_SIZE"}
    | {"RANK", "LOCAL_RANK", "GROUP_RANK", "GROUP_WORLD_SIZE", "TORCHELASTIC_RUN_ID", "COLLBENCH_TESTING"}
)
ENV_DENY = ("TOKEN", "SECRET", "PASS", "KEY", "CREDENTIAL", "AUTH", "PRIVATE", "COOKIE", "SESSION")
SLURM_NAMES = frozenset({"SLURM_JOB_ID", "SLURM_NNODES", "SLURM_JOB_NUM_NODES", "SLURM_JOB_PARTITION", "SLURM_NTASKS"})


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


#: config keys that are run.json top-level keys, not config entries
TOP_LEVEL = ("world_size", "nnodes", "ranks_per_node", "backend", "device")


def base_metadata(run_dir: Path, command: list[str], launcher: str, config: dict[str, Any]) -> dict[str, Any]:
    """run.json before the first point; versions a rank reports (nccl, cuda, gpu) are filled in later."""
    try:
        from importlib.metadata import version

        torch_version = version("torch")
    except Exception:  # noqa: BLE001 - metadata only
        torch_version = None
    return run_json_skeleton(
        run_dir.name,
        start_time=utc_now(),
        command=command,
        host=socket.gethostname(),
        writer=writer_identity(),
        launcher=launcher,
        backend=config.get("backend"),
        device=config.get("device"),
        world_size=config.get("world_size"),
        nnodes=config.get("nnodes", 1),
        ranks_per_node=config.get("ranks_per_node"),
        versions={"python": platform.python_version(), "torch": torch_version, "nccl": None, "cuda": None},
        hardware={"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "gpu_model": None, "gpu_count": 0},
        environment=allowed_environment(dict(os.environ)),
        git_commit=git_commit(),
        config={k: v for k, v in config.items() if k not in TOP_LEVEL},
    )


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
        self._json_written_at = -math.inf  # time.monotonic() of the last run.json write
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self._csv_fd: int | None = os.open(run_dir / "results.csv", flags, 0o644)
        append_line(self._csv_fd, csv_line(CSV_COLUMNS))
        self._write_json()

    @property
    def n_points(self) -> int:
        return len(self.meta["points"])

    def _write_json(self, *, throttle: bool = False) -> None:
        """Rewrite run.json; ``throttle``: not again within JSON_INTERVAL_S of the last write (points arrive
        in bursts at a block's last visit, and rewriting every sample of every point each time is quadratic
        in the run's length; results.csv has each point at once, and ``finish`` writes the whole file)."""
        now = time.monotonic()
        if throttle and now - self._json_written_at < JSON_INTERVAL_S:
            return
        self._json_written_at = now
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
            if info.get("transport_threads_niced") is not None:  # gloo: bench.worker.nice_transport_threads
                self.meta["hardware"]["gloo_transport_threads_niced"] = info["transport_threads_niced"]
            self._write_json()

    def add(self, m: Measurement) -> None:
        """Append one point to results.csv (flushed) and rewrite run.json (at most once a second)."""
        with self._lock:
            if self._finished:
                return
            row = m.row()
            if self._csv_fd is not None:
                append_line(self._csv_fd, csv_record(row))
            self.meta["points"].append(m.json_point())
            if m.stats.noisy:
                self.meta["warnings"].append(f"{m.spec.label}: noisy ({m.stats.noise_reason})")
            elif m.stats.estimate.interference:
                self.meta["warnings"].append(f"{m.spec.label}: {m.stats.estimate.interference}")
            if not m.correct:
                self.meta["warnings"].append(f"{m.spec.label}: WRONG result, {m.n_wrong} wrong elements")
            self._write_json(throttle=True)

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
