"""Critical path of a recorded (or constructed) message schedule, as alpha-beta-gamma coefficients.

No torch here: ``collectives.costs`` builds the double binary tree's schedule symbolically and measures it
with the same rule ``collectives.schedule`` applies to the schedules the real code executes.

A schedule is, per rank, its sequence of *events*: one event per ``collectives.batched_p2p.exchange`` call that
carries a message (its sends and receives: peer and bytes) and the bytes the rank combined after it
(before its next call).  ``critical_path`` matches the messages between ranks (per ordered pair, in
posting order, as torch.distributed matches them; sizes must agree, none may be left over, and no events
may wait on each other in a cycle, which would be a deadlock) and computes the coefficients of

    T = L alpha + W n beta + G n gamma

as three longest paths through the same dependency graph, one per term:

    finish(e) = max(finish(prev(e)), max over e' exchanging a message with e of finish(prev(e'))) + w(e)

where prev(e) is the previous event of the same rank (a rank starts its next ``exchange`` when the
previous one has returned and its combines are done) and the weight w(e) is

- L: 1 for every event (one batched ``batch_isend_irecv`` = one alpha: the messages of one call overlap
  their latency), 0 for a step posted behind the previous one on the same links (``batched_p2p.post`` with
  ``behind=True``: a later segment of a pipelined ring step, whose latency overlaps the earlier segments');
- W: max(bytes sent, bytes received) in the event, over n: the **one-port, full-duplex** model (a rank
  sends one byte stream and receives one byte stream at a time, at the link rate 1/beta, both directions
  at once; the messages of one call share the port);
- G: bytes combined after the event, over n (for a rank's first event, plus any combine it did before it).

A message couples its two events both ways (rendezvous: neither side's call returns before the other side
has posted it), as ``batch_isend_irecv`` + ``wait`` behaves for messages above the eager threshold.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field


@dataclass
class Event:
    """One ``exchange`` call of one rank."""

    rank: int
    index: int  # position in the rank's sequence of exchange calls that carry a message
    sends: list[tuple[int, int]] = field(default_factory=list)  # (peer, bytes)
    recvs: list[tuple[int, int]] = field(default_factory=list)
    combined: int = 0  # bytes reduced after this call, before the next
    alpha: int = 1  # 0: posted behind the previous step on the same links (a later segment of a pipelined ring
    # step), so its latency overlaps that step's transfer


@dataclass
class Schedule:
    """What every rank executed: its message-carrying events in order, and combines before the first one."""

    p: int
    nbytes: int  # n: nccl-tests' S
    events: list[list[Event]]
    combined_before: list[int]


@dataclass(frozen=True)
class Path:
    """Critical-path coefficients (L steps; W and G in units of n)."""

    L: int
    W: float
    G: float


def match(schedule: Schedule) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Partner events of every event: {(rank, index): [(peer rank, peer index), ...]}.

    Messages between an ordered pair (sender, receiver) are matched in posting order; a size mismatch or an
    unmatched message raises AssertionError (the real run would hang or corrupt data).
    """
    sends: dict[tuple[int, int], deque] = defaultdict(deque)  # (src, dst) -> (event index, bytes)
    for r, evs in enumerate(schedule.events):
        for e in evs:
            for peer, nbytes in e.sends:
                sends[(r, peer)].append((e.index, nbytes))
    partners: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for r, evs in enumerate(schedule.events):
        for e in evs:
            for peer, nbytes in e.recvs:
                queue = sends[(peer, r)]
                if not queue:
                    raise AssertionError(f"rank {r} event {e.index} receives from {peer}, which sends nothing more")
                j, sent = queue.popleft()
                if sent != nbytes:
                    raise AssertionError(f"{peer} -> {r}: {sent} bytes sent, {nbytes} expected")
                partners[(r, e.index)].append((peer, j))
                partners[(peer, j)].append((r, e.index))
    left = {k: len(q) for k, q in sends.items() if q}
    if left:
        raise AssertionError(f"messages never received: {left}")
    return partners


def critical_path(schedule: Schedule) -> Path:
    """L, W, G of the schedule (module docstring: three longest paths, one-port full-duplex W)."""
    partners = match(schedule)
    evs = schedule.events
    n = float(schedule.nbytes)

    def weights(e: Event) -> tuple[float, float, float]:
        port = max(sum(b for _, b in e.sends), sum(b for _, b in e.recvs))
        g = e.combined + (schedule.combined_before[e.rank] if e.index == 0 else 0)
        return float(e.alpha), port / n, g / n

    # finish[r][i] = (L, W, G) longest paths ending with event i of rank r; start of event i = finish of i - 1
    finish: list[list[tuple[float, float, float] | None]] = [[None] * len(x) for x in evs]
    zero = (0.0, 0.0, 0.0)

    def start(r: int, i: int) -> tuple[float, float, float] | None:
        return zero if i == 0 else finish[r][i - 1]

    pending = deque((r, 0) for r in range(schedule.p) if evs[r])
    stalls = 0
    while pending:
        r, i = pending.popleft()
        deps = [start(r, i)] + [start(pr, pi) for pr, pi in partners[(r, i)]]
        if any(d is None for d in deps):
            pending.append((r, i))
            stalls += 1
            if stalls > len(pending):
                raise AssertionError(f"deadlock: events wait on each other in a cycle ({sorted(pending)[:8]} ...)")
            continue
        stalls = 0
        w = weights(evs[r][i])
        finish[r][i] = tuple(max(d[k] for d in deps) + w[k] for k in range(3))  # type: ignore[index]
        if i + 1 < len(evs[r]):
            pending.append((r, i + 1))
    ends = [finish[r][-1] if evs[r] else (0.0, 0.0, schedule.combined_before[r] / n) for r in range(schedule.p)]
    return Path(int(max(e[0] for e in ends)), max(e[1] for e in ends), max(e[2] for e in ends))  # type: ignore[index]
