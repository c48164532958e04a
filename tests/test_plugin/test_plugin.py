"""The pytest plugin: harness samples reach pytest-benchmark unchanged, extra_info, a planted slowdown fails
--benchmark-compare-fail and an unchanged rerun passes; the plugin builds the case `collbench run` builds.

The plugin-vs-`collbench run` timing figure (within 10%) is a benchmark, measured side by side in
scripts/bench_plugin_vs_run.py, not asserted here: a 2-core CI machine's gloo times vary several-fold
between runs (wake-up spikes of one scheduler tick, ~4 ms, on a third of the samples)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE = """
import os
def test_slow_all_reduce(collective_benchmark):
    collective_benchmark("all_reduce", "test_slow", nbytes=4096, iters=int(os.environ["ITERS"]), warmup=1)

def test_builtin_all_reduce(collective_benchmark):
    collective_benchmark("all_reduce", "builtin", nbytes=4096, iters=30, warmup=3)
"""
# A 200 ms sleep per test_slow call dwarfs gloo's noise on 2 cores (4 KiB all_reduce: ~0.3 ms, spikes of ~4-8 ms),
# so an unchanged rerun's median stays well inside 10% and a planted 400 ms doubles it; 5 samples suffice for that.
SLOW_US, ITERS = "200000", "5"


def _pytest(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    plugin = [] if any(e.name == "collbench" for e in entry_points(group="pytest11")) else ["-p", "bench.pytest_plugin"]
    outer = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}  # not an xdist worker itself
    full_env = {**outer, "PYTHONPATH": str(ROOT), "COLLBENCH_TESTING": "1", **env}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin, str(tmp / "test_suite.py"),
           "--rootdir", str(tmp), "-o", "addopts=", "-o", "timeout=200", *args]  # fmt: skip
    return subprocess.run(cmd, cwd=tmp, env=full_env, capture_output=True, text=True, timeout=280)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """One plugin session for the module's tests: both benchmarks on one persistent pool, saved to
    pytest-benchmark's storage (the baseline of the compare test) and to --benchmark-json."""
    suite = tmp_path_factory.mktemp("plugin")
    (suite / "test_suite.py").write_text(SUITE)
    out = suite / "bench.json"
    store = f"--benchmark-storage=file://{suite / 'store'}"
    proc = _pytest(suite, f"--benchmark-json={out}", "--benchmark-autosave", store, COLLBENCH_TEST_SLOW_US=SLOW_US,
                   ITERS=ITERS)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    benchmarks = {b["name"]: b for b in json.loads(out.read_text())["benchmarks"]}
    assert set(benchmarks) == {"test_slow_all_reduce", "test_builtin_all_reduce"}
    return suite, benchmarks


@pytest.mark.timeout(300)
def test_samples_and_extra_info_reach_pytest_benchmark(first_run) -> None:
    bench = first_run[1]["test_slow_all_reduce"]
    info = bench["extra_info"]
    assert info["bytes"] == 4096 and info["world_size"] == 2 and info["correct"] is True
    assert info["algbw_gbps"] > 0 and info["busbw_gbps"] == pytest.approx(info["algbw_gbps"])  # F = 1 at p = 2
    stats = bench["stats"]
    # pytest-benchmark gets the samples of collbench's estimate (all of them, or the fast mode when the host's
    # interference made a slow one), unchanged: its median is the estimate
    n = int(ITERS)
    # visits of n samples (n < 2 * MIN_VISIT_SAMPLES: one at first) until the CI target is met or 2 s have passed
    assert info["samples"] == n * info["visits"] and 1 <= info["visits"] <= 3 and stats["iterations"] == 1
    assert stats["rounds"] == round(info["samples"] * (1 - info["slow_fraction"]))
    assert stats["median"] * 1e6 == pytest.approx(info["time_us"], rel=1e-6)
    assert info["time_us_ci_lo"] <= info["time_us"] <= info["time_us_ci_hi"]
    assert stats["min"] >= int(SLOW_US) * 1e-6  # every sample includes the planted sleep, no more and no less


@pytest.mark.timeout(400)
def test_planted_slowdown_fails_compare_and_rerun_passes(first_run) -> None:
    suite = first_run[0]  # the baseline: first_run's autosave, SLOW_US per call
    compare = ["-k", "test_slow_all_reduce", "--benchmark-compare", "--benchmark-compare-fail=median:10%",
               f"--benchmark-storage=file://{suite / 'store'}"]  # fmt: skip
    same = _pytest(suite, *compare, COLLBENCH_TEST_SLOW_US=SLOW_US, ITERS=ITERS)
    assert same.returncode == 0, same.stdout[-3000:]
    assert "test_slow_all_reduce (0001" in same.stdout  # really compared, with the baseline's autosave 0001
    slow = _pytest(suite, *compare, COLLBENCH_TEST_SLOW_US=str(2 * int(SLOW_US)), ITERS=ITERS)
    assert slow.returncode != 0
    assert "test_slow_all_reduce" in slow.stdout and "median" in slow.stdout.lower()


@pytest.mark.timeout(300)
def test_plugin_case_is_collbench_runs_case(first_run, capsys, monkeypatch) -> None:
    """The same options through the plugin and through `collbench run` give the same case and the same figures'
    definitions (bytes, world size, algbw, busbw factor) and one intra-op thread per rank in both (the default
    of spawned ranks, as under torchrun); the times themselves are compared in scripts/."""
    suite, benchmarks = first_run
    bench = benchmarks["test_builtin_all_reduce"]
    info, plugin_us = bench["extra_info"], bench["stats"]["median"] * 1e6
    args = ["run", "--nprocs", "2", "--collectives", "all_reduce", "--algorithms", "builtin", "-b", "4K", "-e", "4K",
            "-n", "30", "-w", "3", "--out", str(suite / "runs"), "--json"]  # fmt: skip
    from collbench.cli import main  # in this process (torch is imported already); the ranks are spawned

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the default of spawned ranks is what is checked
    assert main(args) == 0, capsys.readouterr().err
    meta = json.loads((Path(json.loads(capsys.readouterr().out)["run_dir"]) / "run.json").read_text())
    assert meta["hardware"]["torch_threads_per_rank"] == 1
    point = meta["points"][0]
    for key in ("collective", "algorithm", "bytes", "world_size", "dtype", "op", "backend"):
        assert info[key] == point[key], key
    assert len(point["samples_us"]) == 30  # -n 30
    assert info["visits"] >= 6 and info["samples"] == 5 * info["visits"]  # the plugin: 6 visits of 5, or more
    for m, us in ((info, info["time_us"]), (point, point["time_us"])):
        assert m["algbw_gbps"] == pytest.approx(m["bytes"] / us / 1e3, rel=1e-6)  # GB/s = bytes / us / 1e3
        assert m["busbw_gbps"] == pytest.approx(m["algbw_gbps"])  # all_reduce at p = 2: factor 2(p-1)/p = 1
    print(f"\nall_reduce builtin 4 KiB, 2 ranks (one sample each, not a benchmark): plugin median {plugin_us:.1f} us, "
          f"collbench run {statistics.median(point['samples_us']):.1f} us")  # fmt: skip


def test_visit_sizes_split_iters_evenly() -> None:
    from bench.pytest_plugin import MIN_VISIT_SAMPLES, visit_sizes

    assert visit_sizes(50, 8) == [7, 7, 6, 6, 6, 6, 6, 6]
    assert visit_sizes(30, 8) == [5] * 6  # at least MIN_VISIT_SAMPLES a visit
    assert visit_sizes(5, 8) == [5] and visit_sizes(3, 8) == [3]
    for iters in range(1, 80):
        sizes = visit_sizes(iters, 8)
        assert sum(sizes) == iters and len(sizes) <= 8 and max(sizes) - min(sizes) <= 1
        assert len(sizes) == 1 or min(sizes) >= MIN_VISIT_SAMPLES


def test_benchmark_options_under_xdist_are_refused(tmp_path: Path) -> None:
    """pytest-benchmark disables itself under xdist; a compare or save asked for there is an error, not a pass."""
    (tmp_path / "test_suite.py").write_text(SUITE)
    for flag in ("--benchmark-compare", "--benchmark-autosave"):
        proc = _pytest(tmp_path, "-p", "xdist", "-n", "2", flag)
        assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert f"collbench: {flag} with pytest-xdist (-n)" in proc.stderr, proc.stderr[-2000:]
