"""GPU paths (NCCL, CUDA-event clock, CUDA-graph mode): run only where a CUDA GPU is visible."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from bench_helpers import read_run, run_cli, run_dir_from

NO_GPU = "no CUDA GPU visible: the NCCL backend, the CUDA-event clock and --cuda-graph need one"
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
SMALL = ["-b", "1K", "-e", "64K", "-f", "8", "-n", "5", "-w", "2", "--timeout", "120"]


@needs_gpu
def test_cuda_clock_times_device_work() -> None:
    from bench.clock import CudaClock

    stream = torch.cuda.Stream()
    clock = CudaClock(stream)
    clock.reset(4)
    with torch.cuda.stream(stream):
        clock.mark(0)
        for i in range(3):
            torch.cuda._sleep(1_000_000)  # about 0.5-1 ms of GPU time, no host sync
            clock.mark(i + 1)
    samples, span = clock.durations_us()
    assert len(samples) == 3 and all(s > 50 for s in samples)
    assert span == pytest.approx(sum(samples), rel=0.01)


@needs_gpu
@pytest.mark.timeout(300)
@pytest.mark.parametrize("graph", [False, True])
def test_nccl_run_on_visible_gpus(tmp_path: Path, graph: bool) -> None:
    args = ["run", "--backend", "nccl", *SMALL, "--out", str(tmp_path), "--quiet"] + (["--cuda-graph"] if graph else [])
    proc = run_cli(args, timeout=280)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows, meta = read_run(run_dir_from(proc.stdout))
    assert meta["device"] == "cuda" and meta["world_size"] == torch.cuda.device_count()
    assert meta["hardware"]["gpu_model"] and meta["versions"]["nccl"]
    assert rows and all(r["correct"] == "true" and r["device"] == "cuda" for r in rows)
    assert {r["cuda_graph"] for r in rows} == {"true" if graph else "false"}
    assert all(float(r["time_us"]) > 0 for r in rows)
