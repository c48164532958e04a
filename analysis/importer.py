"""``collbench import FILE... --out DIR``: nccl-tests output (text log or ``-J`` JSON) -> collbench run directories.

Each test of an input becomes one new run directory (a file holding several tests one after another, as
a script running every ``*_perf`` writes, gives one run directory per test, and the command says so)
(launcher ``import``, backend nccl, device cuda, algorithm ``builtin``; ``sendrecv_perf``: collective
``send_recv``, algorithm ``ring_shift``; one point per size and variant, ``time_us`` = ``block_time_us`` = the
log's time, no percentiles), with the file's name, format and sha256 in ``source``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from analysis.errors import AnalysisError
from analysis.nccltests import IMPORTED, ParsedLog, parse_json, parse_text_all
from analysis.rundir import base_meta, new_run_dir, write_run_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="nccl-tests stdout logs or -J JSON files")
    parser.add_argument("--out", default="results", help="parent directory of the new run directories (results/)")
    parser.add_argument("--collective", choices=IMPORTED, help="when the log does not name its test")
    parser.add_argument("--world-size", type=int, help="when the log has no rank lines")


def parse_file(path: Path, collective: str | None = None, world_size: int | None = None) -> tuple[list[ParsedLog], str]:
    """(parsed tests, format) of one file; AnalysisError naming the file otherwise."""
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
        if fmt == "nccl-tests-json":
            return [parse_json(text, collective=collective, world_size=world_size)], fmt
        return parse_text_all(text, collective=collective, world_size=world_size), fmt
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
        hardware["nnodes"] = log.nnodes
        hardware["gpus_per_node"] = log.gpus_per_node
    versions = {"nccl": log.nccl_version, "nccl_tests": log.tests_version}
    if log.rccl_version:
        versions["rccl"] = log.rccl_version
    environment = dict(log.nccl_env)
    if log.algo_proto:
        environment["nccl_algo_proto_seen"] = log.algo_proto
    return {"hardware": hardware, "versions": versions, "environment": environment}


def import_log(path: Path, log: ParsedLog, fmt: str, out: Path, index: int = 0, total: int = 1) -> Path:
    """Write one run directory for one parsed test of ``path``; returns it."""
    run_dir = new_run_dir(out, "import")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    notes = list(log.warnings)
    if any(pt["n_wrong"] is None and pt["correct"] for pt in log.points):
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
        source={"file": str(path), "format": fmt, "sha256": sha, "test_index": index, "tests_in_file": total},
    )
    return write_run_dir(run_dir, meta, log.points)


def import_file(path: Path, out: Path, collective: str | None = None, world_size: int | None = None) -> list[Path]:
    """Write one run directory per test of ``path``; returns them."""
    logs, fmt = parse_file(path, collective, world_size)
    return [import_log(path, log, fmt, out, i, len(logs)) for i, log in enumerate(logs)]


def run(args: argparse.Namespace) -> int:
    if args.world_size is not None and args.world_size < 1:
        raise AnalysisError("--world-size must be >= 1")
    paths = [Path(f) for f in args.files]
    parsed = [parse_file(p, args.collective, args.world_size) for p in paths]  # every file checked before writing
    for path, (logs, fmt) in zip(paths, parsed, strict=True):
        if len(logs) > 1:
            print(f"{path}: {len(logs)} tests ({', '.join(lg.collective for lg in logs)}): one run directory each")
        for i, log in enumerate(logs):
            run_dir = import_log(path, log, fmt, Path(args.out), i, len(logs))
            print(f"{path}: {log.collective}, world size {log.world_size}, {len(log.points)} points -> {run_dir}")
    return 0
