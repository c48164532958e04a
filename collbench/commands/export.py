"""``collbench export --astra-sim``: the fitted two-tier model as ASTRA-sim's analytical network config
(``analysis.export``), on stdout or into --out."""

from __future__ import annotations

import argparse
import sys
import warnings

from analysis import twotier
from analysis.export import astra_sim_yaml
from analysis.outputs import claim_output_file
from bench.errors import UsageError
from collbench.commands.options import add_force_argument
from collectives import costs


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


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Fit the two tiers of the runs and write (or print) the ASTRA-sim YAML; never over an existing file
    unless --force, never over a run's own files."""
    out = claim_output_file(args.out, args.force) if args.out else None
    if args.gpus_per_node is not None and args.gpus_per_node < 1:
        raise UsageError("--gpus-per-node must be >= 1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        points = twotier.load_points(args.fits, args.gpus_per_node)
        fit = twotier.fit_two_tier(points, args.collective, n_boot=0, backtest=False)
    multi = [s for s in fit.scales if s.nnodes > 1]
    gs = {s.gpus_per_node for s in multi}
    if args.gpus_per_node is None and len(gs) != 1:
        raise UsageError(f"the runs have {len(gs)} GPUs-per-node counts: pass --gpus-per-node")
    g = args.gpus_per_node or gs.pop()
    nodes = args.nodes if args.nodes is not None else max(s.nnodes for s in multi)
    text = astra_sim_yaml(fit, gpus_per_node=g, nnodes=nodes, intra_topology=args.intra_topology,
                          inter_topology=args.inter_topology, source=" ".join(args.fits))  # fmt: skip
    if out is not None:
        try:
            with open(out, "w" if args.force else "x") as f:  # "x": a file created since the claim is not replaced
                f.write(text)
        except FileExistsError:
            raise UsageError(f"{out} exists: pass --force to replace it, or choose another --out") from None
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
        print(f"wrote {out}: {g} x {nodes} NPUs", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
