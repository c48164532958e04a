"""collbench predict agrees with the closed forms of docs/theory.md; the scaling table with a hand computation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis import fitting, predict
from analysis.fitting import FIT_COLUMNS
from collbench import cli
from collectives import costs


def _fits(tmp_path: Path) -> Path:
    """A fits.csv with known model rows: ring all_reduce alpha 10 µs, 5 GB/s; joint hardware 10 µs, 5 GB/s, 2 GB/s."""
    base = {c: None for c in FIT_COLUMNS}
    rows = [
        {**base, "scope": "model", "collective": "all_reduce", "algorithm": "ring", "alpha_us": 10.0, "bw_gbps": 5.0},
        {**base, "scope": "model", "collective": "*", "algorithm": "*", "alpha_us": 10.0, "bw_gbps": 5.0,
         "gamma_gbps": 2.0},
    ]  # fmt: skip
    path = tmp_path / "fits.csv"
    pd.DataFrame(rows, columns=list(FIT_COLUMNS)).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("p", [8, 64, 512])
@pytest.mark.parametrize("n", [1 << 20, 1 << 30])
def test_closed_forms(tmp_path: Path, p: int, n: int) -> None:
    fits = predict.load_fits([str(_fits(tmp_path))])
    table = predict.predict_table(fits, "all_reduce", ["ring", "recursive_doubling", "rabenseifner"], [n], [p])
    t = table.set_index("algorithm")["time_us"]
    alpha, beta, gamma = 10.0, 1e-3 / 5.0, 1e-3 / 2.0
    lg = p.bit_length() - 1  # powers of two here
    assert t["ring"] == pytest.approx(2 * (p - 1) * alpha + 2 * (p - 1) / p * n * beta)  # gamma folded in beta
    assert t["recursive_doubling"] == pytest.approx(lg * alpha + lg * n * beta + lg * n * gamma)
    assert t["rabenseifner"] == pytest.approx(2 * lg * alpha + 2 * (p - 1) / p * n * beta + (p - 1) / p * n * gamma)
    busbw = table.set_index("algorithm")["busbw_gbps"]
    assert busbw["ring"] == pytest.approx(n / t["ring"] * 1e-3 * 2 * (p - 1) / p)
    assert table.loc[table.best, "algorithm"].item() == t.idxmin()


def test_scaling_table_by_hand(tmp_path: Path) -> None:
    fits = predict.load_fits([str(_fits(tmp_path))])
    table = predict.scaling_table(fits, grad_bytes=1 << 30, compute_ms=300.0, world_sizes=[1, 4], overlap=0.5)
    comm_ms = (2 * 3 * 10.0 + 2 * 3 / 4 * (1 << 30) * 1e-3 / 5.0) / 1e3
    row = table.set_index("world_size").loc[4]
    assert row.comm_ms == pytest.approx(comm_ms)
    assert row.step_ms == pytest.approx(300 + 0.5 * comm_ms)
    assert row.speedup == pytest.approx(4 * 300 / (300 + 0.5 * comm_ms))
    assert row.efficiency == pytest.approx(300 / (300 + 0.5 * comm_ms))
    assert row.strong_speedup == pytest.approx(300 / (75 + 0.5 * comm_ms))
    assert table.set_index("world_size").loc[1].speedup == 1.0


def test_predict_cli(tmp_path: Path, capsys) -> None:
    fits = str(_fits(tmp_path))
    assert cli.main(["predict", "--fits", fits, "--bytes", "1M,1G", "--world-sizes", "8,1024"]) == 0
    out = capsys.readouterr().out
    assert "<- best" in out and "rabenseifner" in out and "joint hardware fit" in out
    assert cli.main(["predict", "--fits", fits, "--scaling", "--grad-bytes", "1G", "--world-sizes", "1,2,4"]) == 0
    assert "speedup" in capsys.readouterr().out
    for bad in (["--bytes", "1X"], ["--world-sizes", "0"], ["--algorithm", "nope"]):
        assert cli.main(["predict", "--fits", fits, *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("collbench: error:")
    assert cli.main(["predict", "--fits", str(tmp_path / "none.csv")]) == 2


def test_fitting_model_time_matches_costs() -> None:
    t = fitting.model_time_us("all_gather", "ring", 4, 4096, alpha_us=5.0, bw_gbps_=1.0)
    assert t == pytest.approx(3 * 5.0 + 3 / 4 * 4096 * 1e-3)


def _model_fits(tmp_path: Path, rows: list[dict]) -> pd.DataFrame:
    base = {c: None for c in FIT_COLUMNS}
    path = tmp_path / "fits.csv"
    pd.DataFrame([{**base, "scope": "model", **r} for r in rows], columns=list(FIT_COLUMNS)).to_csv(path, index=False)
    return predict.load_fits([str(path)])


def test_builtin_on_an_unknown_schedule_is_a_lower_bound_never_best(tmp_path: Path) -> None:
    """A builtin fitted with the lower-bound coefficients ties or beats every algorithm by construction."""
    fits = _model_fits(tmp_path, [
        {"collective": "all_reduce", "algorithm": "builtin", "backend": "nccl", "alpha_us": 10.0, "bw_gbps": 5.0},
        {"collective": "all_reduce", "algorithm": "ring", "backend": "nccl", "alpha_us": 10.0, "bw_gbps": 5.0},
    ])  # fmt: skip
    table = predict.predict_table(fits, "all_reduce", ["builtin", "ring"], [1 << 20], [64, 512])
    b = table[table.algorithm == "builtin"]
    assert b.lower_bound.all() and not b.best.any() and b.basis.str.contains("LOWER BOUND").all()
    assert (table[table.algorithm == "ring"].best).all()
    # 512 ranks: the lower bound has ceil(lg 512) = 9 latency steps where a ring runs 1022
    ring = table[table.algorithm == "ring"].set_index("world_size")
    assert b.set_index("world_size").time_us[512] < ring.time_us[512]


def test_builtin_on_gloo_is_modelled_as_gloos_ring_and_ranked(tmp_path: Path) -> None:
    fits = _model_fits(tmp_path, [
        {"collective": "all_reduce", "algorithm": "builtin", "backend": "gloo", "alpha_us": 10.0, "bw_gbps": 5.0},
        {"collective": "all_reduce", "algorithm": "ring", "backend": "gloo", "alpha_us": 11.0, "bw_gbps": 5.0},
    ])  # fmt: skip
    table = predict.predict_table(fits, "all_reduce", ["builtin", "ring"], [1 << 20], [512])
    t = table.set_index("algorithm")
    assert not t.lower_bound.any() and t.best["builtin"]
    assert t.time_us["builtin"] == pytest.approx(2 * 511 * 10.0 + 2 * 511 / 512 * (1 << 20) * 1e-3 / 5.0)


def test_predict_uses_the_fitted_segment_size(tmp_path: Path) -> None:
    """A tree fitted at 256 KiB segments is predicted with 256 KiB segments, not the 1 MiB default."""
    seg = 256 << 10
    fits = _model_fits(tmp_path, [{"collective": "all_reduce", "algorithm": "tree", "alpha_us": 10.0, "bw_gbps": 5.0,
                                   "segment_bytes": seg}])  # fmt: skip
    n = 1 << 30
    t = predict.predict_table(fits, "all_reduce", ["tree"], [n], [64]).time_us.item()
    c = costs.cost("all_reduce", "tree", 64, nbytes=n, segment_bytes=seg)
    assert t == pytest.approx(c.L * 10.0 + c.W * n * 1e-3 / 5.0)
    assert c.L != costs.cost("all_reduce", "tree", 64, nbytes=n).L


def test_buckets_pipeline_separately_without_double_counting(tmp_path: Path) -> None:
    """grad = 4 buckets: comm = 4 bucket all-reduces (the tree's segment latency counted once per bucket)."""
    fits = _model_fits(tmp_path, [{"collective": "all_reduce", "algorithm": "tree", "alpha_us": 10.0, "bw_gbps": 5.0,
                                   "segment_bytes": 1 << 20}])  # fmt: skip
    grad, bucket = 100 << 20, 25 << 20
    kw = {"grad_bytes": grad, "compute_ms": 300.0, "world_sizes": [64], "algorithm": "tree"}
    one = predict.scaling_table(fits, **kw).comm_ms.item()
    whole = predict.scaling_table(fits, bucket_bytes=grad, **kw).comm_ms.item()
    four = predict.scaling_table(fits, bucket_bytes=bucket, **kw).comm_ms.item()
    c = costs.cost("all_reduce", "tree", 64, nbytes=bucket, segment_bytes=1 << 20)
    assert whole == pytest.approx(one)
    assert four == pytest.approx(4 * (c.L * 10.0 + c.W * bucket * 1e-3 / 5.0) / 1e3)
