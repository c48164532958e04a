"""Session-scoped worker pools for the multi-process collectives tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from collpool import Pools


@pytest.fixture(scope="session")
def pools() -> Iterator[Pools]:
    p = Pools()
    yield p
    p.close()
