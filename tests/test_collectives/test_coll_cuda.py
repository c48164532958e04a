"""NCCL on CUDA: the same exact checks as on gloo; skipped (with the reason) without the GPUs they need.

World 1 needs one GPU; world 2 needs two, or one GPU with ``NCCL_MULTI_RANK_GPU_ENABLE=1`` set (several
ranks per GPU, where this NCCL allows it).
"""

from __future__ import annotations

import os

import pytest
import torch
from collpool import Pools

import collectives

N_GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.mark.timeout(300)
@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_all_algorithms_on_device(pools: Pools, device: str, world: int) -> None:
    shared = os.environ.get("NCCL_MULTI_RANK_GPU_ENABLE") == "1"
    if device == "cuda" and N_GPUS < (1 if world == 1 or shared else world):
        pytest.skip(f"NCCL with {world} ranks needs {world} GPUs (or NCCL_MULTI_RANK_GPU_ENABLE=1), found {N_GPUS}")
    backend = "nccl" if device == "cuda" else "gloo"
    cases = []
    for c in collectives.COLLECTIVES:
        for a in collectives.algorithms(c):
            for k, (dtype, op) in enumerate([("float32", "SUM"), ("bfloat16", "MAX"), ("int64", "PRODUCT")]):
                case = {"collective": c, "algorithm": a, "dtype": dtype, "op": op, "numel": 37 + k}
                case.update({"root": k, "device": device, "seed": k})
                cases.append(case)
    results = pools.get(world, backend).run("collcases:run_cases", timeout_s=240, cases=cases)
    failures = [f"rank {r}: {c}: {e}" for r, errs in enumerate(results) for c, e in zip(cases, errs, strict=True) if e]
    assert not failures, "\n".join(failures[:20])
