"""Parse nccl-tests / rccl-tests output (text logs of every layout, and the ``-J`` JSON file) into points
of the result schema (``bench.schema``).

Text logs, as people keep them: line prefixes of launchers and log collectors (SLURM ``srun --label``
``0: ``, Open MPI ``[1,0]<stdout>:``, a launcher's own ``(head, rank=0, pid=1) `` tag, Kubernetes
timestamps and ``[pod/...]``) are stripped; old headers (``size count type [redop] [root] time algbw busbw
error``, ``nThread: 1 nGpus: 1``) and new ones (``... redop root time algbw busbw #wrong``, optionally with
per-iteration ``i_*`` columns per side); ``#`` may be missing; sizes may fill their column; ``NCCL INFO``
lines, shell prompts and command lines anywhere are skipped. One file may hold several tests one after
another (one section each).

The collective comes from the log (``Collective test starting: all_reduce_perf``, a program name on a command
or ``Running:`` line, ``all_reduce_perf_mpi`` included), the caller, or the columns where they decide it.
The world size from the caller, the rank lines, ``nThread x nGpus`` of a single process, the launcher's
``-np`` times ``-g``, or busbw/algbw (nccl-tests' factor F(p), checked within print rounding).

Before nccl-tests pull request #45 (mid 2020) all_gather/reduce_scatter printed ``algbw = S/t x (p-1)/p`` and
``busbw = algbw``; such rows are recorded with today's definitions (``algbw = S/t``, ``busbw = algbw x F``) and
the conversion is said in the warnings.

JSON (``-J``, nccl-tests 2.17.3+ ``src/util.cu``; ``JSON_FILE_VERSION`` 1, 2 with ``-I``, 3 with ``-K``), as the
writer prints it: compact, ``\\/`` in strings, doubles as ``%lf`` (``"nan"`` as a string), booleans and ``root``
(``"%6i"``) as strings, no trailing newline. ``config.devices`` holds one entry per process (the first rank line
of each, ``parseRankInfo``), so the world size is ``nthreads x ngpus x len(devices)``. Each result holds
``out_of_place`` / ``in_place`` (``time`` or ``cpu_time``, ``alg_bw``, ``bus_bw``, ``nwrong``) and, with ``-I 1``,
``out_of_place_per_iter`` / ``in_place_per_iter`` (``times_us``: every iteration, the max over GPUs and
processes); the samples are imported. Its ``env`` list (the whole environment of the run) is never copied.

``-I 1`` text columns (nccl-tests 2.19.2+, ``writeResultHeader``): per side ``time algbw busbw #wrong i_min
i_max i_p99 i_cv%``; i_min / i_max are kept. A ``-S 1`` timestamp (``%Y-%m-%d %H:%M:%S``) at the row's end is
dropped.

``import_file`` (``collbench import``) writes one collbench run directory per test of a file.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis import stragglers
from analysis.errors import AnalysisError
from analysis.rundir import base_meta, new_run_dir, write_run_dir
from analysis.topology import Topology, from_rank_lines, given, ranges
from bench.sizes import format_size
from collectives import costs
from collectives.spec import COLLECTIVES, SEND_RECV, by_program, is_point_to_point, spec

DTYPES = {
    "float": "float32", "float32": "float32", "half": "float16", "float16": "float16", "double": "float64",
    "float64": "float64", "bfloat16": "bfloat16", "int8": "int8", "uint8": "uint8", "int32": "int32",
    "int": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64", "f8e4m3": "float8_e4m3fn",
    "f8e5m2": "float8_e5m2", "fp8_e4m3": "float8_e4m3fn", "fp8_e5m2": "float8_e5m2",
}  # fmt: skip
DTYPE_BYTES = {"float32": 4, "float16": 2, "float64": 8, "bfloat16": 2, "int8": 1, "uint8": 1, "int32": 4,
               "uint32": 4, "int64": 8, "uint64": 8, "float8_e4m3fn": 1, "float8_e5m2": 1}  # fmt: skip
OPS = {"sum": "sum", "prod": "prod", "max": "max", "min": "min", "avg": "avg", "none": "none", "mulsum": "mulsum"}
#: nccl-tests programs collbench does not measure (refused by name)
UNMEASURED = ("hypercube",)
#: what collbench imports: the collectives, and sendrecv_perf as send_recv with the algorithm ``ring_shift``
#: (every rank sends S to rank + 1 and receives S from rank - 1 in one group call; nccl-tests' src/sendrecv.cu,
#: SendRecvRunColl; busbw = algbw): collectives.spec.SEND_RECV says how it compares with collbench's own
#: send_recv measurements (latency, bw, bibw between ranks 0 and 1)
IMPORTED = (*COLLECTIVES, SEND_RECV.name)
#: nccl-tests programs imported as a variant of a collective: alltoallv_perf (2.19: per-peer counts that differ,
#: NCCL_TESTS_ALLTOALLV_SPREAD / a traffic matrix; size = the largest per-rank buffer, busbw = algbw x (p-1)/p) as
#: all_to_all, with a warning that its points are not a uniform all_to_all's
VARIANTS = {"alltoallv": "alltoall"}
_VARIANT_NOTE = ("alltoallv_perf: imported as all_to_all, but its per-peer counts differ (NCCL_TESTS_ALLTOALLV_SPREAD "
                 "or a traffic matrix): size is the largest per-rank buffer; compare it with alltoallv runs only")
_PROGRAMS = "|".join(sorted((*(spec(c).program for c in COLLECTIVES), SEND_RECV.program, *UNMEASURED, *VARIANTS),
                            key=len, reverse=True))  # fmt: skip
_LAUNCHERS = re.compile(r"\b(?:mpirun|mpiexec|srun|torchrun|aprun|jsrun|prun|orterun|oshrun|flux|horovodrun)\b")


def collective_of(program: str) -> str:
    """collbench's name for nccl-tests' program stem (``alltoall`` -> ``all_to_all``, ``sendrecv`` ->
    ``send_recv``); unknown names unchanged."""
    program = VARIANTS.get(program, program)
    return by_program(program) or (SEND_RECV.name if program == SEND_RECV.program else program)


def busbw_factor(collective: str, p: int) -> float:
    """nccl-tests' busbw / algbw: the collective's F(p); 1 for sendrecv (SendRecvGetBw)."""
    return 1.0 if is_point_to_point(collective) else costs.busbw_factor(collective, p)


def _algorithm(collective: str) -> str:
    """The algorithm an imported point records: the backend's own (``builtin``), sendrecv's ``ring_shift``."""
    return SEND_RECV.p2p.imported_algorithm if is_point_to_point(collective) else "builtin"

# one prefix a line may carry; stripped repeatedly (a launcher tag before an Open MPI tag, ...)
_PREFIXES = (
    re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\s"),  # kubectl --timestamps
    re.compile(r"^\[pod/[^\]]*\]\s?"),  # kubectl logs --prefix
    re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:"),  # Open MPI --tag-output
    re.compile(r"^\([^()\n]*\)\s"),  # a launcher's own tag: (head, rank=0, pid=3808)
    re.compile(r"^\s*\d+:\s"),  # srun --label
    re.compile(r"^\[\d+\]\s"),  # MPICH / Hydra -prepend-rank
)
_TEST_MARK = re.compile(r"Collective test (starting|concluded):\s*(\w+)")
_PROGRAM = re.compile(rf"\b({_PROGRAMS})_perf\w*")
_RANK = re.compile(
    r"^#?\s*Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?(?:Pid\s+\d+\s+)?on\s+(\S+)\s+device\s+(\d+)\s+\[[^\]]*\](?:\s+(.*))?$"
)
_NTHREAD = re.compile(r"nThread:?\s+(\d+)\s+nGpus:?\s+(\d+)")
_ITERS = re.compile(r"(?<!warmup )(?<!agg )(?<!warmup)iters:\s*(\d+)")
_WARMUP = re.compile(r"warmup iters:\s*(\d+)")
_TESTS_VERSION = re.compile(r"[nr]ccl-tests version (\S+)")
_RCCL_TESTS_VERSION = re.compile(r"^rccl-tests: Version\s*(.*)$")
_NCCL_VERSION = re.compile(r"^(NCCL|RCCL) version\s*:?\s*(\S+)")
_COMPILED_WITH = re.compile(r"compiled with NCCL (\S+)")
_NCCL_INFO = re.compile(r"\bNCCL (?:INFO|WARN)\b")
_ENV_SET = re.compile(r"\b(NCCL_[A-Z0-9_]+) set by environment to (\S+)")
_ENV_ARG = re.compile(r"(?:^|\s)(?:-x\s+|--env\s+|-env\s+|export\s+)?(NCCL_[A-Z0-9_]+)[= ](\S+)")
_ALGO_PROTO = re.compile(r"\b(?:[Aa]lgo(?:rithm)?)\s+(\w+)\b.*?\b(?:[Pp]roto(?:col)?)\s+(\w+)\b")
#: NCCL's enum order (src/include/devcomm.h) for TUNING lines that print numbers: ``Algo 1 proto 2``
_ALGO_NAMES = ("Tree", "Ring", "CollNetDirect", "CollNetChain", "NVLS", "NVLSTree", "PAT")
_PROTO_NAMES = ("LL", "LL128", "Simple")
_LIBRARY_CODE = re.compile(r"nccl-library=(\d+)")
#: an algorithm name in rccl-tests' algo column: NCCL's (RING, TREE, ...) or RCCL's own (Direct; RING* for a ring
#: RCCL runs with its own kernels)
_ALGO_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\*?")
_TIMESTAMP_TAIL = re.compile(r"\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s*$")
_NP = re.compile(r"\b(?:mpirun|mpiexec|mpirun\.\w+|mpiexec\.\w+)\b.*?\s(?:-np|-n|--np)\s+(\d+)")
_FAILURE = re.compile(r"(Test (?:NCCL|CUDA) failure.*|NCCL failure.*|CUDA error.*|Test failure.*)")
_NUM = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_SECRET_ENV = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL)", re.I)


@dataclass
class ParsedLog:
    """What one nccl-tests test (one table) says: its points (result-schema rows) and its metadata."""

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
    collective_source: str = ""
    rank_hosts: dict[int, str] = field(default_factory=dict)
    rank_gpus: dict[int, str] = field(default_factory=dict)
    rccl_version: str | None = None
    command: str | None = None
    nccl_env: dict[str, str] = field(default_factory=dict)
    algo_proto: list[str] = field(default_factory=list)
    nnodes_given: int | None = None  # a format that states the node count (NCCL Inspector's header nnodes)
    topology: Topology | None = None  # from complete rank lines (analysis.topology), the log's header or options

    def __post_init__(self) -> None:
        if self.topology is None and self.nnodes_given:  # the format states its node count
            p, n = self.world_size, self.nnodes_given
            self.topology = Topology(p, n, p // n if p % n == 0 else None, source="stated in the log")
        elif self.topology is None:
            self.topology, warning = from_rank_lines(self.rank_hosts, self.world_size)
            if warning:
                self.warnings.append(warning)

    @property
    def nnodes(self) -> int | None:
        """Hosts, from complete rank lines, the log's header or the options; None when unknown (never guessed)."""
        return self.topology.nnodes if self.topology else None

    @property
    def gpus_per_node(self) -> int | None:
        return self.topology.gpus_per_node if self.topology else None


def nccl_version_from_code(code: int) -> str:
    """``NCCL_VERSION_CODE`` as a version: 22903 -> 2.29.3 (2.9+: X*10000 + Y*100 + Z; before: X*1000 + Y*100 + Z)."""
    if code >= 10000:
        return f"{code // 10000}.{code % 10000 // 100}.{code % 100}"
    return f"{code // 1000}.{code % 1000 // 100}.{code % 100}"


def _algo_proto(algo: str, proto: str) -> str:
    """``Ring/Simple`` from a TUNING line's names (``RING``, ``SIMPLE``) or numbers (``1``, ``2``)."""
    names = {n.lower(): n for n in _ALGO_NAMES}
    a = _ALGO_NAMES[int(algo)] if algo.isdigit() and int(algo) < len(_ALGO_NAMES) else names.get(algo.lower(), algo)
    pn = {n.lower(): n for n in _PROTO_NAMES}
    pr = _PROTO_NAMES[int(proto)] if proto.isdigit() and int(proto) < len(_PROTO_NAMES) else pn.get(proto.lower())
    pr = pr or proto
    return f"{a}/{pr}"


def strip_prefixes(line: str) -> str:
    """``line`` without launcher / log-collector prefixes (any number of them, in any order)."""
    for _ in range(8):
        for rx in _PREFIXES:
            new = rx.sub("", line, count=1)
            if new != line:
                line = new
                break
        else:
            return line
    return line


def _p_candidates(collective: str, intervals: list[tuple[float, float]], pmax: int = 4096) -> list[int]:
    """World sizes whose busbw factor F(p) lies in every interval (print rounding of busbw and algbw)."""
    return [p for p in range(2, pmax + 1) if all(lo - 1e-9 <= costs.busbw_factor(collective, p) <= hi + 1e-9
                                                 for lo, hi in intervals)]  # fmt: skip


def _decimals(text: str) -> float:
    """Half a unit of the last printed digit of ``text`` (its print rounding)."""
    if "e" in text.lower():
        return abs(float(text)) * 0.05
    return 0.5 * 10 ** -(len(text.split(".")[1]) if "." in text else 0)


def _point(
    collective: str, p: int, nbytes: int, count: int, dtype: str, op: str, root: int, in_place: bool,
    time_us: float, algbw: float, busbw: float, wrong: float | None, correct: bool, iters: int | None,
    samples: list[float] | None = None, t_min: float | None = None, t_max: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One point with today's definitions computed from S and the time (the printed bandwidths are rounded
    to 0.01 GB/s, so small sizes print 0.00): algbw = S / t, busbw = algbw x F(p)."""
    if time_us > 0:
        algbw = nbytes / time_us / 1e3
        busbw = algbw * busbw_factor(collective, p)
    return {
        "collective": collective, "algorithm": _algorithm(collective), "backend": "nccl", "device": "cuda",
        "world_size": p,
        "dtype": dtype, "op": op, "bytes": nbytes, "count": count, "root": root, "in_place": in_place,
        "iters": iters, "warmup": None, "time_us": time_us, "block_time_us": time_us, "algbw_gbps": algbw,
        "busbw_gbps": busbw, "correct": correct, "n_wrong": None if wrong is None else int(wrong),
        "noisy": False, "segment_bytes": None, "cuda_graph": False, "samples_us": samples or [],
        **{k: None for k in ("time_us_p10", "time_us_p25", "time_us_p75", "time_us_p90")},
        "time_us_min": min(samples) if samples else t_min, "time_us_max": max(samples) if samples else t_max,
    }  # fmt: skip


@dataclass
class _Row:
    """One table line: the leading columns and the two halves as printed (text)."""

    nbytes: int
    count: int
    dtype_name: str
    redop: str | None  # None: no redop field; "": a redop header over an empty field
    root: int | None
    halves: list[list[str]]
    side_cols: list[str]
    algo: str | None = None  # rccl-tests -M 1: "algo/proto, n channels" after the in-place half


def _header(tokens: list[str]) -> list[str] | None:
    if len(tokens) >= 6 and tokens[:3] == ["size", "count", "type"]:
        return [t for t in tokens if t != "timestamp"]  # -S 1 adds a timestamp column at the end
    return None


def _side_columns(header: list[str] | None, width: int) -> list[str]:
    if header is not None:
        rest = [c for c in header[3:] if c not in ("redop", "root")]
        if len(rest) % 2 == 0 and len(rest) // 2 == width:
            return rest[:width]
    base = ["time", "algbw", "busbw", "#wrong"]
    return base if width == 4 else base + ["i_min", "i_max", "i_p99", "i_cv%"][: width - 4] + [""] * max(0, width - 8)


def _row(line: str, header: list[str] | None) -> _Row | None:
    """The table row on ``line`` (already without prefixes), or None."""
    tokens = _TIMESTAMP_TAIL.sub("", line).split()
    algo = None
    named = len(tokens) >= 10 and _ALGO_NAME.fullmatch(tokens[-3]) and tokens[-2].upper() in ("LL", "LL128", "SIMPLE")
    if (named and (tokens[-1].isdigit() or tokens[-1] == "N/A")) or (len(tokens) >= 10 and tokens[-3:] == ["N/A"] * 3):
        # rccl-tests --output_algo_proto_channels (-M 1; -A 1 in ROCm/rocm-systems' rccl-tests): algo proto
        # nchannels after the in-place half, the algorithm as RCCL names it (RING, TREE, Direct, RING* ...)
        algo, tokens = f"{tokens[-3]}/{tokens[-2]}, {tokens[-1]} channels", tokens[:-3]
    if len(tokens) < 7 or not (tokens[0].isdigit() and tokens[1].isdigit()) or tokens[2] not in DTYPES:
        return None
    rest = tokens[3:]
    hdr_width = None
    if header is not None:
        body = [c for c in header[3:] if c not in ("redop", "root")]
        hdr_width = len(body) // 2 if len(body) % 2 == 0 else None
    widths = [hdr_width] if hdr_width else []
    widths += [w for w in (4, 8, 5, 6, 7) if w not in widths]
    for width in widths:
        middle_n = len(rest) - 2 * width
        if middle_n < 0 or middle_n > 2:
            continue
        middle, sides = rest[:middle_n], rest[middle_n:]
        if not all(_NUM.match(t.rstrip("*")) or t.upper() == "N/A" for t in sides):
            continue
        redop = root = None
        ok = True
        for tok in middle:
            if tok.lower() in OPS and redop is None:
                redop = tok
            elif re.fullmatch(r"-?\d+", tok) and root is None:
                root = int(tok)
            else:
                ok = False
        if not ok:
            continue
        if redop is None and header is not None and "redop" in header:
            redop = ""  # the header names a redop column the row leaves empty (old alltoall)
        cols = _side_columns(header, width)
        return _Row(int(tokens[0]), int(tokens[1]), tokens[2], redop, root, [sides[:width], sides[width:]], cols,
                    algo)  # fmt: skip
    return None


@dataclass
class _Section:
    """One test of a text log: its table and what the lines around it say."""

    header: list[str] | None = None
    rows: list[_Row] = field(default_factory=list)
    names: list[tuple[str, str]] = field(default_factory=list)  # (program, where)
    ranks: dict[int, tuple[str, str]] = field(default_factory=dict)
    nthreads_ngpus: int | None = None
    iters: int | None = None
    warmup: int | None = None  # the header's "warmup iters"
    np_: int | None = None
    ngpus_arg: int = 1
    nthreads_arg: int = 1
    single_process: bool = False  # the command line starts the program with no launcher: one process
    command: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # NCCL_* settings on this test's command line
    failures: list[str] = field(default_factory=list)
    variant: str | None = None  # a program of VARIANTS (alltoallv) named for this test
    memory: str | None = None  # nccl-tests -M: the "GPU memory usage" footer line
    seen_rows: set[tuple] = field(default_factory=set)  # rows kept, as printed: a repeat of one adds nothing
    row_lines: set[str] = field(default_factory=set)  # the lines those rows came from (a repeat skips parsing)
    repeated_rows: int = 0  # rows identical to one kept already (a log that repeats itself), collapsed
    repeated_tests: int = 0  # later tests of the file identical to this one (the same table again), left out

    def signature(self) -> tuple:
        """What makes two tests of one file the same measurement printed twice."""
        rows = tuple((r.nbytes, r.count, r.dtype_name, r.redop, r.root, *map(tuple, r.halves)) for r in self.rows)
        return (tuple(self.header or ()), rows, tuple(sorted(self.ranks.items())), tuple(self.names), self.iters)


def _split_sections(lines: Iterable[str]) -> tuple[list[_Section], dict[str, Any]]:
    """Sections (one per test) and file-wide facts (versions, NCCL settings), read line by line: what it keeps
    grows with the distinct rows, not the file (a row identical to one kept in its test is counted, not kept)."""
    facts: dict[str, Any] = {"tests_version": None, "nccl_version": None, "rccl_version": None, "env": {},
                             "algo_proto": set()}  # fmt: skip
    sections = [_Section()]
    previous = ""
    for raw in lines:
        continued, previous = previous.rstrip().endswith("\\"), raw if raw.strip() else previous
        if raw in sections[-1].row_lines:  # the very line of a row kept in this test: the same row again
            sections[-1].repeated_rows += 1
            continue
        ln = strip_prefixes(raw).rstrip()
        body = ln.lstrip("#").strip()
        cur = sections[-1]
        if _NCCL_INFO.search(ln):
            if m := _ENV_SET.search(ln):
                facts["env"][m.group(1)] = m.group(2)
            if m := _ALGO_PROTO.search(ln):
                facts["algo_proto"].add(_algo_proto(m.group(1), m.group(2)))
            if m := re.search(r"NCCL INFO NCCL version (\S+)", ln):
                facts["nccl_version"] = facts["nccl_version"] or m.group(1)
            continue
        if m := _TEST_MARK.search(body):
            prog = m.group(2)
            if m.group(1) == "starting" and (cur.rows or any(w == "starting" for _, w in cur.names)):
                sections.append(_Section())
                cur = sections[-1]
            pm = _PROGRAM.search(prog)
            if pm:
                cur.names.append((collective_of(pm.group(1)), m.group(1)))
                cur.variant = cur.variant or (pm.group(1) if pm.group(1) in VARIANTS else None)
            continue
        if m := _RANK.match(body if body.startswith("Rank") else ln.strip()):
            if cur.rows:  # rank lines after a table: a new test
                sections.append(_Section())
                cur = sections[-1]
            cur.ranks[int(m.group(1))] = (m.group(2), (m.group(4) or "").strip())  # rccl-tests may print no name
            continue
        if m := _NTHREAD.search(body):
            if cur.rows:
                sections.append(_Section())
                cur = sections[-1]
            cur.nthreads_ngpus = int(m.group(1)) * int(m.group(2))
            if it := _ITERS.search(body):
                cur.iters = int(it.group(1))
            if wm := _WARMUP.search(body):
                cur.warmup = int(wm.group(1))
            continue
        if m := _TESTS_VERSION.search(body):
            facts["tests_version"] = m.group(1)
        if m := _RCCL_TESTS_VERSION.match(body):
            facts["tests_version"] = facts["tests_version"] or (m.group(1).strip() or None)
            facts["rccl_tests"] = True
        if m := _NCCL_VERSION.match(body):
            key = "rccl_version" if m.group(1) == "RCCL" else "nccl_version"
            facts[key] = facts[key] or m.group(2)
        if m := _COMPILED_WITH.search(body):
            facts["nccl_version"] = facts["nccl_version"] or m.group(1)
        if m := _LIBRARY_CODE.search(body):  # nccl-tests 2.17.3+: "nccl-headers=22903 nccl-library=22903"
            facts["library_version"] = nccl_version_from_code(int(m.group(1)))
        if cols := _header([t for t in body.split() if t not in ("algo", "proto", "nchannels")]):
            if cur.rows:
                sections.append(_Section())
                cur = sections[-1]
            cur.header = cols
            continue
        if not ln.lstrip().startswith("#") and (row := _row(ln, cur.header)) is not None:
            if cur.rows and row.nbytes < cur.rows[-1].nbytes and any(  # the sweep starts again at another p
                r.nbytes == row.nbytes and r.dtype_name == row.dtype_name and r.redop == row.redop
                and r.root == row.root and _other_world(r, row) for r in cur.rows
            ):  # fmt: skip
                sections.append(_Section(header=cur.header, names=list(cur.names), variant=cur.variant))
                cur = sections[-1]
            key = (row.nbytes, row.count, row.dtype_name, row.redop, row.root, *map(tuple, row.halves))
            if key in cur.seen_rows:
                cur.repeated_rows += 1
            else:
                cur.seen_rows.add(key)
                cur.row_lines.add(raw)
                cur.rows.append(row)
            continue
        if body.startswith("GPU memory usage"):  # -M 1 footer
            cur.memory = body
        if m := _FAILURE.search(ln):
            cur.failures.append(m.group(1).strip())
        pm = _PROGRAM.search(ln)
        commented = ln.lstrip().startswith("#")
        # a command line, or one after a root shell prompt ("# mpirun ... all_reduce_perf ..."): nccl-tests' own
        # "#" lines never start with a launcher or a path to a *_perf program
        if pm and (not commented or _LAUNCHERS.match(body) or re.match(r"\.?/\S*_perf", body)):
            named = collective_of(pm.group(1))
            # after a table, a command line starts the next test when it names another collective, or when this
            # test had its own command line already (several runs of one program, each with its settings)
            if cur.rows and (named != (cur.names[0][0] if cur.names else named) or cur.command is not None):
                sections.append(_Section())
                cur = sections[-1]
            cur.names.append((collective_of(pm.group(1)), "command"))
            cur.variant = cur.variant or (pm.group(1) if pm.group(1) in VARIANTS else None)
            cur.command = cur.command or (body if commented else ln.strip())
            if npm := _NP.search(ln):
                cur.np_ = int(npm.group(1))
            if gm := re.search(r"_perf\w*\s.*?(?:-g|--ngpus)\s+(\d+)", ln):
                cur.ngpus_arg = int(gm.group(1))
            if tm := re.search(r"_perf\w*\s.*?(?:-t|--nthreads)\s+(\d+)", ln):
                cur.nthreads_arg = int(tm.group(1))
            cur.single_process = not continued and not _LAUNCHERS.search(ln[: pm.start()])
            for em in _ENV_ARG.finditer(ln):
                cur.env.setdefault(em.group(1), em.group(2))
    # a section holding only names/metadata before a table belongs to the next one
    merged: list[_Section] = []
    for sec in sections:
        if merged and not merged[-1].rows and merged[-1].header is None:
            prev = merged.pop()
            sec.names = prev.names + sec.names
            sec.ranks = sec.ranks or prev.ranks
            sec.nthreads_ngpus = sec.nthreads_ngpus or prev.nthreads_ngpus
            sec.iters = sec.iters or prev.iters
            sec.warmup = sec.warmup if sec.warmup is not None else prev.warmup
            sec.np_ = sec.np_ or prev.np_
            sec.ngpus_arg = sec.ngpus_arg if sec.ngpus_arg != 1 else prev.ngpus_arg
            sec.nthreads_arg = sec.nthreads_arg if sec.nthreads_arg != 1 else prev.nthreads_arg
            sec.single_process = sec.single_process or prev.single_process
            sec.command = sec.command or prev.command
            sec.env = {**prev.env, **sec.env}
            sec.failures = prev.failures + sec.failures
            sec.variant = sec.variant or prev.variant
        sec.seen_rows, sec.row_lines = set(), set()  # only needed while reading
        merged.append(sec)
    return merged, facts


def _side_values(row: _Row, half: list[str]) -> dict[str, str]:
    return dict(zip(row.side_cols, half, strict=False))


def _infer_collective(sec: _Section, p_hint: int | None) -> tuple[str | None, str]:
    """(collective, why) from the columns; (None, reason) when they cannot decide."""
    rows = sec.rows
    redops = {r.redop for r in rows}
    roots = {r.root for r in rows}
    if redops == {""}:
        return collective_of("alltoall"), "a redop column with no value (old alltoall layout)"
    has_op = None not in redops
    has_root = None not in roots
    if has_root and all(r is not None and r >= 0 for r in roots):
        if has_op and any(r.redop and r.redop.lower() != "none" for r in rows):
            return "reduce", "a redop and a root >= 0"
        if any(hi < 1.0 and lo > 0.0 for lo, hi in _factor_intervals(sec, top=len(rows) * 2)):  # F = (p-1)/p
            return None, "a root >= 0 without a reduction and busbw/algbw < 1: gather or scatter"
        return "broadcast", "a root >= 0 without a reduction"
    reducing = has_op and any(r.redop and r.redop.lower() != "none" for r in rows)
    if reducing:
        # all_reduce: F = 2(p-1)/p >= 1; reduce_scatter: F = (p-1)/p < 1 (print rounding taken into account)
        ivs = _factor_intervals(sec, top=len(rows) * 2)
        if any(lo > 1.0 for lo, _ in ivs):
            return "all_reduce", "a reduction with busbw/algbw > 1"
        if any(hi < 1.0 and lo > 0.0 for lo, hi in ivs):
            return "reduce_scatter", "a reduction with busbw/algbw < 1"
        if p_hint:
            for coll in ("all_reduce", "reduce_scatter"):
                f = costs.busbw_factor(coll, p_hint)
                if ivs and all(lo - 1e-9 <= f <= hi + 1e-9 for lo, hi in ivs):
                    same = ("; sendrecv_perf prints the same columns (sum, -1, busbw = algbw): pass --collective "
                            "send_recv if the log is one") if f == 1.0 else ""  # fmt: skip
                    return coll, f"a reduction with busbw/algbw = F(p={p_hint}){same}"
        return None, "a reduction with root -1 or none: all_reduce or reduce_scatter, and no row's bandwidth tells"
    if not has_op and not has_root:
        # old layout without redop/root: all_gather (sendrecv of that age prints the same columns)
        ivs = _factor_intervals(sec, top=len(rows) * 2)
        if any(hi < 1.0 and lo > 0.0 for lo, hi in ivs):
            return "all_gather", "no redop/root columns and busbw/algbw < 1"
        return None, "no redop/root columns and busbw == algbw: all_gather of before 2020 or sendrecv"
    return None, "redop none and root -1: all_gather and alltoall print the same columns"


def _half_factor(r: _Row, half: list[str]) -> tuple[float, tuple[float, float]] | None:
    """(algbw, the interval busbw/algbw may span given print rounding) of one half of a row; None without both."""
    v = _side_values(r, half)
    try:
        a, b = float(v["algbw"]), float(v["busbw"])
    except (KeyError, ValueError):
        return None
    da, db = _decimals(v["algbw"]), _decimals(v["busbw"])
    a_lo, a_hi = a - da, a + da
    try:  # algbw = size/time: the time, printed with more digits, narrows it (when they agree)
        t, dt = float(v["time"]), _decimals(v["time"])
        if t - dt > 0:
            s_lo, s_hi = r.nbytes / (t + dt) / 1e3, r.nbytes / (t - dt) / 1e3
            if s_lo <= a_hi and s_hi >= a_lo:
                a_lo, a_hi = max(a_lo, s_lo), min(a_hi, s_hi)
    except (KeyError, ValueError):
        pass
    if a_lo <= 0:
        return None
    return a, (max(b - db, 0.0) / a_hi, (b + db) / a_lo)


def _other_world(earlier: _Row, row: _Row) -> bool:
    """The same size printed again with a busbw/algbw that cannot be the earlier one's (their print-rounding
    intervals do not meet): another world size, so another test, not a cycle (-N) of this one."""
    a, b = _half_factor(earlier, earlier.halves[0]), _half_factor(row, row.halves[0])
    return a is not None and b is not None and (a[1][1] < b[1][0] or b[1][1] < a[1][0])


def _factor_intervals(sec: _Section, top: int = 6) -> list[tuple[float, float]]:
    """Intervals busbw/algbw may span given print rounding, for the rows with the largest algbw."""
    cand = [c for r in sec.rows for half in r.halves if (c := _half_factor(r, half)) is not None]
    cand.sort(key=lambda c: -c[0])
    return [iv for _, iv in cand[:top]]


def _old_gather_semantics(sec: _Section, coll: str, p: int) -> bool:
    """True when the table is an all_gather/reduce_scatter of before nccl-tests PR #45 (algbw x (p-1)/p)."""
    if is_point_to_point(coll) or not spec(coll).in_place_variants or p < 2:  # the gather/scatter layouts
        return False
    hits = 0
    for r in sec.rows:
        v = _side_values(r, r.halves[0])
        try:
            t, a, b = float(v["time"]), float(v["algbw"]), float(v["busbw"])
        except (KeyError, ValueError):
            continue
        if a < 1.0 or t <= 0:
            continue
        s_t = r.nbytes / t / 1e3
        if abs(a - b) > _decimals(v["busbw"]) * 2 + 1e-9:
            return False
        if abs(a - s_t * (p - 1) / p) > max(0.01 * a, 0.02):
            return False
        hits += 1
    return hits > 0


def parse_text_all(text: str | Iterable[str], *, collective: str | None = None,
                   world_size: int | None = None) -> list[ParsedLog]:  # fmt: skip
    """Every test of a text log (one ParsedLog per table); AnalysisError when it holds none or lacks what it needs.
    ``text`` is the whole log or its lines one by one (an open file: read as it goes)."""
    sections, facts = _split_sections(text.splitlines() if isinstance(text, str) else _lines(text))
    with_rows: list[_Section] = []
    first: dict[tuple, _Section] = {}
    for sec in (s for s in sections if s.rows):
        if (kept := first.setdefault(sec.signature(), sec)) is not sec:
            kept.repeated_tests += 1
        else:
            with_rows.append(sec)
    if not with_rows:
        failures = [f for s in sections for f in s.failures]
        if failures:
            raise AnalysisError(f"the run failed before printing any result ({failures[0]})")
        raise AnalysisError("no nccl-tests result table found")
    if facts.get("library_version") and not facts["nccl_version"]:
        facts["nccl_version"] = facts["library_version"]
    return [_parse_section(s, facts, collective, world_size, len(with_rows) > 1) for s in with_rows]


def parse_text(text: str, *, collective: str | None = None, world_size: int | None = None) -> ParsedLog:
    """The one test of a text log (the first, with a warning, when it holds several)."""
    logs = parse_text_all(text, collective=collective, world_size=world_size)
    if len(logs) > 1:
        logs[0].warnings.append(f"the log holds {len(logs)} tests; this is the first")
    return logs[0]


def _parse_section(sec: _Section, facts: dict[str, Any], collective: str | None, world_size: int | None,
                   several: bool) -> ParsedLog:  # fmt: skip
    collective = collective_of(collective) if collective else collective
    names = [n for n, _ in sec.names]
    found = next((n for n, w in sec.names if w == "starting"), names[0] if names else None)
    if collective and found and collective != found:
        if several:
            found = None  # the caller's --collective cannot name every test of a multi-test file
        else:
            raise AnalysisError(f"--collective {collective} but the log measured {found}")
    p_hint = world_size or (max(sec.ranks) + 1 if sec.ranks else None)
    coll, coll_source = (collective, "given") if collective and not found else (found, "named in the log")
    if coll is None:
        coll, why = _infer_collective(sec, p_hint)
        if coll is None:
            raise AnalysisError(f"the log does not say which collective it measured ({why}); pass --collective")
        coll_source = f"inferred from the columns: {why}"
    if coll in UNMEASURED or coll not in IMPORTED:
        raise AnalysisError(f"this is an nccl-tests {coll} table; collbench does not measure {coll} "
                            f"(it measures {', '.join(IMPORTED)}), so it cannot import it")  # fmt: skip
    warnings: list[str] = []
    if sec.repeated_tests:
        warnings.append(f"the log repeats itself: this test is printed {sec.repeated_tests + 1} times, identically; "
                        "imported once")  # fmt: skip
    if sec.repeated_rows:
        warnings.append(f"the log repeats itself: {sec.repeated_rows} table row(s) identical to one printed "
                        f"before in the same test left out ({len(sec.rows)} distinct row(s) kept)")  # fmt: skip
    # world size: explicit > rank lines > nThread*nGpus (one process) > busbw/algbw > launcher -np x -g >
    # a command line with no launcher (one process: -t x -g)
    if world_size is not None:
        p, source = world_size, "given"
        _check_given_world(sec, coll, p)
    elif sec.ranks:
        p, source = max(sec.ranks) + 1, "rank lines"
    elif sec.nthreads_ngpus is not None and sec.np_ is None and sec.command is None:
        p, source = sec.nthreads_ngpus, "nThread x nGpus"
        by_factor, why = _world_from_factor(sec, coll)
        if by_factor is not None and by_factor != p:  # nThread x nGpus counts one process of an MPI job
            p, source = by_factor, f"{why}; the header's nThread x nGpus = {sec.nthreads_ngpus} is one process's share"
    else:
        p, source = _world_from_factor(sec, coll)
        if p is None and sec.np_ is not None:
            p, source = sec.np_ * sec.ngpus_arg, "the launcher's -np x -g"
        elif p is None and sec.single_process:
            p = sec.nthreads_arg * sec.ngpus_arg
            source = "one process (the command line names no launcher): its -t x -g"
        if p is None:
            raise AnalysisError(f"the log does not say its world size ({source}); pass --world-size")
    old = _old_gather_semantics(sec, coll, p)
    if old:
        warnings.append(f"{coll}: the log's algbw is of nccl-tests before 2020 (S/t x (p-1)/p, busbw = algbw); "
                        "recorded as algbw = S/t and busbw = algbw x F(p)")  # fmt: skip
    f = busbw_factor(coll, p)
    points = []
    for row in sec.rows:
        points.extend(_row_points(row, coll, p, f, sec.iters, old, warnings))
    points = merge_cycles(points, warnings)
    for pt in points:
        pt["warmup"] = sec.warmup
    if wrong := [pt for pt in points if pt["n_wrong"]]:
        lo, hi = min(pt["bytes"] for pt in wrong), max(pt["bytes"] for pt in wrong)
        at = format_size(lo) + ("" if lo == hi else f" to {format_size(hi)}")
        warnings.append(f"nccl-tests' own check failed: {len(wrong)} of {len(points)} points have #wrong > 0 "
                        f"(at {at} bytes); kept, marked correct = false")  # fmt: skip
    opt_env, opt_notes = run_options(sec.command)
    warnings += opt_notes
    if sec.variant:
        warnings.append(_VARIANT_NOTE)
    if sec.memory:
        warnings.append(f"nccl-tests -M: {sec.memory}")
    rank_hosts = {r: h for r, (h, _) in sec.ranks.items()}
    rank_gpus = {r: g for r, (_, g) in sec.ranks.items() if g}  # rank lines without a device name say none
    gpu = rank_gpus[min(rank_gpus)] if rank_gpus else None
    return ParsedLog(
        coll, p, points, sec.iters, sorted(set(rank_hosts.values())), gpu, facts["nccl_version"],
        facts["tests_version"], warnings, source, coll_source, rank_hosts, rank_gpus, facts["rccl_version"],
        sec.command, {**{k: v for k, v in {**sec.env, **facts["env"]}.items() if not _SECRET_ENV.search(k)}, **opt_env},
        sorted(facts["algo_proto"]) + [f"{r.nbytes} B: {r.algo}" for r in sec.rows if r.algo],
    )  # fmt: skip


_REGISTER = {1: "local", 2: "symmetric"}


def run_options(command: str | None) -> tuple[dict[str, str], list[str]]:
    """nccl-tests' -D (device-API implementation, 2.28+) and -R (buffer registration) of a command line: the
    environment entries to record and the warnings they call for (the table's layout is the same)."""
    env: dict[str, str] = {}
    notes: list[str] = []
    # getopt takes a short option's value glued to it too (-R1, as NVIDIA/nccl issue #2169's command line has it)
    for m in re.finditer(r"(?:^|\s)(?:(-D|-R)[ =]?|(--device_implementation|--local_register)[ =])(\d+)(?!\S)",
                         command or ""):  # fmt: skip
        flag, value = m.group(1) or m.group(2), int(m.group(3))
        if flag in ("-D", "--device_implementation") and value > 0:
            env["nccl_tests_device_implementation"] = str(value)
            notes.append(f"-D {value}: nccl-tests' own device-API kernel {value} (NCCL 2.28 device API), not NCCL's "
                         "host collective: compare only with runs of the same -D")  # fmt: skip
        elif flag in ("-R", "--local_register") and value > 0:
            env["nccl_tests_local_register"] = _REGISTER.get(value, str(value))
            notes.append(f"-R {value}: buffers registered ({_REGISTER.get(value, value)}): NCCL may take "
                         "zero-copy paths an unregistered run does not")  # fmt: skip
    return env, notes


def merge_cycles(points: list[dict[str, Any]], warnings: list[str]) -> list[dict[str, Any]]:
    """Points of an ``-N`` run (the sweep printed once per cycle: the sizes start again) merged per size and side:
    the cycles' times become the point's samples and its time their median (algbw/busbw from it). A size printed
    twice within one sweep (the 0-byte rows of small counts) is not a cycle; a file of one sweep is unchanged."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    last: dict[tuple, int] = {}
    seen: dict[tuple, int] = {}
    cycle: dict[tuple, int] = {}
    for pt in points:
        stream = (pt["dtype"], pt["op"], pt["root"], pt["in_place"])
        if pt["bytes"] < last.get(stream, -1):  # the sweep starts again: a new cycle
            cycle[stream] = cycle.get(stream, 0) + 1
            seen = {k: v for k, v in seen.items() if k[0] != stream}
        last[stream] = pt["bytes"]
        k = seen[(stream, pt["bytes"])] = seen.get((stream, pt["bytes"]), -1) + 1
        groups.setdefault((stream, pt["bytes"], k), []).append(pt)
    if not cycle:
        return points
    merged = []
    for group in groups.values():
        pt = dict(group[0])
        if len(group) > 1:
            times = [float(g["time_us"]) for g in group]
            pt["samples_us"] = times
            pt["time_us"] = pt["block_time_us"] = statistics.median(times)
            pt["time_us_min"], pt["time_us_max"] = min(times), max(times)
            if pt["time_us"] > 0:
                pt["algbw_gbps"] = pt["bytes"] / pt["time_us"] / 1e3
                pt["busbw_gbps"] = pt["algbw_gbps"] * busbw_factor(pt["collective"], pt["world_size"])
            wrong = [g["n_wrong"] for g in group if g["n_wrong"] is not None]
            pt["n_wrong"] = sum(wrong) if wrong else None
            pt["correct"] = all(g["correct"] for g in group)
        merged.append(pt)
    cycles = max(len(g) for g in groups.values())
    warnings.append(f"{cycles} cycles (-N) of the same sizes: each point's samples are its cycles' times, its time "
                    "their median")  # fmt: skip
    return merged


def _check_given_world(sec: _Section, coll: str, p: int) -> None:
    """AnalysisError when a given world size contradicts the rank lines: fewer ranks than a rank line names, or
    other than an unbroken list of rank lines 0..N-1 that busbw/algbw confirms (N ranks, for certain)."""
    if not sec.ranks:
        return
    n = max(sec.ranks) + 1
    if p < n:
        raise AnalysisError(f"--world-size {p} contradicts the log's rank lines, which name rank {n - 1}")
    if p != n and len(sec.ranks) == n:
        by_factor, _ = _world_from_factor(sec, coll)
        if by_factor == n:
            raise AnalysisError(f"--world-size {p} contradicts the log: its rank lines list ranks "
                                f"{ranges(list(sec.ranks))} and busbw/algbw fits p = {n} only")  # fmt: skip


def _world_from_factor(sec: _Section, coll: str) -> tuple[int | None, str]:
    """p from busbw/algbw: the one p whose F fits the rows with the largest algbw within print rounding."""
    if is_point_to_point(coll):
        return None, "busbw/algbw is 1 for sendrecv whatever p"
    if not spec(coll).busbw_reveals_p:  # F = 1 for broadcast and reduce
        return None, "busbw/algbw is 1 for broadcast and reduce whatever p"
    intervals = _factor_intervals(sec)
    if not intervals:
        return None, "no row has a bandwidth to infer it from"
    if spec(coll).in_place_variants and all(lo <= 1.0 <= hi for lo, hi in intervals):
        # busbw == algbw: pre-2020 semantics; algbw / (S/t) = (p-1)/p
        ratios = []
        for r in sec.rows:
            v = _side_values(r, r.halves[0])
            try:
                t, a = float(v["time"]), float(v["algbw"])
            except (KeyError, ValueError):
                continue
            if a >= 1.0 and t > 0:
                s_t = r.nbytes / t / 1e3
                da = _decimals(v["algbw"]) + s_t * _decimals(v["time"]) / t
                ratios.append(((a - da) / s_t, (a + da) / s_t))
        cands = [p for p in range(2, 4097) if all(lo <= (p - 1) / p <= hi for lo, hi in ratios)] if ratios else []
        if len(cands) == 1:
            return cands[0], "algbw / (size/time) of a pre-2020 table"
        return None, "busbw == algbw and algbw/(size/time) does not single out one p"
    cands = _p_candidates(coll, intervals)
    if len(cands) == 1:
        return cands[0], "busbw/algbw"
    if not cands:
        return None, "no world size fits busbw/algbw of every row"
    return None, f"busbw/algbw fits p = {', '.join(map(str, cands[:6]))}{' ...' if len(cands) > 6 else ''}"


def _wrong(text: str, column: str) -> tuple[float | None, bool]:
    """(n_wrong or None, correct) of a #wrong / error field."""
    flagged = text.endswith("*")
    text = text.rstrip("*")
    if text.upper() == "N/A":
        return None, True
    value = float(text)
    if column == "error" or "e" in text.lower() or "." in text:  # old layout: the largest error, not a count
        return (0.0 if value == 0 and not flagged else None), not flagged and value < 1e-2
    return value, value == 0 and not flagged


def _row_points(row: _Row, coll: str, p: int, f: float, iters: int | None, old: bool,
                warnings: list[str]) -> list[dict[str, Any]]:  # fmt: skip
    """Out-of-place and in-place points of one table row."""
    dtype = DTYPES[row.dtype_name]
    if is_point_to_point(coll):  # nccl-tests prints sum and -1 for sendrecv: it neither reduces nor has a root
        op, root = "none", -1
    else:
        op = row.redop.lower() if row.redop else spec(coll).recorded_op("sum")
        root = row.root if row.root is not None else spec(coll).recorded_root(0)
    if op not in OPS:
        raise AnalysisError(f"unknown nccl-tests redop {row.redop!r}")
    out = []
    for in_place, half in _halves(coll, row.halves, warnings):
        v = _side_values(row, half)
        wrong_col = next((c for c in row.side_cols if c in ("#wrong", "error")), "#wrong")
        try:
            time_us, algbw, busbw = float(v["time"]), float(v["algbw"]), float(v["busbw"])
            wrong, correct = _wrong(v.get(wrong_col, "N/A"), wrong_col)
            t_min = float(v["i_min"]) if "i_min" in v else None
            t_max = float(v["i_max"]) if "i_max" in v else None
        except (KeyError, ValueError):
            raise AnalysisError(f"unreadable row: {row.nbytes} {row.count} {row.dtype_name} ...") from None
        bitdiff = v.get("#bitdiff", "N/A").rstrip("*")
        if bitdiff.upper() != "N/A" and _NUM.match(bitdiff) and float(bitdiff) > 0:  # bitwise repeatability check
            warnings.append(f"{coll} {row.nbytes} B {'in place' if in_place else 'out of place'}: #bitdiff "
                            f"{bitdiff}: results differed bit for bit between repeats of the same call")  # fmt: skip
        if old and time_us > 0:
            algbw = row.nbytes / time_us / 1e3
            busbw = algbw * f
        elif algbw >= 0.1 and abs(busbw - algbw * f) > 0.02 * busbw + 0.02:
            warnings.append(f"{coll} {row.nbytes} B: busbw {busbw} != algbw x F(p={p}) = {algbw * f:.2f}")
        out.append(_point(coll, p, row.nbytes, row.count, dtype, op, root, in_place, time_us, algbw, busbw,
                          wrong, correct, iters, None, t_min, t_max))  # fmt: skip
    return out


_DROPPED_IN_PLACE = (
    "{coll}: nccl-tests' in-place column is dropped ({coll} is out of place only; nccl-tests does not check it)"
)


def _halves(coll: str, halves: list, warnings: list[str]) -> list[tuple[bool, Any]]:
    """(in_place, half) pairs to import: both columns, or the out-of-place one of an out-of-place-only
    collective (all_to_all: nccl-tests' in-place alltoall is unchecked, #wrong N/A, and times no exchange;
    sendrecv: "We don't support in-place sendrecv", SendRecvInitData, which leaves it unchecked)."""
    pairs = [(False, halves[0]), (True, halves[1])]
    if is_point_to_point(coll) or spec(coll).variants("both") == (False,):
        note = _DROPPED_IN_PLACE.format(coll=coll)
        if note not in warnings:
            warnings.append(note)
        return pairs[:1]
    return pairs


def parse_json(text: str, *, collective: str | None = None, world_size: int | None = None) -> ParsedLog:
    """Points of an nccl-tests ``-J`` JSON file (version 2)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if '"config"' in text and '"results"' not in text:
            raise AnalysisError("the -J JSON file stops after its config: the run failed or was cut before "
                                "any result") from None  # fmt: skip
        raise AnalysisError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or "results" not in doc:
        if isinstance(doc, dict) and "config" in doc:
            raise AnalysisError("the -J JSON file holds no results (the run stopped after its config)")
        raise AnalysisError("not an nccl-tests JSON file (no 'results')")
    if not doc["results"]:
        raise AnalysisError("the -J JSON file holds no results (the run stopped after its config)")
    found = found_variant = None
    for arg in doc.get("args") or []:
        if m := _PROGRAM.search(str(arg)):
            found = collective_of(m.group(1))
            found_variant = m.group(1) if m.group(1) in VARIANTS else None
            break
    collective = collective_of(collective) if collective else collective
    if collective and found and collective != found:
        raise AnalysisError(f"--collective {collective} but the file measured {found}")
    coll = found or collective
    if coll is None:
        raise AnalysisError("the JSON does not say which collective it measured; pass --collective")
    if coll in UNMEASURED or coll not in IMPORTED:
        raise AnalysisError(f"this is an nccl-tests {coll} file; collbench does not measure {coll} "
                            f"(it measures {', '.join(IMPORTED)}), so it cannot import it")  # fmt: skip
    config = doc.get("config") or {}
    devices = [d for d in config.get("devices") or [] if isinstance(d, dict)]

    def _int(value: Any, default: int = 1) -> int:
        try:
            return int(str(value).strip())
        except (TypeError, ValueError):
            return default

    # one devices entry per process (its first rank line): p = nthreads x ngpus x processes
    per_proc = _int(config.get("nthreads")) * _int(config.get("ngpus"))
    by_config = per_proc * max(1, len(devices))
    p = world_size or by_config
    source = "given" if world_size else "nthreads x ngpus x processes (config.devices: one entry per process)"
    iters = _int(config.get("iterations"), 0) or None
    warnings: list[str] = []
    points = []
    cpu_time = skipped = False
    for res in doc["results"]:
        dtype = DTYPES.get(str(res.get("type")).strip())
        if dtype is None:
            raise AnalysisError(f"unknown nccl-tests type {res.get('type')!r}")
        op = OPS.get(str(res.get("redop", "none")).strip().lower(), "none")
        root = _int(res.get("root", "-1"), -1)
        if is_point_to_point(coll):  # sendrecv neither reduces nor has a root
            op, root = "none", -1
        for in_place, key in _halves(coll, ["out_of_place", "in_place"], warnings):
            half = res.get(key)
            if not half:  # null when the test printed no out-of-place half
                continue
            per_iter = res.get(f"{key}_per_iter") or {}
            samples = [float(x) for x in per_iter.get("times_us") or []] or None
            skipped = skipped or _int(per_iter.get("skipped_iterations"), 0) > 0
            wrong = half.get("nwrong")
            wrong = None if wrong in (None, "N/A", "") else float(str(wrong).strip())
            cpu_time = cpu_time or "time" not in half
            try:
                time_us = float(half["time"] if "time" in half else half["cpu_time"])
                algbw, busbw = float(half["alg_bw"]), float(half["bus_bw"])
            except (KeyError, TypeError, ValueError):
                raise AnalysisError(f"unreadable result for size {res.get('size')}: {half!r}") from None
            n_iter = _int(res.get("actual_iterations"), 0) or iters
            pt = _point(coll, p, _int(res["size"], 0), _int(res["count"], 0), dtype, op, root, in_place, time_us,
                        algbw, busbw, wrong, wrong is None or wrong == 0, n_iter, samples)  # fmt: skip
            if not samples and "min_us" in per_iter:
                pt["time_us_min"], pt["time_us_max"] = float(per_iter["min_us"]), float(per_iter["max_us"])
            points.append(pt)
    if not points:
        raise AnalysisError("the -J JSON file holds no result with a time")
    if cpu_time:
        warnings.append("the times are CPU times (nccl-tests -C 1: cpu_time), not GPU-timed")
    if skipped:
        warnings.append("-K skipped leading iterations in nccl-tests' per-iteration summary; every sample is kept")
    rank_hosts: dict[int, str] = {}
    rank_gpus: dict[int, str] = {}
    for d in devices:  # the ranks of one process share its host; only its first rank's GPU is listed
        r0 = _int(d.get("rank"), 0)
        for r in range(r0, r0 + per_proc):
            rank_hosts[r] = str(d.get("hostname"))
        rank_gpus[r0] = str(d.get("device_info"))
    hosts = sorted(set(rank_hosts.values()))
    gpu = rank_gpus[min(rank_gpus)] if rank_gpus else None
    opt_env, opt_notes = run_options(" ".join(map(str, doc.get("args") or [])))
    env = dict(opt_env)
    for item in doc.get("env") or []:  # only NCCL_* settings, never secrets
        k, _, v = str(item).partition("=")
        if k.startswith("NCCL_") and not _SECRET_ENV.search(k):
            env[k] = v
    code = doc.get("nccl_version")
    nccl = nccl_version_from_code(code) if isinstance(code, int) and code > 0 else (None if code is None else str(code))
    if not world_size and len(devices) < p:
        warnings.append(f"config.devices lists {len(devices)} device(s) (the first rank of each process) but "
                        f"nthreads x ngpus x processes = {p}: world size {p}")  # fmt: skip
    warnings.extend(stragglers.notes(doc))
    warnings += opt_notes
    if found_variant:
        warnings.append(_VARIANT_NOTE)
    errors = [str(e) for e in doc.get("errors") or [] if str(e).strip()]
    if errors:
        warnings.append(f"the JSON file reports errors: {'; '.join(errors)}")
    complete = bool(devices) and len(rank_hosts) == p
    return ParsedLog(coll, p, points, iters, hosts, gpu, nccl, None, warnings, source,
                     "named in the log" if found else "given", rank_hosts if complete else {}, rank_gpus, None,
                     " ".join(map(str, doc.get("args") or [])) or None, env, [])  # fmt: skip


# --- nccl-tests output -> collbench run directories (``collbench import``) ----------------------------------
# Each test of an input becomes one new run directory (a file holding several tests one after another, as a
# script running every ``*_perf`` writes, gives one run directory per test) (launcher ``import``, backend nccl,
# device cuda, algorithm ``builtin``; ``sendrecv_perf``: collective ``send_recv``, algorithm ``ring_shift``; one
# point per size and variant, ``time_us`` = ``block_time_us`` = the log's time, no percentiles), with the file's
# name, format and sha256 in ``source``.


def _lines(stream: Iterable[str]) -> Iterator[str]:
    """The lines of a text stream as ``str.splitlines`` cuts the whole text (form feeds and the like included)."""
    for chunk in stream:
        yield from chunk.splitlines()


def _first_text(path: Path) -> str:
    """The first non-blank characters of ``path`` (its format), reading no more than it needs."""
    with path.open(encoding="utf-8") as f:
        while block := f.read(1 << 16):
            if block.strip():
                return block.lstrip()
    return ""


def parse_file(path: Path, collective: str | None = None, world_size: int | None = None) -> tuple[list[ParsedLog], str]:
    """(parsed tests, format) of one file; AnalysisError naming the file otherwise. A text log is read line by
    line (memory grows with the distinct rows kept, not the file); a JSON file whole."""
    try:
        fmt = "nccl-tests-json" if _first_text(path).startswith("{") else "nccl-tests-text"
        if fmt == "nccl-tests-json":
            return [parse_json(path.read_text(encoding="utf-8"), collective=collective, world_size=world_size)], fmt
        with path.open(encoding="utf-8") as f:
            return parse_text_all(f, collective=collective, world_size=world_size), fmt
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise AnalysisError(f"{path}: not a text file") from None
    except OSError as exc:
        raise AnalysisError(f"{path}: {exc.strerror}") from None
    except AnalysisError as exc:
        raise AnalysisError(f"{path}: {exc}") from None


def _meta_for(log: ParsedLog) -> dict:
    """What the log tells about the machine, for run.json."""
    hardware = {"gpu_model": log.gpu_model, "gpu_count": log.world_size}
    if log.rank_gpus:
        hardware["gpu_models"] = [log.rank_gpus[r] for r in sorted(log.rank_gpus)]
    if log.rank_hosts:
        hardware["rank_hosts"] = [log.rank_hosts[r] for r in sorted(log.rank_hosts)]
        hardware["hosts"] = sorted(set(log.rank_hosts.values()))
    topo = log.topology
    if topo is not None:
        hardware["nnodes"] = topo.nnodes
        hardware["gpus_per_node"] = topo.gpus_per_node
        hardware["topology_source"] = topo.source
        if topo.domain_gpus:
            hardware["nvlink_domain_gpus"] = topo.domain_gpus
    versions = {"nccl": log.nccl_version, "nccl_tests": log.tests_version}
    if log.rccl_version:
        versions["rccl"] = log.rccl_version
    environment = dict(log.nccl_env)
    if log.algo_proto:
        environment["nccl_algo_proto_seen"] = log.algo_proto
    return {"hardware": hardware, "versions": versions, "environment": environment}


def set_topology(log: ParsedLog, nnodes: int | None = None, gpus_per_node: int | None = None,
                 domain_gpus: int | None = None) -> list[str]:  # fmt: skip
    """Put the user's topology over what the rank lines proved (analysis.topology.given; AnalysisError when it
    does not fit the world size); returns the notes on what it overrode. Nothing given: nothing changes."""
    if nnodes is None and gpus_per_node is None and domain_gpus is None:
        return []
    derived = log.topology or from_rank_lines(log.rank_hosts, log.world_size)[0]
    topo, notes = given(derived, nnodes, gpus_per_node, domain_gpus)
    warning = from_rank_lines(log.rank_hosts, log.world_size)[1]
    if warning and topo.nnodes is not None and topo.gpus_per_node is not None:  # what it said is now given
        log.warnings = [w for w in log.warnings if w != warning]
    log.topology = topo
    log.warnings.extend(notes)
    return notes


def _sha256(path: Path) -> str:
    """The file's sha256, read in 1 MiB blocks (a production log may be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def import_log(path: Path, log: ParsedLog, fmt: str, out: Path, index: int = 0, total: int = 1,
               others: tuple[Path, ...] = ()) -> Path:  # fmt: skip
    """Write one run directory for one parsed test of ``path`` (and of ``others``, the further files of an input
    read as one: an NCCL Inspector job's per-process logs); returns it."""
    run_dir = new_run_dir(out, "import")
    sha = _sha256(path)
    notes = list(log.warnings)
    if fmt.startswith("nccl-tests") and any(pt["n_wrong"] is None and pt["correct"] for pt in log.points):
        notes.append("nccl-tests printed no #wrong count (N/A: validation off, or an old error column): "
                     "results were not checked here")  # fmt: skip
    notes.append(f"world size {log.world_size} from {log.world_size_source}")
    notes.append(f"collective {log.collective}: {log.collective_source}")
    if total > 1:
        notes.append(f"test {index + 1} of {total} in {path.name}; each test is its own run directory")
    extra = _meta_for(log)
    meta = base_meta(
        run_dir,
        command=["collbench", "import", path.name],
        host=",".join(log.hosts) or None,
        backend="nccl",
        device="cuda",
        world_size=log.world_size,
        nnodes=log.nnodes,
        ranks_per_node=log.gpus_per_node,
        versions=extra["versions"],
        hardware=extra["hardware"],
        environment=extra["environment"],
        config={"collectives": [log.collective], "algorithms": sorted({pt["algorithm"] for pt in log.points}),
                "iters": log.iters,
                "source_command": log.command},  # fmt: skip
        warnings=notes,
        source={"file": str(path), "format": fmt, "sha256": sha, "test_index": index, "tests_in_file": total,
                **({"more_files": [{"file": str(o), "sha256": _sha256(o)} for o in others]} if others else {})},
    )
    return write_run_dir(run_dir, meta, log.points)


def import_file(path: Path, out: Path, collective: str | None = None, world_size: int | None = None) -> list[Path]:
    """Write one run directory per test of ``path``; returns them."""
    logs, fmt = parse_file(path, collective, world_size)
    return [import_log(path, log, fmt, out, i, len(logs)) for i, log in enumerate(logs)]
