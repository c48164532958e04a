"""How the benchmark harness drives one collective: its call on the two buffers, its input data, its check.

Every collective's module declares a :class:`Harness` (``HARNESS``) next to its algorithms; ``bench`` (the
buffers, the timing loop, the exact-data checks) calls it and never compares names. The buffers follow the
layout of S (``collectives.spec``): ``main`` holds S (the buffer; the gathered output of all_gather and gather;
the input of reduce_scatter and scatter; the send buffer of all_to_all), ``other`` the second buffer when
there is one (a block, or the all_to_all receive buffer).

Data and references come through a :class:`Data` object the harness supplies (``bench.collective_io.DataCase``:
seeded integers, exact in every dtype; docs/protocol.md "Exact data"), so this module needs no ``bench``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

T = torch.Tensor
Other = torch.Tensor | None
Fn = Callable[..., None]


class Data(Protocol):
    """One rank's exact data: world size, rank, root, and the seeded values of every rank."""

    p: int
    rank: int
    root: int

    def values(self, dtype: torch.dtype, of_rank: int, start: int, n: int) -> torch.Tensor:
        """Elements [start, start + n) of rank ``of_rank``'s input."""

    def reduced(self, dtype: torch.dtype, start: int, n: int) -> torch.Tensor:
        """Elements [start, start + n) of the reduction of every rank's input."""

    def fill(self, t: torch.Tensor, of_rank: int | None = None) -> None:
        """``t`` = rank ``of_rank``'s input from element 0 (this rank's by default)."""

    def sentinel(self, t: torch.Tensor) -> None:
        """``t`` = a value no correct result holds (what a rank must overwrite)."""

    def wrong(self, result: torch.Tensor, expected: torch.Tensor) -> int:
        """Elements of ``result`` that differ from ``expected``."""


class Harness:
    """Per-collective call, input data and check; ``main``/``other`` as in the module docstring."""

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        """A zero-argument call of ``fn`` with torch's signature (builtins checked once: builtin.bind)."""
        raise NotImplementedError

    def prepare(self, main: T, other: Other, data: Data) -> None:
        """Seeded data in the inputs, the sentinel in everything this rank must receive."""
        raise NotImplementedError

    def count_wrong(self, main: T, other: Other, data: Data) -> int:
        """Wrong elements on this rank after one call on ``prepare``d data."""
        raise NotImplementedError


def bind(fn: Fn, *args: object, **kwargs: object) -> Callable[[], None]:
    """``collectives.builtin.bind``: the harnesses' one way to bind a call."""
    from collectives.builtin import bind as _bind

    return _bind(fn, *args, **kwargs)
