"""collbench export --csv / --simai / --prometheus on the committed reference runs: values checked against the
runs, CSV read back exactly, the Prometheus file parsed by prometheus_client's own parser, never an overwrite,
one line and exit 2 for a wrong option."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from analysis.fitting import fit_all
from analysis.prometheus import escape
from analysis.read_runs import find_runs, load_runs
from analysis.verdict import verdicts
from bench.schema import CSV_COLUMNS
from collbench import cli

ROOT = Path(__file__).resolve().parents[2]
CPU = ROOT / "results" / "cpu-2core"
GB200 = ROOT / "results" / "nccl-tests-gb200-nvl72"
CPU_RUN = sorted(p for p in CPU.iterdir() if (p / "run.json").exists())[0]


def test_csv_points_read_back_exactly(tmp_path, capsys):
    out = tmp_path / "sheet"
    assert cli.main(["export", "--csv", str(CPU), "--out", str(out)]) == 0
    df = load_runs([CPU])
    back = pd.read_csv(out / "points.csv")
    assert list(back.columns[:3]) == ["run_id", "run_dir", "collective"] and len(back) == len(df)
    for col in ("bytes", "world_size", "time_us", "busbw_gbps", "algbw_gbps"):
        assert back[col].tolist() == df[col].astype(float if col.endswith(("_us", "_gbps")) else int).tolist(), col
    assert set(back["in_place"]) <= {True, False}  # true/false read back as booleans
    fits = pd.read_csv(out / "fits.csv")
    want = fit_all(df, n_boot=0)
    assert len(fits) == len(want) > 0
    assert fits["bw_gbps"].tolist() == pytest.approx(want["bw_gbps"].astype(float).tolist(), rel=1e-6, nan_ok=True)


def test_simai_busbw_yaml_has_simai_layout_and_the_runs_peaks(tmp_path, capsys):
    out = tmp_path / "busbw.yaml"
    args = ["export", "--simai", "--tp", str(CPU_RUN), "--dp", str(GB200), "--name", "test", "--out", str(out)]
    assert cli.main(args) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "test" and lines[1] == "TP:" and lines[6] == "DP:" and lines[11] == "EP:"
    assert lines[16:] == ["PP:", "busbw: null"] and len(lines) == 18
    tp = load_runs([CPU_RUN])
    ar = tp[(tp["collective"] == "all_reduce") & (tp["algorithm"] == "builtin")]
    assert ar["in_place"].all()  # this run measured builtin all_reduce in place only: its peak is that one
    b = ar["busbw_gbps"].max()
    assert lines[2] == f"allreduce,: {b:.6g}"
    assert lines[5].startswith("alltoall,: ") and lines[5] != "alltoall,: null"
    g = load_runs([GB200], warn=False)
    assert lines[7] == f"allreduce,: {g[~g['in_place'].astype(bool)]['busbw_gbps'].max():.6g}"
    assert lines[8:11] == ["allgather,: null", "reducescatter,: null", "alltoall,: null"]
    assert all(ln.endswith("null") for ln in lines[12:16])


def _families(text: str) -> dict:
    parser = pytest.importorskip("prometheus_client.parser")
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def test_prometheus_file_parses_and_carries_the_verdicts(tmp_path, capsys):
    out = tmp_path / "collbench.prom"
    host = 'rack "7"\\node\n1'  # a quote, a backslash and a newline: escaped in the file, intact when parsed
    assert cli.main(["export", "--prometheus", str(GB200), str(CPU_RUN), "--host", host, "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("# HELP collbench_busbw_peak_bytes_per_second") == 1
    assert escape(host) in text and "\n1\"" not in text
    fams = _families(text)
    assert set(fams) == {"collbench_busbw_peak_bytes_per_second", "collbench_busbw_peak_message_bytes",
                         "collbench_roof_bytes_per_second", "collbench_busbw_roof_ratio", "collbench_verdict_info"}
    assert all(f.type == "gauge" for f in fams.values())
    vs, _ = verdicts([*find_runs(GB200), *find_runs(CPU_RUN)])
    peaks = {(s.labels["run_id"], s.labels["collective"], s.labels["algorithm"]): s.value
             for s in fams["collbench_busbw_peak_bytes_per_second"].samples}  # fmt: skip
    assert len(peaks) == len(vs)
    for v in vs:
        assert peaks[(v.run_id, v.collective, v.algorithm)] == pytest.approx(v.peak_busbw_gbps * 1e9, rel=1e-9)
    (ratio,) = [s for s in fams["collbench_busbw_roof_ratio"].samples if s.labels["run_id"].endswith("85b2c7")]
    (gb,) = [v for v in vs if v.run_id.endswith("85b2c7")]
    assert ratio.value == pytest.approx(gb.ratio) and ratio.labels["host"] == host
    assert math.isclose(ratio.value, 0.9324, abs_tol=1e-4)  # 839.16 GB/s of the 900 GB/s link roof
    info = [s for s in fams["collbench_verdict_info"].samples if s.labels["run_id"].endswith("85b2c7")]
    assert [(s.labels["rating"], s.labels["roof"], s.value) for s in info] == [("near the roof", "link", 1.0)]
    assert not [s for s in fams["collbench_busbw_roof_ratio"].samples if s.labels["run_id"] == CPU_RUN.name]


def test_exports_never_overwrite_and_refuse_wrong_options(tmp_path, capsys):
    out = tmp_path / "x.prom"
    out.write_text("earlier\n")
    assert cli.main(["export", "--prometheus", str(CPU_RUN), "--out", str(out)]) == 2
    assert out.read_text() == "earlier\n"
    assert cli.main(["export", "--prometheus", str(CPU_RUN), "--out", str(out), "--force"]) == 0
    assert out.read_text().startswith("# HELP")
    capsys.readouterr()
    for argv in (["export", "--csv", str(CPU_RUN), "--tp", str(CPU_RUN), "--out", str(tmp_path / "c")],
                 ["export", "--simai", str(CPU_RUN)],
                 ["export", "--simai"],
                 ["export", "--csv", str(CPU_RUN)],
                 ["export", "--prometheus"],
                 ["export", "--astra-sim", "--fits", str(CPU_RUN), "--host", "h"],
                 ["export", "--prometheus", str(CPU_RUN), "--out", str(CPU_RUN / "run.json"), "--force"],
                 ["export", "--simai", "--pp", str(CPU_RUN)],
                 ["export", "--csv", str(CPU_RUN), "--gpu", "h100-sxm", "--out", str(tmp_path / "c")]):  # fmt: skip
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("collbench: error: "), (argv, err)
    assert not (tmp_path / "c").exists()


def test_csv_export_then_import_gives_the_same_points(tmp_path, capsys):
    """The round trip: export --csv, then import points.csv -> one run per exported run, every point equal."""
    sheet = tmp_path / "sheet"
    assert cli.main(["export", "--csv", str(CPU), "--out", str(sheet)]) == 0
    assert cli.main(["import", str(sheet / "points.csv"), "--out", str(tmp_path / "back")]) == 0
    before = load_runs([CPU], warn=False)
    after = load_runs([tmp_path / "back"], warn=False)
    assert after["run_id"].nunique() == before["run_id"].nunique() == 3
    key = ["world_size", "collective", "algorithm", "bytes", "in_place", "dtype", "op", "root"]
    cols = [c for c in CSV_COLUMNS if c not in ("samples_us",)]
    a = before[cols].sort_values(key).reset_index(drop=True)
    b = after[cols].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    capsys.readouterr()
    assert cli.main(["verdict", str(tmp_path / "back")]) == 0
    edited = tmp_path / "edited.csv"
    lines = (sheet / "points.csv").read_text().splitlines()
    edited.write_text("\n".join([lines[0], lines[1].replace(",", ";", 3)]) + "\n")
    assert cli.main(["import", str(edited), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{edited}:2: expected" in err[0]
