"""Which reader a file to import needs, from its first line: nccl-tests text or ``-J`` JSON, rccl-tests
``-Z csv|json``, NCCL Inspector JSONL. ``collbench import`` parses through ``parse_any``; every reader
returns ``analysis.nccltests.ParsedLog`` tests, which ``analysis.nccltests.import_log`` writes."""

from __future__ import annotations

import gzip
from pathlib import Path

from analysis import inspector, nccltests, rccltests
from analysis.errors import AnalysisError

FORMATS = ("nccl-tests-text", "nccl-tests-json", "rccl-tests-csv", "rccl-tests-json", "nccl-inspector")


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
    if fmt := rccltests.sniff(line):
        return fmt
    return "nccl-tests-json" if line.startswith("{") else "nccl-tests-text"


def parse_any(path: Path, collective: str | None = None,
              world_size: int | None = None) -> tuple[list[nccltests.ParsedLog], str]:  # fmt: skip
    """(tests, format) of one file of any format collbench reads."""
    fmt = detect(path)
    if fmt in ("rccl-tests-csv", "rccl-tests-json", "nccl-inspector"):
        if world_size is not None:
            raise AnalysisError(f"{path}: --world-size is for nccl-tests logs; a {fmt} file records its own")
        logs = rccltests.parse_file(path, fmt) if fmt != "nccl-inspector" else inspector.parse_file(path)
        if collective is not None:
            coll = nccltests.collective_of(collective)
            logs = [lg for lg in logs if lg.collective == coll]
            if not logs:
                raise AnalysisError(f"{path}: --collective {collective} but the file holds no {coll} result")
        return logs, fmt
    return nccltests.parse_file(path, collective, world_size)
