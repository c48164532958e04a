"""``collbench export``: collbench's figures in other tools' formats, on stdout or into --out (never over an
existing file unless --force, never over a run's own files):

- ``--astra-sim --fits RUN...``: the fitted two-tier model as ASTRA-sim's analytical network config
  (``analysis.export``);
- ``--simai --tp RUN [--dp RUN] [--ep RUN] [--pp RUN]``: SimAI's ``busbw.yaml`` (``analysis.simai``);
- ``--csv RUN... --out DIR``: ``points.csv`` and ``fits.csv`` for spreadsheets (``analysis.export_csv``);
- ``--prometheus RUN... [--out FILE.prom]``: the verdict's headline figures for node-exporter's textfile
  collector (``analysis.prometheus``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

from analysis import export_csv, fits_table, hardware, prometheus, simai, twotier
from analysis.export import astra_sim_yaml
from analysis.fitting import fit_all
from analysis.outputs import claim_output_dir, claim_output_file
from analysis.read_runs import find_runs, load_runs
from analysis.verdict import verdicts
from bench.errors import UsageError
from collbench.commands.options import add_force_argument, add_hardware_arguments, check_numbers
from collectives import costs

DESCRIPTION = ("collbench's figures in other tools' formats: --astra-sim (network config from a two-tier fit), "
               "--simai (busbw.yaml), --csv (points and fits for spreadsheets), --prometheus (node-exporter "
               "textfile); docs/formats.md")
_SIMAI_GROUPS = ("tp", "dp", "ep", "pp")
#: the hardware options of verdict, used by --prometheus (and --gpus-per-node by --astra-sim too)
_HARDWARE = ("hardware", "gpu", "system", "link_gbps", "hbm_gbps", "nic_gbps", "nics_per_node", "nvlink_domain_gpus")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    fmt = parser.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--astra-sim", action="store_true", help="ASTRA-sim's analytical network config (YAML) from a "
                     "two-tier fit (--fits RUN...)")  # fmt: skip
    fmt.add_argument("--simai", action="store_true", help="SimAI's busbw.yaml: peak busbw per parallel group from "
                     "the runs given to --tp/--dp/--ep/--pp")  # fmt: skip
    fmt.add_argument("--csv", action="store_true", help="points.csv and fits.csv of the runs into --out DIR")
    fmt.add_argument("--prometheus", action="store_true", help="Prometheus text format (node-exporter textfile "
                     "collector): peak busbw, roof, share of roof, verdict per curve")  # fmt: skip
    parser.add_argument("runs", nargs="*", help="run directories or their parents (--csv, --prometheus)")
    parser.add_argument("--out", help="the file to write (--csv: the directory of points.csv and fits.csv); "
                        "default: stdout")  # fmt: skip
    add_force_argument(parser)
    astra = parser.add_argument_group("--astra-sim")
    astra.add_argument("--fits", nargs="+", help="run directories at >= 2 node counts")
    astra.add_argument("--collective", default="all_reduce", choices=costs.COLLECTIVES,
                       help="collective whose two-tier fit is exported (default all_reduce)")  # fmt: skip
    astra.add_argument("--nodes", type=int, help="nodes of the simulated machine (default: the largest measured)")
    astra.add_argument("--intra-topology", default="Switch", help="dimension 1 topology (default Switch: NVSwitch)")
    astra.add_argument("--inter-topology", default="Switch", help="dimension 2 topology (default Switch)")
    sim = parser.add_argument_group("--simai (each: one run directory, or a parent holding one)")
    sim.add_argument("--tp", help="a run inside one node (tensor parallel group)")
    sim.add_argument("--dp", help="a run across nodes (data parallel group)")
    sim.add_argument("--ep", help="a run of the expert parallel group")
    sim.add_argument("--pp", help="a send_recv run between pipeline stages")
    sim.add_argument("--name", default="collbench", help="the setting's name, busbw.yaml's first line")
    csv_group = parser.add_argument_group("--csv")
    csv_group.add_argument("--boot", type=int, default=0, help="bootstrap replicates for the fits' CIs (default 0)")
    prom = parser.add_argument_group("--prometheus")
    prom.add_argument("--host", help="a host label on every sample (default: none)")
    add_hardware_arguments(parser)  # --gpus-per-node also tells --astra-sim the GPUs per node


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    defaults = {"intra_topology": "Switch", "inter_topology": "Switch"}
    return [n for n in names if getattr(args, n, None) not in (None, defaults.get(n))]


def _check(args: argparse.Namespace) -> str:
    """The format, after refusing options that belong to another one (one line, before any work)."""
    fmt = next(f for f in ("astra_sim", "simai", "csv", "prometheus") if getattr(args, f))
    flag = "--" + fmt.replace("_", "-")
    wrong = []
    if fmt != "astra_sim":
        wrong += _given(args, ("fits", "nodes", "intra_topology", "inter_topology"))
        if args.collective != "all_reduce":
            wrong.append("collective")
    if fmt != "simai":
        wrong += _given(args, _SIMAI_GROUPS) + (["name"] if args.name != "collbench" else [])
    if fmt != "csv" and args.boot != 0:
        wrong.append("boot")
    if fmt != "prometheus":
        wrong += _given(args, ("host", *_HARDWARE))
    if fmt not in ("prometheus", "astra_sim"):
        wrong += _given(args, ("gpus_per_node",))
    if wrong:
        raise UsageError(f"--{wrong[0].replace('_', '-')} is not an option of {flag}")
    if fmt in ("astra_sim", "simai") and args.runs:
        raise UsageError(f"{flag} takes no run arguments ({'--fits RUN...' if fmt == 'astra_sim' else '--tp RUN'}"
                         f", ...): got {args.runs[0]!r}")  # fmt: skip
    if fmt in ("csv", "prometheus") and not args.runs:
        raise UsageError(f"{flag}: name the runs to export")
    if fmt == "astra_sim" and not args.fits:
        raise UsageError("--astra-sim needs --fits RUN... (runs at >= 2 node counts)")
    if fmt == "simai" and not _given(args, _SIMAI_GROUPS):
        raise UsageError("--simai needs at least one of --tp, --dp, --ep, --pp")
    if fmt == "csv" and not args.out:
        raise UsageError("--csv writes two files: name their directory with --out")
    check_numbers(args, boot=True)
    return fmt


def _write(out: Path | None, text: str, force: bool, what: str) -> None:
    """``text`` to stdout, or into ``out`` atomically (a reader such as node-exporter never sees half a file):
    written beside it, then linked into place (refused if ``out`` appeared since the claim) or, with --force,
    renamed over it."""
    if out is None:
        sys.stdout.write(text)
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent if str(out.parent) else ".")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        try:
            if force:
                os.replace(tmp, out)
            else:
                os.link(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except FileExistsError:
        raise UsageError(f"{out} exists: pass --force to replace it, or choose another --out") from None
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}: {what}", file=sys.stderr)


def _one_run(path: str, flag: str) -> str:
    runs = find_runs(path)
    if len(runs) != 1:
        raise UsageError(f"{flag} {path}: {len(runs)} runs there; name one run directory")
    return str(runs[0].path)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Check the options, then compute and write the chosen format."""
    fmt = _check(args)
    if fmt == "csv":
        out_dir = claim_output_dir(args.out, ("points.csv", "fits.csv"), args.force)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = load_runs(args.runs)
            fits = fit_all(df, n_boot=args.boot)
        export_csv.write_points(df, out_dir / "points.csv", args.force)
        fits_table.write_csv(fits, out_dir)
        print(f"wrote {out_dir / 'points.csv'} ({len(df)} points) and {out_dir / 'fits.csv'} ({len(fits)} fits)",
              file=sys.stderr)  # fmt: skip
        return 0
    out = claim_output_file(args.out, args.force) if args.out else None
    if fmt == "prometheus":
        runs = [r for p in args.runs for r in find_runs(p)]
        vs, ms = verdicts(runs, hardware.overrides_from_args(args))
        _write(out, prometheus.text(vs, ms, args.host), args.force, f"{len(vs)} curves")
        return 0
    if fmt == "simai":
        paths = {g.upper(): _one_run(getattr(args, g), f"--{g}") for g in _SIMAI_GROUPS if getattr(args, g)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            groups = {g: load_runs([p]) for g, p in paths.items()}
        _write(out, simai.busbw_yaml(groups, args.name), args.force,
               "; ".join(f"{g} from {p}" for g, p in paths.items()))  # fmt: skip
        return 0
    return _astra_sim(args, out)


def _astra_sim(args: argparse.Namespace, out: Path | None) -> int:
    """Fit the two tiers of the runs and write (or print) the ASTRA-sim YAML."""
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
    _write(out, text, args.force, f"{g} x {nodes} NPUs")
    return 0
