"""collbench scale's study on synthetic runs: the step schedule by hand, Amdahl's and Gustafson's fits, the
aggregation (speedup, efficiency, cost) against a prediction from fits of synthetic all_reduce runs of known
alpha and bandwidth, which term a planted discrepancy is blamed on, and the --study command's files."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import scaling_study as ss
from analysis.fitting import model_time_us
from analysis.predict import build_predictor
from analysis.synthetic import Hardware, write_run

ROOT = Path(__file__).resolve().parents[2]
HW = Hardware(alpha_us=300.0, bw_gbps=0.05)  # an emulated 0.4 Gb/s NIC
GRAD, COMPUTE = 16 * 2**20, 300.0


def test_schedule_by_hand() -> None:
    # four buckets ready at 187.5, 225, 262.5, 300 ms; each all-reduce 87 ms, one after another
    step, exposed = ss.schedule_ms(300.0, [87.0] * 4, [4] * 4)
    assert step == pytest.approx(187.5 + 4 * 87.0) and exposed == pytest.approx(187.5 + 4 * 87.0 - 300.0)
    assert ss.schedule_ms(300.0, [50.0], [16]) == pytest.approx((350.0, 50.0))  # one bucket: nothing hidden
    assert ss.schedule_ms(300.0, [1.0] * 4, [4] * 4) == pytest.approx((301.0, 1.0))  # all but the last hidden
    assert ss.schedule_ms(0.0, [10.0, 5.0], [8, 4]) == pytest.approx((15.0, 15.0))  # no compute: all exposed
    assert ss.buckets(10, 4) == [4, 4, 2] and ss.buckets(8, 8) == [8]


def test_amdahl_and_gustafson_recover_their_serial_fraction() -> None:
    ps = [1, 2, 4, 6, 8]
    assert ss.fit_amdahl(ps, [ss.amdahl(p, 0.12) for p in ps]) == pytest.approx(0.12)
    assert ss.fit_gustafson(ps, [ss.gustafson(p, 0.3) for p in ps]) == pytest.approx(0.3)
    assert math.isnan(ss.fit_amdahl([1], [1.0]))
    assert ss.fit_amdahl([1, 2, 4], [1.0, 0.8, 0.6]) == 1.0  # a slowdown: the law's bound, never s > 1
    assert ss.fit_gustafson([1, 2, 4], [1.0, 2.0, 4.0]) == 0.0  # linear speedup: no serial part


def _true_bucket_ms(p: int, bucket: int) -> list[float]:
    sizes = ss.buckets(GRAD, bucket)
    return [float(model_time_us("all_reduce", "ring", p, n, HW.alpha_us, HW.bw_gbps, None)) / 1e3 for n in sizes]


def _scale_run(parent: Path, p: int, mode: str, bucket: int, *, comm_factor: float = 1.0,
               compute_extra_ms: float = 0.0, steps: int = 8) -> Path:  # fmt: skip
    """A scale run directory whose steps follow the schedule with the true all-reduce times (x comm_factor)."""
    d = parent / f"run-{mode}-{p}-{bucket}-{comm_factor}-{compute_extra_ms}"
    d.mkdir(parents=True)
    rank_compute = COMPUTE / p if mode == "strong" else COMPUTE
    times = [t * comm_factor for t in _true_bucket_ms(p, bucket)] if p > 1 else [0.0] * len(ss.buckets(GRAD, bucket))
    compute = rank_compute + compute_extra_ms
    step, exposed = ss.schedule_ms(compute, times, ss.buckets(GRAD, bucket))
    with open(d / "steps.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ss.STEP_COLUMNS)
        w.writeheader()
        for i in range(steps):
            total = step * (1 + 0.002 * ((i % 3) - 1))
            w.writerow({"step": i, "total_ms": total, "compute_ms": compute, "exposed_ms": total - compute,
                        "comm_ms": sum(times), "slowest_rank": 0, "n_wrong": 0})  # fmt: skip
    meta = {"run_id": d.name, "status": "complete", "world_size": p, "nnodes": p, "ranks_per_node": 1,
            "config": {"command_kind": "scale", "mode": mode, "algorithm": "ring", "grad_bytes": GRAD,
                       "bucket_bytes": bucket, "compute_ms": COMPUTE, "rank_compute_ms": rank_compute},
            "scale": {"n_steps": steps}}  # fmt: skip
    (d / "run.json").write_text(json.dumps(meta))
    return d


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - analysis.predict.FitsPredictor
    fits = tmp_path_factory.mktemp("fits")
    for p in (2, 3, 4):
        write_run(fits, HW, cases=(("all_reduce", "ring"),), world_size=p, noise=0.01, seed=p)
    pred, _ = build_predictor([str(fits)], "all_reduce", n_boot=20)
    return pred


def test_study_holds_measured_against_predicted(tmp_path: Path, predictor) -> None:  # noqa: ANN001
    for mode in ("weak", "strong"):
        for p in (1, 2, 4, 6):
            _scale_run(tmp_path, p, mode, 4 * 2**20)
    df, notes = ss.study_table(ss.load_study([str(tmp_path)]), predictor, gpu_hour_usd=2.0)
    assert len(df) == 8 and set(df["mode"]) == {"weak", "strong"}
    for r in df.to_dict(orient="records"):
        p = r["world_size"]
        assert r["step_ms_measured_lo"] <= r["step_ms_measured"] <= r["step_ms_measured_hi"]
        assert abs(r["error_pct"]) < 5 and r["within_10pct"], r  # the fits know the true alpha and bandwidth
        assert r["step_ms_predicted_lo"] <= r["step_ms_predicted"] <= r["step_ms_predicted_hi"]
        assert r["efficiency"] == pytest.approx(r["speedup"] / p)
        assert r["usd_per_1000_steps"] == pytest.approx(1000 * r["step_ms_measured"] * p * 2.0 / 3.6e6)
        assert r["comm_exposed_ms"] <= r["comm_ms_measured"] + 1e-9
        t1 = df[(df["mode"] == r["mode"]) & (df["world_size"] == 1)]["step_ms_measured"].iloc[0]
        want = t1 / r["step_ms_measured"] * (p if r["mode"] == "weak" else 1)
        assert r["speedup"] == pytest.approx(want)
        assert bool(r["explained_by"]) == (p > 1)
    weak6 = df[(df["mode"] == "weak") & (df["world_size"] == 6)].iloc[0]
    assert 0 < weak6["efficiency"] < 1 and weak6["comm_to_compute"] > 0.5
    assert any(n.startswith("Amdahl") for n in notes) and any(n.startswith("Gustafson") for n in notes)


def test_a_planted_discrepancy_is_blamed_on_its_term(tmp_path: Path, predictor) -> None:  # noqa: ANN001
    _scale_run(tmp_path / "a", 1, "weak", 16 * 2**20)
    _scale_run(tmp_path / "a", 4, "weak", 16 * 2**20, comm_factor=1.5)  # slower all-reduce than the fits
    _scale_run(tmp_path / "b", 1, "weak", 16 * 2**20)
    _scale_run(tmp_path / "b", 4, "weak", 16 * 2**20, compute_extra_ms=120.0)  # the compute phase overran
    for sub, word in (("a", "exposed communication"), ("b", "compute")):
        df, _ = ss.study_table(ss.load_study([str(tmp_path / sub)]), predictor)
        row = df[df["world_size"] == 4].iloc[0]
        assert row["error_pct"] < -10 and not row["within_10pct"]
        assert row["explained_by"].startswith(word), row["explained_by"]


def test_study_refuses_mixed_steps(tmp_path: Path) -> None:
    _scale_run(tmp_path, 2, "weak", 4 * 2**20)
    d = _scale_run(tmp_path, 4, "weak", 4 * 2**20)
    meta = json.loads((d / "run.json").read_text())
    meta["config"]["compute_ms"] = 100.0
    (d / "run.json").write_text(json.dumps(meta))
    with pytest.raises(ss.AnalysisError, match="differ in --grad-bytes or --compute-ms"):
        ss.load_study([str(tmp_path)])


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "collbench", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_study_command_writes_its_files_and_never_overwrites(tmp_path: Path) -> None:
    runs, fits = tmp_path / "runs", tmp_path / "fits"
    for p in (1, 2, 4):
        _scale_run(runs, p, "strong", 4 * 2**20)
    for b in (1, 8):  # two bucket sizes at one world size: the exposed-vs-bucket figure
        _scale_run(runs, 4, "weak", b * 2**20)
    for p in (2, 4):
        write_run(fits, HW, cases=(("all_reduce", "ring"),), world_size=p, noise=0.01, seed=p)
    out = tmp_path / "study"
    args = ["scale", "--study", str(runs), "--fits", str(fits), "--boot", "0", "--out", str(out), "--gpu-hour-usd", "1"]
    proc = _cli(args)
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} == {"scale.csv", "scale.md", "figures"}
    assert {p.name for p in (out / "figures").iterdir()} == {"scaling_measured_vs_predicted.png",
                                                            "exposed_vs_bucket.png"}  # fmt: skip
    with open(out / "scale.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5
    for col in ("world_size", "mode", "step_ms_measured", "step_ms_measured_lo", "step_ms_measured_hi",
                "step_ms_predicted", "step_ms_predicted_lo", "step_ms_predicted_hi", "comm_exposed_ms", "speedup",
                "efficiency", "comm_to_compute", "usd_per_step", "usd_per_1000_steps", "usd_per_step_predicted",
                "explained_by"):  # fmt: skip
        assert col in rows[0], col
    assert "Amdahl" in (out / "scale.md").read_text()
    again = _cli(args)
    assert again.returncode == 2 and "--force" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    report = _cli(["report", str(fits), "--out", str(tmp_path / "report"), "--boot", "0", "--scale", str(out)])
    assert report.returncode == 0, report.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Scaling study: measured step vs prediction from the fits" in md and "Amdahl (strong)" in md
    assert "(figures/scale_scaling_measured_vs_predicted.png)" in md
    assert (tmp_path / "report" / "figures" / "scale_scaling_measured_vs_predicted.png").is_file()


def test_a_damaged_scale_run_is_one_line(tmp_path: Path) -> None:
    d = _scale_run(tmp_path, 2, "weak", 4 * 2**20)
    (d / "steps.csv").write_text("step,total_ms\n0,abc\n")
    with pytest.raises(ss.AnalysisError, match="not a readable collbench scale run"):
        ss.load_study([str(tmp_path)])
    proc = _cli(["scale", "--study", str(tmp_path), "--out", str(tmp_path / "s")])
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_an_unfinished_run_is_left_out_and_named(tmp_path: Path) -> None:
    _scale_run(tmp_path, 1, "weak", 4 * 2**20)
    d = _scale_run(tmp_path, 2, "weak", 4 * 2**20)
    meta = json.loads((d / "run.json").read_text())
    meta["status"] = "incomplete"
    (d / "run.json").write_text(json.dumps(meta))
    skipped: list[str] = []
    runs = ss.load_study([str(tmp_path)], skipped)
    assert [r.world_size for r in runs] == [1] and len(skipped) == 1 and d.name in skipped[0]
    with pytest.raises(ss.AnalysisError, match="not complete"):
        ss.load_study([str(tmp_path)])
