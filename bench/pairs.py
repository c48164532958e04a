"""``collbench pairs``: every rank pair's latency and bandwidth, in p - 1 rounds of disjoint pairs.

Each round of a round-robin 1-factorisation (``analysis.pairs.one_factorisation``; p rounds for odd p)
pairs every rank with one other, and all pairs of a round measure at once, so the whole matrix costs O(p)
rounds. Per pair, the OSU way (osu_latency, osu_bw, osu_bibw): one-way latency at the small size
(ping-pong round trip / 2), uni-directional bandwidth both ways at the large size (a window of outstanding
messages, then a one-byte acknowledgement) and bi-directional bandwidth (both sides post their window at
once). Each figure is the best of the timed iterations: noise (a busy core, another job) only ever slows an
iteration down, while a slow link, rank or node is slow in every iteration, so the best iteration tells
them apart where the mean or median of a noisy machine would not. Every message goes through
``collectives.batched_p2p.exchange``; the receiver checks the data of the last window (wrong elements fail the
run). Verdict and files: ``analysis.pairs``. Exit code 1 when anything is flagged or wrong, 2 for bad
options (before any process starts), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench import protocol
from bench.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, UsageError, UsageParser
from bench.plan import RunConfig
from bench.sizes import parse_size

DEFAULT_LARGE = {"gloo": 1 << 20, "nccl": 64 << 20}


@dataclass(frozen=True)
class PairsPlan:
    """What every rank measures (picklable)."""

    small_bytes: int
    large_bytes: int
    window: int
    iters: int
    warmup: int
    ranks_per_node: int | None  # None: nodes are host names


def build_parser() -> argparse.ArgumentParser:
    p = UsageParser(
        prog="collbench pairs",
        description="Measure every rank pair's latency and bandwidth in p-1 rounds of disjoint pairs, write the "
        "p x p matrices, a heatmap and run.json into a new run directory, and flag pairs, ranks and nodes below "
        "a threshold of the median of their kind. Exit code 1 when something is flagged.",
        epilog="Sizes take K/M/G suffixes (powers of 1024); GB = 1e9 B. Under torchrun the launcher's ranks are "
        "used and rank 0 writes.",
    )
    p.add_argument("--backend", choices=("gloo", "nccl"), help="default: nccl if GPUs are visible, else gloo")
    p.add_argument("--nprocs", type=int, help="local ranks to spawn (default: GPUs for nccl, 4 for gloo)")
    p.add_argument("--small-bytes", default="8", help="latency message size (default 8 B)")
    p.add_argument("--large-bytes", help="bandwidth message size (default 1M on gloo, 64M on nccl)")
    p.add_argument("--window", type=int, default=4, help="messages in flight for bandwidth (default 4, OSU-style)")
    p.add_argument("-n", "--iters", type=int, default=10, help="timed iterations per test (default 10)")
    p.add_argument("-w", "--warmup", type=int, default=2, help="warm-up iterations per test (default 2)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="flag below this fraction of the median of the same kind (default 0.5)")  # fmt: skip
    p.add_argument("--ranks-per-node", type=int,
                   help="nodes are blocks of this many consecutive ranks (default: one node per host)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=120.0, help="seconds without progress before the run is ended")
    p.add_argument("--out", default="results", help="parent directory of the new run directory (default results/)")
    p.add_argument("--quiet", action="store_true", help="print only the verdict lines and the run directory")
    p.add_argument("--json", action="store_true", help="print one JSON summary object")
    return p


def _validate(ns: argparse.Namespace, env: dict[str, int] | None) -> tuple[RunConfig, PairsPlan, int]:
    from bench.run import _visible_gpus

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
    if not ns.timeout > 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {ns.timeout:g}")
    gpus = _visible_gpus()
    backend = ns.backend or ("nccl" if gpus else "gloo")
    if backend == "nccl" and gpus == 0:
        raise UsageError("--backend nccl needs a visible GPU; none found (use --backend gloo)")
    large = large if large is not None else DEFAULT_LARGE[backend]
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
    if ns.ranks_per_node is not None and not 1 <= ns.ranks_per_node <= world:
        raise UsageError(f"--ranks-per-node must be between 1 and the world size {world}, got {ns.ranks_per_node}")
    config = RunConfig(
        collectives=(), algorithms=(), backend=backend, device="cuda" if backend == "nccl" else "cpu",
        dtype="uint8", op="none", sizes=(small, large), min_bytes=small, max_bytes=large, step_factor=2.0,
        iters=ns.iters, warmup=ns.warmup, root=0, in_place="no", cuda_graph=False, seed=0, timeout_s=ns.timeout,
    )  # fmt: skip
    return config, PairsPlan(small, large, ns.window, ns.iters, ns.warmup, ns.ranks_per_node), world


# --- rank side ---------------------------------------------------------------------------------------------


def pairs_rank(config: RunConfig, plan: PairsPlan, emit: Any) -> None:
    """One rank of ``collbench pairs``: every round, measure with this round's partner; rank 0 emits the result."""
    import os

    import torch
    import torch.distributed as dist

    from analysis.pairs import one_factorisation
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
    if rank == 0:
        merged: dict[tuple[int, int], dict[str, Any]] = {}
        for _, recs in gathered:
            for r in recs:
                m = merged.setdefault((r["rank_a"], r["rank_b"]), {"n_wrong": 0})
                m["n_wrong"] += r.pop("n_wrong")
                m.update(r)
        rounds_s = time.perf_counter() - t_start
        emit(
            protocol.RESULT, {"hosts": [h for h, _ in gathered], "records": list(merged.values()), "rounds_s": rounds_s}
        )
    dist.barrier(group=control)


# --- the command ---------------------------------------------------------------------------------------------


def pairs_command(args: list[str]) -> int:
    """``collbench pairs``: validate, launch, analyse, write, print; exit 0 (clean), 1 (flagged or failed)."""
    from bench.launch import Outcome, Sink, run_spawned, run_torchrun, torchrun_env
    from bench.run import new_run_dir

    ns = build_parser().parse_args(args[1:])
    env = torchrun_env()
    config, plan, world = _validate(ns, env)
    if env is not None and env["rank"] != 0:
        outcome = run_torchrun(config, plan, None, env, pairs_rank)
        return EXIT_OK if outcome.status == "complete" else EXIT_FAIL

    from analysis.pairs import analyse, one_factorisation, summary_lines, write_files
    from bench.run_writer import RunWriter, base_metadata

    run_dir = new_run_dir(ns.out)
    meta_config = {"backend": config.backend, "device": config.device, "world_size": world, "command_kind": "pairs",
                   "small_bytes": plan.small_bytes, "large_bytes": plan.large_bytes, "window": plan.window,
                   "iters": plan.iters, "warmup": plan.warmup, "threshold": ns.threshold,
                   "ranks_per_node": plan.ranks_per_node, "rounds": len(one_factorisation(world)),
                   "nprocs": world}  # fmt: skip
    writer = RunWriter(run_dir, base_metadata(run_dir, ["collbench", *args], "torchrun" if env else "spawn",
                                              meta_config))  # fmt: skip
    got: dict[str, Any] = {}

    class _PairsSink(Sink):
        def handle(self, kind: str, payload: Any) -> None:
            if kind == protocol.RESULT:
                got.update(payload)
            else:
                super().handle(kind, payload)

    sink = _PairsSink(writer, lambda m: None, lambda msg: print(f"collbench: warning: {msg}", file=sys.stderr))
    t0 = time.monotonic()
    if not (ns.quiet or ns.json):
        print(f"# collbench pairs: {config.backend}, world size {world}, {len(one_factorisation(world))} rounds, "
              f"latency at {plan.small_bytes} B, bandwidth at {plan.large_bytes} B x window {plan.window}")  # fmt: skip
        print(f"# writing {run_dir}", flush=True)
    try:
        if env is None:
            outcome = run_spawned(config, plan, world, sink, pairs_rank)
        else:
            outcome = run_torchrun(config, plan, sink, env, pairs_rank)
    except Exception as exc:  # noqa: BLE001 - never lose the file status to a harness bug
        outcome = Outcome("failed", f"{type(exc).__name__}: {exc}")
    wall_s = time.monotonic() - t0
    if outcome.status == "complete" and not got:
        outcome = Outcome("incomplete", "rank 0 sent no result")
    verdict = None
    if got:
        hosts = got["hosts"]
        nodes = [f"node{r // plan.ranks_per_node}" for r in range(world)] if plan.ranks_per_node else hosts
        meta = writer.meta
        meta["nnodes"] = len(set(nodes))
        verdict = analyse(got["records"], nodes, ns.threshold)
        files = write_files(verdict, run_dir)
        meta["pairs"] = {**verdict.to_json(), "wall_s": wall_s, "rounds_s": got.get("rounds_s"),
                         "files": [f.name for f in files], "hosts": hosts}  # fmt: skip
        meta["warnings"] += [f"flagged pair {x}" for x in verdict.flagged_pairs] + verdict.wrong_pairs
    writer.finish(outcome.status, outcome.reason)
    if outcome.status != "complete":
        code = EXIT_INTERRUPTED if (outcome.reason or "").startswith("interrupted") else EXIT_FAIL
    else:
        code = EXIT_FAIL if verdict is None or verdict.flagged else EXIT_OK
    if ns.json:
        print(json.dumps({
            "run_dir": str(run_dir), "status": outcome.status, "status_reason": outcome.reason, "wall_s": wall_s,
            "rounds_s": got.get("rounds_s"),
            "flagged_ranks": verdict.flagged_ranks if verdict else None,
            "flagged_nodes": verdict.flagged_nodes if verdict else None,
            "flagged_pairs": len(verdict.flagged_pairs) if verdict else None,
            "slow_links": verdict.slow_links if verdict else None, "exit_code": code,
        }))  # fmt: skip
        return code
    if verdict is not None:
        lines = summary_lines(verdict)
        for line in lines if not ns.quiet else [x for x in lines if x.startswith("# flagged") or "WRONG" in x]:
            print(line)
    if outcome.status != "complete":
        print(f"collbench: error: pairs {outcome.status}: {outcome.reason}", file=sys.stderr)
    rounds = f" (measuring {got['rounds_s']:.1f} s, the rest starting the ranks)" if got.get("rounds_s") else ""
    print(f"# wall time {wall_s:.1f} s{rounds}")
    print(run_dir, flush=True)
    return code
