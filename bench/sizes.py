"""Size strings (``1K``, ``64M``, ``1G``; K/M/G = powers of 1024 like nccl-tests) and size sweeps."""

from __future__ import annotations

import re

_SUFFIX = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20}
_SUFFIX.update({"G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40})
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")

#: the default largest message per backend: the end of ``collbench run``'s sweep (-e; a local gloo sweep stays
#: under 3 minutes) and the bandwidth size of ``collbench pairs`` (--large-bytes)
DEFAULT_MAX_BYTES = {"gloo": 1 << 20, "nccl": 64 << 20}


def parse_size(text: str, *, fraction: bool = False) -> int:
    """Bytes in ``text``: an integer (a decimal number with ``fraction=True``, rounded down to whole bytes)
    with an optional K/M/G/T binary suffix; ValueError otherwise. The one size parser of collbench: run
    options take whole numbers as nccl-tests does, predict and report also take ``1.5G``."""
    m = _SIZE_RE.match(str(text))
    if m is None or m.group(2).upper() not in _SUFFIX or ("." in m.group(1) and not fraction):
        number = "a number" if fraction else "an integer"
        raise ValueError(f"bad size {text!r}: use {number} with an optional K, M, G or T suffix (e.g. 1K, 64M, 1G)")
    return int(float(m.group(1)) * _SUFFIX[m.group(2).upper()])


def format_size(nbytes: int) -> str:
    """Shortest exact binary-suffix spelling of ``nbytes`` (``65536`` -> ``64K``)."""
    for suffix, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale}{suffix}"
    return str(nbytes)


def size_sweep(min_bytes: int, max_bytes: int, step_factor: float) -> list[int]:
    """nccl-tests' geometric sweep: min, min*f, min*f^2, ... up to and including max (when reached)."""
    if min_bytes < 0 or max_bytes < min_bytes:
        raise ValueError(f"bad size range {min_bytes}..{max_bytes}")
    if step_factor <= 1:
        raise ValueError(f"step factor must be > 1, got {step_factor}")
    if min_bytes == 0:
        sizes, size = [0], 1
    else:
        sizes, size = [], min_bytes
    while size <= max_bytes:
        if not sizes or size != sizes[-1]:
            sizes.append(size)
        nxt = int(size * step_factor)
        size = nxt if nxt > size else size + 1
    return sizes
