"""The buffers of a case and the exact data the collectives' harnesses check against.

What a collective's arguments and results look like is declared next to it: the torch-free
:mod:`collectives.spec` (layout of S, root, variants) and its module's ``HARNESS`` (``collectives.harness``:
its call, input data and check), which :func:`io_for` returns. The harness (``bench.timing``), the pytest
plugin and the scripts ask those instead of comparing names. Data and references come from
:mod:`bench.exact_data` (seeded integers, exact in every dtype; docs/protocol.md "Exact data") through
:class:`DataCase`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench import exact_data
from collectives.harness import Harness
from collectives.spec import spec


@dataclass
class Buffers:
    """Buffers of one (collective, size), allocated once and shared by every algorithm and variant.

    ``main`` holds S (the buffer; the gathered output of all_gather and gather; the input of reduce_scatter
    and scatter; the all_to_all input); ``other`` is the per-rank block of the blocked layouts for the
    out-of-place variant, the all_to_all output (as large as S), None otherwise.
    """

    collective: str
    count: int
    chunk: int
    main: torch.Tensor
    other: torch.Tensor | None

    @staticmethod
    def allocate(collective: str, count: int, p: int, dtype: torch.dtype, device: str) -> Buffers:
        desc = spec(collective)
        chunk = desc.block_count(count, p)
        main = torch.empty(count, dtype=dtype, device=device)
        other = torch.empty(desc.other_count(count, p), dtype=dtype, device=device) if desc.separate_output else None
        return Buffers(collective, count, chunk, main, other)

    def views(self, rank: int, in_place: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(main, other) with other aliased into main's rank block for the in-place variant (a collective
        without in-place variants ignores ``in_place``)."""
        if self.other is None or not spec(self.collective).in_place_variants:
            return self.main, self.other
        if in_place:
            return self.main, self.main[rank * self.chunk : (rank + 1) * self.chunk]
        return self.main, self.other


@dataclass(frozen=True)
class DataCase:
    """What decides one rank's data and reference: world size, rank, op name, root, seed, device."""

    p: int
    rank: int
    op: str
    root: int
    seed: int
    device: str

    def values(self, dtype: torch.dtype, of_rank: int, start: int, n: int) -> torch.Tensor:
        return exact_data.rank_values(dtype, self.op, self.p, of_rank, start, n, self.seed, self.device)

    def reduced(self, dtype: torch.dtype, start: int, n: int) -> torch.Tensor:
        return exact_data.reduced(dtype, self.op, self.p, start, n, self.seed, self.device)

    def fill(self, t: torch.Tensor, of_rank: int | None = None) -> None:
        exact_data.fill(t, self.op, self.p, self.rank if of_rank is None else of_rank, 0, self.seed)

    def wrong(self, result: torch.Tensor, expected: torch.Tensor) -> int:
        return exact_data.count_wrong(result, expected.to(result.dtype), self.op, self.p)

    def sentinel(self, t: torch.Tensor) -> None:
        t.fill_(exact_data.sentinel(t.dtype))


def io_for(collective: str) -> Harness:
    """The torch-side description of ``collective``: its module's ``HARNESS`` (UnknownCollectiveError for an
    unknown name)."""
    spec(collective)  # the clear error for an unknown name
    from collectives.registry import harness

    return harness(collective)
