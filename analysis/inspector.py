"""Read NCCL Inspector logs (the profiler plugin of NCCL 2.28+, ``plugins/profiler/inspector`` in NVIDIA/nccl)
into points of the result schema, so that verdict, fit and compare see what a training job's collectives did.

The plugin writes, per process, ``<host>-pid<pid>.log`` (the exporter also reads ``.jsonl`` and gzip): one
compact JSON object per line (``inspector_json.cc``, formats ``v4.0`` to ``v4.2``)::

    {"header":{"id":"0x7f8c496ae9f661","comm_name":"...","rank":2,"n_ranks":8,"nnodes":1},
     "metadata":{"inspector_output_format_version":"v4.0",...,"hostname":"h","pid":1},
     "coll_perf":{"coll":"AllReduce","coll_sn":1407,"coll_msg_size_bytes":17179869184,"coll_exec_time_us":61974,
                  "coll_timing_source":"kernel_gpu","coll_algobw_gbs":277.21,"coll_busbw_gbs":485.12}}

or ``p2p_perf`` for a send/receive (``p2p``, ``p2p_peer``, ...). Format ``v4.3`` (the README of NVIDIA/nccl at
3254c695, pull request #2359) writes ``header`` and ``metadata`` once per communicator dump, in a ``dump_stats``
marker, and the operation lines after it carry neither: they are read with the marker's.

``coll_msg_size_bytes`` is NCCL's count x the type size: each rank's buffer for AllReduce, Broadcast and Reduce,
one rank's block for AllGather and ReduceScatter (the plugin's ``inspectorComputeOpBw`` multiplies those by
n_ranks), so S, nccl-tests' size, is ``msg`` or ``msg x n_ranks``.

One run per (collective, n_ranks): a point per message size whose samples are the calls' times. A call seen by
several ranks of one communicator (same ``id`` and ``coll_sn``) counts once, at the slowest rank's time (the
collective ends when its last rank does). The log records neither the datatype nor the reduction: points carry
dtype ``uint8`` (count = bytes) and the collective's default op, and say so. Records timed on the CPU
(``kernel_cpu``, ``collective_cpu``) are kept and counted in the warnings; point-to-point records are counted and
left out (their pairs are the application's, not a collective). Lines are read one at a time.
"""

from __future__ import annotations

import gzip
import json
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from analysis.errors import AnalysisError
from analysis.nccltests import ParsedLog, busbw_factor
from analysis.nccltests import _point as nccl_point
from collectives.spec import spec

#: NCCL's ncclFuncToString names -> collbench collectives
COLLECTIVES = {"AllReduce": "all_reduce", "AllGather": "all_gather", "ReduceScatter": "reduce_scatter",
               "Broadcast": "broadcast", "Reduce": "reduce"}  # fmt: skip
#: collectives whose coll_msg_size_bytes is one rank's block (S = msg x n_ranks)
_BLOCK = ("all_gather", "reduce_scatter")
#: samples kept per point (a long job calls one size millions of times; the time, min and max use every call)
MAX_SAMPLES = 2000


def sniff(first_line: str) -> bool:
    """True when ``first_line`` is an Inspector record (a JSON object with a ``header`` and a perf record) or a
    format v4.3 ``dump_stats`` marker (which carries the header of the records after it)."""
    s = first_line.lstrip()
    return s.startswith("{") and '"header"' in s and any(k in s for k in ('"coll_perf"', '"p2p_perf"', '"dump_stats"'))


@dataclass
class _Curve:
    """What one (collective, n_ranks) gathers: per (comm id, sn) the slowest rank's time, per sn its size."""

    times: dict[tuple[str, int], float] = field(default_factory=dict)
    sizes: dict[tuple[str, int], int] = field(default_factory=dict)
    nnodes: set[int] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    comms: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)  # the communicators' comm_name (NCCL 2.29+ headers)
    cpu_timed: int = 0
    busbw_mismatch: int = 0


def _open(path: Path) -> IO[str]:
    """The log as text lines, gzip (``.log.gz``, ``.jsonl.gz``) uncompressed on the fly."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """The file's operation records, each with its ``header`` (and ``metadata``): format v4.3 writes them once per
    communicator dump, in a ``dump_stats`` marker the operation lines after it belong to; ProxyOp/ProxyStep
    records (``proxy_trace``, ``NCCL_INSPECTOR_ENABLE_PROXY=1``) are no operations and are passed over."""
    context: dict[str, Any] | None = None  # the last dump_stats marker's header and metadata
    try:
        with _open(path) as f:
            for lineno, raw in enumerate(f, 1):
                text = raw.strip()
                if not text:
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError:
                    raise AnalysisError(f"{path}:{lineno}: expected one NCCL Inspector JSON record per line, got "
                                        f"{text[:60]!r}") from None  # fmt: skip
                if isinstance(obj, dict) and "dump_stats" in obj and isinstance(obj.get("header"), dict):
                    context = {"header": obj["header"], "metadata": obj.get("metadata") or {}}
                    continue
                if isinstance(obj, dict) and "proxy_trace" in obj:
                    continue
                if isinstance(obj, dict) and "header" not in obj and context and ("coll_perf" in obj or
                                                                                  "p2p_perf" in obj):
                    obj = {**context, **obj}
                if not isinstance(obj, dict) or not isinstance(obj.get("header"), dict):
                    raise AnalysisError(f"{path}:{lineno}: expected an NCCL Inspector record with a 'header' object")
                yield lineno, obj
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError):
        raise AnalysisError(f"{path}: not a text (or gzip) NCCL Inspector log") from None
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such file") from None


def _field(path: Path, lineno: int, obj: dict, key: str, kind: type) -> Any:
    try:
        return kind(obj[key])
    except (KeyError, TypeError, ValueError):
        raise AnalysisError(f"{path}:{lineno}: expected {kind.__name__} {key!r} in the record, got "
                            f"{obj.get(key)!r}") from None  # fmt: skip


def parse_file(path: Path) -> list[ParsedLog]:
    """One ParsedLog per (collective, n_ranks) of an Inspector log."""
    return parse_files([path])


def _all_records(paths: list[Path]) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    for path in paths:
        for lineno, obj in _records(path):
            yield path, lineno, obj


def parse_files(paths: list[Path]) -> list[ParsedLog]:
    """One ParsedLog per (collective, n_ranks) of a job's Inspector logs read together (one file per process:
    a call's ranks are in different files)."""
    curves: dict[tuple[str, int], _Curve] = {}
    p2p = 0
    skipped: dict[str, int] = {}
    for path, lineno, obj in _all_records(paths):
        header = obj["header"]
        perf = obj.get("coll_perf")
        if perf is None:
            if "p2p_perf" in obj:
                p2p += 1
                continue
            raise AnalysisError(f"{path}:{lineno}: expected 'coll_perf' or 'p2p_perf' in the record")
        name = str(perf.get("coll"))
        coll = COLLECTIVES.get(name)
        if coll is None:
            skipped[name] = skipped.get(name, 0) + 1
            continue
        n = _field(path, lineno, header, "n_ranks", int)
        if n < 1:
            raise AnalysisError(f"{path}:{lineno}: expected n_ranks >= 1, got {n}")
        msg = _field(path, lineno, perf, "coll_msg_size_bytes", int)
        t = _field(path, lineno, perf, "coll_exec_time_us", float)
        sn = _field(path, lineno, perf, "coll_sn", int)
        if msg < 0 or t < 0:
            raise AnalysisError(f"{path}:{lineno}: expected a size and time >= 0, got {msg} B in {t} us")
        nbytes = msg * n if coll in _BLOCK else msg
        cur = curves.setdefault((coll, n), _Curve())
        comm = str(header.get("id", ""))
        key = (comm, sn)
        if key in cur.sizes and cur.sizes[key] != nbytes:
            raise AnalysisError(f"{path}:{lineno}: communicator {comm} call {sn} recorded with two sizes "
                                f"({cur.sizes[key]} and {nbytes} B)")  # fmt: skip
        cur.sizes[key] = nbytes
        cur.times[key] = max(cur.times.get(key, 0.0), t)
        cur.comms.add(comm)
        if "comm_name" in header:
            cur.names.add(str(header["comm_name"]))
        if "nnodes" in header:
            cur.nnodes.add(_field(path, lineno, header, "nnodes", int))
        if host := (obj.get("metadata") or {}).get("hostname"):
            cur.hosts.add(str(host))
        if str(perf.get("coll_timing_source", "kernel_gpu")) != "kernel_gpu":
            cur.cpu_timed += 1
        printed = perf.get("coll_busbw_gbs")
        if isinstance(printed, (int, float)) and t > 0:
            want = nbytes / t / 1e3 * busbw_factor(coll, n)
            if want >= 0.1 and abs(printed - want) > 0.02 * want + 0.02:
                cur.busbw_mismatch += 1
    if not curves:
        what = [f"{p2p} point-to-point"] if p2p else []
        what += [f"{v} {k}" for k, v in sorted(skipped.items())]
        where = str(paths[0]) if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more"
        raise AnalysisError(f"{where}: no collective record collbench imports (AllReduce, AllGather, ReduceScatter, "
                            f"Broadcast, Reduce){'; it holds ' + ', '.join(what) if what else ''}")  # fmt: skip
    return [_log(coll, n, cur, p2p, skipped) for (coll, n), cur in sorted(curves.items())]


def _log(coll: str, n: int, cur: _Curve, p2p: int, skipped: dict[str, int]) -> ParsedLog:
    by_size: dict[int, list[float]] = {}
    for key, t in cur.times.items():
        by_size.setdefault(cur.sizes[key], []).append(t)
    points = []
    trimmed = False
    for nbytes, times in sorted(by_size.items()):
        kept = times if len(times) <= MAX_SAMPLES else times[:: -(-len(times) // MAX_SAMPLES)]
        trimmed = trimmed or len(kept) < len(times)
        pt = nccl_point(coll, n, nbytes, nbytes, "uint8", spec(coll).recorded_op("sum"), spec(coll).recorded_root(0),
                        False, statistics.median(times), 0.0, 0.0, None, True, len(times), kept)  # fmt: skip
        pt["time_us_min"], pt["time_us_max"] = min(times), max(times)
        points.append(pt)
    warnings = [
        f"NCCL Inspector log: {sum(len(v) for v in by_size.values())} {coll} calls on {len(cur.comms)} "
        f"communicator(s) of {n} ranks; each point's time is the median of its calls (the slowest rank's time "
        "of each call), its samples the calls",
        "the Inspector records neither datatype nor reduction: dtype recorded as uint8 (count = bytes), op as "
        f"{spec(coll).recorded_op('sum')}; in-place unknown (recorded out of place); results not checked",
    ]
    if cur.cpu_timed:
        warnings.append(f"{cur.cpu_timed} record(s) timed on the CPU (kernel_cpu / collective_cpu), not by GPU kernels")
    if cur.busbw_mismatch:
        warnings.append(f"{cur.busbw_mismatch} record(s) whose coll_busbw_gbs differs from size/time x F(n_ranks)")
    if trimmed:
        warnings.append(f"points with more than {MAX_SAMPLES} calls keep {MAX_SAMPLES} evenly spaced samples; "
                        "time, min and max use every call")  # fmt: skip
    if p2p:
        warnings.append(f"{p2p} point-to-point record(s) (p2p_perf) left out")
    for name, count in sorted(skipped.items()):
        warnings.append(f"{count} {name} record(s) left out (collbench has no such collective)")
    nnodes = max(cur.nnodes) if cur.nnodes else None
    if cur.names - {"unknown"}:
        warnings.append(f"communicators: {', '.join(sorted(cur.names - {'unknown'}))}")
    log = ParsedLog(coll, n, points, None, sorted(cur.hosts), warnings=warnings, nnodes_given=nnodes,
                    world_size_source="the records' n_ranks", collective_source="named in the records")  # fmt: skip
    if nnodes and nnodes != len(cur.hosts):
        log.warnings.append(f"the communicators span {nnodes} node(s) (header nnodes); the files read come from "
                            f"{len(cur.hosts)} host(s)")  # fmt: skip
    return log
