"""The one error type of ``analysis``: bad input a user can fix (missing file, corrupt result file, bad option)."""

from __future__ import annotations


class AnalysisError(Exception):
    """Printed as one ``collbench: error: ...`` line; the command exits 2."""
