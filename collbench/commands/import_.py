"""``collbench import FILE... --out DIR``: nccl-tests output (text log or ``-J`` JSON) -> collbench run
directories, one per test (``analysis.nccltests``). Every file is parsed before anything is written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.nccltests import IMPORTED, import_log, parse_file
from bench.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="nccl-tests stdout logs or -J JSON files")
    parser.add_argument("--out", default="results", help="parent directory of the new run directories (results/)")
    parser.add_argument("--collective", choices=IMPORTED, help="when the log does not name its test")
    parser.add_argument("--world-size", type=int, help="when the log has no rank lines")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Parse every file first (a bad one writes nothing), then write one run directory per test."""
    if args.world_size is not None and args.world_size < 1:
        raise UsageError("--world-size must be >= 1")
    paths = [Path(f) for f in args.files]
    parsed = [parse_file(p, args.collective, args.world_size) for p in paths]  # every file checked before writing
    for path, (logs, fmt) in zip(paths, parsed, strict=True):
        if len(logs) > 1:
            print(f"{path}: {len(logs)} tests ({', '.join(lg.collective for lg in logs)}): one run directory each")
        for i, log in enumerate(logs):
            for note in log.warnings:
                if note.startswith("the log repeats itself"):
                    print(f"collbench: warning: {path}: {note}", file=sys.stderr)
            run_dir = import_log(path, log, fmt, Path(args.out), i, len(logs))
            print(f"{path}: {log.collective}, world size {log.world_size}, {len(log.points)} points -> {run_dir}")
    return 0
