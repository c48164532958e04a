"""nccl-tests-style table on stdout (rank 0 / the writer only); one row per (collective, algorithm, size).

The time column is the robust estimate (bench.stats); ``noisy`` marks a point whose 95 % CI missed the target,
``slow-mode N%`` the share of samples in a slow mode (interference) that the estimate left out."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from bench.plan import variants
from bench.records import Measurement

_HALF = "{:>10} {:>8} {:>8} {:>7}"
_ALG_W = 18  # longest registered name: recursive_doubling


class TablePrinter:
    """Collects the variants of a row and prints it once they are all measured, nccl-tests layout."""

    def __init__(self, in_place: str, write: Callable[[str], None] | None = None, out: TextIO | None = None) -> None:
        self._in_place = in_place
        self._out = out or sys.stdout
        self._write = write or (lambda line: print(line, file=self._out, flush=True))
        self._pending: dict[tuple, dict[bool, Measurement]] = {}
        self._header_for: str | None = None
        self._p1_noted = False

    def _header(self, m: Measurement) -> None:
        s = m.spec
        self._write(f"#\n# {s.collective}  backend {s.backend}  device {s.device}  world size {s.world_size}")
        oop, ip = "out-of-place", "in-place"
        self._write(f"# {'':>10} {'':>12} {'':>9} {'':>6} {'':>5} {'':<{_ALG_W}}  {oop:^36}  {ip:^36}")
        names = ("time", "algbw", "busbw", "#wrong")
        cols = _HALF.format(*names)
        self._write(
            f"# {'size':>10} {'count':>12} {'type':>9} {'redop':>6} {'root':>5} {'algorithm':<{_ALG_W}}  {cols}  {cols}"
        )
        units = _HALF.format("(us)", "(GB/s)", "(GB/s)", "")
        self._write(f"# {'(B)':>10} {'(elements)':>12} {'':>9} {'':>6} {'':>5} {'':<{_ALG_W}}  {units}  {units}")
        if s.world_size == 1 and not self._p1_noted:
            self._p1_noted = True
            self._write(
                "# note: world size 1: busbw is 0 for all_reduce/all_gather/reduce_scatter (factor (p-1)/p); read algbw"
            )

    @staticmethod
    def _half(m: Measurement | None) -> str:
        if m is None:
            return _HALF.format("n/a", "n/a", "n/a", "n/a")
        wrong = str(m.n_wrong) if m.correct else f"{m.n_wrong}!"
        return _HALF.format(f"{m.time_us:.2f}", f"{m.algbw_gbps:.3f}", f"{m.busbw_gbps:.3f}", wrong)

    def add(self, m: Measurement) -> None:
        s = m.spec
        key = (s.collective, s.algorithm, s.bytes)
        got = self._pending.setdefault(key, {})
        got[s.in_place] = m
        if set(got) != set(variants(s.collective, self._in_place)):
            return
        del self._pending[key]
        if self._header_for != s.collective:
            self._header_for = s.collective
            self._header(m)
        self._write(
            f"  {s.bytes:>10} {s.count:>12} {s.dtype:>9} {s.op:>6} {s.root:>5} {s.algorithm:<{_ALG_W}}  "
            f"{self._half(got.get(False))}  {self._half(got.get(True))}{self._flags(list(got.values()))}"
        )

    @staticmethod
    def _flags(ms: list[Measurement]) -> str:
        """`` noisy`` when a variant's CI missed the target; `` slow-mode 38%`` when samples had a slow mode."""
        out = " noisy" if any(m.stats.noisy for m in ms) else ""
        slow = max(m.stats.estimate.slow_fraction for m in ms)
        return out + (f" slow-mode {100 * slow:.0f}%" if slow > 0 else "")
