"""The ``collbench`` command line: the one table of subcommands, the one usage parser, the one dispatcher.

Top-level imports stay light (no torch, no pandas): ``collbench --help`` and a usage error answer fast, and a
subcommand's module is imported only when it runs. Every bad option or input raises
:class:`bench.errors.UsageError`, printed here as one ``collbench: error: ...`` line with exit 2, before any
process starts; the exit codes are ``bench.errors``'.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType

from bench.errors import EXIT_OK, EXIT_USAGE, UsageError


@dataclass(frozen=True)
class Command:
    """One subcommand: its module under ``collbench.commands``, its one-line help, and whether it runs ranks
    (under torchrun every rank parses the options; only rank 0 reports a usage error)."""

    module: str
    help: str
    ranks: bool = False


COMMANDS: dict[str, Command] = {
    "run": Command("run", "a sweep: time, check and record collectives (see collbench run --help)", ranks=True),
    "pairs": Command("pairs", "every rank pair's latency and bandwidth; flags the slow link, rank or node (exit 1)",
                     ranks=True),  # fmt: skip
    "hunt": Command("hunt", "find the slow nodes and NICs in few rounds of sub-group tests (exit 1); --simulate N",
                    ranks=True),  # fmt: skip
    "scale": Command("scale", "a data-parallel training step at this world size; --study: scaling vs prediction",
                     ranks=True),  # fmt: skip
    "fit": Command("fit", "alpha-beta(-gamma) fits per curve and across world sizes; writes fits.csv"),
    "report": Command("report", "Markdown + HTML report with plots of one or more runs"),
    "compare": Command("compare", "per-point change between two runs with significance; exit 1 on a regression"),
    "import": Command("import_", "nccl-tests / rccl-tests output, NCCL Inspector logs, points.csv -> run directories"),
    "predict": Command("predict", "time, busbw and best algorithm at unmeasured sizes / world sizes, from a fit"),
    "verdict": Command("verdict", "is my number good? peak busbw against the link / network roof, with the reason"),
    "export": Command("export", "figures in other tools' formats: --astra-sim, --simai, --csv, --prometheus"),
    "emulate": Command("emulate", "a cluster on this machine: run, pairs, hunt, scale across emulated nodes (root)"),
}


class UsageParser(argparse.ArgumentParser):
    """argparse that reports errors as :class:`UsageError` (one ``collbench: error: ...`` line, exit 2) instead
    of a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _module(name: str) -> ModuleType:
    """The command's module, imported only when the command runs (so ``collbench --help`` stays fast)."""
    return importlib.import_module(f"collbench.commands.{COMMANDS[name].module}")


def build_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one subcommand, filled by its module's ``add_arguments``."""
    module = _module(name)
    parser = UsageParser(prog=f"collbench {name}", description=getattr(module, "DESCRIPTION", COMMANDS[name].help),
                         epilog=getattr(module, "EPILOG", None))  # fmt: skip
    module.add_arguments(parser)
    return parser


def _top_help() -> str:
    lines = [f"usage: collbench {{{','.join(COMMANDS)}}} ...", "",
             "Microbenchmarks, correctness checks and cost models of collective communication.", "", "commands:"]
    return "\n".join(lines + [f"  {name:<9} {c.help}" for name, c in COMMANDS.items()])  # fmt: skip


@contextlib.contextmanager
def _quiet_numpy() -> Iterator[None]:
    """No numpy RuntimeWarning on stderr (divide by zero, mean of an empty slice): the analysis commands drop or
    refuse the values that cause them and say so in their own words; numpy's lines were noise beside them."""
    import numpy as np

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"numpy(\.|$)")
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``collbench`` console script and ``python -m collbench``: run ``argv`` = [command,
    options...] (default ``sys.argv[1:]``) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_top_help())
        return EXIT_OK if args else EXIT_USAGE
    if args[0] == "--version":
        from bench.schema import collbench_version

        print(f"collbench {collbench_version()}")
        return EXIT_OK
    name = args[0]
    command = COMMANDS.get(name)
    try:
        if command is None:
            raise UsageError(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
        parsed = build_parser(name).parse_args(args[1:])
        if command.ranks:
            return int(_module(name).run(parsed, args))
        with _quiet_numpy():
            return int(_module(name).run(parsed, args))
    except UsageError as exc:
        other_rank = os.environ.get("RANK", "0") != "0"  # under torchrun every rank parses; rank 0 speaks
        if not (other_rank and (command is None or command.ranks)):
            print(f"collbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into head: the answer was read
        if command.ranks:
            raise
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
