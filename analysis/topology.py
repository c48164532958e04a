"""A run's topology as three numbers that are never guessed: ranks, nodes (hosts), and the scale-up domain
(the GPUs one NVLink / xGMI fabric joins; the node unless said otherwise). docs/hardware.md, "Topology".

nccl-tests prints one ``#  Rank N Group G Pid P on HOST device D [...] NAME`` line per rank; logs as people
keep them often show only the last one or elide the list with ``...``. Nodes and GPUs per node are taken from
the rank lines only when every rank 0..p-1 has one; otherwise they are unknown until the user gives them
(``--nnodes``, ``--gpus-per-node``, ``--nvlink-domain-gpus``, a hardware file), and one warning names the
missing rank lines.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from analysis.errors import AnalysisError


@dataclass(frozen=True)
class Topology:
    """world_size ranks on nnodes hosts of gpus_per_node ranks each; domain_gpus GPUs per scale-up domain
    (None: the node). nnodes / gpus_per_node None: unknown. source says where they came from."""

    world_size: int
    nnodes: int | None
    gpus_per_node: int | None
    domain_gpus: int | None = None
    source: str = "unknown"

    def describe(self) -> str:
        """'16 ranks = 2 nodes x 8 (rank lines)' or '72 ranks, nodes unknown'."""
        if self.nnodes is None or self.gpus_per_node is None:
            head = f"{self.world_size} ranks, nodes and GPUs per node unknown"
        else:
            head = f"{self.world_size} ranks = {self.nnodes} node(s) x {self.gpus_per_node} ({self.source})"
        if self.domain_gpus:
            head += f", NVLink domain of {self.domain_gpus} GPUs"
        return head


def ranges(values: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2, 5, 7-8' (sorted, runs joined)."""
    out: list[str] = []
    vs = sorted(set(values))
    i = 0
    while i < len(vs):
        j = i
        while j + 1 < len(vs) and vs[j + 1] == vs[j] + 1:
            j += 1
        out.append(str(vs[i]) if i == j else f"{vs[i]}-{vs[j]}")
        i = j + 1
    return ", ".join(out)


def from_rank_lines(rank_hosts: dict[int, str], world_size: int) -> tuple[Topology, str | None]:
    """The topology the rank lines prove, and a warning when they cannot (missing ranks, uneven hosts).

    Complete evidence is one rank line for every rank 0..p-1; a single rank needs none (one process, one node).
    """
    p = world_size
    if p == 1 and set(rank_hosts) <= {0}:
        return Topology(1, 1, 1, source="one rank"), None
    missing = [r for r in range(p) if r not in rank_hosts]
    if missing:
        seen = (f"rank lines for {p - len(missing)} of {p} ranks (missing: rank {ranges(missing)})" if rank_hosts
                else f"no rank lines for its {p} ranks")  # fmt: skip
        return Topology(p, None, None), (
            f"the log has {seen}: nodes and GPUs per node are unknown, not "
            "guessed; give --nnodes and --gpus-per-node (or a hardware file)")  # fmt: skip
    counts = Counter(rank_hosts[r] for r in range(p))
    if len(set(counts.values())) > 1:
        per = ", ".join(f"{h}: {n}" for h, n in sorted(counts.items()))
        return Topology(p, len(counts), None, source="rank lines"), (
            f"the rank lines put different numbers of ranks on each host ({per}): GPUs per node unknown")
    return Topology(p, len(counts), next(iter(counts.values())), source="rank lines"), None


def check(world_size: int | None, nnodes: int | None, gpus_per_node: int | None, domain_gpus: int | None,
          where: str = "option") -> None:  # fmt: skip
    """AnalysisError (one line, exit 2) unless the given numbers are positive and consistent: GPUs per node
    dividing the world size (a run on part of one node, world < GPUs per node, is one node), nodes dividing
    it, nodes x GPUs per node = world, and a scale-up domain of whole nodes (never smaller than a node)."""
    for name, v in (("nnodes", nnodes), ("gpus-per-node", gpus_per_node), ("nvlink-domain-gpus", domain_gpus)):
        if v is not None and v <= 0:
            raise AnalysisError(f"--{name} must be >= 1, got {v} ({where})")
    w = world_size
    if w and gpus_per_node and w > gpus_per_node and w % gpus_per_node:
        raise AnalysisError(f"--gpus-per-node {gpus_per_node} does not divide the world size {w} ({where})")
    if w and nnodes:
        if nnodes > w or w % nnodes:
            raise AnalysisError(f"--nnodes {nnodes} does not divide the world size {w} ({where})")
        if gpus_per_node and nnodes * gpus_per_node != w and not (nnodes == 1 and w <= gpus_per_node):
            raise AnalysisError(f"--nnodes {nnodes} x --gpus-per-node {gpus_per_node} = "
                                f"{nnodes * gpus_per_node}, not the world size {w} ({where})")  # fmt: skip
    if domain_gpus and gpus_per_node:
        if domain_gpus < gpus_per_node:
            raise AnalysisError(f"--nvlink-domain-gpus {domain_gpus} is smaller than a node of {gpus_per_node} "
                                f"GPUs: a scale-up domain holds whole nodes ({where})")  # fmt: skip
        if domain_gpus % gpus_per_node:
            raise AnalysisError(f"--nvlink-domain-gpus {domain_gpus} is not a whole number of nodes of "
                                f"{gpus_per_node} GPUs ({where})")  # fmt: skip


def given(derived: Topology, nnodes: int | None, gpus_per_node: int | None,
          domain_gpus: int | None) -> tuple[Topology, list[str]]:  # fmt: skip
    """``derived`` with what the user gave put over it (checked first), and notes on what was overridden.

    One of nnodes / gpus_per_node given fixes the other from the world size."""
    p = derived.world_size
    check(p, nnodes, gpus_per_node, domain_gpus)
    if nnodes is None and gpus_per_node is None:
        if domain_gpus and derived.gpus_per_node:
            check(p, None, derived.gpus_per_node, domain_gpus, "the rank lines' GPUs per node")
        return Topology(p, derived.nnodes, derived.gpus_per_node, domain_gpus, derived.source), []
    if gpus_per_node is not None and nnodes is None:
        nnodes = max(1, p // gpus_per_node)
    if nnodes is not None and gpus_per_node is None:
        gpus_per_node = p // nnodes
    gpus_per_node = min(gpus_per_node, p)
    notes = []
    if derived.nnodes is not None and (derived.nnodes, derived.gpus_per_node) != (nnodes, gpus_per_node):
        notes.append(f"the options ({nnodes} x {gpus_per_node}) override the rank lines "
                     f"({derived.nnodes} host(s) x {derived.gpus_per_node or '?'})")  # fmt: skip
    return Topology(p, nnodes, gpus_per_node, domain_gpus, "given"), notes


def fast_tier(world_sizes: list[int], nnodes: int | None, gpus_per_node: int | None,
              domain_gpus: int | None) -> tuple[int | None, str]:  # fmt: skip
    """GPUs of the fast tier (the node, or the NVLink domain when one is given) for a model across scales, and
    the line that says what was used. ``nnodes`` names the node count of one scale, so it needs the runs to
    share one world size. (None, '') when nothing is given: the runs' own topology applies."""
    if nnodes is None and gpus_per_node is None and domain_gpus is None:
        return None, ""
    multi = sorted({w for w in world_sizes if w > 1})
    if nnodes is not None:
        if len(multi) != 1:
            raise AnalysisError(f"--nnodes is the node count of one world size, but the runs have world sizes "
                                f"{', '.join(map(str, multi)) or 'none above 1'}: give --gpus-per-node")  # fmt: skip
        check(multi[0], nnodes, gpus_per_node, None)
        gpus_per_node = gpus_per_node or multi[0] // nnodes
    for w in multi:
        check(w, None, gpus_per_node, None, f"world size {w} of the runs")
    check(None, None, gpus_per_node, domain_gpus)
    if domain_gpus:
        where = f" ({gpus_per_node} GPUs per node)" if gpus_per_node else ""
        return domain_gpus, f"fast tier: NVLink domains of {domain_gpus} GPUs{where}; the network is between domains"
    return gpus_per_node, f"fast tier: nodes of {gpus_per_node} GPUs; the network is between nodes"
