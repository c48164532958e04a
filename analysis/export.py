"""``collbench export --astra-sim``: the fitted two-tier model as ASTRA-sim's analytical network config.

ASTRA-sim's analytical backend reads a YAML file with one entry per network dimension (its
``examples/network/analytical/*.yml``):

    topology: [ Switch, Switch ]     # Ring, FullyConnected or Switch per dimension
    npus_count: [ 8, 16 ]            # NPUs per dimension (their product: the machine)
    bandwidth: [ 150.0, 5.0 ]        # GB/s per NPU link in that dimension
    latency: [ 4000.0, 12000.0 ]     # ns per hop

Dimension 1 is one node (g GPUs, the intra-node tier), dimension 2 the N nodes (the network).  The bandwidth of
dimension 1 is the fitted intra-node bus bandwidth (a ring's per-rank rate inside a node); dimension 2's is the
fitted network bus bandwidth divided by g, the share of one GPU: ASTRA-sim runs a multi-dimensional collective
as an all-reduce of n/g per GPU across dimension 2 (the hierarchical schedule of docs/two-tier.md), whose time
2(N-1)/N (n/g)/(bw_inter/g) = 2(N-1)/N n / bw_inter is the two-tier model's network term.  Latency is each
tier's alpha per step.  The YAML is written by hand (no YAML library).  Never imports torch.
"""

from __future__ import annotations

import math

from analysis import twotier
from analysis.errors import AnalysisError

TOPOLOGIES = ("Switch", "Ring", "FullyConnected")


def astra_sim_yaml(fit: twotier.TwoTierFit, *, gpus_per_node: int, nnodes: int, intra_topology: str = "Switch",
                   inter_topology: str = "Switch", source: str = "") -> str:  # fmt: skip
    """The analytical network config of ``nnodes`` x ``gpus_per_node`` NPUs from ``fit``'s tiers."""
    t = fit.tiers
    if math.isnan(t.bw_intra_gbps) or math.isnan(t.alpha_intra_us):
        raise AnalysisError("the intra-node tier is not identified (no one-node run in the fit): measure one node too")
    if math.isnan(t.bw_inter_gbps) or math.isnan(t.alpha_inter_us):
        raise AnalysisError("the network tier is not identified (no multi-node run in the fit)")
    if not (math.isfinite(t.bw_intra_gbps) and math.isfinite(t.bw_inter_gbps)):
        raise AnalysisError("a fitted bandwidth is unbounded (flat curves): nothing to export")
    for name, topo in (("--intra-topology", intra_topology), ("--inter-topology", inter_topology)):
        if topo not in TOPOLOGIES:
            raise AnalysisError(f"{name} {topo!r}: choose {', '.join(TOPOLOGIES)}")
    g, n = int(gpus_per_node), int(nnodes)
    if g < 1 or n < 1:
        raise AnalysisError("--gpus-per-node and --nodes must be >= 1")
    bw = [t.bw_intra_gbps, t.bw_inter_gbps / g]
    lat_ns = [1e3 * t.alpha_intra_us, 1e3 * t.alpha_inter_us]
    lines = [
        "# ASTRA-sim analytical network config written by collbench export --astra-sim",
        f"# fitted from: {source}" if source else "# fitted from: collbench runs",
        f"# two-tier fit of {fit.collective} ({fit.source_algorithm} data), docs/two-tier.md:",
        f"#   intra-node: alpha {t.alpha_intra_us:.4g} us, bus bandwidth {t.bw_intra_gbps:.4g} GB/s",
        f"#   network: alpha {t.alpha_inter_us:.4g} us, bus bandwidth {t.bw_inter_gbps:.4g} GB/s per node "
        f"= {bw[1]:.4g} GB/s per GPU ({g} GPUs per node)",
        f"# dimension 1: {g} GPUs of one node; dimension 2: {n} nodes ({g * n} NPUs)",
        f"topology: [ {intra_topology}, {inter_topology} ]",
        f"npus_count: [ {g}, {n} ]",
        f"bandwidth: [ {bw[0]:.6g}, {bw[1]:.6g} ]  # GB/s",
        f"latency: [ {lat_ns[0]:.6g}, {lat_ns[1]:.6g} ]  # ns",
    ]
    return "\n".join(lines) + "\n"
