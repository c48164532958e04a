"""One torch-free description per collective: what every other module asks instead of comparing names.

Like nccl-tests' ``struct testColl``, a :class:`CollectiveSpec` says what a collective is: whether it has a
root (and whether the root sends or receives), whether it reduces, how nccl-tests' size S maps to the per-rank
buffers, its bus-bandwidth factor, its alpha-beta-gamma lower bound (docs/theory.md) and whether the default
sweep measures it. ``bench`` (torch side: buffers, calls, data, checks) and ``analysis`` (busbw, imports, fits)
derive everything collective-specific from here and never compare names. The torch side of a collective
(algorithms, builtin call and check, harness) is its module ``collectives/<name>.py``; its costs are one entry
of ``collectives.costs``. docs/add-a-collective.md lists the steps.

Layouts of S (nccl-tests' size, docs/theory.md "Notation"):

- ``whole``: S is each rank's whole buffer (broadcast, reduce, all_reduce);
- ``gather``: S is the gathered output, p blocks of S/p; each rank's input is one block (all_gather, and
  gather, where only the root's output is the result);
- ``scatter``: S is each rank's input, p blocks; each rank's output is one block (reduce_scatter, and scatter,
  where only the root's input is read);
- ``exchange``: S is each rank's whole send buffer, p blocks (block j goes to rank j); the receive buffer
  has the same size (all_to_all, nccl-tests ``alltoall``: ``count`` is the whole per-rank buffer).

In-place: all_gather, reduce_scatter, gather and scatter are measured out of place and in place (nccl-tests'
two columns); broadcast, reduce and all_reduce are in place by nature; all_to_all is out of place only, as
torch's ``all_to_all_single`` and NCCL's grouped send/recv need distinct buffers (nccl-tests prints an in-place
alltoall column with ``#wrong`` N/A: it is not checked and its times are not a real exchange).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Layout = Literal["whole", "gather", "scatter", "exchange"]
Kind = Literal["collective", "point_to_point"]


def _lg_ceil(p: int) -> int:
    return (p - 1).bit_length() if p > 1 else 0


@dataclass(frozen=True)
class PointToPoint:
    """What a point-to-point case measures (``send_recv``; docs/protocol.md, "send_recv").

    Between ranks 0 and 1 at each size S of the sweep, the OSU way (osu_latency, osu_bw, osu_bibw); the three
    measurements are the ``algorithm`` column of results.csv:

    - ``latency``: ping-pong; rank 0 sends S bytes, rank 1 sends them back;
    - ``bw``: uni-directional bandwidth; rank 0 posts a window of ``window`` messages of S at once, rank 1
      answers with a one-element acknowledgement when it has them all;
    - ``bibw``: bi-directional bandwidth; both ranks post their window at once.

    One rule gives every figure: **time_us = an iteration's time / the messages of S it moves** (2 for a
    ping-pong round trip, so time_us is the one-way latency; ``window`` for ``bw``, the acknowledgement not
    counted; 2 x ``window`` for ``bibw``), and algbw = busbw = S / time_us (for ``bibw`` both directions).

    Imported nccl-tests ``sendrecv_perf`` logs get the algorithm ``ring_shift``: there every rank sends S to
    rank + 1 and receives S from rank - 1 at once (p concurrent messages around a ring), time_us is the time of
    that step and busbw = algbw = S / time_us (nccl-tests' factor 1): the per-rank one-direction rate while
    every link of the ring is busy, not the two-rank figures above.
    """

    measured: tuple[str, ...]  # what ``collbench run`` measures, in the order it measures them
    imported_algorithm: str  # the algorithm nccl-tests' program is imported as
    ranks: tuple[int, int]  # the two ranks that measure; every other rank waits at a barrier
    default_window: int  # messages in flight for ``bw`` and ``bibw`` (osu_bw's default window)
    slot_bytes: int  # distinct receive slots of a window stop here; past it messages share slots (as osu_bw)
    no_cost_model: str  # why the cost-model fits (across world sizes, joint) and the roofline leave it out

    @property
    def algorithms(self) -> tuple[str, ...]:
        """Every algorithm name a result of this case may carry: the measured ones and the imported one."""
        return (*self.measured, self.imported_algorithm)

    def messages_per_iteration(self, algorithm: str, window: int) -> int:
        """Messages of S one iteration moves: the divisor of the rule time_us = iteration time / messages."""
        per = {"latency": 2, "bw": window, "bibw": 2 * window}
        if algorithm not in per:
            raise KeyError(f"unknown send_recv measurement {algorithm!r}; known: {', '.join(self.measured)}")
        return per[algorithm]


@dataclass(frozen=True)
class CollectiveSpec:
    """What a collective is, independent of any algorithm or backend."""

    name: str
    rooted: bool  # takes a root rank (src for broadcast and scatter, dst for reduce and gather)
    reducing: bool  # combines data with a ReduceOp (has a gamma term)
    layout: Layout  # how S maps to the per-rank buffers (module docstring)
    busbw: Callable[[int], float]  # nccl-tests' factor F(p): busbw = algbw * F
    lower_bound: Callable[[int], tuple[float, float, float]]  # (L, W, G) of the alpha-beta-gamma bound, p >= 2
    root_name: str | None = None  # keyword of the root in torch's signature: ``src`` sends, ``dst`` receives
    default_sweep: bool = True  # ``collbench run`` measures it when --collectives is ``all``; else only when named
    kind: Kind = "collective"  # ``point_to_point``: between two ranks, no F(p) and no L(p), W(p), G(p) model
    nccl_tests_name: str | None = None  # nccl-tests' program stem (``<name>_perf``) when it differs from name
    bandwidth_algorithm: str = "ring"  # the hand-written algorithm whose cost model draws the roofline's link roof
    latency_algorithm: str = "tree"  # the hand-written algorithm with O(log p) steps, for small messages
    point_to_point: PointToPoint | None = None  # what a point-to-point case measures

    @property
    def is_point_to_point(self) -> bool:
        """Between two ranks (send_recv): the others idle, p does not enter; no cost model, busbw = algbw."""
        return self.kind == "point_to_point"

    @property
    def p2p(self) -> PointToPoint:
        """What this point-to-point case measures; ValueError for a collective."""
        if self.point_to_point is None:
            raise ValueError(f"{self.name} is a collective, not point-to-point")
        return self.point_to_point

    @property
    def min_world_size(self) -> int:
        """Ranks the case needs: 2 for point-to-point, 1 for a collective."""
        return 2 if self.is_point_to_point else 1

    @property
    def program(self) -> str:
        """nccl-tests' name of the collective: ``alltoall`` for all_to_all, the collective's name otherwise."""
        return self.nccl_tests_name or self.name

    @property
    def result_at_root_only(self) -> bool:
        """Only the root's buffer holds the result (reduce, gather: the root is ``dst``); other ranks' are
        scratch."""
        return self.root_name == "dst"

    @property
    def input_at_root_only(self) -> bool:
        """Only the root's input is read (broadcast, scatter: the root is ``src``); other ranks' are scratch."""
        return self.root_name == "src"

    @property
    def busbw_reveals_p(self) -> bool:
        """F(p) differs between world sizes, so busbw / algbw tells p (not for F = 1: broadcast, reduce)."""
        return len({self.busbw(p) for p in (2, 3, 4)}) > 1

    @property
    def blocked(self) -> bool:
        """S is cut into p per-rank blocks (all_gather, reduce_scatter): counts round down to a multiple of p."""
        return self.layout != "whole"

    @property
    def in_place_variants(self) -> bool:
        """nccl-tests measures an out-of-place and an in-place variant (all_gather, reduce_scatter)."""
        return self.layout in ("gather", "scatter")

    @property
    def only_in_place(self) -> bool:
        """The ``in_place`` value of a collective with one variant: True (in place by nature: broadcast, reduce,
        all_reduce) or False (out of place only: all_to_all; point-to-point, a send and a receive buffer)."""
        return self.layout != "exchange" and not self.is_point_to_point

    @property
    def separate_output(self) -> bool:
        """The call takes a second buffer besides S: the block of all_gather/reduce_scatter, the receive buffer
        of all_to_all."""
        return self.blocked

    def element_count(self, nbytes: int, element_size: int, world_size: int) -> int:
        """Elements of S (nccl-tests' count); blocked collectives round down to a multiple of p."""
        count = nbytes // element_size
        return count - count % world_size if self.blocked else count

    def block_count(self, count: int, world_size: int) -> int:
        """Elements of one rank's block of S (count / p for the blocked layouts); count otherwise."""
        return count // world_size if self.blocked else count

    def other_count(self, count: int, world_size: int) -> int:
        """Elements of the second buffer (``separate_output``): one block, or the whole receive buffer of an
        exchange; 0 when there is none."""
        if self.layout == "exchange":
            return count
        return count // world_size if self.blocked else 0

    def recorded_op(self, op: str) -> str:
        """The op a result records: the reduction, or ``none`` for collectives that do not reduce."""
        return op if self.reducing else "none"

    def recorded_root(self, root: int) -> int:
        """The root a result records: the root rank, or -1 for collectives without one (nccl-tests)."""
        return root if self.rooted else -1

    def variants(self, in_place: str) -> tuple[bool, ...]:
        """in_place values to measure for the ``--in-place both|yes|no`` option."""
        if not self.in_place_variants:
            return (self.only_in_place,)
        return {"both": (False, True), "yes": (True,), "no": (False,)}[in_place]


def _ring_share(p: int) -> float:
    return (p - 1) / p


SPECS: dict[str, CollectiveSpec] = {
    s.name: s
    for s in (
        CollectiveSpec(
            "broadcast", rooted=True, reducing=False, layout="whole", root_name="src",
            busbw=lambda p: 1.0,
            lower_bound=lambda p: (float(_lg_ceil(p)), 1.0, 0.0),
        ),
        CollectiveSpec(
            "reduce", rooted=True, reducing=True, layout="whole", root_name="dst",
            busbw=lambda p: 1.0,
            lower_bound=lambda p: (float(_lg_ceil(p)), 1.0, _ring_share(p)),
        ),
        CollectiveSpec(
            "all_reduce", rooted=False, reducing=True, layout="whole",
            busbw=lambda p: 2.0 * _ring_share(p),
            lower_bound=lambda p: (float(_lg_ceil(p)), 2.0 * _ring_share(p), _ring_share(p)),
        ),
        CollectiveSpec(
            "all_gather", rooted=False, reducing=False, layout="gather",
            busbw=_ring_share,
            lower_bound=lambda p: (float(_lg_ceil(p)), _ring_share(p), 0.0),
        ),
        CollectiveSpec(
            "reduce_scatter", rooted=False, reducing=True, layout="scatter",
            busbw=_ring_share,
            lower_bound=lambda p: (float(_lg_ceil(p)), _ring_share(p), _ring_share(p)),
        ),
        CollectiveSpec(
            "all_to_all", rooted=False, reducing=False, layout="exchange", nccl_tests_name="alltoall",
            bandwidth_algorithm="pairwise", latency_algorithm="bruck",
            busbw=_ring_share,
            lower_bound=lambda p: (float(_lg_ceil(p)), _ring_share(p), 0.0),
        ),
        # nccl-tests' src/gather.cu and src/scatter.cu (GatherGetBw, ScatterGetBw): algbw = S / t and
        # busbw = algbw * (p - 1) / p, the root sending or receiving every block but its own
        CollectiveSpec(
            "gather", rooted=True, reducing=False, layout="gather", root_name="dst", default_sweep=False,
            bandwidth_algorithm="linear",
            busbw=_ring_share,
            lower_bound=lambda p: (float(_lg_ceil(p)), _ring_share(p), 0.0),
        ),
        CollectiveSpec(
            "scatter", rooted=True, reducing=False, layout="scatter", root_name="src", default_sweep=False,
            bandwidth_algorithm="linear",
            busbw=_ring_share,
            lower_bound=lambda p: (float(_lg_ceil(p)), _ring_share(p), 0.0),
        ),
    )
}  # fmt: skip

def _no_cost_model(p: int) -> tuple[float, float, float]:
    raise ValueError("send_recv is point-to-point between two ranks: it has no L(p), W(p), G(p) lower bound")


#: ``send_recv``: the point-to-point case of ``collbench run`` (not a collective: not in SPECS, the registry,
#: the cost table or the collective tests); measured only when ``--collectives`` names it.
SEND_RECV = CollectiveSpec(
    "send_recv", rooted=False, reducing=False, layout="whole", nccl_tests_name="sendrecv", default_sweep=False,
    kind="point_to_point", busbw=lambda p: 1.0, lower_bound=_no_cost_model,
    point_to_point=PointToPoint(
        measured=("latency", "bw", "bibw"), imported_algorithm="ring_shift", ranks=(0, 1), default_window=64,
        slot_bytes=64 << 20,
        no_cost_model="send_recv is point-to-point between two ranks: no L(p), W(p), G(p) cost model "
        "(curve fits only)",
    ),
)  # fmt: skip

#: Every kind of case ``collbench run`` measures and ``collbench import`` reads: the collectives and send_recv.
CASES: dict[str, CollectiveSpec] = {**SPECS, SEND_RECV.name: SEND_RECV}

#: The collectives collbench measures, in nccl-tests' order.
COLLECTIVES: tuple[str, ...] = tuple(SPECS)
#: What ``collbench run --collectives all`` (the default) measures; the others run when named.
DEFAULT_SWEEP: tuple[str, ...] = tuple(name for name, s in SPECS.items() if s.default_sweep)


class UnknownCollectiveError(KeyError):
    """An unknown collective name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


def spec(name: str) -> CollectiveSpec:
    """The description of ``name``; UnknownCollectiveError (a KeyError) listing the known names otherwise."""
    found = SPECS.get(name)
    if found is None:
        raise UnknownCollectiveError(f"unknown collective {name!r}; known: {', '.join(COLLECTIVES)}")
    return found


def describe(name: str) -> CollectiveSpec:
    """The description of a collective or of send_recv; UnknownCollectiveError listing them otherwise."""
    found = CASES.get(name)
    if found is None:
        raise UnknownCollectiveError(f"unknown collective {name!r}; known: {', '.join(CASES)}")
    return found


def is_point_to_point(name: str) -> bool:
    """True for a point-to-point case (send_recv), what the analysis asks before it looks for a cost model or a
    busbw factor; False for collectives and unknown names."""
    found = CASES.get(name)
    return found is not None and found.is_point_to_point


def by_program(program: str) -> str | None:
    """The collective nccl-tests' program ``<program>_perf`` measures, or None when collbench has none."""
    return next((s.name for s in SPECS.values() if s.program == program), None)


def busbw_factor(collective: str, world_size: int) -> float:
    """nccl-tests' bus-bandwidth factor F(p) of ``collective`` (docs/theory.md, "algbw and busbw")."""
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world size must be a positive integer, got {world_size!r}")
    return spec(collective).busbw(world_size)
