"""The torch side of each collective: its buffers, one bound call, its input data and its exact result.

Together with the torch-free :mod:`collectives.spec` this is the one place that knows what a collective's
arguments and results look like; the harness (``bench.timing``), the pytest plugin and the scripts ask
:func:`io_for` instead of comparing names. Data and references come from :mod:`bench.exact_data`
(seeded integers, exact in every dtype; docs/protocol.md "Exact data").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench import exact_data
from collectives.spec import CollectiveSpec, spec


@dataclass
class Buffers:
    """Buffers of one (collective, size), allocated once and shared by every algorithm and variant.

    ``main`` holds S (the buffer, the all_gather output, the reduce_scatter input, the all_to_all input);
    ``other`` is the per-rank block of all_gather/reduce_scatter (input, output) for the out-of-place
    variant, the all_to_all output (as large as S), None otherwise.
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
        """(main, other) with other aliased into main's rank block for the in-place variant (all_gather,
        reduce_scatter; a collective without in-place variants ignores ``in_place``)."""
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


def _sentinel(t: torch.Tensor) -> None:
    t.fill_(exact_data.sentinel(t.dtype))


class CollectiveIO:
    """Per-collective call, input data and check; ``main``/``other`` as in :class:`Buffers`."""

    spec: CollectiveSpec

    def bind(
        self, fn: Callable[..., None], main: torch.Tensor, other: torch.Tensor | None, root: int, op: object
    ) -> Callable[[], None]:
        """A zero-argument call of ``fn`` with torch's signature (builtins checked once, see builtin.bind)."""
        raise NotImplementedError

    def prepare(self, main: torch.Tensor, other: torch.Tensor | None, case: DataCase) -> None:
        """Seeded data in the inputs, the sentinel in everything this rank must receive."""
        raise NotImplementedError

    def count_wrong(self, main: torch.Tensor, other: torch.Tensor | None, case: DataCase) -> int:
        """Wrong elements on this rank after one call on ``prepare``d data."""
        raise NotImplementedError


def _bind(fn: Callable[..., None], *args: object, **kwargs: object) -> Callable[[], None]:
    from collectives.builtin import bind

    return bind(fn, *args, **kwargs)


T = torch.Tensor
Other = torch.Tensor | None
Fn = Callable[..., None]


class _Broadcast(CollectiveIO):
    spec = spec("broadcast")

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return _bind(fn, main, root)

    def prepare(self, main: T, other: Other, case: DataCase) -> None:
        case.fill(main, case.root) if case.rank == case.root else _sentinel(main)

    def count_wrong(self, main: T, other: Other, case: DataCase) -> int:
        return case.wrong(main, case.values(main.dtype, case.root, 0, main.numel()))


class _Reduce(CollectiveIO):
    spec = spec("reduce")

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return _bind(fn, main, root, op=op)

    def prepare(self, main: T, other: Other, case: DataCase) -> None:
        case.fill(main)

    def count_wrong(self, main: T, other: Other, case: DataCase) -> int:
        if case.rank != case.root:
            return 0  # non-root buffers are scratch
        return case.wrong(main, case.reduced(main.dtype, 0, main.numel()))


class _AllReduce(CollectiveIO):
    spec = spec("all_reduce")

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return _bind(fn, main, op=op)

    def prepare(self, main: T, other: Other, case: DataCase) -> None:
        case.fill(main)

    def count_wrong(self, main: T, other: Other, case: DataCase) -> int:
        return case.wrong(main, case.reduced(main.dtype, 0, main.numel()))


class _AllGather(CollectiveIO):
    spec = spec("all_gather")

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return _bind(fn, main, other)

    def prepare(self, main: T, other: Other, case: DataCase) -> None:
        _sentinel(main)  # in place, ``other`` is this rank's block of ``main``: filled after the sentinel
        case.fill(other)

    def count_wrong(self, main: T, other: Other, case: DataCase) -> int:
        parts = [case.values(main.dtype, k, 0, other.numel()) for k in range(case.p)]
        return case.wrong(main, torch.cat(parts))


class _ReduceScatter(CollectiveIO):
    spec = spec("reduce_scatter")

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return _bind(fn, other, main, op=op)

    def prepare(self, main: T, other: Other, case: DataCase) -> None:
        _sentinel(other)  # in place, ``other`` is a block of ``main``: the fill below overwrites the sentinel
        case.fill(main)

    def count_wrong(self, main: T, other: Other, case: DataCase) -> int:
        chunk = other.numel()
        return case.wrong(other, case.reduced(main.dtype, case.rank * chunk, chunk))


class _AllToAll(CollectiveIO):
    """``main`` is the send buffer (S, p blocks of S/p), ``other`` the receive buffer; equal splits."""

    spec = spec("all_to_all")

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return _bind(fn, other, main)

    def prepare(self, main: T, other: Other, case: DataCase) -> None:
        _sentinel(other)
        case.fill(main)

    def count_wrong(self, main: T, other: Other, case: DataCase) -> int:
        chunk = main.numel() // case.p  # block j of the output is block ``rank`` of rank j's input
        parts = [case.values(main.dtype, k, case.rank * chunk, chunk) for k in range(case.p)]
        return case.wrong(other, torch.cat(parts))


_IO: dict[str, CollectiveIO] = {io.spec.name: io for io in (_Broadcast(), _Reduce(), _AllReduce(), _AllGather(),
                                                             _ReduceScatter(), _AllToAll())}  # fmt: skip


def io_for(collective: str) -> CollectiveIO:
    """The torch-side description of ``collective`` (UnknownCollectiveError for an unknown name)."""
    spec(collective)  # the clear error for an unknown name
    return _IO[collective]
