"""``collbench emulate --nodes N --ranks-per-node R --nic-gbps G -- run ...``: a cluster on this machine.

Stands up N network namespaces joined by rate-limited veth links (the NICs), runs the collbench command across
them under torchrun with one agent per node, leaves the results (and a hardware file describing the emulated
NICs) in a new folder, and removes every namespace, link and process it made, however the run ends.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from bench.errors import UsageError
from bench.schema import inside_run_error

#: the collbench commands that run ranks, and so can run across emulated nodes
RANK_COMMANDS = ("run", "pairs", "hunt", "scale")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=int, help="emulated nodes (network namespaces), 1-62")
    p.add_argument("--ranks-per-node", type=int, default=1, help="ranks (torchrun processes) per node (default 1)")
    p.add_argument("--nic-gbps", type=float, default=0.4,
                   help="rate of each NIC, Gb/s, both directions (default 0.4; 0.1-1 keeps the network, not the "
                   "CPU, the bottleneck on a small machine)")  # fmt: skip
    p.add_argument("--nics-per-node", type=int, default=1, help="NICs per node; rank i uses NIC i mod k (default 1)")
    p.add_argument("--slow-nic", action="append", default=[], metavar="NODE[:NIC]:FACTOR",
                   help="plant a slower NIC, e.g. 5:0.5 (node 5's NIC 0 at half speed); repeatable")
    p.add_argument("--slow-link", action="append", default=[], metavar="A-B[:NIC]:FACTOR",
                   help="plant a slower link, e.g. 2-5:0.5 (traffic between nodes 2 and 5 on NIC 0 at half speed, "
                   "each of them at full speed with every other node); repeatable")  # fmt: skip
    p.add_argument("--down", metavar="NODE:AFTER_S",
                   help="take NODE's links down AFTER_S seconds after the ranks started measuring (a fault)")
    p.add_argument("--out", default="results/emulated",
                   help="parent of the new emulation folder (default results/emulated)")
    p.add_argument("--grace", type=float, default=30.0,
                   help="seconds the other nodes get to end after the first one failed (default 30)")
    p.add_argument("--launcher", choices=("torchrun", "slurm"), default="torchrun",
                   help="torchrun: one agent per node, started by emulate (default); slurm: run the batch script "
                   "(--sbatch) with srun and scontrol emulated, so the script's own srun line starts the agents")
    p.add_argument("--sbatch", default=None,
                   help="the batch script for --launcher slurm (default scripts/slurm_sweep.sbatch of this checkout)")
    p.add_argument("--clean", action="store_true",
                   help="remove leftovers of emulations whose process is gone (only collbench's own) and exit")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the collbench command to run, e.g. -- run -e 16M")


def _where_nic_factor(text: str) -> tuple[str, int, float]:
    """'WHERE:FACTOR' or 'WHERE:NIC:FACTOR' -> (WHERE, NIC (0 when left out), FACTOR); ValueError otherwise."""
    parts = text.split(":")
    if len(parts) == 2:
        return parts[0], 0, float(parts[1])
    if len(parts) == 3:
        return parts[0], int(parts[1]), float(parts[2])
    raise ValueError(text)


def _slow(values: list[str]) -> dict[tuple[int, int], float]:
    out: dict[tuple[int, int], float] = {}
    for text in values:
        try:
            node, nic, factor = _where_nic_factor(text)
            out[(int(node), nic)] = factor
        except ValueError:
            raise UsageError(f"--slow-nic {text!r}: expected NODE[:NIC]:FACTOR, e.g. 5:0.5") from None
    return out


def _slow_links(values: list[str]) -> dict[tuple[int, int, int], float]:
    """--slow-link A-B[:NIC]:FACTOR values -> {(min(A, B), max(A, B), NIC): FACTOR} (B-A is the same link)."""
    out: dict[tuple[int, int, int], float] = {}
    for text in values:
        try:
            pair, nic, factor = _where_nic_factor(text)
            a, b = (int(x) for x in pair.split("-"))
        except ValueError:
            raise UsageError(f"--slow-link {text!r}: expected A-B[:NIC]:FACTOR, e.g. 2-5:0.5") from None
        out[(min(a, b), max(a, b), nic)] = factor
    return out


def _down(text: str | None, nodes: int) -> tuple[int, float] | None:
    if text is None:
        return None
    try:
        node_s, after_s = text.split(":")
        node, after = int(node_s), float(after_s)
    except ValueError:
        raise UsageError(f"--down {text!r}: expected NODE:AFTER_S, e.g. 3:10") from None
    if not 0 <= node < nodes:
        raise UsageError(f"--down: node {node} does not exist (nodes 0-{nodes - 1})")
    if not (math.isfinite(after) and after >= 0):
        raise UsageError(f"--down: AFTER_S must be a finite number >= 0, got {after_s}")
    return node, after


def _command(args: list[str]) -> tuple[str, ...]:
    command = args[1:] if args[:1] == ["--"] else args
    if not command:
        raise UsageError(f"give the command to run after --, e.g. -- run -e 16M (one of {', '.join(RANK_COMMANDS)})")
    if command[0] not in RANK_COMMANDS:
        raise UsageError(f"emulate runs {' or '.join(RANK_COMMANDS)} across the nodes, not {command[0]!r}")
    for bad in ("--out", "--nprocs"):
        if any(a == bad or a.startswith(bad + "=") for a in command[1:]):
            raise UsageError(f"{bad} belongs to emulate here (torchrun starts the ranks; results go to its --out)")
    return tuple(command)


def _sbatch(ns: argparse.Namespace, command: tuple[str, ...]) -> Path | None:
    """The batch script to run with --launcher slurm (None for torchrun); refused when unusable."""
    if ns.launcher != "slurm":
        if ns.sbatch is not None:
            raise UsageError("--sbatch needs --launcher slurm")
        return None
    if command[0] != "run":
        raise UsageError(f"--launcher slurm runs the batch script, whose command is collbench run, not {command[0]!r}")
    from collbench.emulated.launch import package_root

    path = Path(ns.sbatch) if ns.sbatch else Path(package_root()) / "scripts" / "slurm_sweep.sbatch"
    if not path.is_file():
        raise UsageError(f"--sbatch: {path} is not a file (scripts/ ships with a checkout, not with the wheel)")
    return path.resolve()


def run(ns: argparse.Namespace, argv: list[str]) -> int:
    """Validate everything, make the cluster, run the command across it, remove the cluster."""
    from collbench.emulated.launch import EmulationPlan, run_emulation
    from collbench.emulated.network import (
        ClusterSpec,
        EmulationError,
        check_host,
        refuse_leftovers,
        remove_leftovers,
    )

    try:
        if ns.clean:
            check_host()
            removed = remove_leftovers()
            listed = f": {', '.join(removed)}" if removed else ""
            print(f"emulate: removed {len(removed)} leftover object(s){listed}")
            return 0
        if ns.nodes is None:
            raise UsageError("--nodes is required")
        if ns.ranks_per_node < 1:
            raise UsageError(f"--ranks-per-node must be >= 1, got {ns.ranks_per_node}")
        if not (math.isfinite(ns.grace) and ns.grace > 0):
            raise UsageError(f"--grace must be a finite number > 0, got {ns.grace}")
        spec = ClusterSpec(ns.nodes, ns.nic_gbps, ns.nics_per_node, _slow(ns.slow_nic), _slow_links(ns.slow_link))
        spec.validate()
        command = _command(ns.command)
        down = _down(ns.down, ns.nodes)
        sbatch = _sbatch(ns, command)
        if sbatch is not None and "--backend" not in command:
            command = (*command, "--backend", "gloo")  # the script asks for nccl; the emulated nodes have no GPU
        if (refused := inside_run_error(ns.out)) is not None:
            raise UsageError(refused)
        check_host()
        refuse_leftovers()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        out = Path(ns.out) / f"{stamp}-emulated-{ns.nodes}x{ns.ranks_per_node}-{ns.nic_gbps:g}gbps"
        try:
            out.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise UsageError(f"{out} exists already (another emulation started this second?); retry") from None
        except OSError as exc:
            raise UsageError(f"cannot create {out}: {exc.strerror}") from None
        full = (*command, "--out", str(out))
        return run_emulation(EmulationPlan(spec, ns.ranks_per_node, full, out, down, ns.grace, sbatch))
    except EmulationError as exc:
        raise UsageError(str(exc)) from None
