"""Test-only fault algorithms (only when env COLLBENCH_TESTING=1): hang, crash, wrong result, slow, reject.

They wrap ``builtin`` and misbehave on rank COLLBENCH_TEST_FAULT_RANK (default 1; ``all``: every rank, so no
peer is left waiting inside the backend and only collbench's watchdog can end a hang) once the nccl-tests size S
reaches COLLBENCH_TEST_FAULT_BYTES (default 0), so a test can keep a few good points before the fault.
``COLLBENCH_TEST_PORT`` forces the first rendezvous port of a spawned run (a test makes it busy);
``COLLBENCH_TEST_INIT_FAIL`` (a rank or ``all``) makes init_process_group fail on that rank.
``test_slow`` adds COLLBENCH_TEST_SLOW_US microseconds of sleep to every call on every rank; ``test_reject``
raises ValueError on every rank from the fault size on, before communicating (an unsupported case).
``test_tick`` plants interference: every rank sleeps COLLBENCH_TEST_SLOW_US before the same pseudo-random
COLLBENCH_TEST_TICK_FRACTION (default 0.5) of its calls (the slow mode of a busy host, docs/noise.md).
``collbench pairs`` plants a slow rank the same way: with COLLBENCH_TEST_SLOW_US set, rank
COLLBENCH_TEST_FAULT_RANK sleeps that long before each of its message steps (``pair_delay_s``).
``collbench run``'s send_recv case: with COLLBENCH_TEST_P2P_WRONG=1, rank COLLBENCH_TEST_FAULT_RANK sends one wrong
element in the checked iteration of every send_recv case from COLLBENCH_TEST_FAULT_BYTES on (``p2p_wrong``).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

FAULTS: tuple[str, ...] = ("test_hang", "test_crash", "test_wrong", "test_slow", "test_reject", "test_tick")


def enabled() -> bool:
    """Fault algorithms exist only in test runs."""
    return os.environ.get("COLLBENCH_TESTING") == "1"


def forced_port() -> int | None:
    """The port a test wants the first spawn attempt to use (COLLBENCH_TEST_PORT), else None."""
    value = os.environ.get("COLLBENCH_TEST_PORT")
    return int(value) if enabled() and value else None


def maybe_fail_init(rank: int) -> None:
    """Simulate a backend that fails to initialise on the rank(s) named by COLLBENCH_TEST_INIT_FAIL."""
    which = os.environ.get("COLLBENCH_TEST_INIT_FAIL")
    if enabled() and which is not None and which in ("all", str(rank)):
        raise RuntimeError(f"test fault: gloo could not initialise on rank {rank}")


def _nbytes(collective: str, args: tuple) -> int:
    """nccl-tests' S: the largest tensor argument (AG output, RS input, else the one buffer)."""
    return max(t.numel() * t.element_size() for t in args if hasattr(t, "element_size"))


def _result(collective: str, args: tuple):
    return args[0]  # the tensor for bcast/reduce/all_reduce, the output for AG/RS


def get(collective: str, name: str) -> Callable[..., None]:
    """The fault algorithm ``name`` for ``collective``; KeyError when unknown or testing is off."""
    if not enabled() or name not in FAULTS:
        raise KeyError(name)
    import torch.distributed as dist

    import collectives

    inner = collectives.get(collective, "builtin")
    rank_env = os.environ.get("COLLBENCH_TEST_FAULT_RANK", "1")
    fault_rank = None if rank_env == "all" else int(rank_env)
    fault_bytes = int(os.environ.get("COLLBENCH_TEST_FAULT_BYTES", "0"))
    slow_s = float(os.environ.get("COLLBENCH_TEST_SLOW_US", "0")) / 1e6
    tick_fraction = float(os.environ.get("COLLBENCH_TEST_TICK_FRACTION", "0.5"))
    draws = random.Random(1234)  # the same sequence on every rank: ranks call in step

    def fn(*args, **kwargs) -> None:
        on_rank = fault_rank is None or dist.get_rank() == fault_rank
        faulty = on_rank and _nbytes(collective, args) >= fault_bytes
        if name == "test_hang" and faulty:
            while True:
                time.sleep(3600)
        if name == "test_crash" and faulty:
            os._exit(3)
        if name == "test_reject" and _nbytes(collective, args) >= fault_bytes:
            raise ValueError(f"test_reject: {collective} does not support this case")
        if name == "test_slow" and slow_s > 0:
            time.sleep(slow_s)
        if name == "test_tick" and draws.random() < tick_fraction:
            time.sleep(slow_s)
        inner(*args, **kwargs)
        if name == "test_wrong" and _nbytes(collective, args) >= fault_bytes:
            out = _result(collective, args)
            if out.numel():
                out.view(-1)[0] += 1

    fn.__name__ = name
    return fn


def pair_delay_s(rank: int) -> float:
    """Seconds the planted slow rank of ``collbench pairs`` waits before each message step (0 elsewhere)."""
    if not enabled():
        return 0.0
    which = os.environ.get("COLLBENCH_TEST_FAULT_RANK", "1")
    if which != "all" and which != str(rank):
        return 0.0
    return float(os.environ.get("COLLBENCH_TEST_SLOW_US", "0")) / 1e6


def p2p_wrong(rank: int, nbytes: int) -> bool:
    """Whether ``rank`` sends one wrong element in the checked iteration of a send_recv case of ``nbytes``."""
    if not enabled() or os.environ.get("COLLBENCH_TEST_P2P_WRONG") != "1":
        return False
    which = os.environ.get("COLLBENCH_TEST_FAULT_RANK", "1")
    return which in ("all", str(rank)) and nbytes >= int(os.environ.get("COLLBENCH_TEST_FAULT_BYTES", "0"))
