"""Parse nccl-tests output (text logs of every layout, and the ``-J`` JSON file) into schema-v1 points.

Text logs: old headers (``size count type [redop] time algbw busbw error ...``) and new ones (``... redop root
time algbw busbw #wrong ...``, optionally with per-iteration ``i_*`` columns); ``#`` may be missing; lines may
carry an mpirun ``[1,0]<stdout>:`` prefix; ``NCCL INFO``/``WARN`` lines and anything else are skipped;
``N/A`` in #wrong means validation was off. The collective comes from the log (``Collective test
starting/concluded: all_reduce_perf``, the command line) or the caller; the world size from the rank lines,
from ``nThread x nGpus``, or, when the log has neither, from busbw/algbw (nccl-tests' factor F(p)).
JSON (``JSON_FILE_VERSION`` 2 of nccl-tests ``src/util.cu``): config, devices, results with
``out_of_place``/``in_place`` objects and, with per-iteration timing, ``times_us``. Its ``env`` list (the
whole environment of the run) is never copied.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from analysis.errors import AnalysisError
from collectives import costs

DTYPES = {
    "float": "float32", "float32": "float32", "half": "float16", "float16": "float16", "double": "float64",
    "float64": "float64", "bfloat16": "bfloat16", "int8": "int8", "uint8": "uint8", "int32": "int32",
    "int": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64", "f8e4m3": "float8_e4m3fn",
    "f8e5m2": "float8_e5m2",
}  # fmt: skip
OPS = {"sum": "sum", "prod": "prod", "max": "max", "min": "min", "avg": "avg", "none": "none", "mulsum": "mulsum"}
_PREFIX = re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:")
_COLLECTIVE = re.compile(r"\b(all_reduce|all_gather|reduce_scatter|broadcast|reduce)_perf\b")
_RANK = re.compile(
    r"^#?\s*Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?Pid\s+\d+\s+on\s+(\S+)\s+device\s+\d+\s+\[[^\]]*\]\s+(.*)$"
)
_NTHREAD = re.compile(r"nThread\s+(\d+)\s+nGpus\s+(\d+)")
_ITERS = re.compile(r"(?<!warmup )(?<!agg )iters:\s*(\d+)")
_VERSION = re.compile(r"nccl-tests version (\S+).*?nccl-library=(\d+)")
_NCCL_VERSION = re.compile(r"^NCCL version (\S+)")


@dataclass
class ParsedLog:
    """What one nccl-tests output says: its points (schema-v1 rows) and its metadata."""

    collective: str
    world_size: int
    points: list[dict[str, Any]]
    iters: int | None = None
    hosts: list[str] = field(default_factory=list)
    gpu_model: str | None = None
    nccl_version: str | None = None
    tests_version: str | None = None
    warnings: list[str] = field(default_factory=list)
    world_size_source: str = ""


def _p_from_factor(collective: str, factor: float) -> int | None:
    """World size whose busbw factor is ``factor`` (None when F does not depend on p or is ambiguous)."""
    if collective in ("broadcast", "reduce") or not math.isfinite(factor) or factor <= 0:
        return None
    # all_reduce: F = 2(p-1)/p -> p = 2/(2-F); all_gather/reduce_scatter: F = (p-1)/p -> p = 1/(1-F)
    top = 2.0 if collective == "all_reduce" else 1.0
    if factor >= top:
        return None
    return max(1, round(top / (top - factor)))


def _half(values: list[str], cols: list[str]) -> dict[str, str]:
    return dict(zip(cols, values, strict=False))


def _num(text: str) -> float | None:
    return None if text.upper() == "N/A" else float(text)


def _point(
    collective: str, p: int, nbytes: int, count: int, dtype: str, op: str, root: int, in_place: bool,
    time_us: float, algbw: float, busbw: float, wrong: float | None, iters: int | None,
    samples: list[float] | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "collective": collective, "algorithm": "builtin", "backend": "nccl", "device": "cuda", "world_size": p,
        "dtype": dtype, "op": op, "bytes": nbytes, "count": count, "root": root, "in_place": in_place,
        "iters": iters, "warmup": None, "time_us": time_us, "block_time_us": time_us, "algbw_gbps": algbw,
        "busbw_gbps": busbw, "correct": wrong is None or wrong == 0, "n_wrong": None if wrong is None else int(wrong),
        "noisy": False, "segment_bytes": None, "cuda_graph": False, "samples_us": samples or [],
        **{k: None for k in ("time_us_p10", "time_us_p25", "time_us_p75", "time_us_p90")},
        "time_us_min": min(samples) if samples else None, "time_us_max": max(samples) if samples else None,
    }  # fmt: skip


def _header_columns(tokens: list[str]) -> list[str] | None:
    """Column names of a table header line (``size count type ...``), or None."""
    if len(tokens) >= 6 and tokens[:3] == ["size", "count", "type"]:
        return tokens
    return None


def _data_row(line: str) -> list[str] | None:
    tokens = line.split()
    if len(tokens) < 7 or not (tokens[0].isdigit() and tokens[1].isdigit()):
        return None
    return tokens


def parse_text(text: str, *, collective: str | None = None, world_size: int | None = None) -> ParsedLog:
    """Points of a text log; AnalysisError when it holds no nccl-tests table or lacks what it needs."""
    lines = [_PREFIX.sub("", ln).rstrip() for ln in text.splitlines()]
    ranks: dict[int, tuple[str, str]] = {}
    header: list[str] | None = None
    rows: list[list[str]] = []
    iters = nthreads_ngpus = None
    found_collective = None
    tests_version = nccl_version = None
    for ln in lines:
        body = ln.lstrip("#").strip()
        if m := _RANK.match(ln.strip()):
            ranks[int(m.group(1))] = (m.group(2), m.group(3).strip())
            continue
        if m := _NTHREAD.search(body):
            nthreads_ngpus = int(m.group(1)) * int(m.group(2))
            if it := _ITERS.search(body):
                iters = int(it.group(1))
        if m := _VERSION.search(body):
            tests_version, nccl_version = m.group(1), m.group(2)
        if m := _NCCL_VERSION.match(body):
            nccl_version = nccl_version or m.group(1)
        if m := _COLLECTIVE.search(body):
            found_collective = found_collective or m.group(1)
        if cols := _header_columns(body.split()):
            header = cols
            continue
        if not ln.lstrip().startswith("#") and (tokens := _data_row(ln)) is not None:
            rows.append(tokens)
    if not rows:
        raise AnalysisError("no nccl-tests result table found")
    coll = collective or found_collective
    if coll is None:
        raise AnalysisError("the log does not say which collective it measured; pass --collective")
    if coll not in costs.COLLECTIVES:
        raise AnalysisError(f"unsupported collective {coll!r}; choose from {', '.join(costs.COLLECTIVES)}")
    if found_collective and collective and found_collective != collective:
        raise AnalysisError(f"--collective {collective} but the log measured {found_collective}")
    warnings: list[str] = []
    points = []
    for tokens in rows:
        points.extend(_row_points(tokens, header, coll, iters))
    # world size: explicit > rank lines > nThread*nGpus (single process) > busbw/algbw
    source = ""
    p = world_size
    if p is not None:
        source = "given"
    elif ranks:
        p, source = max(ranks) + 1, "rank lines"
    elif nthreads_ngpus is not None and not any("Rank" in ln for ln in lines):
        p, source = nthreads_ngpus, "nThread x nGpus"
    else:
        ratios = [pt["busbw_gbps"] / pt["algbw_gbps"] for pt in points if pt["algbw_gbps"] >= 1.0]
        guesses = {_p_from_factor(coll, r) for r in ratios}
        guesses.discard(None)
        if len(guesses) == 1:
            p, source = guesses.pop(), "busbw/algbw"
        else:
            raise AnalysisError("the log does not say its world size (no rank lines); pass --world-size")
    for pt in points:
        pt["world_size"] = p
        f = costs.busbw_factor(coll, p)
        if pt["algbw_gbps"] >= 0.1 and abs(pt["busbw_gbps"] - pt["algbw_gbps"] * f) > 0.02 * pt["busbw_gbps"] + 0.02:
            warnings.append(f"{coll} {pt['bytes']} B: busbw {pt['busbw_gbps']} != algbw x F(p={p}) = "
                            f"{pt['algbw_gbps'] * f:.2f}")  # fmt: skip
    gpu = ranks[min(ranks)][1] if ranks else None
    hosts = sorted({h for h, _ in ranks.values()})
    return ParsedLog(coll, p, points, iters, hosts, gpu, nccl_version, tests_version, warnings, source)


def _row_points(tokens: list[str], header: list[str] | None, coll: str, iters: int | None) -> list[dict[str, Any]]:
    """Out-of-place and in-place points of one table row."""
    nbytes, count, dtype_name = int(tokens[0]), int(tokens[1]), tokens[2]
    rest = tokens[3:]
    has_op = header is not None and "redop" in header
    has_root = header is not None and "root" in header
    if header is None:  # no header seen: redop/root present when the 4th token is not a number
        has_op = not re.fullmatch(r"[-+0-9.eE]+", rest[0])
        has_root = has_op and re.fullmatch(r"-?\d+", rest[1]) is not None and len(rest) >= 10
    op = rest.pop(0) if has_op else ("sum" if coll in costs.REDUCING else "none")
    root = int(rest.pop(0)) if has_root else (0 if coll in ("broadcast", "reduce") else -1)
    dtype = DTYPES.get(dtype_name)
    if dtype is None:
        raise AnalysisError(f"unknown nccl-tests type {dtype_name!r}")
    if op.lower() not in OPS:
        raise AnalysisError(f"unknown nccl-tests redop {op!r}")
    width = 8 if header is not None and "i_min" in header else 4
    out = []
    for in_place, chunk in ((False, rest[:width]), (True, rest[width : 2 * width])):
        if len(chunk) < 4:
            continue
        try:
            time_us, algbw, busbw = float(chunk[0]), float(chunk[1]), float(chunk[2])
            wrong = _num(chunk[3])
        except ValueError:
            raise AnalysisError(f"unreadable row: {' '.join(tokens)}") from None
        out.append(_point(coll, 0, nbytes, count, dtype, OPS[op.lower()], root, in_place,
                          time_us, algbw, busbw, wrong, iters))  # fmt: skip
    return out


def parse_json(text: str, *, collective: str | None = None, world_size: int | None = None) -> ParsedLog:
    """Points of an nccl-tests ``-J`` JSON file (version 2)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnalysisError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or "results" not in doc:
        raise AnalysisError("not an nccl-tests JSON file (no 'results')")
    found = None
    for arg in doc.get("args") or []:
        if m := _COLLECTIVE.search(str(arg)):
            found = m.group(1)
            break
    coll = collective or found
    if coll is None:
        raise AnalysisError("the JSON does not say which collective it measured; pass --collective")
    config = doc.get("config") or {}
    devices = config.get("devices") or []
    p = world_size or (max(int(d["rank"]) for d in devices) + 1 if devices else None)
    if p is None:
        raise AnalysisError("the JSON lists no devices; pass --world-size")
    iters = config.get("iterations")
    points = []
    for res in doc["results"]:
        dtype = DTYPES.get(str(res.get("type")))
        if dtype is None:
            raise AnalysisError(f"unknown nccl-tests type {res.get('type')!r}")
        op = OPS.get(str(res.get("redop", "none")).lower(), "none")
        root = int(str(res.get("root", "-1")).strip())
        for key, in_place in (("out_of_place", False), ("in_place", True)):
            half = res.get(key)
            if not half:
                continue
            per_iter = res.get(f"{key}_per_iter") or {}
            samples = [float(x) for x in per_iter.get("times_us") or []] or None
            wrong = half.get("nwrong")
            points.append(_point(coll, p, int(res["size"]), int(res["count"]), dtype, op, root, in_place,
                                 float(half.get("time", half.get("cpu_time"))), float(half["alg_bw"]),
                                 float(half["bus_bw"]), None if wrong is None else float(wrong),
                                 res.get("actual_iterations", iters), samples))  # fmt: skip
    hosts = sorted({str(d.get("hostname")) for d in devices})
    gpu = str(devices[0].get("device_info")) if devices else None
    return ParsedLog(coll, p, points, iters, hosts, gpu, str(doc.get("nccl_version")), None, [], "devices")
