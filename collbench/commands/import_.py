"""``collbench import FILE... --out DIR``: nccl-tests output (text log or ``-J`` JSON), rccl-tests ``-Z csv|json``
files and NCCL Inspector logs -> collbench run directories, one per test (the format is detected from the first
line: ``analysis.importers``). Every file is parsed before anything is written."""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis import export_csv
from analysis.importers import parse_inputs
from analysis.nccltests import IMPORTED, import_log
from bench.errors import UsageError

DESCRIPTION = ("nccl-tests output (text log or -J JSON), rccl-tests -Z csv/json files and NCCL Inspector logs -> "
               "collbench run directories, one per test (docs/formats.md)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="nccl-tests stdout logs or -J JSON files, rccl-tests -Z csv/json "
                        "files, NCCL Inspector logs or their directory (the format is read from the first line; a "
                        "job's Inspector logs are read together)")
    parser.add_argument("--out", default="results", help="parent directory of the new run directories (results/)")
    parser.add_argument("--collective", choices=IMPORTED, help="when the log does not name its test")
    parser.add_argument("--world-size", type=int, help="when the log has no rank lines")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Parse every file first (a bad one writes nothing), then write one run directory per test."""
    if args.world_size is not None and args.world_size < 1:
        raise UsageError("--world-size must be >= 1")
    inputs = parse_inputs([Path(f) for f in args.files], args.collective, args.world_size)  # all checked first
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
        for i, log in enumerate(inp.logs):
            run_dir = import_log(path, log, inp.fmt, Path(args.out), i, len(inp.logs), inp.paths[1:])
            print(f"{name}: {log.collective}, world size {log.world_size}, {len(log.points)} points -> {run_dir}")
            for note in log.warnings:  # stragglers and spikes in per-process times (analysis.stragglers)
                if note.startswith("per-process times:"):
                    print(f"  {note}")
    return 0
