"""Dispatch of the analysis subcommands (``collbench fit|report|compare|import|predict|verdict|export``).

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
this module only builds the parser and turns :class:`AnalysisError` into one line on stderr and exit 2.
Never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from analysis.errors import AnalysisError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

#: subcommand -> (module, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "fit": ("analysis.fitting_cmd", "alpha-beta(-gamma) fits per curve and across world sizes; writes fits.csv"),
    "report": ("analysis.report", "Markdown + HTML report with plots of one or more runs"),
    "compare": ("analysis.compare", "per-point change between two runs with significance; exit 1 on a regression"),
    "import": ("analysis.importer", "nccl-tests output (text log or -J JSON) -> collbench run directories"),
    "predict": ("analysis.predict", "time, busbw and best algorithm at unmeasured sizes / world sizes, from a fit"),
    "verdict": ("analysis.verdict", "is my number good? peak busbw against the link / network roof, with the reason"),
    "export": ("analysis.export", "fitted two-tier model -> simulator config (--astra-sim: analytical network YAML)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse whose errors become :class:`AnalysisError` (one line, exit 2) instead of usage dumps."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise AnalysisError(message)


def _module(command: str):  # noqa: ANN202 - a module object
    name = COMMANDS[command][0]
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            raise AnalysisError(f"'{command}' is not available in this checkout ({name} is missing)") from None
        raise


def build_parser(command: str) -> argparse.ArgumentParser:
    """The parser of one subcommand, filled by its module's ``add_arguments``."""
    parser = _Parser(prog=f"collbench {command}", description=COMMANDS[command][1])
    _module(command).add_arguments(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``argv`` = [command, options...]; return the exit code."""
    args = list(argv)
    if not args or args[0] not in COMMANDS:
        print(f"collbench: error: choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return EXIT_USAGE
    command = args[0]
    try:
        parsed = build_parser(command).parse_args(args[1:])
        return int(_module(command).run(parsed))
    except AnalysisError as exc:
        print(f"collbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
