"""``collbench import FILE... --out DIR``: nccl-tests output (text log or ``-J`` JSON) -> collbench run directories.

Each input becomes one new run directory (launcher ``import``, backend nccl, device cuda, algorithm
``builtin``, one point per size and variant, ``time_us`` = ``block_time_us`` = the log's time, no
percentiles), with the file's name, format and sha256 in ``source``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from analysis.errors import AnalysisError
from analysis.nccltests import ParsedLog, parse_json, parse_text
from analysis.rundir import base_meta, new_run_dir, write_run_dir
from collectives import costs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="nccl-tests stdout logs or -J JSON files")
    parser.add_argument("--out", default="results", help="parent directory of the new run directories (results/)")
    parser.add_argument("--collective", choices=costs.COLLECTIVES, help="when the log does not name its test")
    parser.add_argument("--world-size", type=int, help="when the log has no rank lines")


def parse_file(path: Path, collective: str | None = None, world_size: int | None = None) -> tuple[ParsedLog, str]:
    """(parsed log, format) of one file; AnalysisError naming the file otherwise."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such file") from None
    except OSError as exc:
        raise AnalysisError(f"{path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AnalysisError(f"{path}: not a text file") from None
    fmt = "nccl-tests-json" if text.lstrip().startswith("{") else "nccl-tests-text"
    try:
        parse = parse_json if fmt == "nccl-tests-json" else parse_text
        return parse(text, collective=collective, world_size=world_size), fmt
    except AnalysisError as exc:
        raise AnalysisError(f"{path}: {exc}") from None


def import_file(path: Path, out: Path, collective: str | None = None, world_size: int | None = None) -> Path:
    """Write one run directory for ``path``; returns it."""
    log, fmt = parse_file(path, collective, world_size)
    run_dir = new_run_dir(out, "import")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    notes = list(log.warnings)
    if any(pt["n_wrong"] is None for pt in log.points):
        notes.append("nccl-tests ran without validation (#wrong N/A): results were not checked")
    notes.append(f"world size {log.world_size} from {log.world_size_source}")
    meta = base_meta(
        run_dir,
        command=["collbench", "import", path.name],
        host=",".join(log.hosts) or None,
        backend="nccl",
        device="cuda",
        world_size=log.world_size,
        nnodes=len(log.hosts) or None,
        versions={"nccl": log.nccl_version, "nccl_tests": log.tests_version},
        hardware={"gpu_model": log.gpu_model, "gpu_count": log.world_size},
        config={"collectives": [log.collective], "algorithms": ["builtin"], "iters": log.iters},
        warnings=notes,
        source={"file": str(path), "format": fmt, "sha256": sha},
    )
    return write_run_dir(run_dir, meta, log.points)


def run(args: argparse.Namespace) -> int:
    if args.world_size is not None and args.world_size < 1:
        raise AnalysisError("--world-size must be >= 1")
    paths = [Path(f) for f in args.files]
    parsed = [parse_file(p, args.collective, args.world_size) for p in paths]  # every file checked before writing
    for path, (log, _) in zip(paths, parsed, strict=True):
        run_dir = import_file(path, Path(args.out), args.collective, args.world_size)
        print(f"{path}: {log.collective}, world size {log.world_size}, {len(log.points)} points -> {run_dir}")
    return 0
