"""The error ``analysis`` raises for bad input a user can fix (missing file, corrupt result file, bad option).

It is ``bench.errors.UsageError`` under the name the analysis modules use: the command line prints it as one
``collbench: error: ...`` line and exits 2.
"""

from __future__ import annotations

from bench.errors import UsageError as AnalysisError

__all__ = ["AnalysisError"]
