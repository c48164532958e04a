"""The sweep: run configuration and the ordered list of cases it expands to (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.backend_support import DTYPE_SIZES
from bench.records import CaseSpec
from bench.stats import DEFAULT_TARGET_CI
from collectives.costs import PIPELINED, default_segment_bytes
from collectives.spec import SEND_RECV, describe, is_point_to_point, spec

BUDGET_BYTES = 256 << 10  # above this, default iters/warmup shrink in proportion to the size
DEFAULT_MIN_ITERS = 10  # adaptive: at least this many samples (fewer past 256 KiB, as iters_for)
DEFAULT_MAX_ITERS = 1000  # adaptive: at most this many
DEFAULT_MAX_TIME_PER_POINT_S = 0.25  # a CaseSpec's own default (the plugin, pairs); collbench run: auto
#: collbench run's default per-point budget: this many seconds shared by the sweep's adaptive points, within
#: [MIN_AUTO_TIME_PER_POINT_S, MAX_AUTO_TIME_PER_POINT_S] each (auto_time_per_point)
SWEEP_BUDGET_S = 12.0
MIN_AUTO_TIME_PER_POINT_S = 0.05
MAX_AUTO_TIME_PER_POINT_S = 1.0
#: adaptive: each point is sampled in this many visits spread over its block of the run (docs/noise.md: on a shared
#: host one-second windows differ by 10-30 %, so samples taken in one quarter second inherit that window's level)
DEFAULT_VISITS = 8
#: adaptive: visits spread over blocks of at most this many seconds of budget (a whole default run is one)
MAX_BLOCK_S = 60.0
DEFAULT_TRANSPORT_NICE = 19  # gloo: nice value of the transport threads (bench.worker.nice_transport_threads)


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
    cuda_graph: bool
    seed: int
    timeout_s: float
    segment_bytes: int | None = None  # None: the pipelined algorithms' default (recorded as such)
    interleave: bool = True  # measure the algorithms of one (collective, size) round-robin
    target_ci: float = DEFAULT_TARGET_CI  # adaptive sampling: 95 % CI half-width / estimate
    max_time_per_point_s: float = DEFAULT_MAX_TIME_PER_POINT_S
    max_iters: int = DEFAULT_MAX_ITERS  # adaptive sampling's cap on samples per point
    transport_nice: int = DEFAULT_TRANSPORT_NICE  # gloo transport threads' nice value (0: leave them)
    window: int = SEND_RECV.p2p.default_window  # send_recv: messages in flight for bw and bibw
    visits: int = DEFAULT_VISITS  # adaptive: visits per point, spread over its block (bench.plan.visit_blocks)

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
    """in_place values measured: AG/RS have both (as nccl-tests); bcast/reduce/AR only in-place; all_to_all
    only out-of-place; send_recv (separate send and receive buffers) out-of-place."""
    return describe(collective).variants(in_place)


def segment_bytes_for(collective: str, algorithm: str, segment_bytes: int | None, nbytes: int, p: int) -> int | None:
    """The segment size a pipelined algorithm runs with at ``nbytes`` on ``p`` ranks (the user's, else its default:
    ``collectives.costs.default_segment_bytes``); None for the others."""
    if (collective, algorithm) not in PIPELINED:
        return None
    return segment_bytes if segment_bytes is not None else default_segment_bytes(collective, algorithm, nbytes, p)


def case_spec(
    collective: str,
    algorithm: str,
    nbytes: int,
    *,
    backend: str,
    device: str,
    world_size: int,
    dtype: str = "float32",
    op: str = "sum",
    root: int = 0,
    in_place: bool = True,
    iters: int | None = None,
    warmup: int | None = None,
    segment_bytes: int | None = None,
    cuda_graph: bool = False,
    adaptive: bool = False,
    target_ci: float = DEFAULT_TARGET_CI,
    max_time_per_point_s: float = DEFAULT_MAX_TIME_PER_POINT_S,
    max_iters: int = DEFAULT_MAX_ITERS,
) -> CaseSpec:
    """The case ``collbench run`` measures for these options: S rounded to whole elements (and to a multiple
    of p for blocked collectives), the op and root the collective records, the in-place variant it has.
    ``adaptive`` (no fixed ``iters``; never with CUDA graphs): at least min(10, iters_for(S)) samples, at most
    ``max_iters``."""
    desc, esize = spec(collective), DTYPE_SIZES[dtype]
    count = desc.element_count(nbytes, esize, world_size)
    adaptive = adaptive and iters is None and not cuda_graph
    return CaseSpec(
        collective=collective,
        algorithm=algorithm,
        backend=backend,
        device=device,
        world_size=world_size,
        dtype=dtype,
        op=desc.recorded_op(op),
        bytes=count * esize,
        count=count,
        root=desc.recorded_root(root),
        in_place=in_place if desc.in_place_variants else desc.only_in_place,
        iters=max_iters if adaptive else iters_for(count * esize, iters),
        warmup=warmup_for(count * esize, warmup),
        segment_bytes=segment_bytes_for(collective, algorithm, segment_bytes, count * esize, world_size),
        cuda_graph=cuda_graph,
        adaptive=adaptive,
        min_iters=min(DEFAULT_MIN_ITERS, iters_for(count * esize, None)),
        target_ci=target_ci,
        max_time_per_point_s=max_time_per_point_s,
    )


def send_recv_cases(config: RunConfig, world_size: int) -> list[CaseSpec]:
    """The send_recv cases (collectives.spec.SEND_RECV): per size S of the sweep (whole elements, sizes of no
    element left out), its measurements (latency, bw, bibw) in that order; op none, no root, out of place."""
    esize, cases, seen = DTYPE_SIZES[config.dtype], [], set()
    for nbytes in config.sizes:
        count = nbytes // esize
        if count == 0 or count in seen:
            continue
        seen.add(count)
        for algorithm in config.algorithms_for(SEND_RECV.name):
            cases.append(CaseSpec(
                collective=SEND_RECV.name, algorithm=algorithm, backend=config.backend, device=config.device,
                world_size=world_size, dtype=config.dtype, op="none", bytes=count * esize, count=count, root=-1,
                in_place=False, iters=iters_for(count * esize, config.iters),
                warmup=warmup_for(count * esize, config.warmup),
            ))  # fmt: skip
    return cases


def build_plan(config: RunConfig, world_size: int) -> list[CaseSpec]:
    """Cases in run order: collective, size, algorithm, then out-of-place before in-place (nccl-tests)."""
    plan: list[CaseSpec] = []
    for collective in config.collectives:
        if is_point_to_point(collective):
            plan += send_recv_cases(config, world_size)
            continue
        seen: set[int] = set()
        for nbytes in config.sizes:
            first = case_spec(collective, "builtin", nbytes, backend=config.backend, device=config.device,
                              world_size=world_size, dtype=config.dtype)  # fmt: skip
            if first.bytes in seen:
                continue
            seen.add(first.bytes)
            for algorithm in config.algorithms_for(collective):
                for in_place in variants(collective, config.in_place):
                    plan.append(
                        case_spec(
                            collective,
                            algorithm,
                            nbytes,
                            backend=config.backend,
                            device=config.device,
                            world_size=world_size,
                            dtype=config.dtype,
                            op=config.op,
                            root=config.root,
                            in_place=in_place,
                            iters=config.iters,
                            warmup=config.warmup,
                            segment_bytes=config.segment_bytes,
                            cuda_graph=config.cuda_graph,
                            adaptive=config.iters is None,
                            target_ci=config.target_ci,
                            max_time_per_point_s=config.max_time_per_point_s,
                            max_iters=config.max_iters,
                        )  # fmt: skip
                    )
    return plan


def point_groups(plan: list[CaseSpec], interleave: bool) -> list[list[CaseSpec]]:
    """The plan cut into the groups measured together: consecutive cases of one (collective, bytes) when
    interleaving (every algorithm and variant of a size, round-robin), else one case each."""
    groups: list[list[CaseSpec]] = []
    for case in plan:
        if interleave and groups and (groups[-1][0].collective, groups[-1][0].bytes) == (case.collective, case.bytes):
            groups[-1].append(case)
        else:
            groups.append([case])
    return groups


def auto_time_per_point(n_adaptive: int) -> float:
    """Default ``--max-time-per-point``: SWEEP_BUDGET_S over the adaptive points, clamped. A short sweep gets
    the samples a shared host needs for a 5 % CI (about 150 spread over the run, docs/noise.md), a long one
    stays bounded; an explicit value overrides."""
    share = SWEEP_BUDGET_S / max(n_adaptive, 1)
    return min(MAX_AUTO_TIME_PER_POINT_S, max(MIN_AUTO_TIME_PER_POINT_S, share))


def visit_blocks(groups: list[list[CaseSpec]], max_block_s: float = MAX_BLOCK_S) -> list[list[list[CaseSpec]]]:
    """The groups cut into blocks sampled in visits together: runs of consecutive groups whose every case is
    adaptive, each block at most ``max_block_s`` of time budget (so a crash loses at most one block's
    points); fixed ``-n`` counts and CUDA graphs are one block each, measured as nccl-tests does. A
    block's points are complete at its last visit."""
    blocks: list[list[list[CaseSpec]]] = []
    budget_s = 0.0
    open_block = False
    for group in groups:
        spread = all(c.adaptive for c in group)
        group_s = sum(c.max_time_per_point_s for c in group)
        if spread and open_block and budget_s + group_s <= max_block_s:
            blocks[-1].append(group)
            budget_s += group_s
        else:
            blocks.append([group])
            budget_s, open_block = group_s, spread
    return blocks


def block_visits(block: list[list[CaseSpec]], visits: int) -> int:
    """Visits a block gets: ``visits`` when every case of it is adaptive (send_recv and fixed counts: 1)."""
    return visits if all(c.adaptive and not is_point_to_point(c.collective) for g in block for c in g) else 1


def progress_units(plan: list[CaseSpec], config: RunConfig) -> int:
    """Units of work of a run for its progress bar: one per case and visit (the ticks ranks send)."""
    blocks = visit_blocks(point_groups(plan, config.interleave))
    return sum(len(g) * block_visits(b, config.visits) for b in blocks for g in b)


def rotated_plan(plan: list[CaseSpec], index: int, count: int, interleave: bool = True) -> list[CaseSpec]:
    """The plan of repeat ``index`` of ``count`` (``collbench run --repeat``): its groups (``point_groups``) rotated
    by ``index``/``count`` of their number and the cases of each group by ``index``, so that each repeat starts
    at another size and another algorithm and a drift of the host over a run does not always hit the same
    point first or last (repeat 0 is the plan as it is)."""
    groups = point_groups(plan, interleave)
    if not groups or count < 2:
        return list(plan)
    shift = (index * len(groups)) // count
    out: list[CaseSpec] = []
    for group in groups[shift:] + groups[:shift]:
        k = index % len(group)
        out += group[k:] + group[:k]
    return out
