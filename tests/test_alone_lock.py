"""The lock behind the ``alone`` mark: an alone test never overlaps another test, ordinary tests overlap.

flock locks belong to open files, so two threads that each open the lock files contend like two xdist workers.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from alone_lock import turn

HOLD_S = 0.3


def _hold(lock_dir: Path, alone: bool, spans: list[tuple[float, float]], entered: threading.Event) -> None:
    with turn(lock_dir, alone):
        start = time.monotonic()
        entered.set()
        time.sleep(HOLD_S)
        spans.append((start, time.monotonic()))


def _two(lock_dir: Path, first_alone: bool, second_alone: bool) -> tuple[tuple[float, float], tuple[float, float]]:
    """The first holder enters, then the second tries while the first is inside; their (enter, leave) spans."""
    first: list[tuple[float, float]] = []
    second: list[tuple[float, float]] = []
    in_first, in_second = threading.Event(), threading.Event()
    a = threading.Thread(target=_hold, args=(lock_dir, first_alone, first, in_first))
    a.start()
    assert in_first.wait(5)
    b = threading.Thread(target=_hold, args=(lock_dir, second_alone, second, in_second))
    b.start()
    a.join(5)
    b.join(5)
    return first[0], second[0]


def test_alone_waits_for_a_running_test_and_others_wait_for_it(tmp_path: Path) -> None:
    for first_alone, second_alone in ((True, False), (False, True), (True, True)):
        (_, leave), (enter, _) = _two(tmp_path, first_alone, second_alone)
        assert enter >= leave, (first_alone, second_alone)


def test_ordinary_tests_run_side_by_side(tmp_path: Path) -> None:
    (_, leave), (enter, _) = _two(tmp_path, False, False)
    assert enter < leave - HOLD_S / 2


def test_a_waiting_alone_test_keeps_new_tests_out(tmp_path: Path) -> None:
    """Ordinary test 1 runs; an alone test queues; ordinary test 2, arriving later, starts after the alone one."""
    spans: dict[str, list[tuple[float, float]]] = {"one": [], "alone": [], "two": []}
    events = {k: threading.Event() for k in spans}
    one = threading.Thread(target=_hold, args=(tmp_path, False, spans["one"], events["one"]))
    one.start()
    assert events["one"].wait(5)
    lone = threading.Thread(target=_hold, args=(tmp_path, True, spans["alone"], events["alone"]))
    lone.start()
    time.sleep(0.05)  # the alone test now holds the gate and waits for the room
    two = threading.Thread(target=_hold, args=(tmp_path, False, spans["two"], events["two"]))
    two.start()
    for t in (one, lone, two):
        t.join(5)
    assert spans["alone"][0][0] >= spans["one"][0][1]
    assert spans["two"][0][0] >= spans["alone"][0][1]
