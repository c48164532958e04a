"""The search of ``collbench hunt``: which nodes and NICs (rails) make collectives slow, in few rounds (torch-free).

The strategy talks to a *tester* (``Tester``): "run these tests at once, one round, and give me each test's
busbw". The ranks of a running job are one tester (``bench.hunt``), a model network another (``bench.hunt_sim``),
so the simulator runs exactly this code. A unit is one NIC of one node, (node, rail); a test is an all-reduce
over the units of one rail of a few nodes (a ring of them), or over the ranks of one node (node-local). A ring
runs at its slowest member's speed, so a fast test clears all of its members and a slow one makes all of them
suspects. The phases:

1. node-local (only with several ranks per node): every node's own all-reduce, twice; a node low both times is
   blamed (the node itself, not its network).
2. screen (the nodes not blamed in 1): ``screen_rounds`` rounds of random disjoint groups of ``group_size``
   nodes, a new draw each round, every node in one group per round, on every rail at once. A unit whose every
   screen test was low is a suspect; a unit in a fast test is a known-good anchor.
3. regroup: while there are more suspects than anchors to confirm them, the suspects are grouped among
   themselves (halving the group size each round); a suspect in a fast group is cleared.
4. confirm: each suspect in a pair with a known-good anchor, each time a different anchor, until it is low
   twice (blamed) or reads fast once (cleared: noise only slows a test down, so a slow NIC never reads fast),
   at most MAX_CONFIRMS times (then it stays a suspect, not blamed). Pairs of two spare anchors in the same
   round (controls) can only lower that round's reference for the low verdict.
5. sweep (only with ``sweep_links``): the screen sees a link only when its two nodes happen to be ring neighbours,
   so on request every link among the nodes not blamed is put in a ring: ceil((q - 1) / 2) rounds of one ring
   over all q of them per rail, in Walecki's zig-zag orders (together they cross every pair once; a round can
   cross at most q links, so no fewer rounds can).
6. links: a low test whose members are all cleared (none blamed or still suspect) is unexplained: one of the
   links between ring-adjacent members of it is slow (a link in a fast ring is cleared). Those links are tested
   as pairs, disjoint pairs in one round, one control pair per rail held back first (so each reading is judged
   against pairs of its own round), a link with one low reading first read again (the other links of its test
   wait); a link low twice and never fast is blamed (kind ``link``), one fast reading clears it.

A test is low when its busbw is below ``cut`` times the reference (the median busbw of the healthy tests of its
kind and rail). ``cut`` is the lower of ``threshold`` and exp(-``noise_z`` sigma), sigma the robust standard
deviation of the healthy tests' log(busbw / reference) (1.4826 MAD; noise on busbw is multiplicative), so
noise never blames; 1 - cut is the smallest slowdown the
search could see. A blamed unit's confidence is 1 minus the chance that a healthy unit reads as low as it did
in all its confirming tests, with that noise. A test that never finished because nodes stopped answering ends
the search: those nodes are blamed as unreachable and the tests done are kept.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

LOCAL, SCREEN, REGROUP, CONFIRM, CONTROL, LINK = "local", "screen", "regroup", "confirm", "control", "link"
SWEEP = "sweep"
DEFAULT_THRESHOLD = 0.8  # a test below this fraction of the reference is low (unless the noise needs lower)
DEFAULT_GROUP_SIZE = 8
DEFAULT_SCREEN_ROUNDS = 2
NOISE_Z = 4.0  # robust standard deviations of healthy noise between the reference and the cut
MIN_SIGMA = 0.01  # the noise never counts as smaller than 1 %
FEW_SAMPLES, FEW_SAMPLES_SIGMA = 8, 0.10  # from fewer healthy tests than this, no noise below 10 % is claimed
CONTROLS_PER_RAIL = 2  # anchor-anchor pairs per rail in each confirm round
MAX_CONFIRMS = 4  # confirming tests of one suspect at most (each with a different anchor), readings of one link
MAX_LINK_ROUNDS = 8  # rounds of the link phase at most (each reads every pending link it can)

Link = tuple[int, int, int]  # (node a, node b, rail) with a < b: both directions are one link


@dataclass(frozen=True)
class Test:
    """One all-reduce of a round: over ``nodes`` on ``rail`` (local rank ``rail`` of each node), or over all
    ranks of the one node in ``nodes`` when ``rail`` is None (node-local). ``nodes`` is the ring's order: each
    sends to the next, the last to the first (``ring_links``)."""

    kind: str
    nodes: tuple[int, ...]
    rail: int | None


@dataclass(frozen=True)
class TestResult:
    """What one test measured: its busbw (None when it did not finish), wrong elements, the nodes that stopped
    answering during it."""

    test: Test
    busbw_gbps: float | None
    time_us: float | None = None
    n_wrong: int = 0
    unreachable: tuple[int, ...] = ()


class Tester(Protocol):
    """Runs one round of disjoint tests at once and returns each test's result and the round's seconds."""

    nodes: int
    rails: int

    def run_round(self, tests: Sequence[Test]) -> tuple[list[TestResult], float]: ...


@dataclass
class RoundRecord:
    """One round: its phase, its tests' results, its seconds."""

    index: int
    phase: str
    results: list[TestResult]
    seconds: float


@dataclass(frozen=True)
class HuntSettings:
    """How the search spends its rounds."""

    group_size: int = DEFAULT_GROUP_SIZE
    screen_rounds: int = DEFAULT_SCREEN_ROUNDS
    threshold: float = DEFAULT_THRESHOLD
    noise_z: float = NOISE_Z
    max_rounds: int | None = None
    budget_s: float | None = None
    seed: int = 0
    sweep_links: bool = False  # put every link in a ring (ceil((q - 1) / 2) more rounds), not only the screen's


@dataclass
class Blame:
    """A blamed node (``rail`` None: every NIC of it, or it has one), one NIC of it, or (kind ``link``) the link on
    ``rail`` between ``nodes`` (``node`` the first of them), with the evidence."""

    node: int
    rail: int | None
    kind: str  # "network" (its NIC(s) in rings and pairs), "node-local", "unreachable" or "link"
    busbw_gbps: float | None  # median of the tests that blame it
    reference_gbps: float | None  # healthy median of the same kind
    confidence: float
    evidence: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[int] = field(default_factory=list)  # the blamed node, or the two nodes of a link

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes = [self.node]


@dataclass
class HuntResult:
    """The outcome of a search."""

    nodes: int
    rails: int
    blamed: list[Blame]
    suspects: list[tuple[int, int | None]]  # still suspect when the budget ran out: not blamed
    rounds: list[RoundRecord]
    reference_gbps: dict[str, float]  # "rail0", "rail1", ..., "local"
    noise_sigma: float
    cut: float
    status: str  # "complete", "budget" (ran out with suspects left) or "unreachable"
    seconds: float
    local_noise_sigma: float | None = None  # node-local tests (several ranks per node only)
    local_cut: float | None = None

    @property
    def min_detectable_slowdown(self) -> float:
        """The smallest slowdown (fraction of the reference lost) a test could be seen to have."""
        return 1.0 - self.cut

    @property
    def n_tests(self) -> int:
        return sum(len(r.results) for r in self.rounds)

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes, "rails": self.rails, "status": self.status,
            "blamed": [asdict(b) for b in self.blamed],
            "suspects": [{"node": n, "rail": r} for n, r in self.suspects],
            "n_rounds": len(self.rounds), "n_tests": self.n_tests, "seconds": self.seconds,
            "reference_gbps": self.reference_gbps, "noise_sigma": self.noise_sigma, "cut": self.cut,
            "local_noise_sigma": self.local_noise_sigma, "local_cut": self.local_cut,
            "min_detectable_slowdown": self.min_detectable_slowdown,
            "rounds": [{"index": r.index, "phase": r.phase, "seconds": r.seconds,
                        "tests": [_result_json(x) for x in r.results]} for r in self.rounds],
        }  # fmt: skip


def _result_json(x: TestResult) -> dict[str, Any]:
    return {"kind": x.test.kind, "nodes": list(x.test.nodes), "rail": x.test.rail, "busbw_gbps": x.busbw_gbps,
            "time_us": x.time_us, "n_wrong": x.n_wrong, "unreachable": list(x.unreachable)}  # fmt: skip


def ring_links(test: Test) -> list[Link]:
    """The links a ring test's traffic crosses: each node to the next and the last to the first (one link for a
    pair); none for a node-local test."""
    n = test.nodes
    if test.rail is None or len(n) < 2:
        return []
    hops = [(n[i], n[(i + 1) % len(n)]) for i in range(len(n) if len(n) > 2 else 1)]
    return [(min(a, b), max(a, b), test.rail) for a, b in hops]


def max_links(nodes: int) -> int:
    """How many distinct links ``nodes`` nodes have (one per pair)."""
    return nodes * (nodes - 1) // 2


def zigzag_rings(nodes: Sequence[int]) -> list[tuple[int, ...]]:
    """Rings over all of ``nodes`` that together cross every pair of them (Walecki): for an even count the
    zig-zag paths i, i+1, i-1, i+2, ... around the circle (i < q/2), each closed into a ring; for an odd count the
    last node joins both ends of the zig-zags of the others. ceil((q - 1) / 2) rings."""
    q = len(nodes)
    if q < 2:
        return []
    circle, hub = (list(nodes), []) if q % 2 == 0 else (list(nodes[:-1]), [nodes[-1]])
    m = len(circle)
    rings = []
    for i in range(m // 2):
        order = [i] + [i + d * s for d in range(1, m // 2) for s in (1, -1)] + [i + m // 2]
        rings.append(tuple(hub + [circle[j % m] for j in order]))
    return rings or [tuple(nodes)]


def default_group_size(nodes: int) -> int:
    """Groups of 8 nodes, but at least 4 groups per round (so the median test of a round is a healthy one)."""
    return max(2, min(DEFAULT_GROUP_SIZE, nodes // 4))


def partition(items: Sequence[int], size: int, rng: random.Random) -> list[tuple[int, ...]]:
    """``items`` shuffled into len // size disjoint groups whose sizes differ by at most one (each >= 2 when
    there are at least 2 items); fewer than 2 items: no group."""
    items = list(items)
    rng.shuffle(items)
    n_groups = max(1, len(items) // max(2, size))
    if len(items) < 2:
        return []
    groups = [tuple(sorted(items[i::n_groups])) for i in range(n_groups)]
    return [g for g in groups if len(g) >= 2]


def _upper_quartile(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[(3 * (len(ordered) - 1)) // 4]


def _tier(rail: int | None) -> str:
    return "local" if rail is None else "network"


def _tier_of(key: str) -> str:
    return "local" if key == "local" else "network"


def _key(rail: int | None) -> str:
    return "local" if rail is None else f"rail{rail}"


class Hunt:
    """One search over a tester's nodes and rails (module docstring)."""

    def __init__(self, tester: Tester, settings: HuntSettings) -> None:
        self.tester = tester
        self.s = settings
        self.nodes, self.rails = tester.nodes, tester.rails
        self.rounds: list[RoundRecord] = []
        self.t0 = time.monotonic()
        self.seconds = 0.0  # the tester's seconds, summed (the simulator's model time; the ranks' wall time)
        self.unreachable: list[tuple[int, RoundRecord, TestResult]] = []
        self.active = list(range(self.nodes))  # the nodes the network phases test (not those blamed node-local)
        self._cache: dict[tuple[str, int], Any] = {}  # derived figures, valid while no round is added

    # --- rounds and budget -------------------------------------------------------------------------------

    def _budget_left(self) -> bool:
        if self.s.max_rounds is not None and len(self.rounds) >= self.s.max_rounds:
            return False
        return self.s.budget_s is None or self.seconds < self.s.budget_s

    def _round(self, phase: str, tests: list[Test]) -> RoundRecord | None:
        """Run one round; None when the budget is spent or a node stopped answering (then the search ends)."""
        if not tests or not self._budget_left() or self.unreachable:
            return None
        results, seconds = self.tester.run_round(tests)
        rec = RoundRecord(len(self.rounds), phase, results, seconds)
        self.rounds.append(rec)
        self.seconds += seconds
        for x in results:
            for node in x.unreachable:
                if node not in {n for n, _, _ in self.unreachable}:
                    self.unreachable.append((node, rec, x))
        return None if self.unreachable else rec

    # --- references and noise ----------------------------------------------------------------------------

    def _cached(self, name: str, make: Any) -> Any:
        key = (name, len(self.rounds))
        if key not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[1] == key[1]}  # older rounds' are stale
            self._cache[key] = make()
        return self._cache[key]

    def _healthy(self) -> dict[str, float]:
        """The healthy median busbw per rail ("local" for node-local), from screen tests, controls and node-local
        tests."""
        return self._cached("stats", self._stats)[0]

    def noise_sigma(self, rail: int | None = 0) -> float:
        """Robust standard deviation (1.4826 MAD) of log(healthy busbw / its reference): of the network tests (every
        rail), or of the node-local ones when ``rail`` is None (CPU-bound on a busy host, they are noisier)."""
        return self._cached("stats", self._stats)[1][_tier(rail)]

    def _stats(self) -> tuple[dict[str, float], dict[str, float]]:
        """(healthy median per rail, noise per tier). Slowness only ever lowers a test, and up to half of the tests
        of a small cluster can hold a slow node, so the healthy tests are found from above: start at the upper
        quartile, keep the tests above the cut of that reference, take their median and MAD, and again."""
        values: dict[str, list[float]] = {}
        for rec in self.rounds:
            for x in rec.results:
                if x.busbw_gbps is not None and x.test.kind in (SCREEN, CONTROL, LOCAL):
                    values.setdefault(_key(x.test.rail), []).append(x.busbw_gbps)
        refs = {k: _upper_quartile(v) for k, v in values.items()}
        sigma = {"network": MIN_SIGMA, "local": MIN_SIGMA}
        cut = {t: self.s.threshold for t in sigma}
        for _ in range(4):
            healthy = {k: [x for x in v if x >= cut[_tier_of(k)] * refs[k]] for k, v in values.items()}
            refs = {k: statistics.median(v) if v else refs[k] for k, v in healthy.items()}
            for tier in sigma:
                logs = [math.log(x / refs[k]) for k, v in healthy.items() if _tier_of(k) == tier for x in v if x > 0]
                floor = MIN_SIGMA if len(logs) >= FEW_SAMPLES else FEW_SAMPLES_SIGMA
                sigma[tier] = floor
                if len(logs) >= 3:
                    med = statistics.median(logs)
                    sigma[tier] = max(floor, 1.4826 * statistics.median(abs(r - med) for r in logs))
                cut[tier] = min(self.s.threshold, math.exp(-self.s.noise_z * sigma[tier]))
        return refs, sigma

    def reference(self, rail: int | None, rec: RoundRecord | None = None) -> float | None:
        """The healthy median busbw of tests on ``rail`` (node-local tests against node-local ones), from every
        screen test and control; in a round with controls, the lower of that and the median of the round's
        controls, so a round slowed as a whole (a busy host, other traffic) blames nobody."""
        overall = self._healthy().get(_key(rail))
        if rec is not None:
            controls = [x.busbw_gbps for x in rec.results
                        if x.test.kind == CONTROL and x.test.rail == rail and x.busbw_gbps]  # fmt: skip
            if controls:
                return min(statistics.median(controls), overall or math.inf)
        return overall

    def cut(self, rail: int | None = 0) -> float:
        """Below this fraction of the reference a test on ``rail`` is low (module docstring); per tier."""
        return min(self.s.threshold, math.exp(-self.s.noise_z * self.noise_sigma(rail)))

    def sweep_reference(self, rail: int) -> float | None:
        """The healthy busbw of the sweep's rings on ``rail``, from their own (a ring over every node need not run
        at a pair's or a screen group's busbw: on the emulated cluster a pair reads about half): the median of
        those within the cut of the fastest. None with fewer than two (then the rail's reference judges)."""
        values = [x.busbw_gbps for rec in self.rounds if rec.phase == SWEEP for x in rec.results
                  if x.test.rail == rail and x.busbw_gbps]  # fmt: skip
        if len(values) < 2:
            return None
        return statistics.median([v for v in values if v >= self.cut(rail) * max(values)])

    def _reference_of(self, rec: RoundRecord | None, x: TestResult) -> float | None:
        """What ``x`` is judged against: a sweep ring against the sweep's rings, any other test as ``reference``."""
        if x.test.kind == SWEEP and x.test.rail is not None:
            ref = self._cached(f"sweep{x.test.rail}", lambda: self.sweep_reference(x.test.rail))  # type: ignore[arg-type]
            if ref is not None:
                return ref
        return self.reference(x.test.rail, rec)

    def ratio(self, rec: RoundRecord, x: TestResult) -> float | None:
        ref = self._reference_of(rec, x)
        return x.busbw_gbps / ref if ref and x.busbw_gbps is not None else None

    def low(self, rec: RoundRecord, x: TestResult) -> bool:
        """A test is low when it read below the cut or got wrong results."""
        r = self.ratio(rec, x)
        return x.n_wrong > 0 or (r is not None and r < self.cut(x.test.rail))

    # --- phases --------------------------------------------------------------------------------------------

    def _local(self) -> list[Blame]:
        """Node-local all-reduce on every node, twice; low both times: blamed."""
        if self.rails < 2:
            return []
        recs = [self._round(LOCAL, [Test(LOCAL, (n,), None) for n in range(self.nodes)]) for _ in range(2)]
        if any(r is None for r in recs):
            return []
        blamed = []
        for n in range(self.nodes):
            mine = [(rec, x) for rec in recs for x in rec.results if x.test.nodes == (n,)]  # type: ignore[union-attr]
            if mine and all(self.low(rec, x) for rec, x in mine):
                blamed.append(self._blame(n, None, "node-local", mine))
        return blamed

    def _units(self) -> list[tuple[int, int]]:
        return [(n, r) for n in range(self.nodes) for r in range(self.rails)]

    def _screen(self, size: int) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
        """(suspects, anchors) after the screen rounds."""
        for i in range(self.s.screen_rounds):
            rng = random.Random(self.s.seed * 1_000_003 + i)
            groups = partition(self.active, size, rng)
            rec = self._round(SCREEN, [Test(SCREEN, g, r) for r in range(self.rails) for g in groups])
            if rec is None:
                break
        # judged after the last screen round, with the reference and noise of all of them
        seen_low: dict[tuple[int, int], list[bool]] = {}
        for rec in self.rounds:
            if rec.phase == SCREEN:
                for x in rec.results:
                    for n in x.test.nodes:
                        seen_low.setdefault((n, x.test.rail), []).append(self.low(rec, x))  # type: ignore[arg-type]
        suspects = {u for u, lows in seen_low.items() if lows and all(lows)}
        anchors = {u for u, lows in seen_low.items() if not all(lows)}
        return suspects, anchors

    def _regroup(self, suspects: set, anchors: set, size: int) -> tuple[set, set]:
        """Group suspects among themselves (halving the size) while there are more than anchors can confirm."""
        size = max(2, size // 2)
        attempt = 0
        while len(suspects) >= 2 and len(suspects) > len(anchors):
            rng = random.Random(self.s.seed * 1_000_003 + 7919 * (attempt + 1))
            tests = []
            for rail in range(self.rails):
                mine = sorted(n for n, r in suspects if r == rail)
                tests += [Test(REGROUP, g, rail) for g in partition(mine, size, rng)]
            rec = self._round(REGROUP, tests)
            if rec is None:
                break
            cleared = {(n, x.test.rail) for x in rec.results if not self.low(rec, x) for n in x.test.nodes}
            suspects -= cleared
            anchors |= cleared
            if not cleared and size == 2:
                break  # pairs of suspects all slow: only anchors can tell them apart
            size = max(2, size // 2)
            attempt += 1
            if attempt > 2 * math.ceil(math.log2(max(2, self.nodes))):
                break
        return suspects, anchors

    def _confirm(self, suspects: set, anchors: set) -> tuple[list[Blame], set]:
        """Each suspect against different anchors until it is cleared or low twice (at most MAX_CONFIRMS tests);
        (blamed, still suspect)."""
        verdicts: dict[tuple[int, int], list[tuple[RoundRecord, TestResult]]] = {u: [] for u in suspects}
        used: dict[tuple[int, int], set[int]] = {u: set() for u in suspects}
        blamed: list[Blame] = []
        attempt = 0
        while True:
            pending = [u for u in sorted(verdicts) if self._undecided(verdicts[u])]
            if not pending:
                break
            tests: list[Test] = []
            busy: set[tuple[int, int]] = set()
            rng = random.Random(self.s.seed * 1_000_003 + 104729 * (attempt + 1))
            for rail in range(self.rails):
                free = sorted(n for n, r in anchors if r == rail)
                rng.shuffle(free)
                for u in (u for u in pending if u[1] == rail):
                    pick = next((a for a in free if a not in used[u] and (a, rail) not in busy), None)
                    if pick is None:
                        continue
                    busy |= {(pick, rail), u}
                    used[u].add(pick)
                    tests.append(Test(CONFIRM, tuple(sorted((u[0], pick))), rail))
                tests += _controls([a for a in free if (a, rail) not in busy], rail)
            if not any(t.kind == CONFIRM for t in tests):
                break  # no anchor left that these suspects have not met
            rec = self._round(CONFIRM, tests)
            if rec is None:
                break
            for x in rec.results:
                if x.test.kind != CONFIRM:
                    continue
                for n in x.test.nodes:
                    if (n, x.test.rail) in verdicts:
                        verdicts[(n, x.test.rail)].append((rec, x))
            attempt += 1
        still = set()
        for u, mine in verdicts.items():
            if self._cleared(mine):
                continue
            lows = [m for m in mine if self.low(*m)]
            if len(lows) >= 2:
                blamed.append(self._blame(u[0], u[1], "network", lows))
            else:
                still.add(u)
        return blamed, still

    def _cleared(self, mine: list[tuple[RoundRecord, TestResult]]) -> bool:
        """One confirming test at or above the cut of the run's healthy median clears a suspect: noise only ever
        slows a test down, so a slow NIC never reads fast (a round's controls, which can only lower its
        reference, do not count here)."""
        for _, x in mine:
            ref = self._reference_of(None, x)
            if x.n_wrong == 0 and x.busbw_gbps is not None and ref and x.busbw_gbps >= self.cut(x.test.rail) * ref:
                return True
        return False

    def _undecided(self, mine: list[tuple[RoundRecord, TestResult]]) -> bool:
        """Neither cleared nor low against two anchors, and fewer than MAX_CONFIRMS tests so far."""
        lows = sum(self.low(rec, x) for rec, x in mine)
        return not self._cleared(mine) and lows < 2 and len(mine) < MAX_CONFIRMS

    def _blame(self, node: int, rail: int | None, kind: str, mine: list[tuple[RoundRecord, TestResult]]) -> Blame:
        sigma = self.noise_sigma(rail if kind != "node-local" else None)
        p_healthy = 1.0
        evidence = []
        for rec, x in mine:
            r = self.ratio(rec, x)
            if r is not None:
                p_healthy *= 0.5 * (1 + math.erf(math.log(max(r, 1e-12)) / (sigma * math.sqrt(2))))
            evidence.append(_evidence(rec, x, r))
        values = [x.busbw_gbps for _, x in mine if x.busbw_gbps is not None]
        return Blame(node, rail, kind, statistics.median(values) if values else None, self.reference(rail),
                     round(1.0 - p_healthy, 6), evidence)  # fmt: skip

    # --- links ---------------------------------------------------------------------------------------------

    def _network_tests(self) -> list[tuple[RoundRecord, TestResult]]:
        return [(rec, x) for rec in self.rounds for x in rec.results if x.test.rail is not None]

    def _crossing(self) -> dict[Link, list[tuple[RoundRecord, TestResult]]]:
        """Every link a test crossed so far -> those tests (kept while no round is added)."""
        def make() -> dict[Link, list[tuple[RoundRecord, TestResult]]]:
            out: dict[Link, list[tuple[RoundRecord, TestResult]]] = {}
            for rec, x in self._network_tests():
                for lk in ring_links(x.test):
                    out.setdefault(lk, []).append((rec, x))
            return out

        return self._cached("crossing", make)

    def _link_readings(self, link: Link) -> list[tuple[RoundRecord, TestResult]]:
        """Every pair test over exactly this link (any phase: confirms and controls are pairs too)."""
        return [m for m in self._crossing().get(link, []) if len(m[1].test.nodes) == 2]

    def _link_cleared(self, link: Link) -> bool:
        """A fast ring (or pair) over the link clears it: a ring runs at its slowest link. Fast against the
        reference its round judged it by: a pair in a round with controls against them (a pair need not reach a
        ring's busbw; the controls run over links known fast where there are any)."""
        for rec, x in self._crossing().get(link, []):
            r = self.ratio(rec, x)
            if x.n_wrong == 0 and r is not None and r >= self.cut(x.test.rail):
                return True
        return False

    def _link_state(self, link: Link) -> str:
        """'cleared', 'blamed' (low twice, never fast), 'open' (read fewer than MAX_CONFIRMS times) or 'stuck'."""
        if self._link_cleared(link):
            return "cleared"
        readings = self._link_readings(link)
        lows = sum(self.low(*m) for m in readings)
        if lows >= 2:
            return "blamed"
        return "open" if len(readings) < MAX_CONFIRMS else "stuck"

    def _unexplained(self, bad: set[tuple[int, int]]) -> list[dict[Link, str]]:
        """Low network tests with no blamed or suspect member and no blamed link in their ring: for each, the state
        (``_link_state``) of every link of its ring not cleared yet."""
        out = []
        for rec, x in self._network_tests():
            if not self.low(rec, x) or any((n, x.test.rail) in bad for n in x.test.nodes):
                continue
            states = {lk: self._link_state(lk) for lk in ring_links(x.test)}
            links = {lk: st for lk, st in states.items() if st != "cleared"}
            if links and "blamed" not in links.values():
                out.append(links)
        return out

    def _pending_links(self, bad: set[tuple[int, int]]) -> tuple[list[Link], list[Link]]:
        """(links read low once, to read again; links not read yet): the other links of a test with a link read low
        wait."""
        again: list[Link] = []
        fresh: list[Link] = []
        for links in self._unexplained(bad):
            open_links = [lk for lk, st in links.items() if st == "open"]
            read_low = [lk for lk in open_links if any(self.low(*m) for m in self._link_readings(lk))]
            again += read_low
            fresh += [] if read_low else open_links
        again = list(dict.fromkeys(again))
        return again, [lk for lk in dict.fromkeys(fresh) if lk not in again]

    def _control_pairs(self, spare: list[int], rail: int, want: int, suspect: set[Link]) -> list[Test]:
        """Up to ``want`` disjoint pairs of ``spare`` nodes on ``rail`` as controls: over links a fast test crossed
        where there are such (a control over a slow link would lower its round's reference), else over links not
        under suspicion; each node tried against its next 16 only, so this stays cheap at any size."""
        out: list[Test] = []
        used: set[int] = set()
        for known_fast in (True, False):
            for i, a in enumerate(spare):
                for b in spare[i + 1: i + 17]:
                    lk = (min(a, b), max(a, b), rail)
                    if len(out) >= want or a in used or b in used or lk in suspect:
                        continue
                    if not known_fast or self._link_state(lk) == "cleared":
                        used |= {a, b}
                        out.append(Test(CONTROL, lk[:2], rail))
        return out

    def _sweep(self, bad: set[tuple[int, int]]) -> None:
        """Every link among the nodes not blamed nor suspect, in zig-zag rings, one per rail a round."""
        per_rail = [zigzag_rings([n for n in self.active if (n, r) not in bad]) for r in range(self.rails)]
        for i in range(max(map(len, per_rail))):
            tests = [Test(SWEEP, rings[i], r) for r, rings in enumerate(per_rail) if i < len(rings)]
            if self._round(SWEEP, tests) is None:
                return

    def _links(self, bad: set[tuple[int, int]]) -> list[Blame]:
        """Read the links of unexplained tests as pairs until each is cleared or low twice (module docstring)."""
        for attempt in range(MAX_LINK_ROUNDS):
            again, fresh = self._pending_links(bad)
            if not again and not fresh:
                break
            rng = random.Random(self.s.seed * 1_000_003 + 15485863 * (attempt + 1))
            # one control pair per rail first, so that every reading is judged against pairs of this round (a
            # pair need not reach a ring's busbw, and a round slowed as a whole must blame nobody), from nodes no
            # link read low once needs (and none a new link needs, where there are enough others); then the links
            # read low once, then new ones, then more controls from the nodes left
            suspect = set(again + fresh)
            keep = bad | _nodes_of(again)
            controls = self._controls_of(rng, keep | _nodes_of(fresh), suspect, [], 1)
            if len(controls) < self.rails:
                controls = self._controls_of(rng, keep, suspect, [], 1)
            tests = _disjoint_pairs(again + fresh, _nodes_of(controls))
            if not tests:  # too few nodes to hold controls back: read the links, controls from what is left
                controls, tests = [], _disjoint_pairs(again + fresh, set())
            busy = _nodes_of(controls) | _nodes_of(tests)
            tests += self._controls_of(rng, bad | busy, suspect, controls, CONTROLS_PER_RAIL)
            if self._round(LINK, tests) is None:
                break
        implicated = {lk for rec, x in self._network_tests() if self.low(rec, x)
                      and not any((n, x.test.rail) in bad for n in x.test.nodes) for lk in ring_links(x.test)}
        return [self._blame_link(lk) for lk in sorted(implicated) if self._link_state(lk) == "blamed"]

    def _controls_of(self, rng: random.Random, taken: set[tuple[int, int]], suspect: set[Link], have: list[Test],
                     want: int) -> list[Test]:  # fmt: skip
        """``have`` and more control pairs, up to ``want`` per rail, from the active nodes not ``taken`` on it (in a
        random order)."""
        out = list(have)
        for rail in range(self.rails):
            spare = [n for n in self.active if (n, rail) not in taken]
            rng.shuffle(spare)
            out += self._control_pairs(spare, rail, want - sum(t.rail == rail for t in have), suspect)
        return out

    def _blame_link(self, link: Link) -> Blame:
        """The link's blame: its low pair readings (busbw, confidence), then the low rings that implicate it."""
        a, b, rail = link
        lows = [m for m in self._link_readings(link) if self.low(*m)]
        blame = self._blame(a, rail, "link", lows)
        blame.nodes = [a, b]
        blame.evidence += [_evidence(rec, x, self.ratio(rec, x)) for rec, x in self._crossing()[link]
                           if len(x.test.nodes) > 2 and self.low(rec, x)]  # fmt: skip
        return blame

    # --- the search ----------------------------------------------------------------------------------------

    def run(self) -> HuntResult:
        size = min(self.s.group_size, max(2, self.nodes))
        blamed = self._local()
        self.active = [n for n in range(self.nodes) if n not in {b.node for b in blamed}]
        suspects: set = set()
        if not self.unreachable:
            suspects, anchors = self._screen(size)
            suspects, anchors = self._regroup(suspects, anchors, size)
            confirmed, suspects = self._confirm(suspects, anchors)
            blamed += _merge_rails(confirmed, self.rails)
            bad = {(b.node, r) for b in blamed for r in range(self.rails) if b.rail in (None, r)} | suspects
            if self.s.sweep_links:
                self._sweep(bad)
            blamed += self._links(bad)
        status = "complete" if not suspects else "budget"
        if self.unreachable:
            status = "unreachable"
            for node, rec, x in self.unreachable:
                blamed.append(Blame(node, None, "unreachable", None, None, 1.0,
                                    [{"round": rec.index, "kind": x.test.kind, "nodes": list(x.test.nodes),
                                      "rail": x.test.rail, "busbw_gbps": None}]))  # fmt: skip
        refs = {_key(r): self.reference(r) for r in [*range(self.rails), None]}
        refs |= {f"sweep-{_key(r)}": self.sweep_reference(r) for r in range(self.rails)}
        return HuntResult(self.nodes, self.rails, blamed, sorted(suspects, key=lambda u: (u[0], u[1] is None, u[1])),
                          self.rounds, {k: v for k, v in refs.items() if v is not None}, self.noise_sigma(),
                          self.cut(), status, self.seconds,
                          self.noise_sigma(None) if self.rails > 1 else None,
                          self.cut(None) if self.rails > 1 else None)  # fmt: skip


def _nodes_of(links: list[Link] | list[Test]) -> set[tuple[int, int]]:
    """The (node, rail) units that links (or pair tests) need."""
    pairs = [(t.nodes[0], t.nodes[1], t.rail) if isinstance(t, Test) else t for t in links]
    return {(n, rail) for a, b, rail in pairs for n in (a, b)}


def _disjoint_pairs(links: list[Link], busy: set[tuple[int, int]]) -> list[Test]:
    """Link tests for ``links`` in order, each left out when one of its nodes is already busy on that rail."""
    tests = []
    busy = set(busy)
    for a, b, rail in links:
        if not {(a, rail), (b, rail)} & busy:
            busy |= {(a, rail), (b, rail)}
            tests.append(Test(LINK, (a, b), rail))
    return tests


def _controls(spare: list[int], rail: int) -> list[Test]:
    """Up to CONTROLS_PER_RAIL pairs of spare anchors on ``rail``: they can only lower their round's reference."""
    return [Test(CONTROL, tuple(sorted(spare[2 * i: 2 * i + 2])), rail)
            for i in range(min(CONTROLS_PER_RAIL, len(spare) // 2))]  # fmt: skip


def _evidence(rec: RoundRecord, x: TestResult, ratio: float | None) -> dict[str, Any]:
    return {"round": rec.index, "kind": x.test.kind, "nodes": list(x.test.nodes), "rail": x.test.rail,
            "busbw_gbps": x.busbw_gbps, "ratio": ratio, "n_wrong": x.n_wrong}  # fmt: skip


def _merge_rails(blamed: list[Blame], rails: int) -> list[Blame]:
    """Every NIC of a node blamed: one blame of the node (rail None), its evidence joined."""
    by_node: dict[int, list[Blame]] = {}
    for b in blamed:
        by_node.setdefault(b.node, []).append(b)
    out = []
    for node, bs in sorted(by_node.items()):
        if len(bs) == rails:
            values = [b.busbw_gbps for b in bs if b.busbw_gbps is not None]
            refs = [b.reference_gbps for b in bs if b.reference_gbps is not None]
            out.append(Blame(node, None, "network", statistics.median(values) if values else None,
                             statistics.median(refs) if refs else None, min(b.confidence for b in bs),
                             [e for b in bs for e in b.evidence]))  # fmt: skip
        else:
            out += sorted(bs, key=lambda b: b.rail or 0)
    return out


def hunt(tester: Tester, settings: HuntSettings) -> HuntResult:
    """Run the search (module docstring) against ``tester``."""
    return Hunt(tester, settings).run()
