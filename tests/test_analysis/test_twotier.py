"""Two-tier model (analysis/twotier.py, docs/two-tier.md): formulas, recovery from synthetic clusters,
algorithm-switch detection, back-test, predict --json / --scaling cost, one-world-size prediction, export."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from analysis import twotier
from analysis.synthetic import Hardware, TwoTierHardware, write_run, write_two_tier_run
from collbench import cli
from collectives import costs

HW = TwoTierHardware(alpha_intra_us=4.0, bw_intra_gbps=150.0, alpha_inter_us=12.0, bw_inter_gbps=40.0)
NODES = (1, 2, 4, 8, 16)


def _cluster(out: Path, switch_at: int | None = 2, noise: float = 0.03, g: int = 8) -> Path:
    for i, n in enumerate(NODES):
        schedule = "nvls_tree_physical" if n == switch_at else "ring"
        write_two_tier_run(out, HW, nnodes=n, gpus_per_node=g, schedule=schedule, noise=noise, seed=10 + i)
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _cluster(tmp_path_factory.mktemp("cluster"))


@pytest.fixture(scope="module")
def fitted(cluster: Path) -> twotier.TwoTierFit:
    return twotier.fit_two_tier(twotier.load_points([str(cluster)]), "all_reduce", n_boot=100)


def test_one_node_ring_is_the_flat_ring() -> None:
    for g in (2, 3, 8):
        c = twotier.tier_cost("all_reduce", "ring", 1, g)
        flat = costs.cost("all_reduce", "ring", g)
        assert (c.Li, c.Le, c.Wi, c.We) == (flat.L, 0.0, flat.W, 0.0)


def test_two_tier_coefficients_by_hand() -> None:
    # ring over 4 nodes x 8: 2(p-1) = 62 steps, 2(N-1) = 6 of them cross the network (NCCL tuning.cc)
    c = twotier.tier_cost("all_reduce", "ring", 4, 8)
    assert (c.Li, c.Le, c.Wi, c.We) == (56.0, 6.0, 2 * 31 / 32, 2 * 31 / 32)
    c = twotier.tier_cost("all_gather", "ring", 4, 8)
    assert (c.Li, c.Le) == (28.0, 3.0)
    # tree: 2((g-1) intra + log2(N) inter) steps; bytes as NCCL's tuning.cc models the tree's bandwidth
    # (busBw x 0.92, algorithm bandwidth half of it): 2 / 0.92 per byte of n on both tiers, 2 nodes included
    assert twotier.tier_cost("all_reduce", "tree", 2, 8).We == pytest.approx(2 / 0.92)
    c = twotier.tier_cost("all_reduce", "tree", 16, 8)
    assert (c.Li, c.Le) == (14.0, 8.0) and c.Wi == c.We == pytest.approx(2 / 0.92)
    # all_to_all (direct): (g-1)/p of n over the link, g(p-g)/p through the node's NICs; busbw at the roof
    c = twotier.tier_cost("all_to_all", "direct", 4, 8)
    assert (c.Wi, c.We) == (7 / 32, 8 * 24 / 32)
    t = twotier.tier_time_us(c, 1e9, HW.tiers())
    assert 1e9 * 31 / 32 / t * 1e-3 == pytest.approx(min(150.0 * 31 / 7, 40.0 * 31 / (8 * 24)), rel=1e-3)
    # hierarchical: phases add; time by hand at 4 x 8, 1 GB
    c = twotier.tier_cost("all_reduce", "hierarchical", 4, 8)
    t = twotier.tier_time_us(c, 1e9, HW.tiers())
    by_hand = 14 * 4.0 + 6 * 12.0 + 2 * 7 / 8 * 1e9 / 150e3 + 2 * 3 / 4 * 1e9 / 40e3
    assert t == pytest.approx(by_hand)
    # ring: the network bounds every step from 2 nodes on
    ring = twotier.tier_time_us(twotier.tier_cost("all_reduce", "ring", 4, 8), 1e9, HW.tiers())
    assert ring == pytest.approx(56 * 4.0 + 6 * 12.0 + 2 * 31 / 32 * 1e9 / 40e3)


def test_parameters_recovered_within_5_percent(fitted: twotier.TwoTierFit) -> None:
    for name in twotier.PARAMS:
        assert getattr(fitted.tiers, name) == pytest.approx(getattr(HW, name), rel=0.05), name


def test_intervals_cover_the_truth(tmp_path: Path) -> None:
    """95 % intervals over 6 independent noisy clusters: at least 20 of the 24 (parameter, cluster) intervals
    hold the truth (a 95 % interval misses 1.2 of 24 on average; P(more than 4 misses) < 1 %)."""
    covered = 0
    for rep in range(6):
        out = tmp_path / str(rep)
        for i, n in enumerate((1, 4, 16)):
            write_two_tier_run(out, HW, nnodes=n, gpus_per_node=8, seed=1000 * rep + i,
                               sizes=[1 << k for k in range(18, 33, 2)])  # fmt: skip
        fit = twotier.fit_two_tier(twotier.load_points([str(out)]), n_boot=60, backtest=False, seed=rep)
        for name in twotier.PARAMS:
            lo, hi = fit.interval(name)
            covered += lo <= getattr(HW, name) <= hi
    assert covered >= 20


def test_switch_at_two_nodes_is_flagged_and_kept_out(fitted: twotier.TwoTierFit) -> None:
    flagged = [s.nnodes for s in fitted.scales if not s.in_fit]
    assert flagged == [2]
    assert "another algorithm" in next(s.note for s in fitted.scales if s.nnodes == 2)


def test_no_switch_flags_nothing(tmp_path: Path) -> None:
    fit = twotier.fit_two_tier(twotier.load_points([str(_cluster(tmp_path, None))]), n_boot=0, backtest=False)
    assert all(s.in_fit for s in fit.scales)


def test_prediction_interval_covers_unmeasured_scales(fitted: twotier.TwoTierFit) -> None:
    for nodes in (32, 64):
        for n in (1 << 20, 1 << 30):
            t, lo, hi = fitted.predict_us("ring", nodes, 8, n)
            truth = HW.time_us("all_reduce", "ring", nodes, 8, n)
            assert t == pytest.approx(truth, rel=0.05)
            assert lo <= truth <= hi or abs(t - truth) / truth < 0.005, (nodes, n, lo, hi, truth)


def test_leave_one_scale_out(fitted: twotier.TwoTierFit) -> None:
    left_out = {r["nnodes"]: r for r in fitted.loso}
    assert set(left_out) == {4, 8, 16}  # 1 node: the intra tier; 2 nodes: flagged
    for r in left_out.values():
        assert r["n_sizes"] == 3 and r["mape_pct"] < 5.0


def test_one_node_only_is_refused(tmp_path: Path) -> None:
    write_two_tier_run(tmp_path, HW, nnodes=1, gpus_per_node=8)
    with pytest.raises(Exception, match="no multi-node scale"):
        twotier.fit_two_tier(twotier.load_points([str(tmp_path)]), n_boot=0)


def test_predict_json_records(cluster: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["predict", "--fits", str(cluster), "--world-sizes", "64,1024", "--bytes", "1G", "--json",
                   "--boot", "50"])  # fmt: skip
    assert rc == 0
    recs = json.loads(capsys.readouterr().out)
    assert {(r["algorithm"], r["world_size"]) for r in recs} == {
        (a, p) for a in ("ring", "tree", "hierarchical", "builtin") for p in (64, 1024)
    }
    for r in recs:
        assert r["gpus_per_node"] == 8 and r["nnodes"] == r["world_size"] // 8
        assert r["time_us_lo"] <= r["time_us"] <= r["time_us_hi"]
        assert r["busbw_gbps"] == pytest.approx(r["bytes"] * 1e-3 / r["time_us"] * 2 * (r["world_size"] - 1)
                                                / r["world_size"])  # fmt: skip
    assert sum(r["best"] for r in recs) == 2


def test_predict_bad_world_size_one_line(cluster: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["predict", "--fits", str(cluster), "--world-sizes", "60", "--boot", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a multiple of 8" in err[0]


def test_scaling_cost_per_step(cluster: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["predict", "--fits", str(cluster), "--scaling", "--world-sizes", "8,64", "--grad-bytes", "1G",
                   "--compute-ms", "100", "--gpu-hour-usd", "3", "--json", "--boot", "0"])  # fmt: skip
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    for r in rows:
        assert r["usd_per_step"] == pytest.approx(r["world_size"] * 3.0 * r["step_ms"] / 3.6e6)
        assert r["usd_per_1000_steps"] == pytest.approx(1000 * r["usd_per_step"])
    truth_ms = HW.time_us("all_reduce", "ring", 8, 8, 1 << 30) / 1e3
    assert rows[1]["comm_ms"] == pytest.approx(truth_ms, rel=0.05)


def test_one_world_size_prediction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hw = Hardware(alpha_us=30.0, bw_gbps=3.0)
    write_run(tmp_path, hw, world_size=4, sizes=[1 << k for k in range(12, 26, 2)], noise=0.02)
    rc = cli.main(["predict", "--fits", str(tmp_path), "--algorithm", "ring", "--world-sizes", "16",
                   "--bytes", "64M", "--json", "--boot", "50"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr()
    rec = json.loads(out.out)[0]
    truth = hw.time_us("all_reduce", "ring", 16, 1 << 26, None)
    assert rec["time_us"] == pytest.approx(truth, rel=0.05)
    assert rec["time_us_lo"] <= rec["time_us"] <= rec["time_us_hi"]
    assert "one world size" in rec["basis"] and "extrapolated" in out.err


def test_export_astra_sim(cluster: Path, tmp_path: Path, fitted: twotier.TwoTierFit) -> None:
    out = tmp_path / "net.yml"
    assert cli.main(["export", "--astra-sim", "--fits", str(cluster), "--nodes", "128", "--out", str(out)]) == 0
    cfg = {}
    for line in out.read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split(":", 1)
            cfg[key] = [v.strip() for v in value.split("#")[0].strip(" []").split(",")]
    assert cfg["topology"] == ["Switch", "Switch"] and cfg["npus_count"] == ["8", "128"]
    bw = [float(v) for v in cfg["bandwidth"]]
    lat = [float(v) for v in cfg["latency"]]
    assert bw[0] == pytest.approx(HW.bw_intra_gbps, rel=0.05)
    assert bw[1] == pytest.approx(HW.bw_inter_gbps / 8, rel=0.05)
    assert lat[1] == pytest.approx(1e3 * HW.alpha_inter_us, rel=0.05)
    assert not math.isnan(bw[1])


def test_export_needs_two_tiers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_two_tier_run(tmp_path, HW, nnodes=1, gpus_per_node=8)
    assert cli.main(["export", "--astra-sim", "--fits", str(tmp_path)]) == 2
    assert "multi-node" in capsys.readouterr().err


REAL = Path(__file__).resolve().parents[1] / "data" / "scaling" / "nccl-tests-309-h100-ib400"


def test_real_series_nccl_tests_309(tmp_path: Path) -> None:
    """One H100 cluster at 2, 4, 8 nodes (tests/data/scaling/nccl-tests-309-h100-ib400/PROVENANCE.md): the
    2-node run (NVLSTree, 466 GB/s busbw over a 400 GB/s network) is flagged; leaving 4 or 8 nodes out and
    predicting it from the other gives < 10 % mean error at sizes >= 256 MiB."""
    from analysis.nccltests import import_file

    for log in sorted(REAL.glob("*.log")):
        import_file(log, tmp_path)
    fit = twotier.fit_two_tier(twotier.load_points([str(tmp_path)]), n_boot=50)
    assert [(s.nnodes, s.gpus_per_node, s.in_fit) for s in fit.scales] == [(2, 8, False), (4, 8, True), (8, 8, True)]
    assert 290 < fit.tiers.bw_inter_gbps < 340  # the ring plateau (~320-325 GB/s busbw), below the 400 GB/s network
    loso = {r["nnodes"]: r for r in fit.loso}
    assert set(loso) == {4, 8}
    for r in loso.values():
        assert r["n_sizes"] == 6 and r["mape_pct"] < 10.0, r
