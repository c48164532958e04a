"""Exit codes and the usage error of the ``collbench`` command line (shared by the parser and the runner)."""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A bad option or input: one line on stderr, exit 2, before any process starts."""


class UsageParser(argparse.ArgumentParser):
    """argparse that reports errors as one ``collbench: error: ...`` line (exit 2) instead of a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)
