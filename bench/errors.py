"""The exit codes of ``collbench`` and its one user-error exception (torch-free; every layer raises it).

``collbench.cli`` turns a :class:`UsageError` into one ``collbench: error: ...`` line on stderr and exit 2.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143  # 128 + SIGINT, + SIGTERM


class UsageError(Exception):
    """Bad input a user can fix (an option, a missing or corrupt file): one line on stderr, exit 2, before any
    process starts."""
