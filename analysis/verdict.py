"""``collbench verdict RUN...``: is my number good? Peak busbw per (run, collective, world size) for the builtin
and the best hand-written algorithm, the roof that applies and why, and the share of it (docs/fitting.md,
section Verdict; the roofs' hardware from analysis/hardware.json, docs/hardware.md).

The roof: inside one node (or one NVLink domain, which may hold several nodes) the GPU's link per direction;
across nodes or domains the network (a ring: the NIC total of a node or domain, capped by the GPU's link;
all-to-all: its share of it; send_recv: one NIC); for reducing collectives also the reduction from memory,
F / (G gamma) with gamma = 3 / B_mem, when that is lower. An unknown topology gives an unknown roof, never
"one node". busbw above the roof is not an error for all_reduce (NVLS / SHARP on NVIDIA, a tree at few nodes);
for the others it points at a wrong roof, and the note says which.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd

from analysis import hardware
from analysis.hardware import Machine
from analysis.read_runs import Run
from analysis.selection import one_variant
from analysis.units import size_label
from collectives import costs
from collectives.spec import SEND_RECV, is_point_to_point, spec

#: ratio bands of the rating (share of the roof)
ABOVE, NEAR, BELOW = 1.05, 0.8, 0.5


@dataclass(frozen=True)
class Roof:
    """The roof a peak is held against: gbps None when unknown; kind link | network | reduction | none | unknown."""

    gbps: float | None
    kind: str
    why: str


@dataclass(frozen=True)
class Verdict:
    run_id: str
    collective: str
    world_size: int
    algorithm: str
    role: str  # builtin | best hand-written
    peak_busbw_gbps: float
    peak_algbw_gbps: float
    peak_bytes: int
    roof_gbps: float | None
    roof_kind: str
    roof_why: str
    ratio: float | None
    rating: str
    notes: tuple[str, ...]

    def sentence(self, why: bool = True) -> str:
        """'builtin: 324 GB/s busbw at 1 GiB = 81 % of the 400 GB/s network roof (why): near the roof'."""
        at = size_label(self.peak_bytes)
        reason = f" ({self.roof_why})" if why else ""
        if self.world_size < 2:
            return f"{self.algorithm}: algbw {self.peak_algbw_gbps:.4g} GB/s at {at}{reason}"
        head = f"{self.algorithm}: {self.peak_busbw_gbps:.4g} GB/s busbw at {at}"
        if self.ratio is None:
            return f"{head}; roof unknown{reason}"
        return (f"{head} = {100 * self.ratio:.0f} % of the {self.roof_gbps:.4g} GB/s {self.roof_kind} roof{reason}: "
                f"{self.rating}")  # fmt: skip


def _g(x: float) -> str:
    return f"{x:.4g}"


def reduction_roof(machine: Machine, collective: str, p: int) -> float | None:
    """F / (G gamma) of the ring with gamma = 3 / B_mem (read two operands, write one), GB/s; None if unknown."""
    if collective not in costs.REDUCING or not machine.hbm_gbps or p < 2:
        return None
    try:
        c = costs.cost(collective, spec(collective).bandwidth_algorithm, p, nbytes=float(1 << 30))
    except Exception:  # noqa: BLE001 - no ring model for this collective: no reduction roof
        return None
    if c.G <= 0:
        return None
    return costs.busbw_factor(collective, p) * machine.hbm_gbps / (3.0 * c.G)


def domain_gpus(machine: Machine) -> int | None:
    """GPUs of one scale-up domain (NVLink / xGMI): the NVLink domain when given, else the node; None unknown."""
    return machine.domain_gpus or machine.gpus_per_node


def crosses_network(machine: Machine, p: int) -> bool | None:
    """Whether ``p`` ranks of ``machine`` talk over the network: not when they share one node or fit in one
    NVLink domain (a run that fits one is taken to be placed in one); None when the topology is unknown."""
    if machine.nnodes == 1 or p < 2:
        return False
    if machine.domain_gpus and p <= machine.domain_gpus:
        return False
    if machine.nnodes is None or machine.gpus_per_node is None:
        return None
    d = domain_gpus(machine)
    return not (d and p <= d)


def network_roof(machine: Machine, collective: str, p: int) -> tuple[float, str] | None:
    """The busbw the network allows ``collective`` on ``p`` ranks across nodes, or across NVLink domains where
    a domain holds several nodes (GB/s), and the rule; None when the NICs or the topology are not known
    (docs/fitting.md, "Verdict").

    A ring (and the pipelined chains of broadcast and reduce) crosses each domain boundary once per ring, and
    with one ring per NIC (NCCL's channels) the domain's NICs together carry what one GPU sends: busbw <= B, the
    NIC total of the smallest domain in the run (the node where the domain is the node). All-to-all sends the
    (n - d)/n of every GPU's data that leaves its domain of d GPUs through B: busbw <= B (n - 1) / (d (n - d)).
    send_recv: one NIC, one way."""
    if not (machine.nic_gbps and machine.nics_per_node and machine.gpus_per_node):
        return None
    k, nic, g = machine.nics_per_node, machine.nic_gbps, machine.gpus_per_node
    d = domain_gpus(machine) or g
    if collective == SEND_RECV.name:
        return nic / 8, f"one NIC per direction = {nic:g} Gb/s / 8"
    if d == g:
        total, unit, what = k * nic / 8, "node", f"{k} x {nic:g} Gb/s / 8"
    else:
        in_smallest = (p % d or d) if p > d else p
        nodes = max(1, in_smallest // g)
        total, unit = nodes * k * nic / 8, "NVLink domain"
        what = f"{nodes} node(s) x {k} x {nic:g} Gb/s / 8" + (" (the smallest domain of the run)" if p % d else "")
    if collective == "all_to_all":
        if p <= d:
            return None
        share = (p - 1) / (d * (p - d))
        return total * share, (f"all-to-all over the {unit}'s NICs = {what} x (n - 1) / (d (n - d)) with n = {p} "
                               f"ranks, d = {d} per {unit}")  # fmt: skip
    return total, f"a ring crosses each {unit} once: the {unit}'s NICs = {what}"


def roof(machine: Machine, collective: str, p: int) -> Roof:
    """The roof that applies to ``collective`` on ``p`` ranks of ``machine``, and why."""
    if p < 2:
        return Roof(None, "none", "p = 1: no link is used; busbw is 0 or algbw, read algbw")
    nodes = machine.nnodes
    crosses = crosses_network(machine, p)
    link = machine.link_gbps
    if crosses is None:
        bound = f"; the GPU link ({_g(link)} GB/s) only bounds it from above" if link else ""
        return Roof(None, "unknown", f"{p} ranks on an unknown number of nodes (the topology is not known, never "
                    f"guessed): give --nnodes and --gpus-per-node, or --system / a hardware file{bound}")  # fmt: skip
    if not crosses:
        where = (f"inside one NVLink domain of {machine.domain_gpus} GPUs" if nodes != 1
                 else f"{p} ranks inside one node")  # fmt: skip
        if link:
            src = machine.origin.get("link_gbps", "")
            bw = Roof(link, "link", f"{where}: {machine.link_name}, {_g(link)} GB/s per GPU per direction"
                      + (f", from {src}" if src and src != "catalog" else ""))  # fmt: skip
        elif machine.device == "cpu":
            return Roof(None, "unknown", f"{where}, CPU processes: gloo moves data through host memory and "
                        "loopback TCP, which the catalog has no roof for; give --link-gbps (e.g. a measured "
                        "memcpy bandwidth) to get one")  # fmt: skip
        elif machine.gpu is None:
            return Roof(None, "unknown", f"{where}; GPU {machine.gpu_name or '?'!s} not in the catalog: "
                        "name it with --gpu or give --link-gbps")  # fmt: skip
        else:
            return Roof(None, "unknown", f"{where}; {machine.gpu.name} has no scale-up link in the catalog "
                        "(one GPU per node): give --link-gbps")  # fmt: skip
    else:
        d = domain_gpus(machine)
        span = (f"{p} ranks across {math.ceil(p / d)} NVLink domains of {d} GPUs ({nodes} nodes)"
                if machine.domain_gpus and d != machine.gpus_per_node else f"{p} ranks across {nodes} nodes")
        net = network_roof(machine, collective, p)
        if net is None:
            bound = f"; the GPU link ({_g(link)} GB/s) only bounds it from above" if link else ""
            return Roof(None, "unknown", f"{span}: the network is not known, give --nic-gbps and "
                        f"--nics-per-node (or --system / a hardware file){bound}")  # fmt: skip
        gbps, rule = net
        why = f"{span}: {rule}"
        src = machine.origin.get("nic_gbps")
        bw = Roof(gbps, "network", why + (f", from {src}" if src else ""))
        if link and link < gbps:
            bw = Roof(link, "link", f"{why} = {_g(gbps)} GB/s exceeds {machine.link_name}, {_g(link)} GB/s")
    red = reduction_roof(machine, collective, p)
    if red is not None and bw.gbps is not None and red < bw.gbps:
        return Roof(red, "reduction", f"the reduction from memory, F/(G gamma) with gamma = 3/B_mem, "
                    f"B_mem = {_g(machine.hbm_gbps)} GB/s, is below the {bw.kind} roof {_g(bw.gbps)} GB/s")  # fmt: skip
    return bw


def vendor(machine: Machine) -> str | None:
    """'nvidia' | 'amd' from the catalog entry or the GPU's name; None when neither says."""
    if machine.gpu is not None:
        return machine.gpu.vendor
    name = (machine.gpu_name or "").lower()
    if name.startswith("amd") or "instinct" in name or "radeon" in name:
        return "amd"
    if name.startswith(("nvidia", "tesla", "geforce", "quadro")):
        return "nvidia"
    return None


def above_roof_note(machine: Machine, collective: str, r: Roof, p: int) -> str:
    """Why busbw can exceed the roof ``r`` for this collective and vendor: only all_reduce has algorithms that
    move less than a ring over the bottleneck (NVIDIA: NVLS in an NVSwitch, NVLSTree, SHARP in the network
    switches; NCCL and RCCL: a tree at few nodes); for the others, and for all-to-all, above the roof points at
    a wrong roof (GPUs per node, NICs, the GPU)."""
    v = vendor(machine)
    network = r.kind == "network" or (r.kind == "link" and bool(crosses_network(machine, p)))
    check = ("check --gpus-per-node / --nnodes and --nics-per-node / --nic-gbps" if network
             else "check the GPU (--gpu) and its link (--link-gbps)")  # fmt: skip
    if collective == "all_to_all":
        return (f"above the roof: all-to-all has no tree or in-network shortcut, so the roof's inputs are likely "
                f"wrong; {check}")  # fmt: skip
    if collective != "all_reduce":
        return (f"above the roof: nothing NCCL or RCCL runs for {collective} moves less than a ring over the "
                f"bottleneck, so the roof's inputs are likely wrong; {check}")  # fmt: skip
    ways = []
    if v != "amd":
        ways.append("NVLink SHARP (NCCL NVLS, NVSwitch systems from H100 on) reduces in the switch" if not network
                    else "NCCL's NVLSTree or SHARP (CollNet) reduces in the switches")  # fmt: skip
    if network:
        ways.append("a tree (NCCL/RCCL at few nodes) sends each node's data across the network about once, "
                    "not twice as a ring does")  # fmt: skip
    if not ways:
        return (f"above the roof: RCCL has no in-switch reduction on xGMI, so a busbw above the link roof says "
                f"its figure does not fit this machine; {check}")  # fmt: skip
    who = "" if v else " (vendor unknown: NVIDIA-only mechanisms included)"
    return ("above the roof is not an error: busbw assumes a flat ring moving 2(p-1)/p x S per GPU; "
            + "; ".join(ways) + who)


def rating(ratio: float | None) -> str:
    if ratio is None:
        return "no roof"
    if ratio > ABOVE:
        return "above the roof"
    if ratio >= NEAR:
        return "near the roof"
    if ratio >= BELOW:
        return "below the roof"
    return "far below the roof"


def _notes(r: Roof, collective: str, p: int, ratio: float | None, curve: pd.DataFrame, machine: Machine) -> list[str]:
    notes = []
    if ratio is not None and ratio > ABOVE:
        notes.append(above_roof_note(machine, collective, r, p))
    elif ratio is not None and ratio < BELOW and r.kind == "link" and machine.nnodes == 1:
        notes.append("far below the link roof: check that the ranks talk over the scale-up link (nvidia-smi topo -m; "
                     "NCCL_P2P_DISABLE, NCCL_SHM_DISABLE), and the sizes reach the bandwidth regime")  # fmt: skip
    return notes + _rising(curve, p)


def _rising(curve: pd.DataFrame, p: int) -> list[str]:
    """The note that busbw still rises at the largest size (larger sizes may come closer to the roof)."""
    curve = curve.sort_values("bytes")
    if len(curve) >= 3 and p >= 2:
        bus = curve["busbw_gbps"].to_numpy(dtype=float)
        if bus.argmax() == len(bus) - 1 and bus[-1] > 1.05 * bus[-2]:
            return [f"busbw still rising at the largest size ({size_label(curve['bytes'].iloc[-1])}): "
                    "larger sizes may come closer to the roof"]  # fmt: skip
    return []


def _p2p_verdicts(run: Run, machine: Machine, g: pd.DataFrame, p: int) -> list[Verdict]:
    """send_recv (collectives.spec.SEND_RECV): ``bw`` against the roof of one direction of the link between ranks
    0 and 1, ``bibw`` against both directions (2 x), the imported ``ring_shift`` (every rank sends and receives at
    once) against the per-direction roof of its p ranks; ``latency`` is not a bandwidth and gets no verdict."""
    same_node = machine.nnodes == 1 or (machine.gpus_per_node or 1) >= 2  # ranks 0 and 1 share a node
    pair = replace(machine, nnodes=1) if same_node else machine  # unknown topology: roof unknown
    roles = {"bw": "uni-directional", "bibw": "bi-directional",
             SEND_RECV.p2p.imported_algorithm: "nccl-tests sendrecv_perf"}  # fmt: skip
    out = []
    for alg, sub in g.groupby("algorithm"):
        if alg not in roles:
            continue
        if alg == SEND_RECV.p2p.imported_algorithm:
            r = roof(machine, SEND_RECV.name, p)
        else:
            r = roof(pair, SEND_RECV.name, 2)
            if alg == "bibw" and r.gbps:
                r = Roof(2 * r.gbps, r.kind, f"both directions at once: 2 x ({r.why})")
        row = sub.loc[sub["busbw_gbps"].astype(float).idxmax()]
        bus = float(row["busbw_gbps"])
        ratio = bus / r.gbps if r.gbps else None
        out.append(Verdict(
            run_id=run.run_id, collective=SEND_RECV.name, world_size=p, algorithm=str(alg), role=roles[alg],
            peak_busbw_gbps=bus, peak_algbw_gbps=float(row["algbw_gbps"]), peak_bytes=int(row["bytes"]),
            roof_gbps=r.gbps, roof_kind=r.kind, roof_why=r.why, ratio=ratio, rating=rating(ratio),
            notes=tuple(_rising(sub, max(p, 2))),
        ))  # fmt: skip
    return out


def run_verdicts(run: Run, machine: Machine) -> list[Verdict]:
    """Verdicts of one run: per (collective, world size) the builtin and the best hand-written algorithm
    (send_recv: its bandwidths, ``_p2p_verdicts``)."""
    data = one_variant(run.points)
    data = data[data["bytes"] > 0]
    if machine.roof_min_bytes and (data["bytes"] >= machine.roof_min_bytes).any():
        data = data[data["bytes"] >= machine.roof_min_bytes]  # smaller sizes are not judged (hardware file)
    out = []
    for (coll, p), g in data.groupby(["collective", "world_size"]):
        p = int(p)
        if is_point_to_point(str(coll)):
            out += _p2p_verdicts(run, machine, g, p)
            continue
        peaks = {}
        for alg, sub in g.groupby("algorithm"):
            metric = "busbw_gbps" if p >= 2 else "algbw_gbps"
            i = sub[metric].astype(float).idxmax()
            peaks[alg] = (sub.loc[i], sub)
        chosen = []
        if "builtin" in peaks:
            chosen.append(("builtin", "builtin"))
        hand = [a for a in peaks if a != "builtin"]
        if hand:
            best = max(hand, key=lambda a: float(peaks[a][0]["busbw_gbps" if p >= 2 else "algbw_gbps"]))
            chosen.append((best, "best hand-written"))
        r = roof(machine, coll, p)
        for alg, role in chosen:
            row, sub = peaks[alg]
            bus = float(row["busbw_gbps"])
            ratio = bus / r.gbps if (r.gbps and p >= 2) else None
            out.append(Verdict(
                run_id=run.run_id, collective=str(coll), world_size=p, algorithm=str(alg), role=role,
                peak_busbw_gbps=bus, peak_algbw_gbps=float(row["algbw_gbps"]), peak_bytes=int(row["bytes"]),
                roof_gbps=r.gbps, roof_kind=r.kind, roof_why=r.why, ratio=ratio, rating=rating(ratio),
                notes=tuple(_notes(r, str(coll), p, ratio, sub, machine)),
            ))  # fmt: skip
    return out


def machines(runs: list[Run], overrides: dict[str, Any] | None = None) -> dict[str, Machine]:
    """run_id -> Machine for every run (catalog, hardware file beside it, options)."""
    return {r.run_id: hardware.resolve(r.meta, r.path, overrides) for r in runs}


def verdicts(runs: list[Run], overrides: dict[str, Any] | None = None) -> tuple[list[Verdict], dict[str, Machine]]:
    ms = machines(runs, overrides)
    return [v for r in runs for v in run_verdicts(r, ms[r.run_id])], ms


def plot_roofs(machine: Machine, collective: str, p: int) -> list[tuple[str, float, str]]:
    """(label, GB/s, kind) spec roofs for a roofline: link, network (several nodes), reduction from memory."""
    out = []
    if p < 2:
        return out
    if machine.link_gbps:
        out.append((f"link roof (spec) {_g(machine.link_gbps)} GB/s", machine.link_gbps, "link"))
    net = network_roof(machine, collective, p)
    if net and crosses_network(machine, p):
        d = domain_gpus(machine)
        per = "per NVLink domain" if machine.domain_gpus and d != machine.gpus_per_node else "per node"
        out.append((f"network roof {_g(net[0])} GB/s ({machine.nics_per_node} x {machine.nic_gbps:g} Gb/s per node, "
                    f"{per})", net[0], "network"))  # fmt: skip
    red = reduction_roof(machine, collective, p)
    if red:
        out.append((f"reduction roof from memory {_g(red)} GB/s (γ = 3/B_mem)", red, "reduction"))
    return out


def to_json(vs: list[Verdict], ms: dict[str, Machine]) -> str:
    def clean(x: Any) -> Any:
        return None if isinstance(x, float) and not math.isfinite(x) else x

    machines_out = {k: {"describe": m.describe(), "gpu": m.gpu.id if m.gpu else None, "gpu_name": m.gpu_name,
                        "link_gbps": m.link_gbps, "hbm_gbps": m.hbm_gbps, "nic_gbps": m.nic_gbps,
                        "nics_per_node": m.nics_per_node, "nnodes": m.nnodes, "gpus_per_node": m.gpus_per_node,
                        "nvlink_domain_gpus": m.domain_gpus, "origin": m.origin, "notes": list(m.notes)}
                    for k, m in ms.items()}  # fmt: skip
    rows = [{k: clean(v) for k, v in {**asdict(x), "notes": list(x.notes), "text": x.sentence()}.items()} for x in vs]
    return json.dumps({"verdicts": rows, "machines": machines_out}, indent=1)


def text(vs: list[Verdict], ms: dict[str, Machine]) -> str:
    """Per run: the machine line, then per (collective, p) the roof and why, then one line per algorithm."""
    lines = []
    for run_id, m in ms.items():
        lines.append(f"# {run_id}: {m.describe()}")
        lines += [f"#   note: {n}" for n in m.notes]
        mine = [v for v in vs if v.run_id == run_id]
        for key in dict.fromkeys((v.collective, v.world_size) for v in mine):
            group = [v for v in mine if (v.collective, v.world_size) == key]
            r = group[0]
            roof_text = f"{r.roof_gbps:.4g} GB/s {r.roof_kind} roof" if r.roof_gbps else "roof unknown"
            lines.append(f"{key[0]} p={key[1]}: {roof_text}: {r.roof_why}")
            for v in group:
                lines.append(f"  {'' if v.role == 'builtin' else v.role + ' '}{v.sentence(why=False)}")
                lines += [f"    - {n}" for n in v.notes]
    return "\n".join(lines)
