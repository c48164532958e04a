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

import argparse
import math
import sys
import warnings

from analysis import twotier
from analysis.errors import AnalysisError
from analysis.outputs import add_force_argument, claim_output_file
from collectives import costs

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--astra-sim", action="store_true", required=True,
                        help="write ASTRA-sim's analytical network config (YAML)")  # fmt: skip
    parser.add_argument("--fits", nargs="+", required=True, help="run directories at >= 2 node counts")
    parser.add_argument("--collective", default="all_reduce", choices=costs.COLLECTIVES,
                        help="collective whose two-tier fit is exported (default all_reduce)")  # fmt: skip
    parser.add_argument("--gpus-per-node", type=int, help="GPUs per node (default: from the runs)")
    parser.add_argument("--nodes", type=int, help="nodes of the simulated machine (default: the largest measured)")
    parser.add_argument("--intra-topology", default="Switch", help="dimension 1 topology (default Switch: NVSwitch)")
    parser.add_argument("--inter-topology", default="Switch", help="dimension 2 topology (default Switch)")
    parser.add_argument("--out", help="write the YAML to this new file (default: stdout)")
    add_force_argument(parser)


def run(args: argparse.Namespace) -> int:
    out = claim_output_file(args.out, args.force) if args.out else None
    if args.gpus_per_node is not None and args.gpus_per_node < 1:
        raise AnalysisError("--gpus-per-node must be >= 1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        points = twotier.load_points(args.fits, args.gpus_per_node)
        fit = twotier.fit_two_tier(points, args.collective, n_boot=0, backtest=False)
    multi = [s for s in fit.scales if s.nnodes > 1]
    gs = {s.gpus_per_node for s in multi}
    if args.gpus_per_node is None and len(gs) != 1:
        raise AnalysisError(f"the runs have {len(gs)} GPUs-per-node counts: pass --gpus-per-node")
    g = args.gpus_per_node or gs.pop()
    nodes = args.nodes if args.nodes is not None else max(s.nnodes for s in multi)
    text = astra_sim_yaml(fit, gpus_per_node=g, nnodes=nodes, intra_topology=args.intra_topology,
                          inter_topology=args.inter_topology, source=" ".join(args.fits))  # fmt: skip
    if out is not None:
        try:
            with open(out, "w" if args.force else "x") as f:  # "x": a file created since the claim is not replaced
                f.write(text)
        except FileExistsError:
            raise AnalysisError(f"{out} exists: pass --force to replace it, or choose another --out") from None
        except OSError as exc:
            raise AnalysisError(f"cannot write {out}: {exc.strerror or exc}") from None
        print(f"wrote {out}: {g} x {nodes} NPUs", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
