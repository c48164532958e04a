"""The messages a rank sends to the process that supervises it (``collbench run``'s parent, the plugin's pool).

Every message is a plain tuple ``(kind, rank, payload)`` that pickles over a multiprocessing pipe; both
sides import only this module, as pyperf's manager and worker share only their JSON.

| kind | payload | sent by |
|---|---|---|
| ``meta`` | versions and hardware a rank can tell (dict) | rank 0, once |
| ``point`` | ``Measurement.to_message()`` (dict); None off rank 0 | rank 0 per case; every rank per pool request |
| ``skip`` | ``{"label", "reason"}``: the algorithm rejected the case | rank 0 |
| ``tick`` | units of work done (int: a visit of a case, or a finished case): watchdog and progress bar | every rank |
| ``ready`` | None: the process group is up (pool) | every rank |
| ``done`` | None: the plan is finished | every rank |
| ``error`` | one line; ``INIT_ERROR_PREFIX`` + line when the group never came up | any rank |
| ``result`` | a command's whole result (``collbench pairs``: every pair's figures, the hosts) | rank 0, once |
"""

from __future__ import annotations

from typing import Any, NamedTuple

META, POINT, SKIP, TICK, READY, DONE, ERROR = "meta", "point", "skip", "tick", "ready", "done", "error"
RESULT = "result"

#: Prefix of an ``error`` payload from ``init_process_group`` (backend or rendezvous failure).
INIT_ERROR_PREFIX = "init: "


class Message(NamedTuple):
    """One message from a rank."""

    kind: str
    rank: int
    payload: Any = None
