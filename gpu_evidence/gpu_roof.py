#!/usr/bin/env python
"""The reduction roof: bandwidth of ``out = a + b`` (``torch.add(a, b, out=c)``) against the GPU's HBM spec.

Each call reads a and b and writes c, so it moves 3 * S bytes for S bytes of result; the memory bandwidth
is 3 * S / t (GB/s, 1e9 B/s). Timed with CUDA events around each call (host perf_counter on CPU), median
over iterations, for float32 and bfloat16 at large sizes (S per tensor; three tensors live at once).

gamma (collectives/costs.py: T = ... + G * n * gamma) is the time per byte *combined*: combining one byte of
result reads two operand bytes and writes one, so a memory-bound reduction gives gamma = 3 / B_mem and its
rate 1/gamma = B_mem / 3 = S / t, the bytes of result the add produces per second. That S / t (float32, the
sweeps' dtype, largest size) is written as ``gamma_gbps`` for ``collbench report --gamma-gbps``; the spec's
counterpart is ``spec_gbps / 3``.

Writes one JSON object (``--out FILE``, and a short table on stdout).

    python gpu_evidence/gpu_roof.py --out roof.json                 # on the GPU (default sizes 64M, 256M, 1G)
    python gpu_evidence/gpu_roof.py --device cpu --sizes 1M,4M      # the same code path on the host
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.hardware import match_gpu  # noqa: E402 - stdlib-only module of the checkout
from bench.sizes import parse_size  # noqa: E402 - stdlib-only module of the checkout


def hbm_spec(name: str | None) -> tuple[float | None, str]:
    """(HBM spec in GB/s or None, source) for a device name such as 'NVIDIA H100 80GB HBM3', from the hardware
    catalog (analysis/hardware.json, docs/hardware.md); a name the catalog does not know has no spec."""
    gpu = match_gpu(name)
    if gpu is None or gpu.hbm_gbps is None:
        return None, f"unknown: no HBM figure for {name!r} in analysis/hardware.json"
    return float(gpu.hbm_gbps), f"{gpu.name}: {gpu.source}"


def parse_sizes(text: str) -> list[int]:
    """Bytes of a comma list of collbench size strings (``64M,1G``; K/M/G = 1024^k)."""
    return [parse_size(item) for item in text.split(",") if item.strip()]


def time_add(torch, device: str, dtype, nbytes: int, iters: int, warmup: int) -> list[float]:
    """Per-call times in us of torch.add(a, b, out=c) with S = nbytes per tensor."""
    elem = torch.empty((), dtype=dtype).element_size()
    n = max(1, nbytes // elem)
    a = torch.ones(n, dtype=dtype, device=device)
    b = torch.full((n,), 2, dtype=dtype, device=device)
    c = torch.empty(n, dtype=dtype, device=device)
    for _ in range(warmup):
        torch.add(a, b, out=c)
    times = []
    if device == "cuda":
        torch.cuda.synchronize()
        events = [torch.cuda.Event(enable_timing=True) for _ in range(iters + 1)]
        events[0].record()
        for i in range(iters):
            torch.add(a, b, out=c)
            events[i + 1].record()
        events[-1].synchronize()
        times = [events[i].elapsed_time(events[i + 1]) * 1e3 for i in range(iters)]
    else:
        for _ in range(iters):
            t0 = time.perf_counter_ns()
            torch.add(a, b, out=c)
            times.append((time.perf_counter_ns() - t0) / 1e3)
    if not bool((c == 3).all()):
        raise RuntimeError(f"torch.add gave a wrong result ({dtype}, {nbytes} B)")
    del a, b, c
    if device == "cuda":
        torch.cuda.empty_cache()
    return times


def measure(device: str, sizes: list[int], iters: int, warmup: int) -> dict:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_roof: --device cuda but torch sees no CUDA GPU")
    if device == "cpu":
        torch.set_num_threads(1)  # one core: the host figure is a code-path check, not a roof
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    spec, source = hbm_spec(name) if device == "cuda" else (None, "host memory: not in the catalog")
    points = []
    for dtype_name in ("float32", "bfloat16"):
        dtype = getattr(torch, dtype_name)
        for nbytes in sizes:
            t = statistics.median(time_add(torch, device, dtype, nbytes, iters, warmup))
            mem_gbps = 3 * nbytes / t * 1e-3
            points.append(
                {
                    "dtype": dtype_name,
                    "bytes": nbytes,
                    "time_us": t,
                    "mem_gbps": mem_gbps,
                    "result_gbps": nbytes / t * 1e-3,
                    "fraction_of_spec": (mem_gbps / spec) if spec else None,
                }
            )
    best = {}
    for dtype_name in ("float32", "bfloat16"):
        rows = [p for p in points if p["dtype"] == dtype_name]
        top = max(rows, key=lambda p: p["mem_gbps"])
        best[dtype_name] = {
            "mem_gbps": top["mem_gbps"],
            "bytes": top["bytes"],
            "fraction_of_spec": top["fraction_of_spec"],
        }
    fp32_largest = max((p for p in points if p["dtype"] == "float32"), key=lambda p: p["bytes"])
    return {
        "device": device,
        "gpu_name": name,
        "spec_gbps": spec,
        "spec_source": source,
        "iters": iters,
        "warmup": warmup,
        "timer": "CUDA events around each call" if device == "cuda" else "host perf_counter around each call",
        "bytes_moved": "3 * S per call (read a, read b, write c); S = bytes per tensor",
        "points": points,
        "best": best,
        "gamma_gbps": fp32_largest["result_gbps"],
        "gamma_definition": "1/gamma = S / t of float32 out = a + b at the largest size = measured memory "
        "bandwidth / 3 (bytes of result combined per second; collbench report --gamma-gbps)",
        "spec_gamma_gbps": spec / 3 if spec else None,
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--sizes", help="bytes per tensor, K/M/G = 1024^k (default: 64M,256M,1G on cuda, 1M,4M on cpu)")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", help="write the JSON object here")
    ap.add_argument("--spec-of", help="print the HBM spec found for this device name and exit")
    args = ap.parse_args(argv)
    if args.spec_of is not None:
        spec, source = hbm_spec(args.spec_of)
        print(json.dumps({"name": args.spec_of, "spec_gbps": spec, "spec_source": source}))
        return 0
    try:
        sizes = parse_sizes(args.sizes or ("64M,256M,1G" if args.device == "cuda" else "1M,4M"))
    except ValueError as exc:
        ap.error(str(exc))
    result = measure(args.device, sizes, args.iters, args.warmup)
    for p in result["points"]:
        frac = f"{100 * p['fraction_of_spec']:.0f}% of spec" if p["fraction_of_spec"] else "no spec"
        print(f"add {p['dtype']:<9} S={p['bytes']:>11} B  {p['time_us']:10.1f} us  {p['mem_gbps']:8.1f} GB/s  {frac}")
    print(f"spec {result['spec_gbps']} GB/s ({result['spec_source']}); gamma_gbps {result['gamma_gbps']:.1f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
