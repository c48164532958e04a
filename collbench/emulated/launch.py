"""Run a collbench command across an emulated cluster the way a cluster runs it: one torchrun agent per node
(inside that node's namespace, with the node's host name), c10d rendezvous on node 0's address, as
``scripts/slurm_sweep.sbatch`` does with srun. The namespaces share this machine's file system, so the run
directory that global rank 0 writes lands in the emulation's own folder.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE
from collbench.emulated.network import ClusterSpec, EmulatedNetwork, address, node_name

RDZV_PORT = 29400
#: after the first agent ends with an error, the others get this long to end by themselves (their ranks
#: see the failure through the backend's own timeout, which reports which rank and call stopped answering)
DEFAULT_GRACE_S = 30.0
#: the token bucket's burst (TBF_BURST, 256 KiB) refills in idle gaps and passes messages of about 1 MiB and below
#: faster than the NIC (all_gather at 64 KiB read 2.2x the rate on 2 nodes); 16 x the burst is judged
ROOF_MIN_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class EmulationPlan:
    """One emulated launch: the cluster, ranks per node, the collbench command, where results go, faults."""

    spec: ClusterSpec
    ranks_per_node: int
    command: tuple[str, ...]
    out_dir: Path
    down: tuple[int, float] | None = None  # (node, seconds after start) whose links go down
    grace_s: float = DEFAULT_GRACE_S
    sbatch: Path | None = None  # run this SLURM batch script (srun and scontrol emulated) instead of torchrun


def package_root() -> str:
    import collbench

    return str(Path(collbench.__file__).resolve().parents[1])


def agent_command(plan: EmulationPlan, net: EmulatedNetwork, node: int, rdzv_id: str) -> list[str]:
    """The command that starts node ``node``'s torchrun agent inside its namespace, under its host name."""
    conf = "join_timeout=60" + (",is_host=1" if node == 0 else "")  # torchrun cannot tell it hosts the store
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(plan.spec.nodes),
                "--nproc-per-node", str(plan.ranks_per_node), "--rdzv-backend", "c10d",
                "--rdzv-endpoint", f"{address(0)}:{RDZV_PORT}", "--rdzv-id", rdzv_id, "--rdzv-conf", conf,
                "--max-restarts", "0", "-m", "collbench.emulated.rank", *plan.command]  # fmt: skip
    shell = 'hostname "$0" && exec "$@"'
    return ["ip", "netns", "exec", net.netns(node), "unshare", "--uts", "sh", "-c", shell, node_name(node), *torchrun]


def start_slurm(plan: EmulationPlan, net: EmulatedNetwork, env: dict[str, str], log_file: Any) -> subprocess.Popen:
    """Run the batch script as SLURM would on a job of N nodes, with ``srun``/``scontrol`` emulated
    (collbench.emulated.slurm): the script's own srun line starts one torchrun agent per node."""
    from collbench.emulated import slurm

    assert plan.sbatch is not None
    hosts = [node_name(i) for i in range(plan.spec.nodes)]
    bin_dir = slurm.write_commands(plan.out_dir)
    env = dict(env, PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHON=sys.executable,
               OUT=str(plan.out_dir), SLURM_JOB_ID=net.tag, SLURM_NNODES=str(plan.spec.nodes),
               SLURM_JOB_NODELIST=",".join(hosts), SLURM_SUBMIT_DIR=package_root(),
               SLURM_GPUS_ON_NODE=str(plan.ranks_per_node), GPUS_PER_NODE=str(plan.ranks_per_node),
               RDZV_PORT=str(RDZV_PORT), GLOO_SOCKET_IFNAME="eth0",
               **{slurm.NETNS_ENV: ",".join(net.netns(i) for i in range(plan.spec.nodes)),
                  slurm.HOSTS_ENV: ",".join(hosts), slurm.LOGS_ENV: str(plan.out_dir / "logs")})  # fmt: skip
    return subprocess.Popen(["bash", str(plan.sbatch), *plan.command[1:]], env=env, stdout=log_file,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def _agent_env(plan: EmulationPlan) -> dict[str, str]:
    env = dict(os.environ)
    root = package_root()
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["COLLBENCH_EMULATED_NICS"] = str(plan.spec.nics_per_node)
    env.pop("GLOO_SOCKET_IFNAME", None)
    return env


def _cpu_busy() -> tuple[int, int]:
    """Busy and total jiffies of the whole machine since boot (/proc/stat's first line)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def _children_cpu_s() -> float:
    """CPU seconds of this process's reaped children and theirs (the agents, their ranks): the emulation's own."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@dataclass(frozen=True)
class CpuLoad:
    """How busy the CPU was over a run: the whole machine, and the share of it the emulation's processes used."""

    machine: float  # busy fraction of all cores
    own: float  # the emulation's CPU seconds over (wall x cores)

    def warning(self) -> str | None:
        """A line when the CPU, not the emulated network, may have set the times; None when it had room."""
        if self.machine <= 0.9:
            return None
        others = max(0.0, self.machine - self.own)
        who = (f"the emulation's own processes used {self.own:.0%} of it" if others < 0.25
               else f"other processes used about {others:.0%} of it, the emulation {self.own:.0%}")  # fmt: skip
        fix = "lower --ranks-per-node or --nic-gbps" if others < 0.25 else "run it on a quieter machine"
        return (f"the CPU was {self.machine:.0%} busy during the run ({who}): the CPU, not the emulated network, "
                f"may have set the times ({fix})")


def write_description(plan: EmulationPlan, tag: str) -> None:
    """hardware.json (read by verdict, report and predict as a hardware file beside the runs) and emulation.json
    (the emulated hardware, planted faults and command), in the emulation's own new folder."""
    s = plan.spec
    hardware = {"nic_gbps": s.nic_gbps, "nics_per_node": s.nics_per_node, "gpus_per_node": plan.ranks_per_node,
                "nnodes": s.nodes, "roof_min_bytes": ROOF_MIN_BYTES,
                "note": f"emulated by collbench emulate ({tag}): tbf-limited veth NICs; the token bucket's burst lets "
                "sizes below roof_min_bytes through above the NIC rate, so verdicts judge peaks at that size and "
                "above"}  # fmt: skip
    emulation = {"nodes": s.nodes, "ranks_per_node": plan.ranks_per_node, "nic_gbps": s.nic_gbps,
                 "nics_per_node": s.nics_per_node, "command": list(plan.command),
                 "planted": [{"kind": "slow_nic", "node": n, "nic": r, "factor": f} for (n, r), f in s.slow.items()]
                 + [{"kind": "slow_link", "nodes": [a, b], "nic": r, "factor": f}
                    for (a, b, r), f in s.slow_links.items()]
                 + ([{"kind": "link_down", "node": plan.down[0], "after_s": plan.down[1]}] if plan.down else []),
                 "grace_s": plan.grace_s}  # fmt: skip
    (plan.out_dir / "hardware.json").write_text(json.dumps(hardware, indent=1) + "\n")
    (plan.out_dir / "emulation.json").write_text(json.dumps(emulation, indent=1) + "\n")


class _Stop:
    """The first SIGINT/SIGTERM wins; later ones change nothing (one outcome, one line)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, _frame: object) -> None:
        if self.signum is None:
            self.signum = signum


def run_emulation(plan: EmulationPlan, log: Callable[[str], None] = print) -> int:
    """Make the cluster, run the agents, tear everything down; the exit code of the emulated command."""
    stop = _Stop()
    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    agents: list[subprocess.Popen] = []
    logs = []
    try:
        with EmulatedNetwork(plan.spec) as net:
            write_description(plan, net.tag)
            (plan.out_dir / "logs").mkdir()
            env = _agent_env(plan)
            busy0, own0 = _cpu_busy(), _children_cpu_s()
            if plan.sbatch is not None:
                logs.append(open(plan.out_dir / "logs" / "sbatch.log", "w"))  # noqa: SIM115 - closed below
                agents.append(start_slurm(plan, net, env, logs[-1]))
            for i in range(plan.spec.nodes if plan.sbatch is None else 0):
                f = open(plan.out_dir / "logs" / f"{node_name(i)}.log", "w")  # noqa: SIM115 - closed below
                logs.append(f)
                agents.append(subprocess.Popen(agent_command(plan, net, i, net.tag), env=env, stderr=f,
                                               stdin=subprocess.DEVNULL, start_new_session=True))  # fmt: skip
            started = time.monotonic()
            if plan.down is not None:
                fault = threading.Thread(target=_take_down, args=(net, *plan.down, plan.out_dir, log, agents),
                                         daemon=True)
                fault.start()
            first_failure: float | None = None
            while any(a.poll() is None for a in agents):
                if stop.signum is not None:
                    break
                if first_failure is None and any(a.returncode not in (None, 0) for a in agents):
                    first_failure = time.monotonic()
                if first_failure is not None and time.monotonic() - first_failure > plan.grace_s:
                    log(f"emulate: agents still running {plan.grace_s:g} s after the first one failed: ending them")
                    break
                time.sleep(0.2)
            if any(a.poll() is None for a in agents):
                _end(agents)
            busy1, own1 = _cpu_busy(), _children_cpu_s()
        wall_s = time.monotonic() - started
        load = CpuLoad((busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
                       (own1 - own0) / max(1e-9, wall_s * (os.cpu_count() or 1)))  # fmt: skip
        _record_load(plan.out_dir, load)
        if (line := load.warning()) is not None:
            log(f"emulate: warning: {line}")
        log(f"emulate: {plan.spec.nodes} nodes x {plan.ranks_per_node} ranks, {wall_s:.0f} s; "
            f"results in {plan.out_dir}")  # fmt: skip
    finally:
        for f in logs:
            f.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if stop.signum is not None:
        log(f"emulate: interrupted ({signal.Signals(stop.signum).name}); namespaces and links removed")
        return EXIT_INTERRUPTED if stop.signum == signal.SIGINT else EXIT_TERMINATED
    codes = [a.returncode for a in agents]
    if all(c == 0 for c in codes):
        return EXIT_OK
    names = ["the batch script"] if plan.sbatch is not None else [node_name(i) for i in range(len(codes))]
    failed = [f"{names[i]} exit {c}" for i, c in enumerate(codes) if c != 0]
    log(f"emulate: {', '.join(failed)} (torchrun logs in {plan.out_dir / 'logs'})")
    return EXIT_USAGE if EXIT_USAGE in codes else EXIT_FAIL


def _record_load(out_dir: Path, load: CpuLoad) -> None:
    """Add the CPU load to emulation.json, so a reader of the figures knows how loaded the host was."""
    path = out_dir / "emulation.json"
    data = json.loads(path.read_text())
    data["cpu_busy_machine"], data["cpu_busy_emulation"] = round(load.machine, 3), round(load.own, 3)
    path.write_text(json.dumps(data, indent=1) + "\n")


def _take_down(net: EmulatedNetwork, node: int, after: float, out_dir: Path, log: Callable[[str], None],
               agents: list[subprocess.Popen]) -> None:
    """Take the node's links down AFTER_S seconds after the ranks started measuring (the run directory appeared),
    so the fault falls inside the measurement however long the agents took to meet."""
    while not any(out_dir.glob("*/run.json")):
        if all(a.poll() is not None for a in agents):
            return
        time.sleep(0.1)
    time.sleep(after)
    if any(a.poll() is None for a in agents):
        net.set_link(node, False)
        log(f"emulate: {node_name(node)}'s links taken down")


def _end(agents: list[subprocess.Popen], wait_s: float = 10.0) -> None:
    """SIGINT to every agent's process group (torchrun forwards it to its ranks), then SIGKILL what is left."""
    for a in agents:
        if a.poll() is None:
            try:
                os.killpg(a.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + wait_s
    for a in agents:
        try:
            a.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(a.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            a.wait()
