"""Unit tests: size parsing, sweeps, statistics, records, the rule table, run directories (no processes)."""

from __future__ import annotations

import math
import multiprocessing as mp

import numpy as np
import pytest

from bench.backend_support import check_combination
from bench.plan import RunConfig, build_plan, iters_for
from bench.records import CaseSpec, Measurement
from bench.run_writer import allowed_environment, create_run_dir
from bench.schema import CSV_COLUMNS, csv_field
from bench.sizes import parse_size, size_sweep
from bench.stats import estimate, median_ci, percentile, summarize
from collectives.costs import busbw_factor
from collectives.spec import spec


@pytest.mark.parametrize(
    "text,expected",
    [
        ("0", 0),
        ("4", 4),
        ("1K", 1024),
        ("1k", 1024),
        ("64M", 64 << 20),
        ("1G", 1 << 30),
        ("8KiB", 8192),
        ("2MB", 2 << 20),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["1X", "", "K", "-1", "1.5M", "1 K B", "0x10"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad size"):
        parse_size(text)


def test_size_sweep_matches_nccl_tests() -> None:
    assert size_sweep(1024, 8192, 2) == [1024, 2048, 4096, 8192]
    assert size_sweep(1024, 5000, 2) == [1024, 2048, 4096]
    assert size_sweep(8, 8, 2) == [8]
    assert size_sweep(0, 4, 2) == [0, 1, 2, 4]
    assert size_sweep(3, 10, 1.5) == [3, 4, 6, 9]
    with pytest.raises(ValueError):
        size_sweep(10, 1, 2)
    with pytest.raises(ValueError):
        size_sweep(1, 10, 1)


def test_element_count_rounds_gather_scatter_to_multiple_of_p() -> None:
    assert spec("all_reduce").element_count(1024, 4, 3) == 256
    assert spec("all_gather").element_count(1024, 4, 3) == 255
    assert spec("reduce_scatter").element_count(1024, 4, 3) == 255
    assert spec("broadcast").element_count(6, 4, 3) == 1


def test_percentile_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 2, 5, 17, 100):
        x = sorted(rng.exponential(size=n).tolist())
        for q in (0, 10, 25, 50, 75, 90, 100):
            assert percentile(x, q) == pytest.approx(float(np.percentile(x, q)), rel=1e-12)
    assert math.isnan(percentile([], 50))


def test_summarize_noisy_means_the_ci_missed_its_target() -> None:
    quiet = summarize([10.0] * 9 + [11.0], block_us=10.2)
    assert not quiet.noisy and quiet.ci_met and quiet.median_us == 10.0 and quiet.min_us == 10.0
    assert quiet.max_us == 11.0 and quiet.estimate.time_us == 10.0
    wide = summarize([10.0, 30.0, 12.0, 25.0, 14.0, 22.0, 16.0, 20.0, 18.0, 11.0], block_us=17.0)
    assert wide.noisy and not wide.ci_met and "target" in wide.noise_reason and "p90/p10" in wide.noise_reason
    block = summarize([10.0] * 10, block_us=13.0)  # block vs median is still named, but the CI decides
    assert not block.noisy and "block/median" in block.noise_reason


def test_estimate_takes_the_fast_mode_and_names_the_interference() -> None:
    rng = np.random.default_rng(1)
    fast = list(500 * np.exp(rng.normal(0, 0.05, 62)))
    slow = list(4500 * np.exp(rng.normal(0, 0.1, 38)))  # 38 % of the calls waited for a scheduler tick
    est = estimate(fast + slow)
    assert est.slow_fraction == pytest.approx(0.38) and est.kept == 62 and est.n == 100
    assert est.time_us == pytest.approx(float(np.median(fast)))
    assert est.ci_lo_us <= est.time_us <= est.ci_hi_us and est.meets(0.05)
    assert est.interference == "interference: 38 % of samples in a slow mode"
    # the plain median of a slow majority jumps to the slow mode; the estimate stays on the fast one
    est = estimate(fast[:30] + slow + slow[:32])
    assert est.slow_fraction == pytest.approx(70 / 100) and est.time_us < 600
    assert float(np.median(fast[:30] + slow + slow[:32])) > 3000


def test_estimate_keeps_one_mode_whole() -> None:
    rng = np.random.default_rng(2)
    one = list(1000 * np.exp(rng.normal(0, 0.3, 200)))  # wide but one mode
    est = estimate(one)
    assert est.slow_fraction == 0 and est.kept == 200 and est.time_us == pytest.approx(float(np.median(one)))
    close = [100.0] * 20 + [130.0] * 20  # two clusters, but 1.3x apart: not interference
    assert estimate(close).slow_fraction == 0
    assert estimate([5.0] * 5 + [50.0] * 2).slow_fraction == 0  # too few samples to split


def test_a_few_fast_samples_never_meet_the_target() -> None:
    est = estimate([1792.0, 1874.0] + [7000.0 + 100 * i for i in range(12)])
    assert est.kept == 2 and est.rel_half_width < 0.05 and not est.meets(0.05)


def test_median_ci_covers_the_median_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(3)
    for n in (10, 40, 200):
        covered = 0
        for _ in range(2000):
            x = sorted(rng.exponential(1.0, n))
            lo, hi = median_ci(x)
            covered += lo <= math.log(2) <= hi
        assert 0.93 <= covered / 2000 <= 0.995, (n, covered)


def _spec(collective: str, p: int, nbytes: int = 4096) -> CaseSpec:
    return CaseSpec(collective, "builtin", "gloo", "cpu", p, "float32", "sum", nbytes, nbytes // 4, -1, True, 3, 1)


@pytest.mark.parametrize("p", [1, 2, 3, 4])
@pytest.mark.parametrize("collective", ["broadcast", "reduce", "all_reduce", "all_gather", "reduce_scatter"])
def test_busbw_factor_applied(collective: str, p: int) -> None:
    expected = {
        "all_reduce": 2 * (p - 1) / p,
        "all_gather": (p - 1) / p,
        "reduce_scatter": (p - 1) / p,
        "broadcast": 1.0,
        "reduce": 1.0,
    }[collective]
    m = Measurement(_spec(collective, p), (4.0, 4.0, 4.0), 4.0, busbw_factor(collective, p), 0)
    assert m.algbw_gbps == pytest.approx(4096 / 4e3)  # 4096 B in 4 us = 1.024 GB/s
    assert m.busbw_gbps == pytest.approx(m.algbw_gbps * expected)


def test_measurement_row_has_every_column_in_order() -> None:
    m = Measurement(_spec("all_reduce", 2), (1.0, 2.0, 3.0), 2.0, 1.0, 5)
    row = m.row()
    assert tuple(row) == CSV_COLUMNS
    assert row["correct"] is False and row["n_wrong"] == 5 and row["time_us"] == 2.0
    point = m.json_point()
    assert point["samples_us"] == [1.0, 2.0, 3.0] and set(CSV_COLUMNS) < set(point)
    assert csv_field(True) == "true" and csv_field(None) == "" and csv_field(float("nan")) == ""
    with pytest.raises(AttributeError):
        m.n_wrong = 0  # frozen


def _config(**kw) -> RunConfig:
    base = dict(
        collectives=("all_reduce", "all_gather"),
        algorithms=(("all_reduce", ("builtin",)), ("all_gather", ("builtin", "ring"))),
        backend="gloo",
        device="cpu",
        dtype="float32",
        op="sum",
        sizes=(4, 1024, 1 << 20),
        min_bytes=4,
        max_bytes=1 << 20,
        step_factor=2.0,
        iters=None,
        warmup=None,
        root=0,
        in_place="both",
        cuda_graph=False,
        seed=0,
        timeout_s=10.0,
    )
    base.update(kw)
    return RunConfig(**base)


def test_plan_order_variants_and_budget() -> None:
    plan = build_plan(_config(), world_size=3)
    ar = [c for c in plan if c.collective == "all_reduce"]
    assert [c.in_place for c in ar] == [True] * 3  # in-place by nature
    ag = [c for c in plan if c.collective == "all_gather"]
    assert ag[0].bytes == 0 or ag[0].bytes % 12 == 0  # count rounded to a multiple of p
    assert [(c.algorithm, c.in_place) for c in ag[:4]] == [
        ("builtin", False),
        ("builtin", True),
        ("ring", False),
        ("ring", True),
    ]
    assert all(c.op == "none" and c.root == -1 for c in ag)
    assert iters_for(1024, None) == 20 and iters_for(4 << 20, None) == 5 and iters_for(4 << 20, 50) == 50
    fixed = build_plan(_config(iters=7, warmup=1), world_size=2)
    assert {(c.iters, c.warmup) for c in fixed} == {(7, 1)}


def test_rule_table() -> None:
    assert check_combination("gloo", "float32", "sum", ["all_reduce"]) is None
    assert "floating" in check_combination("gloo", "int32", "avg", ["all_reduce"])
    assert check_combination("gloo", "int32", "avg", ["broadcast"]) is None  # no reduction involved
    assert "not supported" in check_combination("gloo", "int16", "sum", ["all_reduce"])
    assert "unknown op" in check_combination("nccl", "float32", "xor", ["reduce"])


def test_environment_is_allow_listed() -> None:
    env = {
        "NCCL_ALGO": "Ring",
        "OMP_NUM_THREADS": "1",
        "HOME": "/root",
        "AWS_SECRET_ACCESS_KEY": "x",
        "NCCL_IB_KEY": "x",
        "HF_TOKEN": "x",
        "SLURM_JOB_ID": "7",
        "SLURM_SOME_PASSWORD": "x",
        "PATH": "/bin",
    }
    assert allowed_environment(env) == {"NCCL_ALGO": "Ring", "OMP_NUM_THREADS": "1", "SLURM_JOB_ID": "7"}


def _make_dirs(parent: str, n: int, queue) -> None:
    queue.put([str(create_run_dir(parent)) for _ in range(n)])


def test_run_dirs_are_never_shared(tmp_path) -> None:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_make_dirs, args=(str(tmp_path), 30, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    made = [d for _ in procs for d in queue.get(timeout=30)]
    for p in procs:
        p.join(timeout=30)
    assert len(made) == 90 and len(set(made)) == 90
    assert len(list(tmp_path.iterdir())) == 90
