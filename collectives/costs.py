"""Alpha-beta-gamma cost coefficients of every algorithm, readable without torch.

A call of an algorithm is modelled (docs/theory.md, section Cost form; docs/costs.md per algorithm) as

    T = L * alpha + W * n * beta + G * n * gamma

with n nccl-tests' size S in bytes (the per-rank buffer for broadcast, reduce and
all-reduce; the whole gathered buffer for all-gather and reduce-scatter; the whole per-rank send buffer
for all-to-all; the root's whole buffer for gather and scatter).  L counts
message steps on the critical path, W and G the bytes sent and combined on that path per
byte of n.  Pipelined algorithms cut n into k = ceil(n / segment_bytes) segments, so their
L and W depend on n; pass ``nbytes`` (and the segment size the run used) for them.

``builtin`` runs the backend's schedule: ``builtin_cost`` models what gloo runs and NCCL's ring and tree
(per NCCL's tuning model); where the schedule is not known it gives the lower bound, flagged
``assumed=True`` (a lower bound on the time, never a basis for ranking).  docs/costs.md lists every
formula, its source, the port model and how tests/test_schedule.py checks them against the code.

Each collective has one :class:`CollectiveCosts` entry in ``ENTRIES`` (its algorithms, which are pipelined, its
builtin on gloo and NCCL); ``COSTS`` and ``PIPELINED`` are views of them. This module is data and arithmetic
only: ``analysis`` imports it and must never pull torch in.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

from collectives.spec import COLLECTIVES, SPECS
from collectives.spec import busbw_factor as _busbw_factor

#: Segment size the pipelined algorithms (ring broadcast/reduce, tree all-reduce) use by default, and the smallest
#: the rings (all-reduce ring and ring_2ch, reduce-scatter ring) choose for themselves (``ring_segment_bytes``).
DEFAULT_SEGMENT_BYTES: int = 1 << 20

#: The largest segment the rings choose for themselves: larger blocks are cut in more segments.
RING_MAX_SEGMENT_BYTES: int = 4 << 20

#: The pipelined rings: with no segment size given they take ``ring_segment_bytes`` of their block.
RINGS: frozenset[tuple[str, str]] = frozenset(
    {("all_reduce", "ring"), ("all_reduce", "ring_2ch"), ("reduce_scatter", "ring")}
)


def ring_segment_bytes(block_bytes: float) -> int:
    """The segment size of a pipelined ring whose blocks (one per rank and channel) hold ``block_bytes``: half a
    block, as gloo's ring all-reduce cuts it (two segments per block, one added while the other travels), within
    [DEFAULT_SEGMENT_BYTES, RING_MAX_SEGMENT_BYTES].

    Why not always 1 MiB: at p = 2 on 2 CPU cores (gloo, 16 MiB all-reduce, 8 MiB blocks) 1 MiB segments made 16
    posted steps of 8 where 4 MiB ones make 4, and the ring ran 0.76x builtin against 0.86x (8 alternating rounds,
    4 MiB ahead in 8 of 8; results/README.md). Blocks of at most 2 MiB (p = 8 at 16 MiB, where 1 MiB segments put
    the ring at 1.04x builtin on the emulated cluster) keep 1 MiB."""
    half = math.ceil(block_bytes / 2)
    return min(max(half, DEFAULT_SEGMENT_BYTES), RING_MAX_SEGMENT_BYTES)


def default_segment_bytes(collective: str, algorithm: str, nbytes: float, p: int) -> int:
    """The segment size a pipelined algorithm runs with when none is given, for a message of ``nbytes`` (the
    whole buffer: the all-reduce tensor, the reduce-scatter input) on ``p`` ranks."""
    if (collective, algorithm) in RINGS:
        channels = 2 if algorithm == "ring_2ch" else 1
        return ring_segment_bytes(nbytes / (channels * max(1, p)))
    return DEFAULT_SEGMENT_BYTES

#: Collectives that combine data (have a gamma term).
REDUCING: frozenset[str] = frozenset(name for name, s in SPECS.items() if s.reducing)


@dataclass(frozen=True)
class Cost:
    """Coefficients of T = L*alpha + W*n*beta + G*n*gamma for one (algorithm, p, n)."""

    L: float
    W: float
    G: float
    assumed: bool = False  # True when the schedule is not known (builtin): lower bound used
    basis: str = ""  # builtin: what the coefficients model (the backend's algorithm and its source)

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
    # where k = 1 is optimal whatever alpha and beta (collectives.blocks.chain_segment_elems).
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


def ring_segments(p: int, n: float | None, s: int | None, channels: int = 1) -> int:
    """Segments per block k = ceil(n / (channels p s)) of the pipelined rings (at least 1): each of the channels
    carries n / channels in p blocks, every block cut in k segments."""
    return segments(None if n is None else n / (channels * p), s)


def _pipelined_ring_all_reduce(p: int, n: float | None, s: int | None) -> Cost:
    # 2(p - 1) ring steps of k segments each (all channels in the same batched steps); a step's later segments are
    # posted behind its first, so each step costs one alpha (as NCCL's tuning model counts a ring), the same bytes
    # as the unsegmented ring, and every combine (the additive form cannot show that an addition overlaps the
    # later segments' transfers: docs/costs.md, Pipelined rings)
    return _ring_all_reduce(p, n, s)


def _pipelined_ring_reduce_scatter(p: int, n: float | None, s: int | None) -> Cost:
    # p - 1 ring steps of k segments each, one alpha per step (n is the whole input: blocks of n / p)
    return _ring_gather_like(p, reducing=True)


#: Even world sizes up to this many ranks get the one-segment fill of the double binary tree from its schedule
#: (an O(p) pass, about 0.4 s at 2^20 on a 2-core VM); above it the cost refuses rather than guess (docs/costs.md).
DBT_SCHEDULE_MAX_P: int = 1 << 21


def _upper_quarter(p: int) -> bool:
    """p lies in the top quarter of its power-of-two range: p > 3/4 of 2^D, D = ceil(lg p)."""
    return 4 * p > 3 * (1 << lg_ceil(p))


def _dbt_fill(p: int, k: int) -> tuple[int, int]:
    """(W, G) of the double binary tree's schedule with k segments per tree, in half-segment units (n = 2k).

    Closed forms (D = ceil(lg p), Q = p in the top quarter of its power-of-two range or p = 2^(D-1) + 1):
    k >= 2: W = 4(D + k - 2) + (2 if Q else 1), G = 2(D + k - 2) + (1 if Q else 0); k = 1: G = 2D - 1 if p is
    in the top quarter else 2D - 2, W = 3D + 1 (top quarter) or 3D for odd p >= 7 (3D - 1 at p = 5); p = 3 moves
    4k and 2k.
    tests/test_robustness/test_robust_closed_forms.py checks every one against the critical path of the schedule built
    from the same loops as ``collectives.all_reduce.tree`` (``collectives.critpath``) for p up to thousands.
    The one-segment W of an even p has no closed form here (the mirrored trees meet irregularly): it is the
    longest path of that schedule, computed in one O(p) vectorised pass (``_dbt_one_segment_port``)."""
    d = lg_ceil(p)
    if p == 2:
        return 2, 1
    if p == 3:
        return 4 * k, 2 * k
    top = _upper_quarter(p)
    if k >= 2:
        q = top or p == (1 << (d - 1)) + 1
        return 4 * (d + k - 2) + (2 if q else 1), 2 * (d + k - 2) + (1 if q else 0)
    g = 2 * d - (1 if top else 2)
    if p % 2:
        return (3 * d + (1 if top else 0) if p >= 7 else 3 * d - 1), g
    return _dbt_one_segment_port(p), g


def _btree_parents(p: int):  # noqa: ANN202 - numpy array
    """``collectives.trees.btree_parent`` of every rank at once."""
    import numpy as np

    r = np.arange(p, dtype=np.int64)
    bit = r & -r
    up = (r ^ bit) | (bit << 1)
    par = np.where(up < p, up, r ^ bit)
    par[0] = -1
    return par


def _depths_heights(par):  # noqa: ANN001, ANN202 - numpy arrays
    """Depth and height of every rank of a parent array (pointer jumping, then one pass per level)."""
    import numpy as np

    p = len(par)
    root = par < 0
    anc = np.where(root, np.arange(p), par)
    depth = (~root).astype(np.int64)
    while True:
        nxt = anc[anc]
        if np.array_equal(nxt, anc):
            break
        depth = depth + np.where(anc == nxt, 0, depth[anc])
        anc = nxt
    height = np.zeros(p, dtype=np.int64)
    order = np.argsort(-depth.astype(np.int16), kind="stable")
    cuts = np.flatnonzero(np.diff(depth[order])) + 1
    for ranks in np.split(order, cuts):
        if depth[ranks[0]] > 0:
            np.maximum.at(height, par[ranks], height[ranks] + 1)
    return depth, height


@functools.lru_cache(maxsize=256)
def _dbt_one_segment_port(p: int) -> int:
    """W (half-segments) of the double binary tree with one segment per tree: the longest path through its
    schedule with the one-port weights of ``collectives.critpath``, in one pass per step over the ranks that
    exchange in it. Each message couples a child and its parent; a parent has at most one child above and one
    below it in each tree, so the four (tree, side) groups each touch a rank once and plain indexing suffices."""
    import numpy as np

    if p > DBT_SCHEDULE_MAX_P:
        raise ValueError(f"the one-segment double binary tree is computed up to p = {DBT_SCHEDULE_MAX_P} "
                         f"even ranks, got {p}")  # fmt: skip
    par1 = _btree_parents(p)
    d1, h1 = _depths_heights(par1)
    rev = par1[::-1]
    trees = [(par1, d1, h1), (np.where(rev < 0, -1, p - 1 - rev), d1[::-1], h1[::-1])]  # even p: mirror
    levels = int(max(h1.max(), d1.max())) + 2
    groups = []  # per tree: (ranks by (level, side), their parents, cut points) for the reduce and broadcast
    for par, depth, height in trees:
        child = np.flatnonzero(par >= 0)
        side = (child > par[child]).astype(np.int16)
        for level in (height, depth):
            key = level[child].astype(np.int16) * 2 + side
            order = np.argsort(key, kind="stable")
            ranks, keys = child[order], key[order]
            groups.append((level is height, ranks.astype(np.int32), par[ranks].astype(np.int32),
                           np.searchsorted(keys, np.arange(2 * levels + 1))))  # fmt: skip
    f = np.zeros(p, dtype=np.int16)  # path weights stay below 4 per step over ~4 lg p steps
    best, sends, recvs = np.zeros(p, dtype=np.int16), np.zeros(p, dtype=np.int8), np.zeros(p, dtype=np.int8)

    def exchange(pairs: list) -> None:  # pairs: (children, parents) per (tree, side); direction is irrelevant
        ids = np.concatenate([a for child, parent, _ in pairs for a in (child, parent)])
        if not len(ids):
            return
        for child, parent, up in pairs:
            if up:
                sends[child] += 1
                recvs[parent] += 1
            else:
                recvs[child] += 1
                sends[parent] += 1
        best[ids] = f[ids]
        for child, parent, _ in pairs:
            best[parent] = np.maximum(best[parent], f[child])
            best[child] = np.maximum(best[child], f[parent])
        f[ids] = best[ids] + np.maximum(sends[ids], recvs[ids])
        sends[ids] = 0
        recvs[ids] = 0

    for up in (True, False):  # reduce: height s sends at step s; broadcast: depth s + 1 receives at step s
        for s in range(levels - 1):
            lvl = s if up else s + 1
            pairs = []
            for is_up, ranks, parents, cuts in groups:
                if is_up != up:
                    continue
                for side in (0, 1):
                    lo, hi = cuts[2 * lvl + side], cuts[2 * lvl + side + 1]
                    pairs.append((ranks[lo:hi], parents[lo:hi], up))
            exchange(pairs)
    return int(f.max())


def _double_binary_tree_all_reduce(p: int, n: float | None, s: int | None) -> Cost:
    # Two binary trees (NCCL's, depth D = ceil(lg p)) each carry half of n in k segments; in every step a
    # rank serves both children of both trees in one batched exchange, so the reduce phase takes k + D - 1
    # message steps and the broadcast phase k + D - 1: L = 2(k + D - 1).  W and G (one port, full duplex):
    # 2 and 1 in the steady state (two half-segments through the port and two combined per reduce step),
    # plus the pipeline fill and drain of the two trees' shapes (``_dbt_fill``).
    half = None if n is None else n / 2.0
    k = segments(half, s) if p > 2 else 1  # depth-1 trees at p = 2: the code sends one segment
    w, g = _dbt_fill(p, k)
    L = 2 * (k + lg_ceil(p) - 1)
    return Cost(float(L), w / (2.0 * k), g / (2.0 * k))


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


def _fold_imbalance(p: int) -> int:
    """S = sum over i < lg p' of min(2^i, r), r = p - p': blocks the bigger half carries beyond 2^i.

    After the MPICH fold, newranks < r hold two blocks and the others one, so step i of recursive doubling
    (halving) moves 2^i + min(2^i, r) blocks in the busier pair."""
    r = p - pow2_floor(p)
    return sum(min(1 << i, r) for i in range(lg_floor(p)))


def _recursive_doubling_all_gather(p: int, n: float | None, s: int | None) -> Cost:
    if is_pow2(p):
        return Cost(float(lg_floor(p)), (p - 1) / p, 0.0)
    # Fold: extra ranks hand their block to a partner (n/p), the p' ranks run recursive doubling over unequal
    # holdings (p' - 1 + S blocks on the critical path), then partners send the whole result back (n).
    q = pow2_floor(p)
    return Cost(float(lg_floor(p) + 2), 1.0 / p + (q - 1 + _fold_imbalance(p)) / p + 1.0, 0.0)


def _bruck_all_gather(p: int, n: float | None, s: int | None) -> Cost:
    return Cost(float(lg_ceil(p)), (p - 1) / p, 0.0)


def _recursive_halving_reduce_scatter(p: int, n: float | None, s: int | None) -> Cost:
    if is_pow2(p):
        frac = (p - 1) / p
        return Cost(float(lg_floor(p)), frac, frac)
    # Fold: even ranks send their whole input (n) to the odd neighbour, which combines it (n); recursive
    # halving over unequal ranges (p' - 1 + S blocks); the odd rank sends the even one its block back (n/p).
    q = pow2_floor(p)
    mid = (q - 1 + _fold_imbalance(p)) / p
    return Cost(float(lg_floor(p) + 2), 1.0 + mid + 1.0 / p, 1.0 + mid)


def _pairwise_all_to_all(p: int, n: float | None, s: int | None) -> Cost:
    # p - 1 steps, each sending one block of n/p and receiving one (MPICH pairwise; Thakur et al. 2005)
    return Cost(float(p - 1), (p - 1) / p, 0.0)


def _ones_below(p: int, k: int) -> int:
    """#{0 <= i < p : bit k of i is set}: 2^k per whole block of 2^(k+1), plus the tail's upper half."""
    block = 1 << (k + 1)
    return (p // block) * (1 << k) + max(0, p % block - (1 << k))


def _bruck_all_to_all(p: int, n: float | None, s: int | None) -> Cost:
    # ceil(lg p) steps; step k moves the blocks whose slot index i in [1, p) has bit k set, packed in one
    # message each way (Bruck et al. 1997): W = sum over k of #{i < p : i & 2^k} / p (lg p / 2 at p = 2^m)
    moved = sum(_ones_below(p, k) for k in range(lg_ceil(p)))
    return Cost(float(lg_ceil(p)), moved / p, 0.0)


def _linear_rooted(p: int, n: float | None, s: int | None) -> Cost:
    # scatter / gather: the root sends (receives) one block to (from) each other rank, one per step
    return Cost(float(p - 1), (p - 1) / p, 0.0)


def _binomial_rooted(p: int, n: float | None, s: int | None) -> Cost:
    # binomial scatter / gather: ceil(lg p) steps; every block but the root's own passes the root's port once
    # (the root's first message carries the largest subtree, and each path below it carries what remains)
    return Cost(float(lg_ceil(p)), (p - 1) / p, 0.0)


NcclFn = Callable[[int, "str | None"], "tuple[Cost, str] | None"]


def _nccl_rooted_ring(reducing: bool) -> NcclFn:
    # broadcast, reduce: ring (pipelined chain), nsteps = nRanks - 1, busBw ratio 1
    return lambda p, algo: (Cost(float(p - 1), 1.0, 1.0 if reducing else 0.0), "NCCL ring (tuning.cc)")


def _nccl_ring_gather_like(reducing: bool) -> NcclFn:
    # all_gather, reduce_scatter: ring, nsteps = nRanks - 1
    return lambda p, algo: (_ring_gather_like(p, reducing), "NCCL ring (tuning.cc)")


def _nccl_all_reduce(p: int, algo: str | None) -> tuple[Cost, str] | None:
    # ring or double binary tree, as NCCL's tuner picked (the run's NCCL_ALGO); unknown without it
    frac, algo = (p - 1) / p, (algo or "").lower()
    if algo == "ring":
        return Cost(2.0 * (p - 1), 2.0 * frac, frac), "NCCL ring (tuning.cc)"
    if algo == "tree":
        return Cost(2.0 * lg_floor(p), 2.0, 1.0), "NCCL double binary tree (tuning.cc)"
    return None


def _posted_at_once(p: int, n: float | None, s: int | None) -> Cost:
    """gloo's all-to-all, gather and scatter: every message posted at once, then all waited for: one step, the
    (p - 1)/p of n that crosses the busiest port."""
    return Cost(1.0, (p - 1) / p, 0.0)


def _not_modelled(p: int, algo: str | None) -> None:
    # grouped send/recv (all_to_all, gather, scatter): outside NCCL's tuning model
    return None


@dataclass(frozen=True)
class CollectiveCosts:
    """Everything ``costs`` knows about one collective: each hand-written algorithm's coefficients (the
    registry's names), which of them are pipelined, and what its builtin runs on gloo and on NCCL."""

    algorithms: dict[str, CostFn]
    gloo: tuple[CostFn, str]  # gloo's schedule and where it is read from
    nccl: NcclFn  # (p, NCCL's algorithm or None) -> NCCL's ring/tree per its tuning model, or None if not modelled
    pipelined: frozenset[str] = frozenset()  # algorithms that take segment_bytes (chains, tree: L, W depend on k)


#: One entry per collective.  gloo's schedules were read from gloo/{broadcast,reduce,allreduce,allgather,
#: alltoall,gather,scatter}.cc and torch's ProcessGroupGloo, not re-checked against the gloo bundled with every
#: torch release; NCCL's from src/graph/tuning.cc (ring nsteps, tree latency 2 log2i(nNodes) hops with one rank
#: per node, tree all-reduce bandwidth ratio 0.5).
ENTRIES: dict[str, CollectiveCosts] = {
    "broadcast": CollectiveCosts(
        algorithms={
            "ring": lambda p, n, s: _chain(p, n, s, reducing=False),
            "tree": lambda p, n, s: _binomial(p, reducing=False),
            "scatter_allgather": _scatter_allgather_bcast,
        },
        pipelined=frozenset({"ring"}),
        gloo=(lambda p, n, s: _binomial(p, reducing=False), "gloo binomial tree (gloo/broadcast.cc)"),
        nccl=_nccl_rooted_ring(reducing=False),
    ),
    "reduce": CollectiveCosts(
        algorithms={
            "ring": lambda p, n, s: _chain(p, n, s, reducing=True),
            "tree": lambda p, n, s: _binomial(p, reducing=True),
        },
        pipelined=frozenset({"ring"}),
        gloo=(
            lambda p, n, s: Cost(float(p), 2.0 * (p - 1) / p, (p - 1) / p),
            "gloo ring reduce-scatter + gather to the root (gloo/reduce.cc)",
        ),
        nccl=_nccl_rooted_ring(reducing=True),
    ),
    "all_reduce": CollectiveCosts(
        algorithms={
            "ring": _pipelined_ring_all_reduce,
            "ring_2ch": _pipelined_ring_all_reduce,
            "tree": _double_binary_tree_all_reduce,
            "reduce_broadcast": _reduce_broadcast_all_reduce,
            "recursive_doubling": _recursive_doubling_all_reduce,
            "rabenseifner": _rabenseifner_all_reduce,
        },
        pipelined=frozenset({"ring", "ring_2ch", "tree"}),
        gloo=(_ring_all_reduce, "gloo ring reduce-scatter + all-gather (gloo/allreduce.cc)"),
        nccl=_nccl_all_reduce,
    ),
    "all_gather": CollectiveCosts(
        algorithms={
            "ring": lambda p, n, s: _ring_gather_like(p, reducing=False),
            "tree": _recursive_doubling_all_gather,
            "bruck": _bruck_all_gather,
        },
        gloo=(lambda p, n, s: _ring_gather_like(p, reducing=False), "gloo ring (gloo/allgather.cc)"),
        nccl=_nccl_ring_gather_like(reducing=False),
    ),
    "reduce_scatter": CollectiveCosts(
        algorithms={
            "ring": _pipelined_ring_reduce_scatter,
            "tree": _recursive_halving_reduce_scatter,
            "pairwise": lambda p, n, s: _ring_gather_like(p, reducing=True),
        },
        pipelined=frozenset({"ring"}),
        gloo=(
            _ring_all_reduce,
            "torch ProcessGroupGloo: ring all-reduce of the input (gloo/allreduce.cc) + local copy",
        ),
        nccl=_nccl_ring_gather_like(reducing=True),
    ),
    "all_to_all": CollectiveCosts(
        algorithms={"pairwise": _pairwise_all_to_all, "bruck": _bruck_all_to_all},
        gloo=(_posted_at_once, "gloo alltoall: every block posted at once, then all waited for (gloo/alltoall.cc)"),
        nccl=_not_modelled,
    ),
    "gather": CollectiveCosts(
        algorithms={"linear": _linear_rooted, "tree": _binomial_rooted},
        gloo=(_posted_at_once, "gloo gather: the root posts every receive at once, waits for all (gloo/gather.cc)"),
        nccl=_not_modelled,
    ),
    "scatter": CollectiveCosts(
        algorithms={"linear": _linear_rooted, "tree": _binomial_rooted},
        gloo=(_posted_at_once, "gloo scatter: the root posts every send at once, waits for all (gloo/scatter.cc)"),
        nccl=_not_modelled,
    ),
}


def builtin_cost(
    collective: str,
    p: int,
    nbytes: float | None = None,
    segment_bytes: int | None = None,
    backend: str | None = None,
    backend_algorithm: str | None = None,
) -> Cost:
    """Coefficients of ``builtin``: the backend's own algorithm where known (gloo; NCCL ring and tree, with
    ``backend_algorithm`` for all_reduce), else the lower bound, flagged ``assumed`` (a prediction from it is
    a lower bound on the time, never a ranking)."""
    _check(collective, p)
    b = (backend or "").lower()
    if p == 1:
        return Cost(0.0, 0.0, 0.0, basis="one rank")
    entry = ENTRIES[collective]
    if b == "gloo":
        fn, basis = entry.gloo
        c = fn(p, nbytes, segment_bytes)
        return Cost(c.L, c.W, c.G, basis=basis)
    if b == "nccl":
        got = entry.nccl(p, backend_algorithm)
        if got is not None:
            c, basis = got
            return Cost(c.L, c.W, c.G, basis=basis)
    lb = lower_bound(collective, p)
    why = "NCCL's algorithm unknown" if b == "nccl" else f"backend {backend or 'unknown'}"
    return Cost(lb.L, lb.W, lb.G, assumed=True, basis=f"lower bound ({why}: schedule assumed)")


def _builtin(collective: str) -> CostFn:
    def fn(p: int, n: float | None, s: int | None) -> Cost:
        return builtin_cost(collective, p, n, s)

    return fn


#: (collective, algorithm) -> coefficient function, builtin included (the registry's names).
COSTS: dict[tuple[str, str], CostFn] = {
    (c, a): fn for c in COLLECTIVES for a, fn in {"builtin": _builtin(c), **ENTRIES[c].algorithms}.items()
}

#: Algorithms that take a segment size (``segment_bytes``); the chains' and the tree's L and W depend on n through
#: the segment count, the rings' do not (one alpha per ring step).
PIPELINED: frozenset[tuple[str, str]] = frozenset((c, a) for c in COLLECTIVES for a in ENTRIES[c].pipelined)


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
    *,
    backend: str | None = None,
    backend_algorithm: str | None = None,
) -> Cost:
    """L, W, G of ``algorithm`` for ``collective`` on p ranks moving nbytes (nccl-tests' S).

    ``backend`` (and for NCCL all_reduce ``backend_algorithm``, ring or tree) matter only for ``builtin``."""
    _check(collective, p)
    fn = COSTS.get((collective, algorithm))
    if fn is None:
        known = ", ".join(cost_algorithms(collective))
        raise KeyError(f"no cost model for {collective}/{algorithm}; known: {known}")
    if algorithm == "builtin":
        return builtin_cost(collective, p, nbytes, segment_bytes, backend, backend_algorithm)
    if p == 1:
        return Cost(0.0, 0.0, 0.0)
    return fn(p, nbytes, segment_bytes)


def _check(collective: str, p: int) -> None:
    if collective not in COLLECTIVES:
        raise KeyError(f"unknown collective {collective!r}; known: {', '.join(COLLECTIVES)}")
    if not isinstance(p, int) or p < 1:
        raise ValueError(f"world size must be a positive integer, got {p!r}")
