"""collbench predict agrees with the closed forms of docs/theory.md; the scaling table with a hand computation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis import cli, fitting, predict
from analysis.fitting import FIT_COLUMNS


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
