"""``collbench verdict RUN...``: is my number good? Each curve's peak busbw against the roof of the run's machine,
with the reason (``analysis.verdict``)."""

from __future__ import annotations

import argparse

from analysis import hardware
from analysis.read_runs import find_runs
from analysis.verdict import text, to_json, verdicts
from bench.errors import UsageError
from collbench.commands.options import add_hardware_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run directories (or parents of run directories)")
    parser.add_argument("--json", action="store_true", help="one JSON document (verdicts and machines)")
    add_hardware_arguments(parser)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Judge every curve of the runs against its machine's roof; print text or JSON."""
    runs = [r for p in args.runs for r in find_runs(p)]
    if not runs:
        raise UsageError("no runs given")
    vs, ms = verdicts(runs, hardware.overrides_from_args(args))
    if not vs:
        empty = ", ".join(str(r.path) for r in runs)
        raise UsageError(f"nothing to judge: {empty} hold(s) no correct point with a positive size")
    print(to_json(vs, ms) if args.json else text(vs, ms))
    return 0
