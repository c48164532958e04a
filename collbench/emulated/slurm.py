"""SLURM's two commands that ``scripts/slurm_sweep.sbatch`` uses, for the emulated cluster: ``scontrol show
hostnames`` (the emulated nodes' names) and ``srun`` (one task per node, each inside its node's namespace under
its host name, ``--kill-on-bad-exit`` honoured). With them on PATH, emulate runs the batch script itself, so the
script's logic (one torchrun agent per node, c10d rendezvous on the first node) is what runs.

``collbench emulate --launcher slurm`` writes the two commands into the emulation's folder and puts them first
on PATH; the nodes' namespaces and names travel in ``COLLBENCH_EMULATED_NETNS`` / ``COLLBENCH_EMULATED_HOSTS``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

NETNS_ENV, HOSTS_ENV, LOGS_ENV = "COLLBENCH_EMULATED_NETNS", "COLLBENCH_EMULATED_HOSTS", "COLLBENCH_EMULATED_LOGS"
#: after the first task fails under --kill-on-bad-exit, the others get this long to end after SIGTERM
KILL_WAIT_S = 10.0


def write_commands(folder: Path) -> Path:
    """Write ``scontrol`` and ``srun`` into ``folder/bin`` (executable), return that directory for PATH."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    for name in ("scontrol", "srun"):
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m collbench.emulated.slurm {name} "$@"\n')
        path.chmod(0o755)
    return bin_dir


def scontrol(args: list[str]) -> int:
    """``scontrol show hostnames [LIST]``: the emulated nodes, one per line (the only form the script uses)."""
    if args[:2] != ["show", "hostnames"]:
        print(f"scontrol (collbench emulate): only 'show hostnames' is emulated, got {' '.join(args)}", file=sys.stderr)
        return 2
    try:
        os.write(sys.stdout.fileno(), ("\n".join(os.environ[HOSTS_ENV].split(",")) + "\n").encode())
    except BrokenPipeError:  # the script reads the first line only (head -n 1)
        pass
    return 0


def srun(args: list[str]) -> int:
    """``srun [--options] COMMAND...``: COMMAND once per node in that node's namespace, as SLURM's task i on node i;
    with ``--kill-on-bad-exit=1`` the first failing task ends the others. The exit code is the first failure's."""
    options = []
    while args and args[0].startswith("-"):
        options.append(args.pop(0))
    if not args:
        print("srun (collbench emulate): no command", file=sys.stderr)
        return 2
    kill_on_bad_exit = any(o in ("--kill-on-bad-exit", "--kill-on-bad-exit=1", "-K", "-K1") for o in options)
    netns, hosts = os.environ[NETNS_ENV].split(","), os.environ[HOSTS_ENV].split(",")
    logs = Path(os.environ[LOGS_ENV])
    tasks: list[subprocess.Popen] = []
    files = []
    stop: list[int] = []
    old = {sig: signal.signal(sig, lambda s, _f: stop.append(s)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for i, (ns, host) in enumerate(zip(netns, hosts, strict=True)):
            env = dict(os.environ, SLURM_NODEID=str(i), SLURM_PROCID=str(i), SLURM_LOCALID="0",
                       SLURMD_NODENAME=host, SLURM_NTASKS=str(len(hosts)))  # fmt: skip
            f = open(logs / f"{host}.log", "w")  # noqa: SIM115 - closed below
            files.append(f)
            cmd = ["ip", "netns", "exec", ns, "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', host, *args]
            tasks.append(subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True))  # fmt: skip
        first_bad: int | None = None
        while any(t.poll() is None for t in tasks):
            if stop:
                _signal_all(tasks, stop[0])
                break
            bad = [t.returncode for t in tasks if t.returncode not in (None, 0)]
            if bad and first_bad is None:
                first_bad = bad[0]
                if kill_on_bad_exit:
                    _signal_all(tasks, signal.SIGTERM)
                    break
            time.sleep(0.2)
        _reap(tasks)
    finally:
        for f in files:
            f.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    codes = [t.returncode for t in tasks]
    return next((c for c in codes if c != 0), 0) if first_bad is None else first_bad


def _signal_all(tasks: list[subprocess.Popen], sig: int) -> None:
    for t in tasks:
        if t.poll() is None:
            try:
                os.killpg(t.pid, sig)
            except ProcessLookupError:
                pass


def _reap(tasks: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + KILL_WAIT_S
    for t in tasks:
        try:
            t.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_all([t], signal.SIGKILL)
            t.wait()


def main() -> None:
    name, args = sys.argv[1], sys.argv[2:]
    sys.exit(scontrol(args) if name == "scontrol" else srun(args))


if __name__ == "__main__":
    main()
