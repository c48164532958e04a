"""The sweep: run configuration and the ordered list of cases it expands to (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.records import CaseSpec
from bench.rules import DTYPE_SIZES, op_for
from bench.sizes import element_count
from collectives.costs import DEFAULT_SEGMENT_BYTES, PIPELINED

IN_PLACE_ONLY = frozenset({"broadcast", "reduce", "all_reduce"})  # the hand-written API is in-place by nature
BUDGET_BYTES = 256 << 10  # above this, default iters/warmup shrink in proportion to the size


@dataclass(frozen=True)
class RunConfig:
    """Everything a sweep needs, picklable so it can be handed to spawned ranks."""

    collectives: tuple[str, ...]
    algorithms: tuple[tuple[str, tuple[str, ...]], ...]  # (collective, algorithm names)
    backend: str
    device: str
    dtype: str
    op: str
    sizes: tuple[int, ...]
    min_bytes: int
    max_bytes: int
    step_factor: float
    iters: int | None  # None: budget-aware default
    warmup: int | None
    root: int
    in_place: str  # both | yes | no
    graph: bool
    seed: int
    timeout_s: float
    segment_bytes: int | None = None  # None: the pipelined algorithms' default (recorded as such)

    def algorithms_for(self, collective: str) -> tuple[str, ...]:
        return dict(self.algorithms)[collective]


DEFAULT_ITERS = 20
DEFAULT_WARMUP = 5
MIN_DEFAULT_ITERS = 5
MIN_DEFAULT_WARMUP = 2


def iters_for(nbytes: int, iters: int | None) -> int:
    """Timed iterations: the user's fixed ``-n``, or 20 shrinking to 5 as sizes grow past 256 KiB."""
    if iters is not None:
        return iters
    if nbytes <= BUDGET_BYTES:
        return DEFAULT_ITERS
    return max(MIN_DEFAULT_ITERS, DEFAULT_ITERS * BUDGET_BYTES // nbytes)


def warmup_for(nbytes: int, warmup: int | None) -> int:
    """Warm-up calls: the user's fixed ``-w``, or 5 shrinking to 2 past 1 MiB."""
    if warmup is not None:
        return warmup
    if nbytes <= 4 * BUDGET_BYTES:
        return DEFAULT_WARMUP
    return max(MIN_DEFAULT_WARMUP, DEFAULT_WARMUP * 4 * BUDGET_BYTES // nbytes)


def variants(collective: str, in_place: str) -> tuple[bool, ...]:
    """in_place values measured: AG/RS have both (as nccl-tests); bcast/reduce/AR only in-place."""
    if collective in IN_PLACE_ONLY:
        return (True,)
    return {"both": (False, True), "yes": (True,), "no": (False,)}[in_place]


def segment_bytes_for(collective: str, algorithm: str, segment_bytes: int | None) -> int | None:
    """The segment size a pipelined algorithm runs with (the user's or its default); None for the others."""
    if (collective, algorithm) not in PIPELINED:
        return None
    return segment_bytes if segment_bytes is not None else DEFAULT_SEGMENT_BYTES


def build_plan(config: RunConfig, world_size: int) -> list[CaseSpec]:
    """Cases in run order: collective, size, algorithm, then out-of-place before in-place (nccl-tests)."""
    esize = DTYPE_SIZES[config.dtype]
    plan: list[CaseSpec] = []
    for collective in config.collectives:
        seen: set[int] = set()
        for nbytes in config.sizes:
            count = element_count(collective, nbytes, esize, world_size)
            if count * esize in seen:
                continue
            seen.add(count * esize)
            root = config.root if collective in ("broadcast", "reduce") else -1
            for algorithm in config.algorithms_for(collective):
                for in_place in variants(collective, config.in_place):
                    plan.append(
                        CaseSpec(
                            collective=collective,
                            algorithm=algorithm,
                            backend=config.backend,
                            device=config.device,
                            world_size=world_size,
                            dtype=config.dtype,
                            op=op_for(collective, config.op),
                            bytes=count * esize,
                            count=count,
                            root=root,
                            in_place=in_place,
                            iters=iters_for(count * esize, config.iters),
                            warmup=warmup_for(count * esize, config.warmup),
                            segment_bytes=segment_bytes_for(collective, algorithm, config.segment_bytes),
                            graph=config.graph,
                        )
                    )
    return plan
