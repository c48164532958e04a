"""The result files' format, in both directions: columns, types, spellings, the run.json skeleton, run
directory names and the "writer is gone" rule (docs/results-schema.md). torch-free.

``bench.run_writer`` writes with it, ``analysis`` (read_runs, nccltests, synthetic runs) reads and writes with
it: one definition, as pyperf's ``_bench.py`` owns its JSON both ways.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
import socket
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
#: versions this reader understands; v1 files load with the v2 columns derived (docs/results-schema.md)
READABLE_VERSIONS = (1, 2)

V1_COLUMNS: tuple[str, ...] = (
    "collective", "algorithm", "backend", "device", "world_size", "dtype", "op", "bytes", "count", "root",
    "in_place", "iters", "warmup", "time_us", "time_us_p10", "time_us_p25", "time_us_p75", "time_us_p90",
    "time_us_min", "time_us_max", "block_time_us", "algbw_gbps", "busbw_gbps", "correct", "n_wrong", "noisy",
    "segment_bytes", "cuda_graph",
)  # fmt: skip
#: v2: time_us is the robust estimate (fast-mode median, bench.stats) and these say how sure it is
V2_ADDED: tuple[str, ...] = ("time_us_median", "time_us_ci_lo", "time_us_ci_hi", "ci_met", "slow_fraction")
CSV_COLUMNS: tuple[str, ...] = V1_COLUMNS + V2_ADDED
#: Names a column had in earlier files of this schema version: read as the current name.
COLUMN_ALIASES = {"graph": "cuda_graph"}

INT_COLUMNS = ("world_size", "bytes", "count", "root", "iters", "warmup", "n_wrong", "segment_bytes")
FLOAT_COLUMNS = (
    "time_us", "time_us_p10", "time_us_p25", "time_us_p75", "time_us_p90", "time_us_min", "time_us_max",
    "block_time_us", "algbw_gbps", "busbw_gbps", "time_us_median", "time_us_ci_lo", "time_us_ci_hi",
    "slow_fraction",
)  # fmt: skip
BOOL_COLUMNS = ("in_place", "correct", "noisy", "cuda_graph", "ci_met")
STR_COLUMNS = ("collective", "algorithm", "backend", "device", "dtype", "op")
#: columns a reader cannot do without (the others may be empty)
REQUIRED_VALUES = ("time_us", "bytes")

#: columns that identify one point of a sweep (used to match points across runs)
POINT_KEY = ("collective", "algorithm", "backend", "device", "world_size", "dtype", "op", "bytes", "root", "in_place")
#: columns that identify one curve (time vs size)
CURVE_KEY = ("collective", "algorithm", "backend", "device", "world_size", "dtype", "op", "in_place")


class SchemaError(ValueError):
    """A file that is not a collbench result of this schema; the message is one line naming the problem."""


# --- writing -----------------------------------------------------------------------------------------------


def csv_field(value: Any) -> str:
    """results.csv spelling: true/false for booleans, empty for None/NaN, floats to 7 significant digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.7g}"  # 7 significant digits in every unit (times in us, bandwidths in GB/s)
    return str(value)


def csv_line(values: Iterable[str]) -> bytes:
    """One complete results.csv record (csv quoting, CRLF like csv.writer), as bytes for a single write."""
    buf = io.StringIO()
    csv.writer(buf).writerow(list(values))
    return buf.getvalue().encode()


def csv_record(point: dict[str, Any]) -> bytes:
    """The results.csv record of one point (a dict with the CSV columns; missing ones are empty)."""
    return csv_line(csv_field(point.get(c)) for c in CSV_COLUMNS)


def json_point(point: dict[str, Any], samples_us: Iterable[float] | None) -> dict[str, Any]:
    """A run.json point: every CSV column (NaN as null) and the per-iteration samples."""
    out = {c: (None if isinstance(v, float) and math.isnan(v) else v) for c in CSV_COLUMNS for v in [point.get(c)]}
    out["samples_us"] = [round(float(x), 4) for x in (samples_us or ())]
    return out


def collbench_version() -> str:
    """The installed collbench version (the checkout's pyproject version when not installed)."""
    try:
        from importlib.metadata import version

        return version("collbench")
    except Exception:  # noqa: BLE001 - not installed: running from a checkout
        return "0.1.0"


def run_json_skeleton(run_id: str, **fields: Any) -> dict[str, Any]:
    """run.json with every schema key, before any point; ``fields`` override the defaults."""
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "tool": "collbench", "collbench_version": collbench_version(),
        "run_id": run_id, "status": "running", "status_reason": None, "start_time": None, "end_time": None,
        "command": [], "host": None, "launcher": None, "backend": None, "device": None, "world_size": None,
        "nnodes": None, "ranks_per_node": None, "versions": {}, "hardware": {}, "environment": {}, "git_commit": None,
        "config": {}, "warnings": [], "source": None, "points": [],
    }  # fmt: skip
    meta.update(fields)
    return meta


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


#: the files that make a directory a run directory: only the command that created it writes inside it
RUN_FILES = ("results.csv", "run.json")


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run directory: a directory holding results.csv or run.json."""
    path = Path(path)
    return any((path / name).is_file() for name in RUN_FILES)


def _resolved(path: Path) -> Path:
    """``path`` with ``..`` and symlinks resolved (as an absolute path when a symlink loop forbids that)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _written(path: str | os.PathLike) -> list[Path]:
    """``path`` as written (``x/..`` folded) and the folders above it that the text names: ``../x`` names no
    folder above ``..``, so ``.`` (which lies below it) is not one of them."""
    norm = Path(os.path.normpath(path))
    chain = [norm, *norm.parents]
    return [c for c in chain if c.name not in ("", "..")] if ".." in norm.parts else chain


def enclosing_run_dir(path: str | os.PathLike) -> Path | None:
    """The run directory ``path`` is or lies inside (the nearest; ``path`` need not exist), else None.

    Checked as written first (so a message names what the user typed), then resolved (``..``, symlinks)."""
    written = _written(path)
    real = _resolved(Path(path))
    for candidate in (*written, real, *real.parents):
        if is_run_dir(candidate):
            return candidate
    return None


def folder_of(run: Path) -> Path:
    """The folder holding ``run`` (``.`` and ``..`` resolved first, so it is never the run itself)."""
    return (run if run.name not in ("", "..") else run.resolve()).parent


def inside_run_error(path: str | os.PathLike, instead: str | os.PathLike | None = None,
                     flag: str = "--out") -> str | None:  # fmt: skip
    """One error line when ``path`` is or lies inside a run directory (None when it does not): a command writes
    only inside a run directory it created. ``instead``: the place to name (default: the run's parent)."""
    run = enclosing_run_dir(path)
    if run is None:
        return None
    same = run in (_written(path)[0], _resolved(Path(path)))
    where = "is the run directory" if same else "is inside the run directory"
    other = instead if instead is not None else folder_of(run)
    shown = run if run.name not in ("", "..") else _resolved(run)
    return (f"{flag} {path} {where} {shown}: collbench never writes inside a run directory other than by the command "
            f"that made it; choose another {flag}, e.g. {other}")  # fmt: skip


def create_run_dir(parent: str | os.PathLike, tag: str | None = None) -> Path:
    """A new, never-reused ``<UTC time>-<tag>-<random>`` directory under ``parent`` (tag: this host's name).

    ``os.mkdir`` is exclusive and the random suffix avoids races, so a run never overwrites another.
    OSError when ``parent`` cannot be created or written, or is (inside) a run directory: a run is never made
    inside another (the commands refuse such an ``--out`` first, with ``inside_run_error``'s line).
    """
    parent = Path(parent)
    if (refused := inside_run_error(parent)) is not None:
        raise OSError(refused)
    parent.mkdir(parents=True, exist_ok=True)
    if tag is None:
        tag = socket.gethostname().split(".")[0] or "host"
    tag = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in tag)[:32]
    for _ in range(100):
        path = parent / f"{utc_stamp()}-{tag}-{secrets.token_hex(3)}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise OSError(f"could not create a unique run directory under {parent}")


# --- the writer of a running run -----------------------------------------------------------------------------


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (/proc/PID/stat field 22); None if gone, a zombie, or
    not Linux. With the pid it names one process for good: a recycled pid has a different start time.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def writer_identity() -> dict[str, Any]:
    """Who writes this run: host, pid and the pid's start time (run.json ``writer``)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_start_ticks": process_start_ticks(pid)}


def _writer_gone(writer: Any) -> bool | None:
    """True/False when the writer ran on this host (is it gone?), None when this host cannot tell."""
    if not isinstance(writer, dict) or writer.get("host") != socket.gethostname():
        return None
    pid, start = writer.get("pid"), writer.get("pid_start_ticks")
    if not isinstance(pid, int) or pid <= 0:
        return None
    now = process_start_ticks(pid)
    if now is None:
        return True if Path("/proc/self").exists() else None  # no /proc (not Linux): cannot tell
    return start is not None and now != start


def effective_status(meta: dict[str, Any]) -> str:
    """The status to believe: ``running`` becomes ``incomplete`` when its writer process is gone.

    A writer killed with SIGKILL (or a lost machine) cannot finish run.json, which then says ``running``
    for ever. On the writer's own host the recorded pid and start time tell whether it still runs; on
    another host (or without ``writer``) ``running`` is returned unchanged.
    """
    status = str(meta.get("status"))
    if status == "running" and _writer_gone(meta.get("writer")):
        return "incomplete"
    return status


def effective_status_reason(meta: dict[str, Any]) -> str | None:
    """``status_reason``, or why a ``running`` run is really incomplete (its writer is gone)."""
    if meta.get("status") == "running" and effective_status(meta) == "incomplete":
        w = meta["writer"]
        return f"writer process {w['pid']} on {w['host']} is gone without finishing the run (killed?)"
    return meta.get("status_reason")


# --- reading -------------------------------------------------------------------------------------------------


def _parse_bool(text: str, where: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0", ""):
        return False
    raise SchemaError(f"{where}: {text!r} is not a boolean")


def _parse_number(text: str, kind: type, where: str) -> float | int | None:
    text = text.strip()
    if text == "" or text.upper() == "N/A":
        return None
    try:
        value = float(text)
    except ValueError:
        raise SchemaError(f"{where}: {text!r} is not a number") from None
    if kind is int:
        if not math.isfinite(value) or value != int(value):
            raise SchemaError(f"{where}: {text!r} is not an integer")
        return int(value)
    return value


def parse_field(name: str, text: str, where: str) -> Any:
    """One results.csv field as its Python value (bool, int or None, float or None, str)."""
    if name in BOOL_COLUMNS:
        return _parse_bool(text, f"{where} {name}")
    if name in INT_COLUMNS:
        return _parse_number(text, int, f"{where} {name}")
    if name in FLOAT_COLUMNS:
        return _parse_number(text, float, f"{where} {name}")
    return text


def column_order(header: Iterable[str], where: str) -> list[int | None]:
    """Position of each CSV column in ``header`` (any order, extra columns ignored; None for a v2 column of a
    v1 file); SchemaError naming the missing columns (a re-saved file keeps its names, not their order)."""
    names = [COLUMN_ALIASES.get(h.strip(), h.strip()) for h in header]
    missing = [c for c in V1_COLUMNS if c not in names]
    if missing:
        what = f"not a collbench v{SCHEMA_VERSION} (or v1) results.csv"
        raise SchemaError(f"{where}: {what} (missing columns: {', '.join(missing)})")
    return [names.index(c) if c in names else None for c in CSV_COLUMNS]


def csv_version(header: Iterable[str]) -> int:
    """2 when the header has every v2 column, else 1."""
    names = {COLUMN_ALIASES.get(h.strip(), h.strip()) for h in header}
    return 2 if all(c in names for c in V2_ADDED) else 1


def upgrade_v1_row(row: dict[str, Any]) -> dict[str, Any]:
    """A v1 row in v2 terms: time_us was the plain median, so time_us_median = time_us; no CI, no mode
    split (None), ci_met False."""
    row.setdefault("time_us_median", row.get("time_us"))
    for c in ("time_us_ci_lo", "time_us_ci_hi", "slow_fraction"):
        row.setdefault(c, None)
    row.setdefault("ci_met", False)
    return row


def read_results_csv(text: str, where: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Typed rows of a results.csv text, and notes (a dropped truncated last line of an interrupted run)."""
    notes: list[str] = []
    lines = text.splitlines(keepends=True)
    if not lines:
        raise SchemaError(f"{where}: empty results.csv (no header)")
    if not lines[-1].endswith("\n") and len(lines) > 1:
        notes.append(f"{where}: dropped a truncated last line (interrupted run)")
        lines = lines[:-1]
    reader = csv.reader(io.StringIO("".join(lines)))
    header = next(reader)
    order = column_order(header, where)
    if csv_version(header) == 1:
        notes.append(f"{where}: schema v1 file (time_us is the plain median; no CI, no slow-mode split)")
    rows: list[dict[str, Any]] = []
    for lineno, fields in enumerate(reader, start=2):
        if not fields:
            continue
        at = f"{where}:{lineno}"
        if len(fields) != len(header):
            raise SchemaError(f"{at}: corrupt row ({len(fields)} fields, expected {len(header)})")
        row = {name: parse_field(name, fields[i], at) for name, i in zip(CSV_COLUMNS, order, strict=True)
               if i is not None}  # fmt: skip
        row = upgrade_v1_row(row)
        if any(row[c] is None for c in REQUIRED_VALUES):
            raise SchemaError(f"{at}: corrupt row (no {' or '.join(REQUIRED_VALUES)})")
        rows.append(row)
    return rows, notes


def check_run_json(meta: Any, where: str) -> dict[str, Any]:
    """``meta`` if it is a run.json of this schema version; SchemaError otherwise."""
    if not isinstance(meta, dict):
        raise SchemaError(f"{where}: corrupt run.json (not a JSON object)")
    version = meta.get("schema_version")
    if version not in READABLE_VERSIONS:
        supported = f"this collbench reads {', '.join(str(v) for v in READABLE_VERSIONS)}"
        raise SchemaError(f"{where}: schema_version {version!r} is not supported ({supported})")
    if not isinstance(meta.get("points", []), list):
        raise SchemaError(f"{where}: corrupt run.json (points is not a list)")
    return meta


# --- repeated runs (collbench run --repeat) ------------------------------------------------------------------

#: the manifest of a directory of repeated runs: one run directory per repeat beside it (docs/regression.md)
REPEAT_MANIFEST = "repeat.json"
REPEAT_KIND = "collbench-repeat"
#: the most repeats one ``collbench run --repeat`` makes
MAX_REPEAT = 100


def repeat_manifest(command: list[str], repeat: int, runs: list[dict[str, Any]], status: str) -> dict[str, Any]:
    """The manifest of a ``--repeat`` parent: the command, K, each run (its directory name, status, first case)."""
    return {"kind": REPEAT_KIND, "schema_version": SCHEMA_VERSION, "command": list(command), "repeat": repeat,
            "status": status, "runs": runs}  # fmt: skip


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """``data`` as JSON at ``path``, replaced in one rename (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)
