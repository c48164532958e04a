"""Helpers for the bench tests: run the CLI (in a subprocess with a time limit, or in this process) and inspect
run directories."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def run_cli(args: list[str], timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """``python -m collbench ARGS`` with a hard time limit."""
    return subprocess.run(
        [sys.executable, "-m", "collbench", *args],
        cwd=ROOT,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_main(args: list[str], capfd, **env: str) -> subprocess.CompletedProcess:
    """``collbench ARGS`` in this process, with ``env`` set for the call: what ``run_cli`` returns, without a
    second Python importing torch for the supervisor (pytest has it). The ranks are spawned processes as
    always and inherit the environment; ``capfd`` collects their output too, so stderr holds everything."""
    from bench.launch import rank_context
    from collbench.cli import main

    rank_context()  # the fork server starts (once) with this process's own environment, not the call's
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        code = main(args)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(["collbench", *args], code, out, err)


def run_dir_from(stdout: str) -> Path:
    """The run directory is the last line of stdout."""
    return Path(stdout.strip().splitlines()[-1])


def read_run(run_dir: Path) -> tuple[list[dict[str, str]], dict]:
    with open(run_dir / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads((run_dir / "run.json").read_text())


def _fork_server_pid() -> int | None:
    """The pid of this process's multiprocessing fork server (bench.launch starts ranks from it), if running."""
    from multiprocessing import forkserver

    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    return pid if isinstance(pid, int) and pid > 0 else None


#: when each marker of new_marker() was made, in clock ticks since boot (the unit of /proc/<pid>/stat's start)
_MARKER_SINCE: dict[str, int] = {}


def _boot_ticks() -> int:
    return int(float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK"))


def new_marker() -> str:
    """A fresh COLLBENCH_TEST_MARK value; fork-server children that started before it are not its ranks."""
    marker = uuid.uuid4().hex
    _MARKER_SINCE[marker] = _boot_ticks()
    return marker


def processes_with_marker(marker: str) -> list[int]:
    """Live (non-zombie) processes that are ranks of a run: whose environment holds COLLBENCH_TEST_MARK=marker
    (ranks started by a separate collbench process inherit it), or that are children of this process's fork
    server (ranks of an in-process run: /proc/<pid>/environ shows the server's environment, not the marker)
    started since ``new_marker()`` made the marker: a pool of another test module (the collectives' pools)
    may share the fork server and outlive its tests."""
    needle = f"COLLBENCH_TEST_MARK={marker}".encode()
    server = _fork_server_pid()
    since = _MARKER_SINCE.get(marker, 0) - 1  # the uptime's rounding: a tick of slack
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue
            ours = server is not None and int(fields[1]) == server and int(fields[19]) >= since
            if ours or needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found
