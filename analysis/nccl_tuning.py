"""NCCL's tuning model: which algorithm NCCL's builtin all-reduce (and friends) would pick at a scale, and
the bandwidth NCCL itself assigns to each (docs/two-tier.md, Which algorithm NCCL runs).

Transcribed from NVIDIA/nccl ``src/graph/tuning.cc`` at commit 5067397c2676d5aed50042fc39e5c8ee96eb0027
(2026-06-11, ``ncclTopoTuneModel`` and ``ncclTopoGetAlgoTime``; constants ``ncclTunerConstantsDefaults``,
``nvlsEfficiency``), Simple protocol (the large-message protocol), for the algorithms whose inputs the two-tier
fit gives: the per-channel bandwidths of NCCL's topology search are replaced by the fitted tiers (the ring's
node network bandwidth B = nChannels x bwInter, the intra-node ring busbw = nChannels x bwIntra).

NCCL keeps, per algorithm, an algorithm bandwidth (its "busBw" times a ratio) and a latency; the time of n
bytes is ``lat + n / (1000 bw)`` (µs, GB/s) and the smallest wins.  Bandwidths here are GB/s, times µs.
Never imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: commit of NVIDIA/nccl the constants below are copied from
NCCL_COMMIT = "5067397c2676d5aed50042fc39e5c8ee96eb0027"
#: tuning.cc ``nvlsEfficiency`` by architecture (NVLS exists from Hopper on)
NVLS_EFFICIENCY = {"volta": 0.0, "ampere": 0.0, "hopper": 0.85, "blackwell": 0.74}
#: tuning.cc: Simple protocol base latencies (µs) of tree and ring; NVLS/NVLSTree have none
BASE_LAT_US = {"tree": 8.4, "ring": 8.4, "nvls": 0.0, "nvls_tree": 0.0}
#: tuning.cc hwLatencies, Simple protocol (µs): NVLink and network, per algorithm
NVLINK_LAT_US = {"tree": 4.0, "ring": 3.4, "nvls": 25.0, "nvls_tree": 25.0}
NET_LAT_US = {"tree": 14.0, "ring": 14.0, "nvls": 18.0, "nvls_tree": 20.9}
#: tuning.cc: the tree's all-reduce bus bandwidth is 0.92 of its channels' and its algorithm bandwidth half of
#: that ("ratio *= .5"); NVLS/NVLSTree and ring convert with nRanks / nsteps
TREE_EFFICIENCY = 0.92
TREE_RATIO = 0.5
#: tuning.cc ``perChMaxNVLSTreeBws`` [N1, N2, N4] and ``perChMaxTreeBws`` (GB/s per channel)
PER_CH_MAX_NVLS_TREE = {"hopper": (0.0, 57.7, 45.5), "blackwell": (0.0, 96.0, 80.0)}
PER_CH_MAX_TREE = {"volta": (26.5, 18.5, 10.0), "ampere": (24.0, 23.6, 17.8), "hopper": (38.7, 41.4, 36.0),
                   "blackwell": (70.0, 42.8, 24.0)}  # fmt: skip
#: "plateau effect of ring" in ncclTopoGetAlgoTime: a multi-node Simple ring all-reduce's latency x 1.4 (sm80+)
RING_PLATEAU = 1.4


def arch_of(gpu_model: str | None) -> str | None:
    """NCCL's compute-capability class of a GPU name as logs print it (None: unknown, no NVLS assumed)."""
    name = (gpu_model or "").upper()
    if any(k in name for k in ("B200", "B300", "GB200", "GB300", "B100", "RTX PRO 6000")):
        return "blackwell"
    if any(k in name for k in ("H100", "H200", "H800", "H20", "GH200")):
        return "hopper"
    if any(k in name for k in ("A100", "A800", "A30", "A10", "A40", "A6000", "RTX 30")):
        return "ampere"
    if "V100" in name:
        return "volta"
    return None


def _node_index(nnodes: int) -> int:
    """tuning.cc's N1/N2/N4 column: one node, two nodes, more."""
    return 0 if nnodes <= 1 else (1 if nnodes == 2 else 2)


def _log2i(n: int) -> int:
    return int(math.floor(math.log2(n))) if n >= 1 else 0


@dataclass(frozen=True)
class NcclChoice:
    """NCCL's model of one algorithm at a scale and size: its algorithm bandwidth (GB/s), latency and time (µs)."""

    algorithm: str
    algbw_gbps: float
    lat_us: float
    time_us: float


def model(collective: str, nnodes: int, gpus_per_node: int, nbytes: float, *, bw_inter_gbps: float,
          bw_intra_gbps: float = math.nan, arch: str | None = None, nvls: bool | None = None,
          nchannels: int = 16) -> list[NcclChoice]:  # fmt: skip
    """NCCL's own time estimate of each candidate algorithm (Simple protocol) for ``collective`` on
    ``nnodes`` x ``gpus_per_node``.  ``bw_inter_gbps`` is the node's network busbw a ring reaches (NCCL's
    nChannels x bwInter), ``bw_intra_gbps`` the one-node ring busbw (nChannels x bwIntra; NaN: unknown, taken
    as no faster than the network, so nothing is credited to it).  NVLS/NVLSTree are candidates on NVSwitch
    systems from Hopper on (``nvls``: default when ``arch`` is hopper or blackwell and g > 1)."""
    N, g = int(nnodes), int(gpus_per_node)
    p = N * g
    if p < 2:
        return []
    intra = bw_intra_gbps if math.isfinite(bw_intra_gbps) else bw_inter_gbps
    inter = bw_inter_gbps if N > 1 else intra
    nsteps = 2 * (p - 1) if collective == "all_reduce" else (p - 1 if collective in ("all_gather", "reduce_scatter")
                                                                  else p)  # fmt: skip
    out = []
    # ring: busBw = nChannels x bw (bwIntra at <= 2 nodes, bwInter above; the ring graph's own, which at > 1 node
    # the network bounds), algbw = busBw nRanks / nsteps; latency (nsteps - nInter) intra + nInter inter steps
    ring_bus = min(intra, inter) if N > 1 else intra
    n_inter = 0 if N == 1 else (2 * (N - 1) if collective == "all_reduce" else N - 1)
    lat = BASE_LAT_US["ring"] + (nsteps - n_inter) * NVLINK_LAT_US["ring"] + n_inter * NET_LAT_US["ring"]
    if N > 1 and collective == "all_reduce":
        lat *= RING_PLATEAU
    out.append(_choice("ring", ring_bus * p / nsteps, lat, nbytes))
    if collective != "all_reduce":
        return out
    # tree: busBw = min(0.92 nChannels bw, nChannels perChMaxTreeBw), algbw = half of it
    tree_bus = TREE_EFFICIENCY * (intra if N <= 2 else inter)
    cap = PER_CH_MAX_TREE.get(arch or "", (math.inf,) * 3)[_node_index(N)] * nchannels
    tree_bus = min(tree_bus, cap)
    lat = BASE_LAT_US["tree"] + 2 * ((g - 1) * NVLINK_LAT_US["tree"] + _log2i(N) * NET_LAT_US["tree"])
    if N > 1:
        out.append(_choice("tree", TREE_RATIO * tree_bus, lat, nbytes))
    use_nvls = (arch in ("hopper", "blackwell") and g > 1) if nvls is None else nvls
    if use_nvls:
        eff = NVLS_EFFICIENCY.get(arch or "hopper", 0.85)
        intra_nvls = 2.0 * intra * eff * (nchannels - 1) / nchannels  # all-reduce pipelines two operations
        if N == 1:
            out.append(_choice("nvls", min(intra_nvls, inter) * p / nsteps, NVLINK_LAT_US["nvls"], nbytes))
        else:
            inter_nvls = inter * (2 if N <= 2 else 1)  # "Handle 2 node case of NVLSTree"
            cap = PER_CH_MAX_NVLS_TREE.get(arch or "hopper", (math.inf,) * 3)[_node_index(N)] * nchannels
            bus = min(intra_nvls, inter_nvls, cap)
            lat = NVLINK_LAT_US["nvls_tree"] + 2 * _log2i(N) * NET_LAT_US["nvls_tree"]
            out.append(_choice("nvls_tree", bus * p / nsteps, lat, nbytes))
    return out


def _choice(alg: str, algbw: float, lat: float, nbytes: float) -> NcclChoice:
    return NcclChoice(alg, algbw, lat, lat + nbytes / (1e3 * algbw) if algbw > 0 else math.inf)


def choose(collective: str, nnodes: int, gpus_per_node: int, nbytes: float, **kw) -> NcclChoice | None:
    """The algorithm NCCL's model picks (smallest model time), or None for one rank."""
    cands = model(collective, nnodes, gpus_per_node, nbytes, **kw)
    return min(cands, key=lambda c: c.time_us) if cands else None
