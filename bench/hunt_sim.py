"""A model network for ``collbench hunt --simulate``: the search of ``bench.hunt_strategy`` on paper (torch-free).

Every NIC (node, rail) has a rate: ``nic_gbps`` times the planted factor of that NIC and of its node (1 when
healthy). A ring all-reduce runs at its slowest member's rate, a node-local one at ``local_gbps`` times its
node's local factor; each test's busbw is that rate times 1 + a normal draw of relative size ``noise`` (the
emulated cluster showed under 1 %, results/README.md). A test's time is the all-reduce's at ``size_bytes``
times the timed iterations, and a round lasts as long as its longest test plus a fixed start cost; a test that
touches a node in ``down`` does not finish and names it unreachable.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.hunt_strategy import Test, TestResult

DEFAULT_NOISE = 0.03  # relative spread of a healthy test's busbw: 3x what the emulated cluster showed (< 1 %)
DEFAULT_SLOW_FACTOR = 0.5


@dataclass(frozen=True)
class Planted:
    """A planted fault: ``node`` (every NIC) or one NIC (``rail``) at ``factor`` of the healthy rate."""

    node: int
    rail: int | None
    factor: float


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
            if p.node == node and (p.rail is None or p.rail == rail):
                f *= p.factor
        return f

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
                rate = self.nic_gbps * min(self.factor(n, t.rail) for n in t.nodes)
                k = len(t.nodes)
            busbw = max(1e-6, rate * (1.0 + self.rng.gauss(0.0, self.noise)))
            time_us = (2 * (k - 1) / k * self.size_bytes / 1e9 / busbw * 1e6) if k > 1 else 1.0
            longest = max(longest, time_us * self.iters / 1e6)
            results.append(TestResult(t, busbw, time_us))
        return results, longest + self.start_s


def plant(nodes: int, rails: int, slow: int, slow_nics: int, factor: float, seed: int) -> list[Planted]:
    """``slow`` whole nodes and ``slow_nics`` single NICs (on other nodes) at ``factor``, drawn from ``seed``."""
    rng = random.Random(seed)
    picked = rng.sample(range(nodes), slow + slow_nics)
    out = [Planted(n, None, factor) for n in picked[:slow]]
    out += [Planted(n, rng.randrange(rails) if rails > 1 else None, factor) for n in picked[slow:]]
    return out
