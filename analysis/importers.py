"""Which reader a file to import needs, from its first line: nccl-tests text or ``-J`` JSON, rccl-tests
``-Z csv|json``, NCCL Inspector JSONL. ``collbench import`` parses through ``parse_inputs``; every reader
returns ``analysis.nccltests.ParsedLog`` tests, which ``analysis.nccltests.import_log`` writes.

An NCCL Inspector job writes one log per process: every Inspector file given (or found under a directory given,
as the plugin's exporter looks for them: ``*.log``, ``*.jsonl`` and their ``.gz``) is read as one input, so a
call's ranks in different files count once. Other files are one input each."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from analysis import export_csv, inspector, nccltests, rccltests
from analysis.errors import AnalysisError

FORMATS = ("nccl-tests-text", "nccl-tests-json", "rccl-tests-csv", "rccl-tests-json", "nccl-inspector",
           "collbench-csv")


def first_line(path: Path) -> str:
    """The first non-blank line of ``path`` (at most 64 KiB of it; a gzip file's, uncompressed: the Inspector
    exporter reads ``.log.gz``); AnalysisError naming the file otherwise."""
    try:
        with open(path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:
            for raw in f:
                line = raw[:65536].decode("utf-8", errors="replace").strip()
                if line:
                    return line
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AnalysisError(f"{path}: a directory, not a file") from None
    except (gzip.BadGzipFile, EOFError):
        raise AnalysisError(f"{path}: a damaged gzip file") from None
    except OSError as exc:
        raise AnalysisError(f"{path}: {exc.strerror}") from None
    return ""


def detect(path: Path) -> str:
    """The format of ``path`` (one of FORMATS) from its first line; nccl-tests text when no other fits."""
    line = first_line(path)
    if inspector.sniff(line):
        return "nccl-inspector"
    if export_csv.sniff(line):
        return "collbench-csv"
    if fmt := rccltests.sniff(line):
        return fmt
    return "nccl-tests-json" if line.startswith("{") else "nccl-tests-text"


def parse_any(path: Path, collective: str | None = None,
              world_size: int | None = None) -> tuple[list[nccltests.ParsedLog], str]:  # fmt: skip
    """(tests, format) of one file of any format collbench reads."""
    fmt = detect(path)
    if fmt == "collbench-csv":
        raise AnalysisError(f"{path}: a points.csv of collbench export --csv: import it with collbench import")
    if fmt in ("rccl-tests-csv", "rccl-tests-json", "nccl-inspector"):
        if world_size is not None:
            raise AnalysisError(f"{path}: --world-size is for nccl-tests logs; a {fmt} file records its own")
        logs = rccltests.parse_file(path, fmt) if fmt != "nccl-inspector" else inspector.parse_file(path)
        return _only(logs, collective, path), fmt
    return nccltests.parse_file(path, collective, world_size)


#: what the Inspector exporter reads under a directory
INSPECTOR_SUFFIXES = (".log", ".jsonl", ".log.gz", ".jsonl.gz")


@dataclass
class Input:
    """One input of ``collbench import``: its files (several for an Inspector job), format and tests."""

    paths: tuple[Path, ...]
    fmt: str
    logs: list[nccltests.ParsedLog]
    points_by_run: dict | None = None  # collbench-csv: run_id -> rows (analysis.export_csv)


def _inspector_files(directory: Path) -> list[Path]:
    found = sorted(p for p in directory.rglob("*") if p.is_file() and p.name.endswith(INSPECTOR_SUFFIXES))
    files = [p for p in found if detect(p) == "nccl-inspector"]
    if not files:
        raise AnalysisError(f"{directory}: a directory holding no NCCL Inspector log (*.log, *.jsonl, .gz); name "
                            "the files of other formats one by one")  # fmt: skip
    return files


def parse_inputs(paths: list[Path], collective: str | None = None, world_size: int | None = None) -> list[Input]:
    """Every input parsed (nothing written): Inspector files, and directories of them, together as one input
    (first); every other file on its own, in the order given. AnalysisError on the first bad file."""
    inspector_files: list[Path] = []
    others: list[Path] = []
    for path in paths:
        if path.is_dir():
            inspector_files += _inspector_files(path)
        elif detect(path) == "nccl-inspector":
            inspector_files.append(path)
        else:
            others.append(path)
    inputs = []
    if inspector_files:
        files = list(dict.fromkeys(inspector_files))
        if world_size is not None:
            raise AnalysisError(f"{files[0]}: --world-size is for nccl-tests logs; an NCCL Inspector log records "
                                "its own")  # fmt: skip
        logs = _only(inspector.parse_files(files), collective, files[0])
        inputs.append(Input(tuple(files), "nccl-inspector", logs))
    for path in others:
        if detect(path) == "collbench-csv":
            if collective is not None or world_size is not None:
                raise AnalysisError(f"{path}: --collective and --world-size are for nccl-tests logs; an exported "
                                    "points.csv carries both")  # fmt: skip
            inputs.append(Input((path,), "collbench-csv", [], export_csv.read_points(path)))
            continue
        logs, fmt = parse_any(path, collective, world_size)
        inputs.append(Input((path,), fmt, logs))
    return inputs


def _only(logs: list[nccltests.ParsedLog], collective: str | None, path: Path) -> list[nccltests.ParsedLog]:
    """The tests of ``collective`` (all when None); AnalysisError when it names none of them."""
    if collective is None:
        return logs
    coll = nccltests.collective_of(collective)
    kept = [lg for lg in logs if lg.collective == coll]
    if not kept:
        raise AnalysisError(f"{path}: --collective {collective} but the file holds no {coll} result")
    return kept
