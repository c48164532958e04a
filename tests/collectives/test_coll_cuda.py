"""NCCL on CUDA: the same exact checks as on gloo; skipped (with the reason) without 2 GPUs."""

from __future__ import annotations

import pytest
import torch
from collpool import Pools

import collectives

N_GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.mark.timeout(300)
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_all_algorithms_on_device(pools: Pools, device: str) -> None:
    if device == "cuda" and N_GPUS < 2:
        pytest.skip(f"needs >= 2 CUDA GPUs for NCCL, found {N_GPUS}")
    backend = "nccl" if device == "cuda" else "gloo"
    cases = []
    for c in collectives.COLLECTIVES:
        for a in collectives.algorithms(c):
            for k, (dtype, op) in enumerate([("float32", "SUM"), ("bfloat16", "MAX"), ("int64", "PRODUCT")]):
                case = {"collective": c, "algorithm": a, "dtype": dtype, "op": op, "numel": 37 + k}
                case.update({"root": k, "device": device, "seed": k})
                cases.append(case)
    results = pools.get(2, backend).run("collcases:run_cases", timeout_s=240, cases=cases)
    failures = [f"rank {r}: {c}: {e}" for r, errs in enumerate(results) for c, e in zip(cases, errs, strict=True) if e]
    assert not failures, "\n".join(failures[:20])
