"""A model network for ``collbench hunt --simulate``: the search of ``bench.hunt_strategy`` on paper (torch-free).

Every NIC (node, rail) has a rate: ``nic_gbps`` times the planted factor of that NIC and of its node (1 when
healthy), and a planted slow link between two nodes (on one rail) carries their traffic at its factor of that
rate. A ring all-reduce runs at the slowest of its members' NICs and of the links between ring-adjacent members
(``bench.hunt_strategy.ring_links``: the order of a test's nodes is its ring), a node-local one at
``local_gbps`` times its node's local factor; each test's busbw is that rate times 1 + a normal draw of relative
size ``noise`` (the emulated cluster showed under 1 %, results/README.md). A test's time is the all-reduce's at
``size_bytes`` times the timed iterations, and a round lasts as long as its longest test plus a fixed start cost;
a test that touches a node in ``down`` does not finish and names it unreachable.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.hunt_strategy import Test, TestResult, max_links, ring_links

DEFAULT_NOISE = 0.03  # relative spread of a healthy test's busbw: 3x what the emulated cluster showed (< 1 %)
DEFAULT_SLOW_FACTOR = 0.5


@dataclass(frozen=True)
class Planted:
    """A planted fault: ``node`` (every NIC) or one NIC (``rail``) at ``factor`` of the healthy rate; with ``peer``,
    the link between ``node`` and ``peer`` on ``rail`` (every rail when None) at ``factor`` of the NIC rate."""

    node: int
    rail: int | None
    factor: float
    peer: int | None = None


@dataclass
class ModelNetwork:
    """A tester (``bench.hunt_strategy.Tester``) over a modelled cluster (module docstring)."""

    nodes: int
    rails: int = 1
    planted: list[Planted] = field(default_factory=list)
    noise: float = DEFAULT_NOISE
    seed: int = 0
    nic_gbps: float = 25.0  # 200 Gb/s per NIC
    local_gbps: float = 150.0
    size_bytes: int = 256 << 20
    iters: int = 12  # warm-up and timed iterations of one test
    start_s: float = 0.05  # per round: agreeing on the round, starting and gathering the tests
    down: frozenset[int] = frozenset()
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed ^ 0x5EED)

    def factor(self, node: int, rail: int | None) -> float:
        f = 1.0
        for p in self.planted:
            if p.peer is None and p.node == node and (p.rail is None or p.rail == rail):
                f *= p.factor
        return f

    def link_factor(self, a: int, b: int, rail: int) -> float:
        """The planted factor of the link between nodes ``a`` and ``b`` on ``rail`` (1 when healthy)."""
        f = 1.0
        for p in self.planted:
            if p.peer is not None and {p.node, p.peer} == {a, b} and (p.rail is None or p.rail == rail):
                f *= p.factor
        return f

    def ring_factor(self, test: Test) -> float:
        """A ring's rate as a fraction of the NIC rate: its slowest member NIC or ring-adjacent link."""
        nics = [self.factor(n, test.rail) for n in test.nodes]
        links = [self.link_factor(a, b, rail) for a, b, rail in ring_links(test)]
        return min(nics + links)

    def run_round(self, tests: Sequence[Test]) -> tuple[list[TestResult], float]:
        results, longest = [], 0.0
        for t in tests:
            dead = tuple(n for n in t.nodes if n in self.down)
            if dead:
                results.append(TestResult(t, None, None, 0, dead))
                continue
            if t.rail is None:
                rate = self.local_gbps * self.factor(t.nodes[0], None)
                k = self.rails
            else:
                rate = self.nic_gbps * self.ring_factor(t)
                k = len(t.nodes)
            busbw = max(1e-6, rate * (1.0 + self.rng.gauss(0.0, self.noise)))
            time_us = (2 * (k - 1) / k * self.size_bytes / 1e9 / busbw * 1e6) if k > 1 else 1.0
            longest = max(longest, time_us * self.iters / 1e6)
            results.append(TestResult(t, busbw, time_us))
        return results, longest + self.start_s


def plant(nodes: int, rails: int, slow: int, slow_nics: int, factor: float, seed: int,
          slow_links: int = 0) -> list[Planted]:  # fmt: skip
    """``slow`` whole nodes and ``slow_nics`` single NICs (on other nodes) at ``factor``, drawn from ``seed``; then
    ``slow_links`` distinct links (on one rail each) between nodes with no planted NIC, at ``factor`` (drawn after
    the nodes, so a seed plants the same nodes with or without links)."""
    rng = random.Random(seed)
    picked = rng.sample(range(nodes), slow + slow_nics)
    out = [Planted(n, None, factor) for n in picked[:slow]]
    out += [Planted(n, rng.randrange(rails) if rails > 1 else None, factor) for n in picked[slow:]]
    free = sorted(set(range(nodes)) - set(picked))
    if slow_links > max_links(len(free)):
        raise ValueError(f"cannot plant {slow_links} links among {len(free)} nodes")
    links: dict[tuple[int, int], int] = {}
    while len(links) < slow_links:
        a, b = sorted(rng.sample(free, 2))
        links.setdefault((a, b), rng.randrange(rails))
    out += [Planted(a, rail, factor, peer=b) for (a, b), rail in links.items()]
    return out
