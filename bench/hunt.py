"""The rank side of ``collbench hunt``: the search of ``bench.hunt_strategy`` on the ranks of a running job.

Rank 0 runs the search; its tester (``RankTester``) hands each round to the ranks through the job's store (the
TCPStore every rank already reached to form the process group): the round's tests as JSON under one key, each
rank's result under its own. No process group is created per test, so rounds of any groups cost nothing to
set up and a dead node cannot stall a collective call of the others: a test is a ring all-reduce over the
test's ranks (its nodes' local rank ``rail``, or every rank of one node) made of isend/irecv on the world group.
Per test: ``warmup`` untimed and ``iters`` timed iterations; a rank's time is its fastest iteration (noise only
slows an iteration down, a slow NIC slows every one, as in ``bench.pairs``), the test's time its slowest
rank's, busbw = 2 (k - 1) / k S / time; the last iteration's sum is checked exactly on every rank.

Every rank posts a heartbeat to the store each second from a thread with its own store client. A round whose
results do not all arrive ends when the missing ranks' heartbeats are older than ``BEAT_STALE_S`` (their node
or its link is gone) or at ``timeout_s``: those nodes are unreachable, the search ends, and rank 0 tells every
rank to stop. Options and output: ``collbench.commands.hunt``; files: ``analysis.hunt``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench import protocol
from bench.errors import UsageError
from bench.hunt_strategy import HuntSettings, Test, TestResult, default_group_size
from bench.plan import RunConfig
from bench.sizes import parse_size

BEAT_PERIOD_S = 1.0
BEAT_STALE_S = 4.0  # a rank whose heartbeat is this old stopped answering
DEFAULT_BYTES = {"gloo": 4 << 20, "nccl": 256 << 20}
PREFIX = "collbench/hunt/"


@dataclass(frozen=True)
class HuntPlan:
    """What every rank needs (picklable)."""

    size_bytes: int
    iters: int
    warmup: int
    ranks_per_node: int | None  # None: nodes are host names
    settings: HuntSettings


def validate(ns: argparse.Namespace, env: dict[str, int] | None) -> tuple[RunConfig, HuntPlan, int]:
    """(run config, plan, world size) of the options; UsageError before any process starts."""
    from bench.run import check_memory

    try:
        size = parse_size(ns.size) if ns.size is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if ns.iters < 1 or ns.warmup < 0:
        raise UsageError("--iters must be >= 1, --warmup >= 0")
    if not ns.timeout > 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {ns.timeout:g}")
    backend = "gloo"  # point-to-point on the world group, any groups of ranks; GPU jobs too (docs/hunt.md, limits)
    size = size if size is not None else DEFAULT_BYTES[backend]
    if size < 64:
        raise UsageError(f"--size must be at least 64 bytes, got {ns.size}")
    if env is not None:
        world = env["world_size"]
    else:
        world = ns.nprocs if ns.nprocs is not None else 4
    rpn = ns.ranks_per_node
    if rpn is not None and (rpn < 1 or world % rpn):
        raise UsageError(f"--ranks-per-node must divide the world size {world}, got {rpn}")
    nodes = world // (rpn or (env["local_world_size"] if env else 1))
    if nodes < 2:
        raise UsageError(f"hunt needs at least 2 nodes, got {nodes} (world size {world})")
    if env is None:
        check_memory(world, size, "float32", 2, option="--size")
    config = RunConfig(
        collectives=(), algorithms=(), backend=backend, device="cpu", dtype="float32", op="sum", sizes=(size,),
        min_bytes=size, max_bytes=size, step_factor=2.0, iters=ns.iters, warmup=ns.warmup, root=0, in_place="no",
        cuda_graph=False, seed=ns.seed, timeout_s=ns.timeout,
    )  # fmt: skip
    settings = HuntSettings(group_size=ns.group_size or default_group_size(nodes), screen_rounds=ns.screen_rounds,
                            threshold=ns.threshold, max_rounds=ns.max_rounds, budget_s=ns.budget_s,
                            seed=ns.seed, sweep_links=ns.sweep_links)  # fmt: skip
    ranks_per_node = rpn if rpn is not None else (1 if env is None else None)  # locally every rank is a node
    return config, HuntPlan(size, ns.iters, ns.warmup, ranks_per_node, settings), world


# --- rank side ---------------------------------------------------------------------------------------------


class _Store:
    """A client of the job's store of its own (the heartbeat thread holds another)."""

    def __init__(self, timeout_s: float) -> None:
        from datetime import timedelta

        import torch.distributed as dist

        self.store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                                   timeout=timedelta(seconds=timeout_s), wait_for_workers=False)  # fmt: skip

    def set(self, key: str, value: Any) -> None:
        self.store.set(PREFIX + key, json.dumps(value))

    def get(self, key: str) -> Any:
        return json.loads(self.store.get(PREFIX + key))

    def has(self, key: str) -> bool:
        return bool(self.store.check([PREFIX + key]))


def _heartbeat(stop: threading.Event, rank: int, timeout_s: float) -> None:
    try:
        store = _Store(timeout_s)
        while not stop.is_set():
            store.set(f"beat/{rank}", time.time())
            stop.wait(BEAT_PERIOD_S)
    except Exception:  # noqa: BLE001 - no heartbeat: a stuck rank then counts as unreachable at the timeout
        return


def _unreachable_fault(rank: int, round_index: int) -> bool:
    """Tests only: rank and round of COLLBENCH_TEST_HUNT_CUT ("RANK:ROUND"), where the rank goes silent (and
    exits once rank 0 has had the time to find it silent)."""
    from bench import faults

    value = os.environ.get("COLLBENCH_TEST_HUNT_CUT", "")
    return faults.enabled() and value == f"{rank}:{round_index}"


class _RingAllReduce:
    """The timed ring all-reduce of one test on this rank, over global ``ranks`` (isend/irecv, world group)."""

    def __init__(self, size_bytes: int) -> None:
        import torch

        self.n = max(1, size_bytes // 4)
        self.base = (torch.arange(self.n, dtype=torch.float32) % 17)
        self.buf = torch.empty(self.n, dtype=torch.float32)
        self.tmp = torch.empty(self.n, dtype=torch.float32)

    def run(self, ranks: Sequence[int], rank: int, iters: int, warmup: int, delay_s: float = 0.0) -> tuple[float, int]:
        """(fastest timed iteration in seconds, wrong elements of the last one)."""
        k = len(ranks)
        best = float("inf")
        for i in range(warmup + iters):
            self.buf.copy_(self.base).add_(rank)
            t0 = time.perf_counter()
            self._ring(ranks, rank, delay_s)
            dt = time.perf_counter() - t0
            if i >= warmup:
                best = min(best, dt)
        want = self.base * k + sum(ranks)
        return best, int((self.buf != want).sum().item())

    def _ring(self, ranks: Sequence[int], rank: int, delay_s: float) -> None:
        """Reduce-scatter then all-gather around the ring; ``delay_s`` before each step plants a slow rank
        (tests only: ``bench.faults.pair_delay_s``)."""
        import torch.distributed as dist

        k = len(ranks)
        me = ranks.index(rank)
        nxt, prv = ranks[(me + 1) % k], ranks[(me - 1) % k]
        chunks = list(self.buf.tensor_split(k))
        tmps = list(self.tmp.tensor_split(k))
        for s in range(k - 1):  # reduce-scatter
            send, recv = (me - s) % k, (me - s - 1) % k
            time.sleep(delay_s)
            reqs = [dist.isend(chunks[send], nxt), dist.irecv(tmps[recv], prv)]
            for r in reqs:
                r.wait()
            chunks[recv].add_(tmps[recv])
        for s in range(k - 1):  # all-gather
            send, recv = (me + 1 - s) % k, (me - s) % k
            time.sleep(delay_s)
            reqs = [dist.isend(chunks[send], nxt), dist.irecv(chunks[recv], prv)]
            for r in reqs:
                r.wait()


def _ranks_of(test: dict[str, Any], node_ranks: list[list[int]]) -> list[int]:
    if test["rail"] is None:
        return list(node_ranks[test["nodes"][0]])
    return [node_ranks[n][test["rail"]] for n in test["nodes"]]


def _my_part(plan_tests: list[dict[str, Any]], node_ranks: list[list[int]], rank: int) -> list[int] | None:
    for t in plan_tests:
        ranks = _ranks_of(t, node_ranks)
        if rank in ranks:
            return ranks
    return None


class RankTester:
    """The tester of ``bench.hunt_strategy`` on rank 0: publishes a round, runs its own part, gathers results."""

    def __init__(self, store: _Store, node_ranks: list[list[int]], plan: HuntPlan, timeout_s: float,
                 ring: _RingAllReduce, emit: Any) -> None:  # fmt: skip
        self.store, self.node_ranks, self.plan, self.timeout_s = store, node_ranks, plan, timeout_s
        self.nodes, self.rails = len(node_ranks), len(node_ranks[0])
        self.ring, self.emit = ring, emit
        self.index = 0
        self.stuck: set[int] = set()  # ranks of the last round that never answered (waiting for a silent peer)
        self.beats: dict[int, tuple[Any, float]] = {}  # rank -> (its last heartbeat, when this rank first saw it)
        self.node_of = {r: n for n, rs in enumerate(node_ranks) for r in rs}

    def run_round(self, tests: Sequence[Test]) -> tuple[list[TestResult], float]:
        t0 = time.monotonic()
        i = self.index
        self.index += 1
        wire = [{"kind": t.kind, "nodes": list(t.nodes), "rail": t.rail} for t in tests]
        self.store.set(f"plan/{i}", {"tests": wire})
        mine = _my_part(wire, self.node_ranks, 0)
        if mine is not None:
            self.store.set(f"res/{i}/0", _measure(self.ring, mine, 0, self.plan))
        results = self._gather(i, tests)
        self.emit(protocol.TICK, None)
        return results, time.monotonic() - t0

    def _gather(self, i: int, tests: Sequence[Test]) -> list[TestResult]:
        """Wait for every member's result; members silent for BEAT_STALE_S (or until the timeout) are unreachable."""
        members = {r for t in tests for r in _ranks_of({"nodes": t.nodes, "rail": t.rail}, self.node_ranks)}
        got: dict[int, dict[str, Any]] = {}
        start = time.monotonic()
        silent: set[int] = set()
        while True:
            for r in sorted(members - set(got)):
                if self.store.has(f"res/{i}/{r}"):
                    got[r] = self.store.get(f"res/{i}/{r}")
                    self.emit(protocol.TICK, None)
            missing = members - set(got)
            if not missing:
                break
            now = time.monotonic()
            silent = {r for r in missing if self._silent(r, start)}
            waited = now - start
            if silent and missing <= silent | self._waiting_on(missing, tests, silent):
                break
            if waited > self.timeout_s:
                silent = missing
                break
            time.sleep(0.05)
        self.stuck = members - set(got)
        out = []
        for t in tests:
            ranks = _ranks_of({"nodes": t.nodes, "rail": t.rail}, self.node_ranks)
            dead = tuple(sorted({self.node_of[r] for r in ranks if r in silent}))
            rows = [got.get(r) for r in ranks]
            if dead or any(x is None or x.get("error") for x in rows):
                out.append(TestResult(t, None, None, 0, dead))
                continue
            k = len(ranks)
            time_s = max(x["time_s"] for x in rows)  # type: ignore[index]
            busbw = (2 * (k - 1) / k) * self.plan.size_bytes / time_s / 1e9 if k > 1 else None
            out.append(TestResult(t, busbw, time_s * 1e6, sum(x["n_wrong"] for x in rows)))  # type: ignore[index]
        return out

    def _waiting_on(self, missing: set[int], tests: Sequence[Test], silent: set[int]) -> set[int]:
        """The missing ranks whose test holds a silent rank: they wait for it until their own timeout."""
        out = set()
        for t in tests:
            ranks = set(_ranks_of({"nodes": t.nodes, "rail": t.rail}, self.node_ranks))
            if ranks & silent:
                out |= ranks & missing
        return out

    def _silent(self, r: int, start: float) -> bool:
        """No new heartbeat from rank ``r`` for BEAT_STALE_S by this rank's clock (hosts' clocks may differ)."""
        now = time.monotonic()
        value = self.store.get(f"beat/{r}") if self.store.has(f"beat/{r}") else None
        last_value, seen = self.beats.get(r, (None, start))
        if value != last_value:
            self.beats[r] = (value, now)
            return False
        return now - max(seen, start) > BEAT_STALE_S

    def stop(self, unreachable: set[int]) -> None:
        """Tell every rank the search is over, then wait (up to the timeout) until every rank of a reachable node
        has read it: in a local run this rank hosts the store, which must outlive their last look at it."""
        self.store.set(f"plan/{self.index}", {"stop": True})
        waiting = {r for n, rs in enumerate(self.node_ranks) if n not in unreachable for r in rs} - {0} - self.stuck
        deadline = time.monotonic() + self.timeout_s + 2 * BEAT_STALE_S
        while waiting and time.monotonic() < deadline:
            done = {r for r in waiting if self.store.has(f"bye/{r}")}
            if done:
                self.emit(protocol.TICK, None)
            waiting -= done
            time.sleep(0.05)


def _measure(ring: _RingAllReduce, ranks: list[int], rank: int, plan: HuntPlan) -> dict[str, Any]:
    from bench import faults

    try:
        t, wrong = ring.run(ranks, rank, plan.iters, plan.warmup, faults.pair_delay_s(rank))
        return {"time_s": t, "n_wrong": wrong}
    except Exception as exc:  # noqa: BLE001 - a peer that stopped answering: the round says so
        from bench.worker import short_error

        return {"error": short_error(exc)}


def hunt_rank(config: RunConfig, plan: HuntPlan, emit: Any) -> None:
    """One rank of ``collbench hunt``: rank 0 searches and emits the result; the others follow the rounds."""
    import torch.distributed as dist

    from bench.hunt_strategy import hunt
    from bench.worker import rank_meta

    rank, world = dist.get_rank(), dist.get_world_size()
    if rank == 0:
        emit(protocol.META, rank_meta(config.device))
    host = os.environ.get("COLLBENCH_PAIRS_HOST") or socket.gethostname()
    hosts: list[Any] = [None] * world
    dist.all_gather_object(hosts, host)
    node_ranks = _node_ranks(hosts, plan.ranks_per_node)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(stop, rank, config.timeout_s), daemon=True)
    beat.start()
    store = _Store(config.timeout_s)
    ring = _RingAllReduce(plan.size_bytes)
    dist.barrier()
    try:
        if rank == 0:
            tester = RankTester(store, node_ranks, plan, config.timeout_s, ring, emit)
            t0 = time.perf_counter()
            result = hunt(tester, plan.settings)
            tester.stop({b.node for b in result.blamed if b.kind == "unreachable"})
            emit(protocol.RESULT, {"hunt": result.to_json(), "hosts": hosts, "node_ranks": node_ranks,
                                   "node_names": _node_names(hosts, node_ranks, plan.ranks_per_node),
                                   "seconds": time.perf_counter() - t0})  # fmt: skip
        else:
            _follow(store, node_ranks, plan, ring, rank, stop, emit)
    finally:
        stop.set()


def _follow(store: _Store, node_ranks: list[list[int]], plan: HuntPlan, ring: _RingAllReduce, rank: int,
            stop: threading.Event, emit: Any) -> None:  # fmt: skip
    i = 0
    while True:
        key = f"plan/{i}"
        while not store.has(key):
            time.sleep(0.02)
        got = store.get(key)
        if got.get("stop"):
            store.set(f"bye/{rank}", True)
            return
        if _unreachable_fault(rank, i):
            stop.set()  # no more heartbeats, no answer: rank 0 finds it silent, then the process ends
            time.sleep(3 * BEAT_STALE_S)
            os._exit(3)
        mine = _my_part(got["tests"], node_ranks, rank)
        if mine is not None:
            store.set(f"res/{i}/{rank}", _measure(ring, mine, rank, plan))
        emit(protocol.TICK, None)
        i += 1


def _node_names(hosts: list[str], node_ranks: list[list[int]], ranks_per_node: int | None) -> list[str]:
    """Host names when nodes are hosts; 'node<i>' when they are blocks of ranks (as ``collbench pairs``)."""
    if ranks_per_node:
        return [f"node{i}" for i in range(len(node_ranks))]
    return [hosts[rs[0]] for rs in node_ranks]


def _node_ranks(hosts: list[str], ranks_per_node: int | None) -> list[list[int]]:
    """Ranks per node (consecutive blocks of ``ranks_per_node``, else by host name in order of first rank); the
    i-th rank of each node is its rail i. Every node must have the same number of ranks."""
    if ranks_per_node:
        return [list(range(s, s + ranks_per_node)) for s in range(0, len(hosts), ranks_per_node)]
    by_host: dict[str, list[int]] = {}
    for r, h in enumerate(hosts):
        by_host.setdefault(h, []).append(r)
    groups = list(by_host.values())
    if len({len(g) for g in groups}) != 1:
        raise RuntimeError(f"nodes hold different numbers of ranks: {[len(g) for g in groups]}")
    return groups
