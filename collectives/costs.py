"""Alpha-beta-gamma cost coefficients of every algorithm, readable without torch.

A call of an algorithm is modelled (docs/theory.md, section Cost form) as

    T = L * alpha + W * n * beta + G * n * gamma

with n nccl-tests' size S in bytes (the per-rank buffer for broadcast, reduce and
all-reduce; the whole gathered buffer for all-gather and reduce-scatter).  L counts
message steps on the critical path, W and G the bytes sent and combined on that path per
byte of n.  Pipelined algorithms cut n into k = ceil(n / segment_bytes) segments, so their
L and W depend on n; pass ``nbytes`` (and the segment size the run used) for them.

``builtin`` has no known schedule (the backend picks one at run time); it is modelled at the
lower bound of docs/theory.md, section Lower bounds, and flagged ``assumed=True``.

This module is data and arithmetic only: ``analysis`` imports it and must never pull torch in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from collectives.spec import COLLECTIVES, SPECS
from collectives.spec import busbw_factor as _busbw_factor

#: Segment size the pipelined algorithms (ring broadcast/reduce, tree all-reduce) use by default.
DEFAULT_SEGMENT_BYTES: int = 1 << 20

#: Collectives that combine data (have a gamma term).
REDUCING: frozenset[str] = frozenset(name for name, s in SPECS.items() if s.reducing)


@dataclass(frozen=True)
class Cost:
    """Coefficients of T = L*alpha + W*n*beta + G*n*gamma for one (algorithm, p, n)."""

    L: float
    W: float
    G: float
    assumed: bool = False  # True when the schedule is not known (builtin): lower bound used

    def time_s(self, nbytes: float, alpha_s: float, beta_s_per_byte: float, gamma_s_per_byte: float = 0.0) -> float:
        """Model time in seconds of one call moving ``nbytes``."""
        return self.L * alpha_s + (self.W * beta_s_per_byte + self.G * gamma_s_per_byte) * nbytes


def lg_ceil(p: int) -> int:
    """ceil(log2 p), 0 for p = 1."""
    return (p - 1).bit_length() if p > 1 else 0


def lg_floor(p: int) -> int:
    """floor(log2 p)."""
    return p.bit_length() - 1


def pow2_floor(p: int) -> int:
    """p' = largest power of two <= p."""
    return 1 << lg_floor(p)


def is_pow2(p: int) -> bool:
    return p >= 1 and p & (p - 1) == 0


def busbw_factor(collective: str, p: int) -> float:
    """nccl-tests' bus-bandwidth factor F (docs/theory.md, "algbw and busbw"); busbw = algbw * F."""
    _check(collective, p)
    return _busbw_factor(collective, p)


def lower_bound(collective: str, p: int) -> Cost:
    """Lower-bound coefficients (docs/theory.md, "Lower bounds"; Chan et al. 2007)."""
    _check(collective, p)
    if p == 1:
        return Cost(0.0, 0.0, 0.0)
    return Cost(*SPECS[collective].lower_bound(p))


def segments(nbytes: float | None, segment_bytes: int | None) -> int:
    """Number of pipeline segments k = ceil(n / s), at least 1."""
    if nbytes is None:
        raise ValueError("this algorithm is pipelined: its cost needs nbytes")
    s = segment_bytes or DEFAULT_SEGMENT_BYTES
    if s <= 0:
        raise ValueError(f"segment_bytes must be positive, got {s}")
    return max(1, math.ceil(nbytes / s))


# --- per-algorithm coefficient functions: (p, nbytes, segment_bytes) -> Cost, for p >= 2 ---

CostFn = Callable[[int, "float | None", "int | None"], Cost]


def _chain(p: int, n: float | None, s: int | None, reducing: bool) -> Cost:
    # Pipelined chain around the ring: T = (p-2+k)(alpha + n/k beta [+ n/k gamma]); one segment at p = 2,
    # where k = 1 is optimal whatever alpha and beta (collectives.layout.chain_segment_elems).
    k = segments(n, s) if p > 2 else 1
    steps = p - 2 + k
    return Cost(float(steps), steps / k, steps / k if reducing else 0.0)


def _binomial(p: int, reducing: bool) -> Cost:
    lg = float(lg_ceil(p))
    return Cost(lg, lg, lg if reducing else 0.0)


def _scatter_allgather_bcast(p: int, n: float | None, s: int | None) -> Cost:
    return Cost(float(lg_ceil(p) + p - 1), 2.0 * (p - 1) / p, 0.0)


def _ring_all_reduce(p: int, n: float | None, s: int | None) -> Cost:
    return Cost(2.0 * (p - 1), 2.0 * (p - 1) / p, (p - 1) / p)


def _double_binary_tree_all_reduce(p: int, n: float | None, s: int | None) -> Cost:
    # Two binary trees each carry half of n in k segments of s bytes; pipelined reduce up
    # then broadcast down, each d + 2k - 2 steps (an inner node handles every segment twice).
    half = None if n is None else n / 2.0
    k = segments(half, s) if p > 2 else 1  # depth-1 trees at p = 2: pipelining only adds steps
    d = lg_floor(p)
    steps = d + 2 * k - 2
    per = steps / (2.0 * k)  # bytes per step = n/(2k); one phase moves steps * n/(2k)
    return Cost(2.0 * steps, 2.0 * per, per)


def _reduce_broadcast_all_reduce(p: int, n: float | None, s: int | None) -> Cost:
    lg = float(lg_ceil(p))
    return Cost(2.0 * lg, 2.0 * lg, lg)


def _recursive_doubling_all_reduce(p: int, n: float | None, s: int | None) -> Cost:
    if is_pow2(p):
        lg = float(lg_floor(p))
        return Cost(lg, lg, lg)
    lg = float(lg_floor(p))
    return Cost(lg + 2, lg + 2, lg + 1)


def _rabenseifner_all_reduce(p: int, n: float | None, s: int | None) -> Cost:
    if is_pow2(p):
        lg = float(lg_floor(p))
        return Cost(2.0 * lg, 2.0 * (p - 1) / p, (p - 1) / p)
    q = pow2_floor(p)
    lg = float(lg_floor(p))
    return Cost(2.0 * lg + 2, 2.0 * (q - 1) / q + 2.0, 1.0 + (q - 1) / q)


def _ring_gather_like(p: int, reducing: bool) -> Cost:
    frac = (p - 1) / p
    return Cost(float(p - 1), frac, frac if reducing else 0.0)


def _recursive_doubling_all_gather(p: int, n: float | None, s: int | None) -> Cost:
    if is_pow2(p):
        return Cost(float(lg_floor(p)), (p - 1) / p, 0.0)
    # Fold: extra ranks hand their block to a partner (1/p of n), the p' ranks run
    # recursive doubling, then partners send the whole result back (n).
    q = pow2_floor(p)
    return Cost(float(lg_floor(p) + 2), 1.0 / p + (q - 1) / q + 1.0, 0.0)


def _bruck_all_gather(p: int, n: float | None, s: int | None) -> Cost:
    return Cost(float(lg_ceil(p)), (p - 1) / p, 0.0)


def _recursive_halving_reduce_scatter(p: int, n: float | None, s: int | None) -> Cost:
    if is_pow2(p):
        frac = (p - 1) / p
        return Cost(float(lg_floor(p)), frac, frac)
    q = pow2_floor(p)
    w = 1.0 + (q - 1) / q
    return Cost(float(lg_floor(p) + 2), w, w)


def _builtin(collective: str) -> CostFn:
    def fn(p: int, n: float | None, s: int | None) -> Cost:
        lb = lower_bound(collective, p)
        return Cost(lb.L, lb.W, lb.G, assumed=True)

    return fn


#: (collective, algorithm) -> coefficient function.  The names are the registry's names.
COSTS: dict[tuple[str, str], CostFn] = {
    ("broadcast", "ring"): lambda p, n, s: _chain(p, n, s, reducing=False),
    ("broadcast", "tree"): lambda p, n, s: _binomial(p, reducing=False),
    ("broadcast", "scatter_allgather"): _scatter_allgather_bcast,
    ("reduce", "ring"): lambda p, n, s: _chain(p, n, s, reducing=True),
    ("reduce", "tree"): lambda p, n, s: _binomial(p, reducing=True),
    ("all_reduce", "ring"): _ring_all_reduce,
    ("all_reduce", "tree"): _double_binary_tree_all_reduce,
    ("all_reduce", "reduce_broadcast"): _reduce_broadcast_all_reduce,
    ("all_reduce", "recursive_doubling"): _recursive_doubling_all_reduce,
    ("all_reduce", "rabenseifner"): _rabenseifner_all_reduce,
    ("all_gather", "ring"): lambda p, n, s: _ring_gather_like(p, reducing=False),
    ("all_gather", "tree"): _recursive_doubling_all_gather,
    ("all_gather", "bruck"): _bruck_all_gather,
    ("reduce_scatter", "ring"): lambda p, n, s: _ring_gather_like(p, reducing=True),
    ("reduce_scatter", "tree"): _recursive_halving_reduce_scatter,
    ("reduce_scatter", "pairwise"): lambda p, n, s: _ring_gather_like(p, reducing=True),
}
for _c in COLLECTIVES:
    COSTS[(_c, "builtin")] = _builtin(_c)
del _c

#: Algorithms whose L and W depend on n through the segment count.
PIPELINED: frozenset[tuple[str, str]] = frozenset({("broadcast", "ring"), ("reduce", "ring"), ("all_reduce", "tree")})


def cost_algorithms(collective: str) -> list[str]:
    """Algorithm names with a cost model for ``collective`` (builtin first)."""
    _check(collective, 1)
    names = [a for (c, a) in COSTS if c == collective]
    return ["builtin"] + sorted(a for a in names if a != "builtin")


def cost(
    collective: str,
    algorithm: str,
    p: int,
    nbytes: float | None = None,
    segment_bytes: int | None = None,
) -> Cost:
    """L, W, G of ``algorithm`` for ``collective`` on p ranks moving nbytes (nccl-tests' S)."""
    _check(collective, p)
    fn = COSTS.get((collective, algorithm))
    if fn is None:
        known = ", ".join(cost_algorithms(collective))
        raise KeyError(f"no cost model for {collective}/{algorithm}; known: {known}")
    if p == 1:
        return Cost(0.0, 0.0, 0.0, assumed=algorithm == "builtin")
    return fn(p, nbytes, segment_bytes)


def _check(collective: str, p: int) -> None:
    if collective not in COLLECTIVES:
        raise KeyError(f"unknown collective {collective!r}; known: {', '.join(COLLECTIVES)}")
    if not isinstance(p, int) or p < 1:
        raise ValueError(f"world size must be a positive integer, got {p!r}")
