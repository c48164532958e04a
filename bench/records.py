"""Records: a case spec (what is measured) and its immutable measurement, and their results.csv row.

Like ``torch.utils.benchmark`` (TaskSpec vs Measurement): the spec is hashable and knows nothing of
timing; the measurement holds samples and derived statistics and never changes after creation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.schema import CSV_COLUMNS, json_point
from bench.stats import SampleStats, algbw_gbps, summarize


@dataclass(frozen=True)
class CaseSpec:
    """One point to measure: (collective, algorithm, backend, device, world size, dtype, op, bytes, root, in_place)."""

    collective: str
    algorithm: str
    backend: str
    device: str
    world_size: int
    dtype: str
    op: str
    bytes: int
    count: int
    root: int
    in_place: bool
    iters: int
    warmup: int
    segment_bytes: int | None = None
    cuda_graph: bool = False
    # adaptive sampling (docs/protocol.md): samples are taken until the estimate's 95 % CI is within
    # +-target_ci of it (at least min_iters, at most iters) or the point's share of the time budget is spent;
    # adaptive=False takes exactly ``iters`` samples (``-n``, as nccl-tests)
    adaptive: bool = False
    min_iters: int = 10
    target_ci: float = 0.05
    max_time_per_point_s: float = 0.25

    @property
    def label(self) -> str:
        """Short human name used in warnings."""
        variant = "in-place" if self.in_place else "out-of-place"
        return f"{self.collective}/{self.algorithm} {self.bytes} B {variant}"


@dataclass(frozen=True)
class Measurement:
    """What was measured for one case: samples (max over ranks, us), block time, statistics, correctness."""

    spec: CaseSpec
    samples_us: tuple[float, ...]
    block_time_us: float
    busbw_factor: float
    n_wrong: int
    stats: SampleStats = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stats", summarize(self.samples_us, self.block_time_us, self.spec.target_ci))

    @property
    def correct(self) -> bool:
        return self.n_wrong == 0

    @property
    def time_us(self) -> float:
        """The reported time: the robust estimate (bench.stats), not the plain median."""
        return self.stats.estimate.time_us

    @property
    def algbw_gbps(self) -> float:
        return algbw_gbps(self.spec.bytes, self.time_us)

    @property
    def busbw_gbps(self) -> float:
        return self.algbw_gbps * self.busbw_factor

    def row(self) -> dict[str, Any]:
        """The results.csv row as Python values (column order = CSV_COLUMNS)."""
        s, st = self.spec, self.stats
        values = {
            **{k: v for k, v in asdict(s).items() if k in CSV_COLUMNS},
            "iters": len(self.samples_us),
            "time_us": st.estimate.time_us,
            "time_us_p10": st.p10_us,
            "time_us_p25": st.p25_us,
            "time_us_p75": st.p75_us,
            "time_us_p90": st.p90_us,
            "time_us_min": st.min_us,
            "time_us_max": st.max_us,
            "block_time_us": self.block_time_us,
            "algbw_gbps": self.algbw_gbps,
            "busbw_gbps": self.busbw_gbps,
            "correct": self.correct,
            "n_wrong": self.n_wrong,
            "noisy": st.noisy,
            "time_us_median": st.median_us,
            "time_us_ci_lo": st.estimate.ci_lo_us,
            "time_us_ci_hi": st.estimate.ci_hi_us,
            "ci_met": st.ci_met,
            "slow_fraction": st.estimate.slow_fraction,
        }
        return {k: values[k] for k in CSV_COLUMNS}

    def json_point(self) -> dict[str, Any]:
        """The run.json point: every CSV column (JSON values, NaN as null) plus ``samples_us``."""
        return json_point(self.row(), self.samples_us)

    def to_message(self) -> dict[str, Any]:
        """Plain-data form sent from rank 0 to the writer process."""
        return {
            "spec": asdict(self.spec),
            "samples_us": list(self.samples_us),
            "block_time_us": self.block_time_us,
            "busbw_factor": self.busbw_factor,
            "n_wrong": self.n_wrong,
        }

    @staticmethod
    def from_message(msg: dict[str, Any]) -> Measurement:
        return Measurement(
            spec=CaseSpec(**msg["spec"]),
            samples_us=tuple(msg["samples_us"]),
            block_time_us=msg["block_time_us"],
            busbw_factor=msg["busbw_factor"],
            n_wrong=msg["n_wrong"],
        )
