"""Stragglers and spikes in the per-process times of an nccl-tests ``-J -I 1`` file, found the way nccl-tests'
``tools/analyze_perf_json.py`` finds them.

With ``-I 1`` and more than one process, each result's ``out_of_place_per_iter`` / ``in_place_per_iter`` holds
``per_process_max_times_us``: one row per process (the max over its threads and GPUs), one time per iteration;
``config.devices`` lists one entry per process with its ``hostname``. An iteration spikes in a process when its
time exceeds ``threshold`` x the result's average iteration time (``avg_us``, else the mean of ``times_us``). An
iteration in which every process spiked is a system-wide spike (the fabric, or every GPU, was slow); one in
which a single process spiked names a straggler; anything in between is a partial spike, named by host.

A host whose processes' median iteration time exceeds the other hosts' by more than 10 % at every size is named
as slow (the per-host grouping of ``analyze_perf_json.py --nodes``): a node that is slow throughout, not in spikes.

``notes`` turns a parsed file into a few lines (per process and host, not per iteration) that ``collbench
import`` prints and keeps in the run's warnings. Never imports torch.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: analyze_perf_json.py's default spike threshold (a multiple of the average iteration time)
THRESHOLD = 1.5
#: a host whose processes' median time is this much above the other hosts' (every size) is named as slow
SLOW_HOST = 1.1
PROCESS_TIMES_KEY = "per_process_max_times_us"


@dataclass
class Spikes:
    """What the per-process rows of one file show, summed over its results (sizes) and sides."""

    processes: int = 0
    system_wide: int = 0  # iterations in which every process spiked
    straggler: Counter = field(default_factory=Counter)  # process -> iterations it alone spiked
    partial: Counter = field(default_factory=Counter)  # host -> iterations some (not all) of the processes spiked
    sizes: dict[str, set[int]] = field(default_factory=dict)  # what -> the sizes it was seen at
    iterations: int = 0
    host_ratio: dict[str, list[float]] = field(default_factory=dict)  # host -> its median / the other hosts', per size


def _hosts(doc: dict[str, Any], n: int) -> list[str]:
    devices = (doc.get("config") or {}).get("devices") or []
    if len(devices) >= n and all(isinstance(d, dict) and "hostname" in d for d in devices[:n]):
        return [str(d["hostname"]) for d in devices[:n]]
    return [f"process {i}" for i in range(n)]


def find(doc: dict[str, Any], threshold: float = THRESHOLD) -> Spikes:
    """Spikes of every result and side of a parsed ``-J`` document."""
    out = Spikes()
    for res in doc.get("results") or []:
        if not isinstance(res, dict):
            continue
        for key in ("out_of_place_per_iter", "in_place_per_iter"):
            per_iter = res.get(key) or {}
            rows = per_iter.get(PROCESS_TIMES_KEY) or []
            if len(rows) < 2 or not all(isinstance(r, list) and r for r in rows):
                continue
            try:
                rows = [[float(x) for x in r] for r in rows]
                times = [float(x) for x in per_iter.get("times_us") or []]
                avg = float(per_iter["avg_us"]) if "avg_us" in per_iter else sum(times) / len(times)
            except (TypeError, ValueError, ZeroDivisionError):
                continue
            if avg <= 0:
                continue
            hosts = _hosts(doc, len(rows))
            out.processes = max(out.processes, len(rows))
            size = int(res.get("size") or 0)
            means: dict[str, list[float]] = {}
            for h, r in zip(hosts, rows, strict=True):
                means.setdefault(h, []).append(statistics.median(r))  # the median: spikes are counted above
            if len(means) > 1:
                host_mean = {h: sum(v) / len(v) for h, v in means.items()}
                for h, m in host_mean.items():
                    others = [x for k, x in host_mean.items() if k != h]
                    out.host_ratio.setdefault(h, []).append(m / (sum(others) / len(others)))
            for i in range(min(len(r) for r in rows)):
                out.iterations += 1
                high = [p for p, r in enumerate(rows) if r[i] > threshold * avg]
                if not high:
                    continue
                if len(high) == len(rows):
                    out.system_wide += 1
                    out.sizes.setdefault("system-wide", set()).add(size)
                elif len(high) == 1:
                    out.straggler[high[0]] += 1
                    out.sizes.setdefault(f"process {high[0]}", set()).add(size)
                else:
                    for h in sorted({hosts[p] for p in high}):
                        out.partial[h] += 1
                        out.sizes.setdefault(h, set()).add(size)
    return out


def _sizes(sizes: set[int]) -> str:
    shown = sorted(sizes)[:4]
    return ", ".join(f"{s} B" for s in shown) + (" ..." if len(sizes) > 4 else "")


def notes(doc: dict[str, Any], threshold: float = THRESHOLD) -> list[str]:
    """One line per finding: system-wide spikes, each straggling process (with its host), each host with partial
    spikes; nothing when the file has no per-process rows or no spike."""
    s = find(doc, threshold)
    if not s.processes:
        return []
    hosts = _hosts(doc, s.processes)
    lines = []
    if s.system_wide:
        lines.append(f"per-process times: {s.system_wide} of {s.iterations} iterations spiked (> {threshold:g}x the "
                     f"average) in all {s.processes} processes at once: a system-wide spike, not one straggler "
                     f"(sizes {_sizes(s.sizes['system-wide'])})")  # fmt: skip
    for proc, count in s.straggler.most_common():
        lines.append(f"per-process times: straggler process {proc} (host {hosts[proc]}) alone spiked (> "
                     f"{threshold:g}x the average) in {count} of {s.iterations} iterations "
                     f"(sizes {_sizes(s.sizes[f'process {proc}'])})")  # fmt: skip
    slow = {h: min(r) for h, r in s.host_ratio.items() if min(r) > SLOW_HOST}
    for host, ratio in sorted(slow.items(), key=lambda kv: -kv[1]):
        lines.append(f"per-process times: host {host} is slow at every size: its processes' median time is "
                     f">= {ratio:.2f}x the other hosts' (grouped per host as in analyze_perf_json.py)")  # fmt: skip
    for host, count in s.partial.most_common():
        lines.append(f"per-process times: host {host} had processes spike (> {threshold:g}x the average), but not "
                     f"all processes, in {count} iterations (sizes {_sizes(s.sizes[host])})")  # fmt: skip
    return lines
