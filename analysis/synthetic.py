"""Synthetic run directories with known alpha, beta, gamma (for tests, demos and checking the fits).

Times follow docs/theory.md's model t = L(p) alpha + W(p) n beta + G(p) n gamma with each algorithm's coefficients
from ``collectives.costs``, times multiplicative log-normal noise per iteration, written
in the current result schema (``analysis.rundir``, ``bench.schema``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.rundir import base_meta, new_run_dir, write_run_dir
from collectives import costs
from collectives.spec import describe, is_point_to_point


@dataclass(frozen=True)
class Hardware:
    """Ground truth: per-message latency, link bandwidth, reduction bandwidth (GB/s; 0 = free)."""

    alpha_us: float = 20.0
    bw_gbps: float = 2.0
    gamma_gbps: float = 0.0

    def time_us(self, collective: str, algorithm: str, p: int, nbytes: float, segment_bytes: int | None) -> float:
        if is_point_to_point(collective):  # one message of n bytes (Hockney), whatever p and the measurement
            return self.alpha_us + nbytes * 1e-3 / self.bw_gbps
        c = costs.cost(collective, algorithm, p, nbytes=nbytes, segment_bytes=segment_bytes, backend="gloo")
        gamma = 1e-3 / self.gamma_gbps if self.gamma_gbps > 0 else 0.0
        return c.L * self.alpha_us + (c.W * 1e-3 / self.bw_gbps + c.G * gamma) * nbytes


def write_run(
    out: str | Path,
    hw: Hardware,
    *,
    cases: Sequence[tuple[str, str]] = (("all_reduce", "ring"),),
    world_size: int = 4,
    sizes: Sequence[int] = tuple(1 << k for k in range(10, 25, 2)),
    noise: float = 0.03,
    iters: int = 20,
    seed: int = 0,
    time_fn=None,
) -> Path:
    """One run directory under ``out`` with every (collective, algorithm) at every size; returns its path.

    ``time_fn(collective, algorithm, p, nbytes) -> µs`` overrides the model (e.g. a planted breakpoint).
    """
    rng = np.random.default_rng(seed)
    run_dir = new_run_dir(out, f"synthetic-p{world_size}")
    points = []
    for collective, algorithm in cases:
        pipelined = (collective, algorithm) in costs.PIPELINED
        for nbytes in sizes:
            seg = costs.default_segment_bytes(collective, algorithm, nbytes, world_size) if pipelined else None
            if time_fn is not None:
                base = time_fn(collective, algorithm, world_size, nbytes)
            else:
                base = hw.time_us(collective, algorithm, world_size, nbytes, seg)
            points.append(_point(rng, collective, algorithm, world_size, int(nbytes), base, noise, iters, seg=seg))
    truth = {"alpha_us": hw.alpha_us, "bw_gbps": hw.bw_gbps, "gamma_gbps": hw.gamma_gbps, "noise": noise}
    meta = base_meta(
        run_dir, collbench_version="synthetic", command=["synthetic"], host="synthetic", launcher="spawn",
        backend="gloo", device="cpu", world_size=world_size, nnodes=1, ranks_per_node=world_size,
        config={"truth": truth},
    )  # fmt: skip
    return write_run_dir(run_dir, meta, points)


def _point(rng: np.random.Generator, collective: str, algorithm: str, world_size: int, nbytes: int, base: float,
           noise: float, iters: int, *, backend: str = "gloo", device: str = "cpu", seg: int | None = None) -> dict:
    """One schema point whose ``iters`` samples are ``base`` times log-normal noise (median, percentiles)."""
    samples = base * np.exp(rng.normal(0.0, noise, iters))
    q = np.percentile(samples, [10, 25, 50, 75, 90])
    med = float(q[2])
    algbw = nbytes / med / 1e3
    desc = describe(collective)  # send_recv: no reduction, no root, out of place, busbw = algbw
    op, root, in_place = desc.recorded_op("sum"), desc.recorded_root(0), desc.variants("no")[0]
    factor = desc.busbw(world_size)
    return {
        "collective": collective, "algorithm": algorithm, "backend": backend, "device": device,
        "world_size": world_size, "dtype": "float32", "op": op, "bytes": int(nbytes),
        "count": int(nbytes) // 4, "root": root, "in_place": in_place, "iters": iters, "warmup": 5,
        "time_us": med, "time_us_p10": float(q[0]), "time_us_p25": float(q[1]),
        "time_us_p75": float(q[3]), "time_us_p90": float(q[4]),
        "time_us_min": float(samples.min()), "time_us_max": float(samples.max()),
        "block_time_us": float(samples.mean()), "algbw_gbps": algbw,
        "busbw_gbps": algbw * factor, "correct": True, "n_wrong": 0,
        "noisy": False, "segment_bytes": seg, "cuda_graph": False,
        "samples_us": [float(s) for s in samples],
    }  # fmt: skip


@dataclass(frozen=True)
class TwoTierHardware:
    """Ground truth of a two-tier cluster (docs/two-tier.md): per-step latency (µs) and bus bandwidth (GB/s)
    inside a node and across the network."""

    alpha_intra_us: float = 4.0
    bw_intra_gbps: float = 150.0
    alpha_inter_us: float = 12.0
    bw_inter_gbps: float = 40.0

    def tiers(self):  # noqa: ANN201 - analysis.twotier.Tiers
        from analysis.twotier import Tiers

        return Tiers(self.alpha_intra_us, self.bw_intra_gbps, self.alpha_inter_us, self.bw_inter_gbps)

    def time_us(self, collective: str, algorithm: str, nnodes: int, gpus_per_node: int, nbytes: float) -> float:
        from analysis.twotier import tier_cost, tier_time_us

        return float(tier_time_us(tier_cost(collective, algorithm, nnodes, gpus_per_node), nbytes, self.tiers()))


def write_two_tier_run(
    out: str | Path,
    hw: TwoTierHardware,
    *,
    nnodes: int,
    gpus_per_node: int,
    collective: str = "all_reduce",
    schedule: str = "ring",
    sizes: Sequence[int] = tuple(1 << k for k in range(16, 34, 2)),
    noise: float = 0.03,
    iters: int = 20,
    seed: int = 0,
) -> Path:
    """One run directory of NCCL's builtin ``collective`` on ``nnodes`` x ``gpus_per_node`` GPUs whose times
    follow the two-tier model of ``schedule`` (ring, tree, hierarchical: what NCCL would run at that scale),
    with multiplicative log-normal noise per iteration; run.json records the topology and the truth."""
    rng = np.random.default_rng(seed)
    p = nnodes * gpus_per_node
    run_dir = new_run_dir(out, f"synthetic-{nnodes}x{gpus_per_node}")
    points = [_point(rng, collective, "builtin", p, int(n), hw.time_us(collective, schedule, nnodes, gpus_per_node, n),
                     noise, iters, backend="nccl", device="cuda") for n in sizes]  # fmt: skip
    truth = {**{k: getattr(hw, k) for k in ("alpha_intra_us", "bw_intra_gbps", "alpha_inter_us", "bw_inter_gbps")},
             "schedule": schedule, "noise": noise}  # fmt: skip
    meta = base_meta(
        run_dir, collbench_version="synthetic", command=["synthetic"], host="synthetic", launcher="synthetic",
        backend="nccl", device="cuda", world_size=p, nnodes=nnodes,
        hardware={"nnodes": nnodes, "gpus_per_node": gpus_per_node, "gpu_count": p}, config={"truth": truth},
    )  # fmt: skip
    return write_run_dir(run_dir, meta, points)
