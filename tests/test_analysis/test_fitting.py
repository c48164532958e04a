"""Fits recover known alpha, beta, gamma from synthetic runs; breakpoints, robust fits, CIs, fits.csv, CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import fitting, synthetic
from analysis.read_runs import load_runs
from collbench import cli

HW = synthetic.Hardware(alpha_us=20.0, bw_gbps=2.0, gamma_gbps=1.0)
CASES = (("all_reduce", "ring"), ("all_gather", "ring"), ("reduce_scatter", "ring"), ("broadcast", "tree"))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("synthetic")
    for p in (2, 4, 8):
        synthetic.write_run(out, HW, cases=CASES, world_size=p, noise=0.03, seed=p)
    return out, load_runs([out])


def _model(fits: pd.DataFrame, collective: str, algorithm: str) -> pd.Series:
    sel = fits[(fits.scope == "model") & (fits.collective == collective) & (fits.algorithm == algorithm)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_curve_fits_recover_closed_forms(sweep: tuple[Path, pd.DataFrame]) -> None:
    fits = fitting.fit_all(sweep[1], n_boot=100)
    curves = fits[fits.scope == "curve"]
    assert (curves.breaks_bytes == "").all(), "3% noise alone must not make breakpoints"
    covered = []
    for r in curves.itertuples():
        # docs/theory.md: ring all_reduce a = 2(p-1) alpha, b = 2(p-1)/p (beta + gamma/2); ring RS, AG: (p-1) alpha
        p = r.world_size
        want_a = {"all_reduce": 2 * (p - 1), "all_gather": p - 1, "reduce_scatter": p - 1}.get(r.collective)
        want_a = (want_a if want_a is not None else np.ceil(np.log2(p))) * HW.alpha_us
        beta, gamma = 1e-3 / HW.bw_gbps, 1e-3 / HW.gamma_gbps
        want_b = {
            "all_reduce": 2 * (p - 1) / p * beta + (p - 1) / p * gamma,
            "all_gather": (p - 1) / p * beta,
            "reduce_scatter": (p - 1) / p * (beta + gamma),
            "broadcast": np.ceil(np.log2(p)) * beta,
        }[r.collective]
        assert r.alpha_us == pytest.approx(want_a, rel=0.05), r
        assert 1e-3 / r.bw_gbps == pytest.approx(want_b, rel=0.05), r
        assert r.alpha_us_lo <= r.alpha_us <= r.alpha_us_hi and r.bw_gbps_lo <= r.bw_gbps <= r.bw_gbps_hi
        assert r.r2 > 0.99 and r.mape < 5
        covered.append(r.alpha_us_lo <= want_a <= r.alpha_us_hi and r.bw_gbps_lo <= 1e-3 / want_b <= r.bw_gbps_hi)
    assert np.mean(covered) >= 0.75, f"95% bootstrap CIs cover the truth in only {np.mean(covered):.0%} of curves"


def test_model_fits_recover_alpha_beta_and_joint_gamma(sweep: tuple[Path, pd.DataFrame]) -> None:
    fits = fitting.fit_all(sweep[1], n_boot=200)
    ag = _model(fits, "all_gather", "ring")  # no reduction: beta alone
    assert ag.alpha_us == pytest.approx(HW.alpha_us, rel=0.05) and ag.bw_gbps == pytest.approx(HW.bw_gbps, rel=0.05)
    assert ag.alpha_us_lo < ag.alpha_us < ag.alpha_us_hi and ag.bw_gbps_lo < ag.bw_gbps < ag.bw_gbps_hi
    assert ag.alpha_us_hi - ag.alpha_us_lo < 0.05 * HW.alpha_us  # tight with 3% noise and 24 points
    assert ag.loo_mape < 5
    ar = _model(fits, "all_reduce", "ring")  # G/W = 1/2 for every p: gamma not identified alone
    assert np.isnan(ar.gamma_gbps) and "not identified" in ar.method
    joint = _model(fits, "*", "*")  # reducing + non-reducing together: gamma identified
    assert joint.alpha_us == pytest.approx(HW.alpha_us, rel=0.05)
    assert joint.bw_gbps == pytest.approx(HW.bw_gbps, rel=0.05)
    assert joint.gamma_gbps == pytest.approx(HW.gamma_gbps, rel=0.05)


def test_planted_breakpoint_is_found(tmp_path: Path) -> None:
    sizes = [1 << k for k in range(10, 27)]
    switch = 1 << 18

    def two_protocols(c: str, a: str, p: int, n: float) -> float:  # LL-like below 256 KiB, Simple above
        return 10.0 + n * 1e-3 / 0.5 if n < switch else 60.0 + n * 1e-3 / 4.0

    run = synthetic.write_run(tmp_path, HW, cases=(("all_reduce", "builtin"),), sizes=sizes, time_fn=two_protocols)
    fits = fitting.fit_all(load_runs([run]), n_boot=50)
    curve = fits[fits.scope == "curve"].sort_values("piece")
    assert len(curve) == 2 and curve.breaks_bytes.iloc[0] == str(switch)
    assert curve.bw_gbps.iloc[0] == pytest.approx(0.5, rel=0.05) and curve.bw_gbps.iloc[1] == pytest.approx(4, rel=0.05)
    pred = fitting.curve_time_us(fits, {"collective": "all_reduce", "algorithm": "builtin"}, [4096, 1 << 22])
    assert pred == pytest.approx([two_protocols("", "", 4, 4096), two_protocols("", "", 4, 1 << 22)], rel=0.05)


@pytest.mark.parametrize("robust", ["huber", "theil-sen"])
def test_robust_fits_shrug_off_an_outlier(robust: str) -> None:
    n = np.array([1 << k for k in range(10, 24)], dtype=float)
    t = 30.0 + n * 1e-3 / 2.0
    t_bad = t.copy()
    t_bad[5] *= 4.0  # one size hit by a hiccup
    a, b = fitting.fit_line(n, t_bad, robust)
    assert 1e-3 / b == pytest.approx(2.0, rel=0.05)
    _, b_wls = fitting.fit_line(n, t_bad)
    assert abs(1e-3 / b - 2.0) < abs(1e-3 / b_wls - 2.0)
    if robust == "huber":  # Theil-Sen's intercept, a median of t - b n, is not robust over many decades
        assert a == pytest.approx(30.0, rel=0.1)


def test_fit_cli_writes_fits_csv(sweep: tuple[Path, pd.DataFrame], tmp_path: Path, capsys) -> None:
    rc = cli.main(["fit", str(sweep[0]), "--out", str(tmp_path), "--boot", "20"])
    out = capsys.readouterr().out
    assert rc == 0 and "alpha_us [95% CI]" in out and "wrote" in out
    with open(tmp_path / "fits.csv") as f:
        header = next(csv.reader(f))
    assert tuple(header) == fitting.FIT_COLUMNS
    assert header[:15] == [
        "scope",
        "collective",
        "algorithm",
        "backend",
        "world_size",
        "alpha_us",
        "alpha_us_lo",
        "alpha_us_hi",
        "bw_gbps",
        "bw_gbps_lo",
        "bw_gbps_hi",
        "gamma_gbps",
        "r2",
        "mape",
        "n_points",
    ]  # fmt: skip  (docs/fitting.md's order)
    fits = pd.read_csv(tmp_path / "fits.csv")
    assert set(fits.scope) == {"curve", "model"} and len(fits) == 4 * 3 + 4 + 1


def test_fit_cli_bad_input(tmp_path: Path, capsys) -> None:
    assert cli.main(["fit", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("collbench: error:") and "missing" in err[0]
    run = synthetic.write_run(tmp_path, HW, sizes=[1024, 2048])  # two sizes: nothing to fit
    assert cli.main(["fit", str(run)]) == 2
    assert "nothing to fit" in capsys.readouterr().err
    (run / "results.csv").write_text("not,a,collbench,file\n1,2,3,4\n")
    assert cli.main(["fit", str(run)]) == 2
    assert "not a collbench" in capsys.readouterr().err


def test_gamma_needs_a_design_that_separates_it(tmp_path: Path) -> None:
    """recursive_doubling at p = 2, 3, 4: G/W is 1, 2/3, 1 - a 1.5-fold spread, too little to tell gamma from
    beta (a condition number below 1e6 alone would accept it, with an unbounded interval): gamma is left out,
    and the fit says so."""
    hw = synthetic.Hardware(alpha_us=20.0, bw_gbps=2.0, gamma_gbps=1.0)
    for p in (2, 3, 4):
        synthetic.write_run(tmp_path, hw, cases=(("all_reduce", "recursive_doubling"),), world_size=p, noise=0.03,
                            seed=p)  # fmt: skip
    fits = fitting.fit_all(load_runs([tmp_path]), n_boot=50)
    rd = _model(fits, "all_reduce", "recursive_doubling")
    assert np.isnan(rd.gamma_gbps)
    assert "gamma not identified" in rd.method and "varies only 1.5-fold" in rd.method and "left out" in rd.method
    design = np.array([[1, 1, 1], [3, 3, 2], [2, 2, 2], [1, 10, 10], [3, 30, 20], [2, 20, 20]], dtype=float)
    assert not fitting.gamma_identified(design, design @ [20, 0.5, 1.0])
    mixed = np.array([[1, 1, 0], [2, 2, 1], [1, 10, 0], [2, 20, 10], [3, 30, 30], [1, 5, 5]], dtype=float)
    assert fitting.gamma_identified(mixed, mixed @ [20, 0.5, 1.0])


def test_builtin_model_fit_names_its_basis(tmp_path: Path) -> None:
    for p in (2, 3, 4):
        synthetic.write_run(tmp_path, HW, cases=(("all_reduce", "builtin"),), world_size=p, noise=0.03, seed=p)
    fits = fitting.fit_all(load_runs([tmp_path]), n_boot=0)
    b = _model(fits, "all_reduce", "builtin")  # synthetic runs are backend gloo: its ring, not the lower bound
    assert "gloo ring" in b.method and "lower bound" not in b.method
    assert b.alpha_us == pytest.approx(HW.alpha_us, rel=0.1)


def test_six_sizes_are_not_split_into_three_point_pieces(tmp_path: Path) -> None:
    """A 6-size sweep (an nccl-tests import of 512 MiB - 16 GiB) whose slope changes halfway: two pieces of 3
    sizes would fit each line to noise, so the curve stays one piece (MIN_PIECE_SIZES)."""
    sizes = [1 << k for k in range(29, 35)]

    def bent(c: str, a: str, p: int, n: float) -> float:
        return 600.0 + n * 1e-3 / (400.0 if n < 1 << 32 else 300.0)

    run = synthetic.write_run(tmp_path, HW, cases=(("all_reduce", "builtin"),), sizes=sizes, time_fn=bent)
    fits = fitting.fit_all(load_runs([run]), n_boot=20)
    curve = fits[fits.scope == "curve"]
    assert len(curve) == 1 and curve.breaks_bytes.iloc[0] == ""
    assert curve.n_points.iloc[0] == 6
    n, t = np.array(sizes, dtype=float), np.array([bent("", "", 0, x) for x in sizes])
    assert fitting.find_breaks(n, t, min_sizes=3), "the old 3-size minimum does split this curve"
