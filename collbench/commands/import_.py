"""``collbench import FILE... --out DIR``: nccl-tests output (text log or ``-J`` JSON), rccl-tests ``-Z csv|json``
files and NCCL Inspector logs -> collbench run directories, one per test (the format is detected from the first
line: ``analysis.importers``). Every file is parsed before anything is written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis import export_csv
from analysis.importers import parse_inputs
from analysis.nccltests import IMPORTED, ParsedLog, import_log, set_topology
from bench.errors import UsageError
from bench.schema import inside_run_error

DESCRIPTION = ("nccl-tests output (text log or -J JSON), rccl-tests -Z csv/json files and NCCL Inspector logs -> "
               "collbench run directories, one per test (docs/formats.md)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="nccl-tests stdout logs or -J JSON files, rccl-tests -Z csv/json "
                        "files, NCCL Inspector logs or their directory (the format is read from the first line; a "
                        "job's Inspector logs are read together)")
    parser.add_argument("--out", default="results", help="parent directory of the new run directories (results/)")
    parser.add_argument("--collective", choices=IMPORTED, help="when the log does not name its test")
    parser.add_argument("--world-size", type=int, help="when the log has no rank lines")
    g = parser.add_argument_group("topology (when the log's rank lines are incomplete; docs/hardware.md)")
    g.add_argument("--nnodes", type=int, help="nodes (hosts) the test ran on")
    g.add_argument("--gpus-per-node", type=int, help="GPUs (ranks) per node")
    g.add_argument("--nvlink-domain-gpus", type=int, help="GPUs in one NVLink domain (72 for a GB200 NVL72 rack)")


def _topology(log: ParsedLog) -> str:
    """'2 nodes x 8 GPUs, from the rank lines' / 'nodes unknown', plus the NVLink domain when given."""
    t = log.topology
    if t is None or t.nnodes is None or t.gpus_per_node is None:
        text = "nodes unknown"
    else:
        where = {"rank lines": "from the rank lines", "given": "from the options"}.get(t.source, t.source)
        text = f"{t.nnodes} node(s) x {t.gpus_per_node} GPUs, {where}"
    if t is not None and t.domain_gpus:
        text += f", NVLink domain {t.domain_gpus} GPUs"
    return text


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Parse every file and put the given topology over it first (a bad one writes nothing), then write one run
    directory per test."""
    if args.world_size is not None and args.world_size < 1:
        raise UsageError("--world-size must be >= 1")
    if (refused := inside_run_error(args.out)) is not None:  # before any file is parsed
        raise UsageError(refused)
    inputs = parse_inputs([Path(f) for f in args.files], args.collective, args.world_size)  # all checked first
    for inp in inputs:
        for log in inp.logs:
            try:
                set_topology(log, args.nnodes, args.gpus_per_node, args.nvlink_domain_gpus)
            except UsageError as exc:
                raise UsageError(f"{inp.paths[0]}: {exc}") from None
    for inp in inputs:
        path = inp.paths[0]
        if inp.points_by_run is not None:  # collbench export --csv's points.csv, read back
            for run_dir in export_csv.write_runs(path, inp.points_by_run, Path(args.out)):
                print(f"{path}: collbench points -> {run_dir}")
            continue
        name = f"{path} (+{len(inp.paths) - 1} more)" if len(inp.paths) > 1 else str(path)
        if len(inp.logs) > 1:
            print(f"{name}: {len(inp.logs)} tests ({', '.join(lg.collective for lg in inp.logs)}): one run "
                  "directory each")  # fmt: skip
        warned = False
        for i, log in enumerate(inp.logs):
            unknown = [w for w in log.warnings if "nodes and GPUs per node are unknown" in w]
            if unknown and not warned:  # once per input: every test of it has the same rank lines
                print(f"collbench: warning: {path}: {unknown[0]}", file=sys.stderr)
                warned = True
            run_dir = import_log(path, log, inp.fmt, Path(args.out), i, len(inp.logs), inp.paths[1:])
            print(f"{name}: {log.collective} topology: {_topology(log)}")
            print(f"{name}: {log.collective}, world size {log.world_size}, {len(log.points)} points -> {run_dir}")
            for note in log.warnings:  # stragglers and spikes in per-process times (analysis.stragglers)
                if note.startswith("per-process times:"):
                    print(f"  {note}")
                elif note.startswith(("the log repeats itself", "nccl-tests' own check failed")):
                    print(f"collbench: warning: {path}: {note}", file=sys.stderr)
    return 0
