"""The suite runs on two pytest-xdist workers (``-n 2`` in pyproject.toml), and a test marked ``alone`` runs
with no other test beside it: it measures times and decides on them (a planted slowdown, a stopping rule, a
slow rank), and a second worker's ranks on the same two cores would be the noise it must not see.

A readers-writer lock on two files every worker of the session shares: an ordinary test holds ``room``
shared; an ``alone`` test holds ``gate`` (so no new test starts) and then ``room`` exclusively (so it waits
for the running one to end). Without xdist (``-n 0``, ``-p no:xdist``) there is one process and no lock.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alone_lock import turn

#: workerinput key of the lock folder the controller gives every worker
LOCK_DIR_KEY = "collbench_lock_dir"
_LOCK_DIR = pytest.StashKey[str]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # xdist controller: once per worker, before it starts
    config = node.config
    if _LOCK_DIR not in config.stash:
        config.stash[_LOCK_DIR] = tempfile.mkdtemp(prefix="collbench-test-lock-")
    node.workerinput[LOCK_DIR_KEY] = config.stash[_LOCK_DIR]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _LOCK_DIR in config.stash:  # the controller made it
        shutil.rmtree(config.stash[_LOCK_DIR], ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    lock_dir = getattr(item.config, "workerinput", {}).get(LOCK_DIR_KEY)
    if lock_dir is None:
        yield
        return
    with turn(Path(lock_dir), alone=item.get_closest_marker("alone") is not None):
        yield
