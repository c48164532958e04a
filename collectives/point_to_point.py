"""``send_recv``: the point-to-point case of ``collbench run`` (not a collective), torch-free.

A :class:`collectives.spec.CollectiveSpec` describes an operation every rank of a group takes part in, with a
busbw factor F(p) and an L(p), W(p), G(p) cost model; point-to-point between two ranks has neither (p does not
enter, the other ranks idle), so ``send_recv`` is described here instead and is not in ``COLLECTIVES``: the
registry, the cost table and the collective tests leave it alone, and ``collbench run`` measures it only when
``--collectives`` names it.

What is measured (docs/protocol.md, "send_recv"), between ranks 0 and 1 at each size S of the sweep, the OSU way
(osu_latency, osu_bw, osu_bibw); the three measurements are the ``algorithm`` column of results.csv:

- ``latency``: ping-pong; rank 0 sends S bytes, rank 1 sends them back;
- ``bw``: uni-directional bandwidth; rank 0 posts a window of ``window`` messages of S at once, rank 1 answers
  with a one-element acknowledgement when it has them all;
- ``bibw``: bi-directional bandwidth; both ranks post their window at once.

One rule gives every figure: **time_us = an iteration's time / the messages of S it moves** (2 for a ping-pong
round trip, so time_us is the one-way latency, round trip / 2; ``window`` for ``bw``, the acknowledgement not
counted; 2 x ``window`` for ``bibw``), and algbw = busbw = S / time_us: the bytes moved per second (for
``bibw`` both directions together, as osu_bibw reports).

Imported nccl-tests ``sendrecv_perf`` logs are ``send_recv`` too, with the algorithm ``ring_shift``: there every
rank sends S to rank + 1 and receives S from rank - 1 at once (p concurrent messages around a ring), time_us is
the time of that step and busbw = algbw = S / time_us (nccl-tests' factor 1): the per-rank one-direction rate
while every link of the ring is busy, not the two-rank figures above.
"""

from __future__ import annotations

NAME = "send_recv"
#: what ``collbench run`` measures, in the order it measures them
MEASURED: tuple[str, ...] = ("latency", "bw", "bibw")
#: nccl-tests' sendrecv_perf, as imported
RING_SHIFT = "ring_shift"
ALGORITHMS: tuple[str, ...] = (*MEASURED, RING_SHIFT)
#: nccl-tests' program stem (``sendrecv_perf``)
NCCL_TESTS_PROGRAM = "sendrecv"
#: messages in flight for ``bw`` and ``bibw`` (osu_bw's default window)
DEFAULT_WINDOW = 64
#: distinct receive slots of a window stop at this many bytes; past it messages share slots (osu_bw receives its
#: whole window into one buffer)
SLOT_BYTES = 64 << 20
#: the two ranks that measure; every other rank waits at a barrier
RANKS = (0, 1)
MIN_WORLD_SIZE = 2
#: why the cost-model fits (across world sizes, joint) and the roofline leave send_recv out
NO_COST_MODEL = "send_recv is point-to-point between two ranks: no L(p), W(p), G(p) cost model (curve fits only)"


def is_point_to_point(collective: str) -> bool:
    """True for ``send_recv`` (what the analysis asks before it looks for a cost model or a busbw factor)."""
    return collective == NAME


def messages_per_iteration(algorithm: str, window: int) -> int:
    """Messages of S one iteration moves: the divisor of the rule time_us = iteration time / messages."""
    if algorithm == "latency":
        return 2
    if algorithm == "bw":
        return window
    if algorithm == "bibw":
        return 2 * window
    raise KeyError(f"unknown send_recv measurement {algorithm!r}; known: {', '.join(MEASURED)}")
