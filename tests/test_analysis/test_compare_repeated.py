"""collbench compare on sides of several runs: the between-run model's verdicts, its MDE, and its refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from analysis import synthetic
from analysis.rundir import base_meta, new_run_dir, write_run_dir
from collbench import cli

HW = synthetic.Hardware(alpha_us=50.0, bw_gbps=1.0)
CASES = (("all_reduce", "ring"), ("all_reduce", "builtin"))
SIZES = tuple(1 << k for k in range(10, 23, 2))  # 1 KiB .. 4 MiB, 7 sizes


def _side(folder: Path, runs: int, seed: int, between: float, ring: float = 1.0, noise: float = 0.02,
          cases=CASES, world_size: int = 4) -> Path:
    """``runs`` synthetic runs in ``folder``: each run's level is the host's (log-normal, sd ``between``), every
    sample varies by ``noise`` within it; the ring is ``ring`` times slower."""
    rng = np.random.default_rng(seed)
    for i in range(runs):
        level = float(np.exp(rng.normal(0.0, between)))

        def time_fn(c: str, a: str, p: int, n: float, level: float = level) -> float:
            return HW.time_us(c, a, p, n, None) * level * (ring if a == "ring" else 1.0)

        synthetic.write_run(folder, HW, cases=cases, world_size=world_size, sizes=SIZES, noise=noise, iters=30,
                            seed=seed * 1000 + i, time_fn=time_fn)  # fmt: skip
    return folder


def _compare(capsys, *args: str) -> tuple[int, dict]:
    rc = cli.main(["compare", *args, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("collbench: error: "), captured
    assert "Traceback" not in captured.err
    return err[0]


def test_identical_code_with_a_small_spread_is_no_change(tmp_path: Path, capsys) -> None:
    base = _side(tmp_path / "a", 3, 1, between=0.003)
    new = _side(tmp_path / "b", 3, 2, between=0.003)
    rc, out = _compare(capsys, str(base), str(new))
    assert rc == 0 and out["model"] == "between-run"
    assert out["overall"]["answer"] == "no change" and out["counts"]["same"] == 14
    assert all(p["base_runs"] == 3 and p["new_runs"] == 3 and p["mde"] < 0.10 for p in out["points"])
    assert "folder of 3 run directories" in out["sides"]["base"]["how"]


def test_clear_2x_is_regressed_and_only_where_planted(tmp_path: Path, capsys) -> None:
    base = _side(tmp_path / "a", 3, 1, between=0.02)
    new = _side(tmp_path / "b", 3, 2, between=0.02, ring=2.0)
    rc, out = _compare(capsys, str(base), str(new))
    assert rc == 1 and out["overall"]["answer"] == "regressed"
    verdicts = {(p["algorithm"], p["bytes"]): p["verdict"] for p in out["points"]}
    assert all(v == "regression" for (a, _), v in verdicts.items() if a == "ring")
    assert all(v != "regression" for (a, _), v in verdicts.items() if a == "builtin")
    assert all(1.8 < p["ratio"] < 2.2 for p in out["points"] if p["algorithm"] == "ring")


def test_large_between_run_spread_is_inconclusive_and_says_how_many_runs(tmp_path: Path, capsys) -> None:
    """Runs of one side differ by ~20 %: a 10 % change cannot be seen with 3 runs, and the answer says so
    instead of "no change" (exit 0; --strict makes it 1); the MDE matches the spread that was planted."""
    base = _side(tmp_path / "a", 3, 1, between=0.2)
    new = _side(tmp_path / "b", 3, 2, between=0.2, ring=1.1)
    rc, out = _compare(capsys, str(base), str(new))
    assert rc == 0 and out["overall"]["answer"] == "inconclusive"
    assert all(p["verdict"] == "inconclusive" for p in out["points"])
    assert all(p["mde"] > 0.10 and p["runs_needed"] > 3 for p in out["points"])
    assert 0.05 < out["overall"]["between_run_sd_median"] < 0.5  # 6 draws of a 20 % spread
    assert cli.main(["compare", str(base), str(new), "--strict"]) == 1
    table = capsys.readouterr().out
    assert "runs per side" in table and "# answer: inconclusive" in table and "minimum detectable effect" in table


def test_one_run_per_side_still_works_and_says_the_spread_is_unknown(tmp_path: Path, capsys) -> None:
    base = _side(tmp_path / "a", 1, 1, between=0.0)
    new = _side(tmp_path / "b", 1, 2, between=0.0, ring=2.0)
    rc, out = _compare(capsys, str(base), str(new))
    assert rc == 1 and out["model"] == "within-run"
    assert out["overall"]["between_run_sd_median"] is None  # unknown, not 0
    assert all(p["mde"] is not None and p["mde"] > 0 for p in out["points"])
    assert cli.main(["compare", str(base), str(new)]) == 1
    assert "between runs: unknown (one run per side)" in capsys.readouterr().out


def test_a_side_of_several_runs_against_one_run(tmp_path: Path, capsys) -> None:
    base = _side(tmp_path / "a", 3, 1, between=0.003)
    (run,) = _side(tmp_path / "b", 1, 2, between=0.003).iterdir()
    rc, out = _compare(capsys, str(base), str(run))
    assert rc == 0 and out["model"] == "between-run"
    assert {(p["base_runs"], p["new_runs"]) for p in out["points"]} == {(3, 1)}


def _empty_run(folder: Path) -> Path:
    run = new_run_dir(folder, "empty")
    meta = base_meta(run, collbench_version="test", command=["test"], host="test", backend="gloo", device="cpu",
                     world_size=4, nnodes=1, ranks_per_node=4)  # fmt: skip
    return write_run_dir(run, meta, [])


def test_refusals_are_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    side = _side(tmp_path / "a", 2, 1, between=0.01)
    other = _side(tmp_path / "b", 2, 2, between=0.01)
    runs = sorted(side.iterdir())
    # compare D D, and one run on both sides (a run and the folder holding it)
    assert cli.main(["compare", str(runs[0]), str(runs[0])]) == 2
    assert "same path" in _one_error_line(capsys)
    assert cli.main(["compare", str(runs[0]), str(side)]) == 2
    assert "on both sides" in _one_error_line(capsys)
    # a side whose runs measured different configurations
    _side(tmp_path / "mixed", 1, 3, between=0.0, cases=(("all_gather", "ring"),))
    _side(tmp_path / "mixed", 1, 4, between=0.0)
    assert cli.main(["compare", str(tmp_path / "mixed"), str(other)]) == 2
    assert "runs of different configurations" in _one_error_line(capsys)
    # the sides measured different collectives or world sizes
    gather = _side(tmp_path / "gather", 2, 5, between=0.0, cases=(("all_gather", "ring"),))
    assert cli.main(["compare", str(runs[0]), str(gather)]) == 2
    assert "different configurations (collective" in _one_error_line(capsys)
    p8 = _side(tmp_path / "p8", 1, 6, between=0.0, world_size=8)
    assert cli.main(["compare", str(side), str(p8)]) == 2
    assert "world_size 4 vs 8" in _one_error_line(capsys)
    # a BASE with no point
    empty = _empty_run(tmp_path / "empty")
    assert cli.main(["compare", str(empty), str(runs[0])]) == 2
    assert "has no points" in _one_error_line(capsys)
    # bad numbers
    for opt in (["--power", "1.5"], ["--threshold", "0"], ["--threshold", "nan"]):
        assert cli.main(["compare", str(side), str(other), *opt]) == 2
        _one_error_line(capsys)


def test_mde_agrees_with_the_spread(tmp_path: Path, capsys) -> None:
    """The printed MDE is (t + t) x the spread x sqrt(2/K): with a known between-run sd it lands near the
    value computed from that sd (within the noise of estimating a spread from 5 + 5 runs)."""
    from scipy import stats

    sd = 0.05
    base = _side(tmp_path / "a", 5, 11, between=sd, noise=0.005)
    new = _side(tmp_path / "b", 5, 12, between=sd, noise=0.005)
    rc, out = _compare(capsys, str(base), str(new))
    m = len(out["points"])
    df = 8 + 8  # 5 + 5 runs, and the pooled spread weighted as much
    expected = math.expm1((stats.t.ppf(1 - 0.01 / m / 2, df) + stats.t.ppf(0.8, df)) * sd * math.sqrt(2 / 5))
    assert 0.4 * expected < out["overall"]["mde_median"] < 2.0 * expected
    assert 0.4 * sd < out["overall"]["between_run_sd_median"] < 2.0 * sd


def test_a_threshold_sized_change_is_found_as_often_as_the_mde_promises(tmp_path: Path, capsys) -> None:
    """A ring exactly 10 % slower (the threshold), runs that agree within 1 %, five per side: the MDE is well
    under 10 %, so every ring point is a regression, those whose estimate fell just below 10 % included (the
    rule "the estimate reaches T" alone would leave about half of them inconclusive)."""
    below = 0
    for seed in (31, 32, 33):
        base = _side(tmp_path / f"a{seed}", 5, seed, between=0.01, noise=0.005)
        new = _side(tmp_path / f"b{seed}", 5, seed + 100, between=0.01, noise=0.005, ring=1.10)
        rc, out = _compare(capsys, str(base), str(new))
        assert rc == 1 and out["overall"]["answer"] == "regressed"
        ring = [p for p in out["points"] if p["algorithm"] == "ring"]
        assert all(p["mde"] < 0.10 and p["verdict"] == "regression" for p in ring), ring
        assert all(p["verdict"] != "regression" for p in out["points"] if p["algorithm"] == "builtin")
        below += sum(p["ratio"] < 1.10 for p in ring)
    assert below > 0  # the second arm of the rule was exercised


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_same_code_runs_with_a_moderate_spread_never_regress(tmp_path: Path, capsys, seed: int) -> None:
    base = _side(tmp_path / "a", 3, seed, between=0.05)
    new = _side(tmp_path / "b", 3, seed + 100, between=0.05)
    rc, out = _compare(capsys, str(base), str(new))
    assert rc == 0 and out["counts"]["regression"] == 0


def test_repeat_manifest_and_a_folder_of_repeat_directories(tmp_path: Path, capsys) -> None:
    """A --repeat directory is read through its manifest, the --out folder holding it as all its runs; a
    corrupt manifest is one line."""
    rep = _side(tmp_path / "out" / "rep", 3, 1, between=0.003)
    names = sorted(p.name for p in rep.iterdir())
    (rep / "repeat.json").write_text(json.dumps({"kind": "collbench-repeat", "repeat": 3, "status": "complete",
                                                 "runs": [{"run_dir": n} for n in names]}))  # fmt: skip
    other = _side(tmp_path / "b", 3, 2, between=0.003)
    rc, out = _compare(capsys, str(rep), str(other))
    assert rc == 0 and out["sides"]["base"]["how"] == "repeat directory (3 runs)"
    rc, out = _compare(capsys, str(tmp_path / "out"), str(other))
    assert rc == 0 and out["sides"]["base"]["how"] == "folder of 1 repeat directory (3 runs)"
    (rep / "repeat.json").write_text("{not json")
    assert cli.main(["compare", str(rep), str(other)]) == 2
    assert "corrupt manifest" in _one_error_line(capsys)
