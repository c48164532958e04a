"""The readers-writer file lock behind the ``alone`` mark (tests/conftest.py): any number of ordinary tests
at once, or one ``alone`` test and nothing else; ``gate`` keeps new tests out while an alone test waits."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def turn(lock_dir: Path, alone: bool) -> Iterator[None]:
    """Hold the room shared (ordinary test) or alone (``alone`` test) for the test's setup, call and teardown."""
    with open(lock_dir / "gate", "a") as gate, open(lock_dir / "room", "a") as room:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(room, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            if not alone:
                fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(room, fcntl.LOCK_UN)
            if alone:
                fcntl.flock(gate, fcntl.LOCK_UN)
