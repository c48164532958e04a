"""Option helpers shared by several ``collbench`` commands: sizes, integer lists, the hardware options."""

from __future__ import annotations

import argparse
import math

from analysis.hardware import catalog
from bench.errors import UsageError
from bench.sizes import parse_size


def parse_bytes(text: str) -> int:
    """'64K', '1M', '1.5G', '4096' -> bytes (powers of 1024, like nccl-tests), through ``bench.sizes``."""
    try:
        value = parse_size(text, fraction=True)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if value <= 0:
        raise UsageError(f"bad size {text!r}: must be positive")
    return value


def int_list(text: str, what: str) -> list[int]:
    """'8,64,512' -> [8, 64, 512]; UsageError naming ``what`` unless every entry is a positive integer."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"bad {what} {text!r} (comma list of integers)") from None
    if not values or min(values) < 1:
        raise UsageError(f"bad {what} {text!r}: need positive integers")
    return values


def add_hardware_arguments(parser: argparse.ArgumentParser) -> None:
    """The hardware options shared by ``verdict`` and ``report``."""
    g = parser.add_argument_group("hardware (override the catalog and run.json; docs/hardware.md)")
    g.add_argument("--hardware", metavar="FILE", help="hardware.toml/.json (default: one beside the run or results)")
    g.add_argument("--gpu", help="catalog GPU id or name, when run.json's name is unknown (e.g. gb200, h100-sxm)")
    g.add_argument("--system", help="named system: " + ", ".join(catalog().systems))
    g.add_argument("--link-gbps", type=float, help="scale-up link per GPU per direction (GB/s)")
    g.add_argument("--hbm-gbps", type=float, help="memory bandwidth per GPU (GB/s), for the reduction roof")
    g.add_argument("--nic-gbps", type=float, help="speed of one NIC port (Gb/s), e.g. 400")
    g.add_argument("--nics-per-node", type=int, help="NIC ports per node used by the collectives, e.g. 8")
    g.add_argument("--nnodes", type=int, help="nodes (hosts) of the run, when run.json does not say")
    g.add_argument("--gpus-per-node", type=int, help="GPUs (ranks) per node, when run.json does not say")
    g.add_argument("--nvlink-domain-gpus", type=int, help="GPUs in one NVLink domain (72 for a GB200 NVL72 rack)")


def add_force_argument(parser: argparse.ArgumentParser) -> None:
    """``--force``: the one switch that lets a writer replace its own earlier output (analysis.outputs)."""
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier output at --out (never a run's results.csv or run.json)")  # fmt: skip


#: bootstrap replicates at most: past this a fit or prediction takes minutes and its intervals no longer narrow
MAX_BOOT = 100_000


def check_numbers(args: argparse.Namespace, *, positive: tuple[str, ...] = (), fraction: tuple[str, ...] = (),
                  boot: bool = False) -> None:  # fmt: skip
    """UsageError (one line, exit 2, before any work) unless every option named in ``positive`` that was given
    is a finite number > 0, every one in ``fraction`` lies in [0, 1], and ``--boot`` is in [0, MAX_BOOT]."""
    for name in positive:
        value = getattr(args, name, None)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a finite number > 0, got {value:g}")
    for name in fraction:
        value = getattr(args, name, None)
        if value is not None and not 0 <= value <= 1:
            raise UsageError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value:g}")
    if boot and not 0 <= args.boot <= MAX_BOOT:
        raise UsageError(f"--boot must be between 0 and {MAX_BOOT}, got {args.boot}")
