"""The rank side of ``collbench pairs``: every rank pair's latency and bandwidth, in p - 1 rounds of disjoint pairs.

Each round of a round-robin 1-factorisation (``bench.pairings``; p rounds for odd p)
pairs every rank with one other, and all pairs of a round measure at once, so the whole matrix costs O(p)
rounds. Per pair, the OSU way (osu_latency, osu_bw, osu_bibw): one-way latency at the small size
(ping-pong round trip / 2), uni-directional bandwidth both ways at the large size (a window of outstanding
messages, then a one-byte acknowledgement) and bi-directional bandwidth (both sides post their window at
once). Each figure is the best of the timed iterations: noise (a busy core, another job) only ever slows an
iteration down, while a slow link, rank or node is slow in every iteration, so the best iteration tells
them apart where the mean or median of a noisy machine would not. Every message goes through
``collectives.batched_p2p.exchange``; the receiver checks the data of the last window (wrong elements fail the
run). Options, launch and output: ``collbench.commands.pairs``; verdict and files: ``analysis.pairs``.
"""

from __future__ import annotations

import argparse
import math
import socket
import time
from dataclasses import dataclass
from typing import Any

from bench import protocol
from bench.errors import UsageError
from bench.pairings import one_factorisation
from bench.plan import RunConfig
from bench.sizes import DEFAULT_MAX_BYTES, parse_size


@dataclass(frozen=True)
class PairsPlan:
    """What every rank measures (picklable)."""

    small_bytes: int
    large_bytes: int
    window: int
    iters: int
    warmup: int
    ranks_per_node: int | None  # None: nodes are host names


def validate(ns: argparse.Namespace, env: dict[str, int] | None) -> tuple[RunConfig, PairsPlan, int]:
    """(run config, what every rank measures, world size) of the options ``ns``; UsageError before any process
    starts. ``env``: the torchrun environment, None for a local launch."""
    from bench.run import check_memory, check_upper_bounds, visible_gpus

    try:
        small = parse_size(ns.small_bytes)
        large = parse_size(ns.large_bytes) if ns.large_bytes is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if small < 1:
        raise UsageError(f"--small-bytes must be at least 1 byte, got {ns.small_bytes}")
    if ns.window < 1 or ns.iters < 1 or ns.warmup < 0:
        raise UsageError("--window and --iters must be >= 1, --warmup >= 0")
    if not 0 < ns.threshold < 1:
        raise UsageError(f"--threshold must be between 0 and 1 (a fraction of the median), got {ns.threshold:g}")
    if not 1 < ns.latency_factor < math.inf:
        raise UsageError(f"--latency-factor must be a finite number above 1 (a multiple of the median), "
                         f"got {ns.latency_factor:g}")
    if not ns.timeout > 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {ns.timeout:g}")
    check_upper_bounds(ns)
    gpus = visible_gpus()
    backend = ns.backend or ("nccl" if gpus else "gloo")
    if backend == "nccl" and gpus == 0:
        raise UsageError("--backend nccl needs a visible GPU; none found (use --backend gloo)")
    large = large if large is not None else DEFAULT_MAX_BYTES[backend]
    if large < 1:
        raise UsageError(f"--large-bytes must be at least 1 byte, got {ns.large_bytes}")
    if env is not None:
        world = env["world_size"]
    else:
        world = ns.nprocs if ns.nprocs is not None else (gpus if backend == "nccl" else 4)
        if backend == "nccl" and world > gpus:
            raise UsageError(f"--nprocs {world} is more than the {gpus} visible GPU(s)")
    if world < 2:
        raise UsageError(f"pairs needs at least 2 ranks, got {world}")
    if env is None:
        check_memory(world, large, "uint8", ns.window, option="--large-bytes")
    if ns.ranks_per_node is not None and not 1 <= ns.ranks_per_node <= world:
        raise UsageError(f"--ranks-per-node must be between 1 and the world size {world}, got {ns.ranks_per_node}")
    config = RunConfig(
        collectives=(), algorithms=(), backend=backend, device="cuda" if backend == "nccl" else "cpu",
        dtype="uint8", op="none", sizes=(small, large), min_bytes=small, max_bytes=large, step_factor=2.0,
        iters=ns.iters, warmup=ns.warmup, root=0, in_place="no", cuda_graph=False, seed=0, timeout_s=ns.timeout,
    )  # fmt: skip
    return config, PairsPlan(small, large, ns.window, ns.iters, ns.warmup, ns.ranks_per_node), world


#: a pair whose latency is above this multiple of its kind's median gets a second look (module docstring)
SECOND_LOOK_FACTOR = 2.0


def _merge(records: list[dict[str, Any]]) -> dict[tuple[int, int], dict[str, Any]]:
    """One record per pair from both sides' halves (each side measures what it received; wrong counts add up)."""
    merged: dict[tuple[int, int], dict[str, Any]] = {}
    for r in records:
        m = merged.setdefault((r["rank_a"], r["rank_b"]), {"n_wrong": 0})
        wrong = m["n_wrong"] + r["n_wrong"]
        m.update(r)
        m["n_wrong"] = wrong
    return merged


def second_look(merged: dict[tuple[int, int], dict[str, Any]], nodes: list[str]) -> list[tuple[int, int]]:
    """Pairs whose latency is above SECOND_LOOK_FACTOR x the median of their kind (intra- or inter-node): measured
    once more, later, keeping the better figure, so a burst of load on a shared host is not taken for a slow link
    (a slow link is slow both times). The same on every rank: all hold the same records."""
    kinds: dict[bool, list[float]] = {}
    for (a, b), m in merged.items():
        kinds.setdefault(nodes[a] == nodes[b], []).append(m["latency_us"])
    med = {k: sorted(v)[len(v) // 2] for k, v in kinds.items()}
    limit = {k: SECOND_LOOK_FACTOR * v for k, v in med.items()}
    return sorted(k for k, m in merged.items() if m["latency_us"] > limit[nodes[k[0]] == nodes[k[1]]])


def _disjoint_rounds(pairs: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Greedy rounds in which no rank is in two pairs, so a round's pairs measure at once without sharing a rank."""
    rounds: list[list[tuple[int, int]]] = []
    for pr in pairs:
        for rnd in rounds:
            if not {x for q in rnd for x in q} & set(pr):
                rnd.append(pr)
                break
        else:
            rounds.append([pr])
    return rounds


# --- rank side ---------------------------------------------------------------------------------------------


def pairs_rank(config: RunConfig, plan: PairsPlan, emit: Any) -> None:
    """One rank of ``collbench pairs``: every round, measure with this round's partner; rank 0 emits the result."""
    import os

    import torch
    import torch.distributed as dist

    from bench import faults
    from bench.osu_p2p import Link, nccl_ready
    from bench.worker import rank_meta
    from collectives.batched_p2p import make_ctx

    rank, p = dist.get_rank(), dist.get_world_size()
    control = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else None
    if rank == 0:
        emit(protocol.META, rank_meta(config.device))
    nccl_ready()
    ctx = make_ctx(None)
    delay = faults.pair_delay_s(rank)  # the planted slow rank (tests only)
    dev = config.device

    def pattern(src: int, n: int) -> torch.Tensor:
        return ((torch.arange(n, device=dev) % 251 + src) % 256).to(torch.uint8)

    w, n_small, n_large = plan.window, plan.small_bytes, plan.large_bytes
    small_send, small_recv = pattern(rank, n_small), torch.empty(n_small, dtype=torch.uint8, device=dev)
    big_send = pattern(rank, n_large)
    big_recv = torch.empty(w * n_large, dtype=torch.uint8, device=dev)
    ack = torch.zeros(1, dtype=torch.uint8, device=dev)
    recv_views = [big_recv.narrow(0, i * n_large, n_large) for i in range(w)]

    def best(link: Link, body: Any) -> float:
        """The fastest of the timed iterations, in seconds (module docstring)."""
        return min(link.timed(body, plan.iters, plan.warmup)[0])

    def wrong(peer: int, got: torch.Tensor, n: int) -> int:
        want = pattern(peer, n).repeat(got.numel() // n)
        return int((got != want).sum().item())

    def measure_pair(a: int, b: int) -> dict[str, Any]:
        peer = b if rank == a else a
        link = Link(ctx, peer, dev, delay)
        rec: dict[str, Any] = {"rank_a": a, "rank_b": b, "n_wrong": 0}
        small_recv.fill_(0)
        # ping-pong: the lower rank sends first; one-way latency = round trip / 2
        rec["latency_us"] = best(link, link.ping_pong(rank == a, small_send, small_recv)) / 2 * 1e6
        rec["n_wrong"] += wrong(peer, small_recv, n_small)
        for sender, key in ((a, "bw_a_to_b_gbps"), (b, "bw_b_to_a_gbps")):  # a window, then a one-byte ack
            big_recv.fill_(0)
            t = best(link, link.stream(rank == sender, big_send, recv_views, w, ack))
            if rank == sender:
                rec[key] = w * n_large / t / 1e9
            else:
                rec["n_wrong"] += wrong(peer, big_recv, n_large)
        big_recv.fill_(0)
        rec["bibw_gbps"] = 2 * w * n_large / best(link, link.both_ways(big_send, recv_views, w)) / 1e9
        rec["n_wrong"] += wrong(peer, big_recv, n_large)
        return rec

    records: list[dict[str, Any]] = []
    dist.barrier(group=control)
    t_start = time.perf_counter()
    for pairs in one_factorisation(p):
        dist.barrier(group=control)  # rounds never overlap
        mine = [pr for pr in pairs if rank in pr]
        if mine:
            records.append(measure_pair(*mine[0]))
        emit(protocol.TICK, None)
    host = os.environ.get("COLLBENCH_PAIRS_HOST") or socket.gethostname()
    gathered: list[Any] = [None] * p
    dist.all_gather_object(gathered, (host, records), group=control)
    merged = _merge([r for _, recs in gathered for r in recs])
    hosts = [h for h, _ in gathered]
    nodes = [f"node{r // plan.ranks_per_node}" for r in range(p)] if plan.ranks_per_node else hosts
    again = second_look(merged, nodes)
    looks: dict[tuple[int, int], tuple[float, int]] = {}  # this rank's second looks: latency, wrong received
    for pairs in _disjoint_rounds(again):
        dist.barrier(group=control)
        mine = [pr for pr in pairs if rank in pr]
        if mine:
            a, b = mine[0]
            peer = b if rank == a else a
            link = Link(ctx, peer, dev, delay)
            small_recv.fill_(0)
            lat = best(link, link.ping_pong(rank == a, small_send, small_recv)) / 2 * 1e6
            looks[(a, b)] = (lat, wrong(peer, small_recv, n_small))
    if again:
        seen: list[Any] = [None] * p
        dist.all_gather_object(seen, looks, group=control)
        for got in seen:
            for k, (lat, n_wrong) in got.items():
                merged[k]["latency_us"] = min(merged[k]["latency_us"], lat)
                merged[k]["n_wrong"] += n_wrong
    if rank == 0:
        rounds_s = time.perf_counter() - t_start
        emit(protocol.RESULT, {"hosts": hosts, "records": list(merged.values()), "rounds_s": rounds_s,
                               "second_look": [f"{a}-{b}" for a, b in again]})  # fmt: skip
    dist.barrier(group=control)
