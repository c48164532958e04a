"""Test helper: the skip mark of tests that stand up an emulated cluster (``collbench emulate``)."""

from __future__ import annotations

import os
import shutil

import pytest

NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(t) is None for t in ("ip", "tc", "unshare")),
    reason="collbench emulate needs root and iproute2 (ip, tc) and unshare",
)
