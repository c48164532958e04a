"""Size labels shared by tables and plots: binary units, as nccl-tests sizes (1 KiB = 1024 B)."""

from __future__ import annotations


def size_label(n: float) -> str:
    """1024 -> '1 KiB', 1048576 -> '1 MiB', 1536 -> '1.5 KiB', 100 -> '100 B'."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n:.0f} B"
