"""Read rccl-tests' result files (``-x FILE -Z csv|json``) into points of the result schema.

rccl-tests (ROCm/rccl-tests ``src/common.cu``, ``Reporter``) writes one record per size and side (out-of-place,
in-place) besides its text table. Every layout it has written is read, one line at a time:

- CSV, first version (2024): ``collective, gpus, size, type, redop, inplace, time, algbw, busbw, #wrong`` with
  ``", "`` between fields; strings quoted (``"AllReduce"``, ``"0"``), numbers as ``std::to_string`` prints them.
- CSV, since rccl-tests pull request #140 (2025): ``numCycle,`` first (the ``-N`` cycle) and ``,`` alone. MPI
  builds name ``ranks,rankspernode,gpusperrank`` (later ``nodes,ranks,ranksPerNode,gpusPerRank``) instead of
  ``gpus``; until ROCm/rocm-systems pull request #6004 (2026) their header lacked ``nodes`` while every row
  carried it (13 names, 14 fields): such a row is read with ``nodes`` put back, never shifted.
- JSON, first version: one object per line (``{"name":"AllReduce", "gpus":4, ...}``); since #140 a JSON list
  of the same objects, one per line (``[``, ``{...},``, ..., ``{...}``, ``]``). Keys ``numCycle``, ``name``,
  ``gpus`` or ``nodes``/``ranks``/``ranksPerNode``/``gpusPerRank``, ``size``, ``type``, ``redop``, ``inPlace``,
  ``time``, ``algBw``, ``busBw``, ``wrong`` (``#wrong`` in the first version; ``"N/A"`` without ``-c``).

The world size is ``gpus`` (one process: threads x GPUs) or ``ranks x gpusPerRank`` (MPI). ``size`` is the
largest per-rank buffer, as in the text table. Several ``-N`` cycles of one size become the samples of one point
(its time: the median of the cycles). The algorithm/protocol columns of the text table (``-M 1`` /
``--output_algo_proto_channels``: ``algo proto nchannels`` after the in-place half) are read by
``analysis.nccltests``; the CSV/JSON files do not carry them.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.errors import AnalysisError
from analysis.nccltests import DTYPE_BYTES, DTYPES, IMPORTED, OPS, UNMEASURED, ParsedLog, busbw_factor, collective_of
from analysis.nccltests import _point as nccl_point
from collectives.spec import is_point_to_point, spec

#: rccl-tests' test names (``struct testColl``'s first field) -> nccl-tests program stems
NAMES = {"allreduce": "all_reduce", "allgather": "all_gather", "alltoall": "alltoall", "broadcast": "broadcast",
         "reduce": "reduce", "reducescatter": "reduce_scatter", "sendrecv": "sendrecv", "gather": "gather",
         "scatter": "scatter", "alltoallv": "alltoallv", "hypercube": "hypercube"}  # fmt: skip
#: lower-cased CSV header names -> the JSON keys
_CSV_KEYS = {"numcycle": "numCycle", "collective": "name", "gpus": "gpus", "nodes": "nodes", "ranks": "ranks",
             "rankspernode": "ranksPerNode", "gpusperrank": "gpusPerRank", "size": "size", "type": "type",
             "redop": "redop", "inplace": "inPlace", "time": "time", "algbw": "algBw", "busbw": "busBw",
             "#wrong": "wrong", "wrong": "wrong", "busbwfactor": "busBwFactor"}  # fmt: skip
_REQUIRED = ("name", "size", "type", "inPlace", "time", "algBw", "busBw")


@dataclass
class Record:
    """One rccl-tests result record (one size, one side) with the line it came from."""

    line: int
    fields: dict[str, Any]


def sniff(first_line: str) -> str | None:
    """``rccl-tests-csv`` / ``rccl-tests-json`` when ``first_line`` (stripped) opens such a file, else None."""
    low = first_line.strip().lower().replace(" ", "")
    if low.startswith(("numcycle,collective,", "collective,gpus,", "collective,ranks,", "collective,nodes,")):
        return "rccl-tests-csv"
    if low == "[" or (low.startswith("{") and ('"name":' in low and '"busbw":' in low)):
        return "rccl-tests-json"
    return None


def _csv_records(path: Path, lines: Iterable[str]) -> Iterator[Record]:
    header: list[str] | None = None
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        cells = [c.strip() for c in next(csv.reader([raw], skipinitialspace=True))]
        if header is None:
            header = [_CSV_KEYS.get(c.lower(), c) for c in cells]
            missing = [k for k in _REQUIRED if k not in header]
            if missing:
                raise AnalysisError(f"{path}:{lineno}: expected an rccl-tests CSV header with "
                                    f"{', '.join(missing)}; got {raw.strip()[:80]!r}")  # fmt: skip
            continue
        names = header
        if len(cells) == len(header) + 1 and "ranks" in header and "nodes" not in header:
            names = header[: header.index("ranks")] + ["nodes"] + header[header.index("ranks"):]
        if len(cells) != len(names):
            raise AnalysisError(f"{path}:{lineno}: expected {len(header)} fields as the header names, got "
                                f"{len(cells)}")  # fmt: skip
        yield Record(lineno, dict(zip(names, cells, strict=True)))


def _json_records(path: Path, lines: Iterable[str]) -> Iterator[Record]:
    for lineno, raw in enumerate(lines, 1):
        text = raw.strip().rstrip(",").strip()
        if text in ("", "[", "]"):
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            raise AnalysisError(f"{path}:{lineno}: expected one rccl-tests JSON result object per line, got "
                                f"{text[:60]!r}") from None  # fmt: skip
        if not isinstance(obj, dict):
            raise AnalysisError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        if "#wrong" in obj:
            obj["wrong"] = obj.pop("#wrong")
        missing = [k for k in _REQUIRED if k not in obj]
        if missing:
            raise AnalysisError(f"{path}:{lineno}: expected the rccl-tests result keys {', '.join(missing)}")
        yield Record(lineno, obj)


def _num(path: Path, rec: Record, key: str, kind: type = float) -> Any:
    """The number in ``key`` (quoted or not) as ``kind``; one line naming the file and line otherwise."""
    try:
        return kind(float(str(rec.fields[key]).strip().strip('"')))
    except (KeyError, TypeError, ValueError):
        raise AnalysisError(f"{path}:{rec.line}: expected a number in {key!r}, got "
                            f"{rec.fields.get(key)!r}") from None  # fmt: skip


def _text(rec: Record, key: str) -> str:
    return str(rec.fields.get(key, "")).strip().strip('"')


def _collective(path: Path, rec: Record) -> str:
    name = _text(rec, "name")
    stem = NAMES.get(name.lower().replace("_", ""))
    if stem is None:
        raise AnalysisError(f"{path}:{rec.line}: expected an rccl-tests test name (AllReduce, AllGather, ...), "
                            f"got {name!r}")  # fmt: skip
    coll = collective_of(stem)
    if coll in UNMEASURED or coll not in IMPORTED:
        raise AnalysisError(f"{path}:{rec.line}: this is an rccl-tests {name} result; collbench does not measure "
                            f"{coll} (it measures {', '.join(IMPORTED)}), so it cannot import it")  # fmt: skip
    return coll


def _world(path: Path, rec: Record) -> int:
    if "gpus" in rec.fields:
        return _num(path, rec, "gpus", int)
    if "ranks" in rec.fields:
        per = _num(path, rec, "gpusPerRank", int) if "gpusPerRank" in rec.fields else 1
        return _num(path, rec, "ranks", int) * per
    raise AnalysisError(f"{path}:{rec.line}: expected 'gpus' or 'ranks' (the world size)")


def parse_records(path: Path, records: Iterable[Record]) -> list[ParsedLog]:
    """One ParsedLog per (collective, world size, dtype, op) of the records, cycles merged into samples."""
    groups: dict[tuple, dict[tuple, list[tuple[Record, float]]]] = {}
    for rec in records:
        coll = _collective(path, rec)
        p = _world(path, rec)
        if p < 1:
            raise AnalysisError(f"{path}:{rec.line}: expected a world size >= 1, got {p}")
        dname = _text(rec, "type")
        if dname not in DTYPES:
            raise AnalysisError(f"{path}:{rec.line}: expected an rccl-tests type (float, half, ...), got {dname!r}")
        op = _text(rec, "redop").lower() or "none"
        if op not in OPS:
            raise AnalysisError(f"{path}:{rec.line}: expected a redop ({', '.join(OPS)}), got {op!r}")
        nbytes = _num(path, rec, "size", int)
        in_place = bool(_num(path, rec, "inPlace", int))
        time_us = _num(path, rec, "time")
        key = (coll, p, DTYPES[dname], op)
        groups.setdefault(key, {}).setdefault((nbytes, in_place), []).append((rec, time_us))
    if not groups:
        raise AnalysisError(f"{path}: no rccl-tests result record")
    logs = []
    for (coll, p, dtype, op), by_point in groups.items():
        warnings: list[str] = []
        points = []
        cycles = max(len(v) for v in by_point.values())
        for (nbytes, in_place), recs in sorted(by_point.items()):
            if in_place and (is_point_to_point(coll) or spec(coll).variants("both") == (False,)):
                note = f"{coll}: rccl-tests' in-place records are dropped ({coll} is out of place only)"
                if note not in warnings:
                    warnings.append(note)
                continue
            times = [t for _, t in recs]
            wrongs = [_text(r, "wrong") for r, _ in recs]
            checked = [w for w in wrongs if w.upper() not in ("N/A", "")]
            n_wrong = sum(int(float(w)) for w in checked) if checked else None
            root = -1 if is_point_to_point(coll) else spec(coll).recorded_root(0)
            rec_op = "none" if is_point_to_point(coll) else (op if op != "none" else spec(coll).recorded_op("sum"))
            elem = DTYPE_BYTES[dtype]
            time_us = statistics.median(times)
            pt = nccl_point(coll, p, nbytes, nbytes // elem, dtype, rec_op, root, in_place, time_us, 0.0, 0.0,
                            n_wrong, n_wrong in (None, 0), None, times if len(times) > 1 else None)  # fmt: skip
            points.append(pt)
            printed = _num(path, recs[0][0], "busBw")
            want = nbytes / times[0] / 1e3 * busbw_factor(coll, p) if times[0] > 0 else 0.0
            if want >= 0.1 and abs(printed - want) > 0.02 * want + 0.02:
                warnings.append(f"{path.name}:{recs[0][0].line}: busBw {printed} != size/time x F(p={p}) = "
                                f"{want:.4g}: the world size may be wrong")  # fmt: skip
        if cycles > 1:
            warnings.append(f"{cycles} cycles (-N) per size: each point's samples are its cycles, its time their "
                            "median")  # fmt: skip
        if any(pt["n_wrong"] is None for pt in points):
            warnings.append("rccl-tests wrote #wrong N/A (run without -c): results were not checked")
        first = next(iter(by_point.values()))[0][0]
        source = "ranks x gpusPerRank (MPI build)" if "ranks" in first.fields else "gpus (threads x GPUs)"
        logs.append(ParsedLog(coll, p, points, warnings=warnings, world_size_source=source,
                              collective_source="named in the file"))  # fmt: skip
    return logs


def parse_file(path: Path, fmt: str) -> list[ParsedLog]:
    """Every test in an rccl-tests ``-Z csv|json`` file, read one line at a time."""
    reader = _csv_records if fmt == "rccl-tests-csv" else _json_records
    try:
        with open(path, encoding="utf-8") as f:
            return parse_records(path, reader(path, f))
    except UnicodeDecodeError:
        raise AnalysisError(f"{path}: not a text file") from None
