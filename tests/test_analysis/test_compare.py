"""collbench compare: exit codes on a planted slowdown, a planted speedup, noise-only pairs (synthetic and real)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis import synthetic
from analysis.compare import PointChange, holm, run_shift
from collbench import cli

HW = synthetic.Hardware(alpha_us=50.0, bw_gbps=1.0)
CASES = (("all_reduce", "ring"), ("all_gather", "ring"))


def _run(tmp: Path, name: str, seed: int, factor: float = 1.0, algorithm: str = "ring", samples: bool = True) -> Path:
    def scaled(c: str, a: str, p: int, n: float) -> float:
        t = HW.time_us(c, a, p, n, None)
        return t * factor if a == algorithm else t

    run = synthetic.write_run(tmp / name, HW, cases=CASES, world_size=4, noise=0.08, seed=seed, time_fn=scaled)
    if not samples:  # like an imported nccl-tests run: one number per point
        meta = json.loads((run / "run.json").read_text())
        for pt in meta["points"]:
            pt["samples_us"] = []
        (run / "run.json").write_text(json.dumps(meta))
    return run


def _compare(base: Path, new: Path, capsys, *extra: str) -> tuple[int, dict]:
    rc = cli.main(["compare", str(base), str(new), "--json", *extra])
    return rc, json.loads(capsys.readouterr().out)


def test_planted_slowdown_fails(tmp_path: Path, capsys) -> None:
    rc, out = _compare(_run(tmp_path, "a", 1), _run(tmp_path, "b", 2, factor=1.3), capsys)
    assert rc == 1
    assert out["counts"]["regression"] == 16  # 8 sizes x (all_reduce + all_gather) ring, every one
    assert all(0.15 < p["ratio"] - 1 < 0.45 for p in out["points"])


def test_planted_speedup_passes_and_is_reported(tmp_path: Path, capsys) -> None:
    rc, out = _compare(_run(tmp_path, "a", 1), _run(tmp_path, "b", 2, factor=0.7), capsys)
    assert rc == 0 and out["counts"]["improvement"] == 16 and out["counts"]["regression"] == 0


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_noise_only_pair_passes(tmp_path: Path, capsys, seed: int) -> None:
    rc, out = _compare(_run(tmp_path, "a", 1), _run(tmp_path, "b", seed), capsys)
    assert rc == 0 and out["counts"]["regression"] == 0


def test_threshold_only_without_samples(tmp_path: Path, capsys) -> None:
    base = _run(tmp_path, "a", 1, samples=False)
    rc, out = _compare(base, _run(tmp_path, "b", 2, factor=1.5, samples=False), capsys)
    assert rc == 1 and {p["basis"] for p in out["points"]} == {"threshold only"}
    rc, out = _compare(base, _run(tmp_path, "c", 3, factor=1.02, samples=False), capsys, "--threshold", "0.2")
    assert rc == 0


def test_table_and_bad_input(tmp_path: Path, capsys) -> None:
    a = _run(tmp_path, "a", 1)
    assert cli.main(["compare", str(a), str(_run(tmp_path, "b", 2, factor=1.3))]) == 1
    table = capsys.readouterr().out
    assert "regression" in table and "95% CI" in table and "16 regressed" in table
    assert cli.main(["compare", str(a), str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("collbench: error:")
    assert cli.main(["compare", str(a)]) == 2


def test_holm() -> None:
    assert holm([0.01, 0.04, float("nan"), 0.03]) == pytest.approx([0.03, 0.06, float("nan"), 0.06], nan_ok=True)


def _bench(out: Path, slow_us: int, capsys, monkeypatch) -> Path:
    """A real 2-rank gloo run through ``collbench run`` (main() in this process; the ranks are spawned)."""
    from collbench.cli import main

    monkeypatch.setenv("COLLBENCH_TESTING", "1")
    monkeypatch.setenv("COLLBENCH_TEST_SLOW_US", str(slow_us))
    args = ["run", "--nprocs", "2", "--collectives", "all_reduce", "--algorithms", "builtin,test_slow"]
    args += ["-b", "1K", "-e", "16K", "-f", "2", "-n", "30", "-w", "3", "--out", str(out), "--quiet"]
    code = main(args)
    out_text, err = capsys.readouterr()
    assert code == 0, err
    return Path(out_text.strip().splitlines()[-1])


@pytest.mark.alone
@pytest.mark.timeout(240)
def test_real_runs_noise_pair_passes_and_planted_sleep_fails(tmp_path: Path, capsys, monkeypatch) -> None:
    """Through the harness: two identical runs are not a regression; a 5 ms sleep per call is.

    Relative to the builtin sampled in the same rounds: in absolute times this host shifts by up to 25 % between
    two runs seconds apart, and 2 of 20 identical pairs (-n 30) failed compare (1 of 20 with the default visits);
    relative to builtin 0 of 20 and 0 of 20 (results/README.md)."""
    a, b = (_bench(tmp_path / name, 0, capsys, monkeypatch) for name in ("a", "b"))
    rc, out = _compare(a, b, capsys, "--relative-to", "builtin")
    assert rc == 0, [p for p in out["points"] if p["verdict"] == "regression"]
    assert {p["algorithm"] for p in out["points"]} == {"test_slow"} and len(out["points"]) == 5
    rc, out = _compare(a, _bench(tmp_path / "c", 5000, capsys, monkeypatch), capsys, "--relative-to", "builtin")
    assert rc == 1
    assert {p["verdict"] for p in out["points"]} == {"regression"}
    assert all(p["ratio"] > 3 for p in out["points"])  # 5 ms on top of ~0.5 ms


def _host_run(tmp: Path, name: str, seed: int, host: float = 1.0, ring: float = 1.0) -> Path:
    """Synthetic run of builtin and ring: every time x ``host`` (the machine shifted), ring's also x ``ring``."""

    def scaled(c: str, a: str, p: int, n: float) -> float:
        return HW.time_us(c, a, p, n, None) * host * (ring if a == "ring" else 1.0)

    cases = (("all_reduce", "builtin"), ("all_reduce", "ring"))
    return synthetic.write_run(tmp / name, HW, cases=cases, world_size=4, noise=0.08, seed=seed, time_fn=scaled)


def test_relative_to_cancels_a_host_shift_and_keeps_a_real_one(tmp_path: Path, capsys) -> None:
    """A 30 % slower host fails the absolute compare and passes --relative-to builtin; a 30 % slower ring
    on the same slower host is still caught relative to builtin, every size of it and nothing else."""
    a = _host_run(tmp_path, "a", 1)
    shifted = _host_run(tmp_path, "b", 2, host=1.3)
    rc, out = _compare(a, shifted, capsys)
    assert rc == 1 and out["counts"]["regression"] == 16  # builtin and ring, 8 sizes each
    assert out["run_shift"]["relative_to_builtin"]["regression"] == 0  # named, with what relative mode says
    assert cli.main(["compare", str(a), str(shifted)]) == 1
    table = capsys.readouterr().out
    assert "# relative to builtin (a shift of the host cancels): 0 regressed, 0 improved of 8" in table
    rc, out = _compare(a, shifted, capsys, "--relative-to", "builtin")
    assert rc == 0 and out["counts"]["regression"] == 0 and len(out["points"]) == 8
    assert all(p["relative_to"] == "builtin" and p["algorithm"] == "ring" for p in out["points"])
    assert abs(out["run_shift"]["median_ratio"] - 1) < 0.05
    rc, out = _compare(a, _host_run(tmp_path, "c", 3, host=1.3, ring=1.3), capsys, "--relative-to", "builtin")
    assert rc == 1 and out["counts"]["regression"] == 8
    assert all(0.15 < p["ratio"] - 1 < 0.45 for p in out["points"])


def test_relative_to_an_algorithm_a_run_lacks_is_one_line(tmp_path: Path, capsys) -> None:
    a = _host_run(tmp_path, "a", 1)
    b = synthetic.write_run(tmp_path / "b", HW, cases=(("all_reduce", "ring"),), world_size=4, seed=2)  # no builtin
    assert cli.main(["compare", str(a), str(b), "--relative-to", "builtin"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["collbench: error: --relative-to builtin: NEW has no builtin points (it has ring)"]


def _change(ratio: float, nbytes: int = 1024) -> PointChange:
    return PointChange("all_reduce", "ring", 2, nbytes, True, 100.0, 100.0 * ratio, ratio, ratio, ratio, 1.0, "same",
                       "samples")  # fmt: skip


def test_run_shift_names_a_move_of_the_whole_run() -> None:
    """Every point of a run 5-32 % faster than the run before is the host, not 30 improvements."""
    shifted = run_shift([_change(r) for r in (0.78, 0.82, 0.85, 0.80, 0.95, 0.88)])
    assert shifted["median_ratio"] == pytest.approx(0.835) and shifted["same_direction"] == 1.0
    assert "moved together" in shifted["note"]
    mixed = run_shift([_change(r) for r in (0.9, 1.1, 0.95, 1.05, 1.0, 1.02)])
    assert mixed["note"] == "" and mixed["median_ratio"] == pytest.approx(1.01)
