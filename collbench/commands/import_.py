"""``collbench import FILE... --out DIR``: nccl-tests output (text log or ``-J`` JSON) -> collbench run
directories, one per test (``analysis.nccltests``). Every file is parsed before anything is written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.nccltests import IMPORTED, ParsedLog, import_log, parse_file, set_topology
from bench.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="nccl-tests stdout logs or -J JSON files")
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
        text = f"{t.nnodes} node(s) x {t.gpus_per_node} GPUs, from the {'options' if t.source == 'given' else t.source}"
    if t is not None and t.domain_gpus:
        text += f", NVLink domain {t.domain_gpus} GPUs"
    return text


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Parse every file and put the given topology over it first (a bad one writes nothing), then write one run
    directory per test."""
    if args.world_size is not None and args.world_size < 1:
        raise UsageError("--world-size must be >= 1")
    paths = [Path(f) for f in args.files]
    parsed = [parse_file(p, args.collective, args.world_size) for p in paths]  # every file checked before writing
    for path, (logs, _) in zip(paths, parsed, strict=True):
        for log in logs:
            try:
                set_topology(log, args.nnodes, args.gpus_per_node, args.nvlink_domain_gpus)
            except UsageError as exc:
                raise UsageError(f"{path}: {exc}") from None
    for path, (logs, fmt) in zip(paths, parsed, strict=True):
        if len(logs) > 1:
            print(f"{path}: {len(logs)} tests ({', '.join(lg.collective for lg in logs)}): one run directory each")
        warned = False
        for i, log in enumerate(logs):
            unknown = [w for w in log.warnings if "nodes and GPUs per node are unknown" in w]
            if unknown and not warned:  # once per file: every test of it has the same rank lines
                print(f"collbench: warning: {path}: {unknown[0]}", file=sys.stderr)
                warned = True
            run_dir = import_log(path, log, fmt, Path(args.out), i, len(logs))
            print(f"{path}: {log.collective}, world size {log.world_size} ({_topology(log)}), {len(log.points)} "
                  f"points -> {run_dir}")  # fmt: skip
    return 0
