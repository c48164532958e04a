"""gpu_evidence/gpu_evidence.py (the one-shot GPU evidence) and its helpers.

Without a GPU: the dry run (--cpu: install logic, env, the timing and roof helpers on the host, gloo p = 2 with
every collective and every algorithm, fit, report, compare, summary, $OUT copies), --analyse-only with an
earlier folder to compare against, and the failure paths (install, a failing measurement, the budget).
With a GPU (skipped otherwise, with the reason): the helpers on CUDA and a short real GPU run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "gpu_evidence" / "gpu_evidence.py"
HAS_GPU = importlib.util.find_spec("torch") is not None and importlib.import_module("torch").cuda.is_available()
NO_GPU = "no CUDA GPU visible: the NCCL, CUDA-event, CUDA-graph and HBM steps need one"
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason=NO_GPU)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "gpu_evidence" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_script(args: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.pop("OUT", None)
    full.setdefault("OMP_NUM_THREADS", "1")
    full["COLLBENCH_PYTHON"] = sys.executable
    full.update(env)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=timeout
    )


def only_folder(parent: Path) -> Path:
    folders = [p for p in parent.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def steps_of(folder: Path) -> dict[str, dict]:
    return {s["name"]: s for s in json.loads((folder / "steps.json").read_text())}


# -- the dry run, once for the module ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    parent, collect = tmp_path_factory.mktemp("evidence"), tmp_path_factory.mktemp("collect")
    proc = run_script(["--cpu", "--out", str(parent)], timeout=280, OUT=str(collect))
    return proc, only_folder(parent), collect


@pytest.mark.timeout(300)
def test_dry_run_measures_fits_reports_and_summarises(dry_run) -> None:
    proc, folder, _ = dry_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert folder.name.startswith("cpu-dryrun-")
    steps = steps_of(folder)
    ok = ["install", "env", "timing", "roof", "gloo-p2", "fit", "report", "compare", "summary"]
    assert {n: steps[n]["status"] for n in ok} == dict.fromkeys(ok, "ok")
    for name in ("nccl-w1", "nccl-w1-graph", "nccl-multirank", "scale", "cuda-tests"):
        assert steps[name]["status"] == "skipped" and "CUDA" in steps[name]["note"]
    # a progress line per step, on stdout and in progress.log
    for name in ok[:-1]:
        assert f"] {name}: OK in" in proc.stdout
    assert (folder / "progress.log").read_text().count("gpu_evidence [") >= len(ok)
    # gloo p=2: every collective, every algorithm, every point correct
    run = next((folder / "runs" / "gloo-p2").iterdir())
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete" and meta["world_size"] == 2
    import collectives
    from collectives.spec import DEFAULT_SWEEP

    assert set(meta["config"]["collectives"]) == set(DEFAULT_SWEEP)  # what collbench run measures by default
    points = meta["points"]
    for coll in meta["config"]["collectives"]:
        assert {p["algorithm"] for p in points if p["collective"] == coll} == set(collectives.algorithms(coll))
    assert all(p["correct"] for p in points)
    # helpers, fit, report, compare, env, summary
    timing = json.loads((folder / "timing.json").read_text())
    assert timing["backend"] == "gloo" and all(p["correct"] and p["host_sync_us"] > 0 for p in timing["points"])
    roof = json.loads((folder / "roof.json").read_text())
    assert {p["dtype"] for p in roof["points"]} == {"float32", "bfloat16"} and roof["spec_gbps"] is None
    assert roof["gamma_gbps"] > 0
    assert (folder / "fit" / "gloo" / "fits.csv").read_text().count("\ncurve,") > 10
    assert (folder / "report" / "gloo" / "report.md").is_file() and list((folder / "report" / "gloo").rglob("*.png"))
    assert "nothing to compare against" in (folder / "compare" / "README.md").read_text()
    assert "torch" in (folder / "env.txt").read_text() and json.loads((folder / "env.json").read_text())["torch"]
    summary = (folder / "SUMMARY.md").read_text()
    for text in (
        "# GPU evidence",
        "mode: cpu",
        "outcome: all steps ok",
        "### gloo-p2",
        "| all_reduce | 2 | 4 KiB |",
        "host_sync_us",
        "Reduction roof",
        "No model fit",
        "first run",
    ):
        assert text in summary, text


def test_dry_run_is_packed_into_out(dry_run, tmp_path: Path) -> None:
    """$OUT gets one archive of the folder (the device tool returns at most 8 files, 2 folders deep) and SUMMARY.md."""
    _, folder, collect = dry_run
    assert sorted(p.name for p in collect.iterdir()) == sorted([f"{folder.name}.tar.gz", "SUMMARY.md"])
    with tarfile.open(collect / f"{folder.name}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    copy = tmp_path / folder.name
    assert (copy / "SUMMARY.md").read_text() == (folder / "SUMMARY.md").read_text()
    assert (collect / "SUMMARY.md").read_text() == (folder / "SUMMARY.md").read_text()
    assert (copy / "steps.json").read_text() == (folder / "steps.json").read_text()
    assert list((copy / "runs" / "gloo-p2").glob("*/results.csv"))


@pytest.mark.timeout(200)
def test_analyse_only_compares_with_the_earlier_folder(dry_run, tmp_path: Path) -> None:
    """A later folder of the same machine compares its runs with the newest earlier one (same run: no regression)."""
    _, folder, _ = dry_run
    parent = tmp_path / "results"
    base = parent / folder.name
    shutil.copytree(folder, base)
    later = parent / (_load("gpu_evidence").STAMP_RE.sub("", folder.name) + "-29991231T235959Z")
    shutil.copytree(folder, later)
    for run_json in later.glob("runs/*/*/run.json"):  # a second run of the same code: compare refuses one run twice
        meta = json.loads(run_json.read_text())
        run_json.write_text(json.dumps({**meta, "run_id": f"{meta['run_id']}-later"}))
    proc = run_script(["--analyse-only", str(later), "--skip", "fit,report"], timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    steps = steps_of(later)
    assert steps["gloo-p2"]["status"] == "ok"  # earlier records kept
    assert steps["compare"]["status"] == "ok" and f"vs {base.name}: gloo-p2: no regression" in steps["compare"]["note"]
    assert (later / "compare" / "gloo-p2.txt").is_file()
    assert "no regression" in (later / "SUMMARY.md").read_text()
    assert (base / "steps.json").read_text() == (folder / "steps.json").read_text()  # the baseline is untouched
    # the header still says when and how the measurements were taken; the analysis is recorded beside it
    measured = json.loads((folder / "evidence.json").read_text())
    now = json.loads((later / "evidence.json").read_text())
    assert {k: now[k] for k in ("started", "budget_s", "elapsed_s", "command")} == {
        k: measured[k] for k in ("started", "budget_s", "elapsed_s", "command")
    }
    assert "--analyse-only" in now["analysis"]["command"] and now["analysis"]["started"] >= measured["started"]
    summary = (later / "SUMMARY.md").read_text()
    assert f"started {measured['started']}; budget {measured['budget_s']} s" in summary
    assert f"analysed again (--analyse-only): started {now['analysis']['started']}" in summary


# -- failure paths --------------------------------------------------------------------------------------------
def test_install_failure_stops_and_names_the_step(tmp_path: Path) -> None:
    proc = run_script(["--cpu", "--out", str(tmp_path), "--python", str(tmp_path / "no-such-python")], timeout=120)
    assert proc.returncode == 1
    assert "install" in proc.stderr and "not found" in proc.stderr
    folder = only_folder(tmp_path)
    steps = steps_of(folder)
    assert steps["install"]["status"] == "failed" and "gloo-p2" not in steps
    assert "FAILED at step install" in (folder / "SUMMARY.md").read_text()


@pytest.mark.timeout(200)
def test_failed_measurement_is_named_kept_and_a_second_run_gets_a_new_folder(tmp_path: Path) -> None:
    skip = ["--skip", "env,timing,roof,fit,report,compare"]  # nothing asserted of these here
    # every gloo rank fails to initialise (collbench's test fault): the run directory stays, marked failed
    proc = run_script(
        ["--cpu", "--out", str(tmp_path), "--no-install", *skip],
        timeout=180,
        COLLBENCH_TESTING="1",
        COLLBENCH_TEST_INIT_FAIL="all",
    )
    assert proc.returncode == 1
    assert "FAILED steps: gloo-p2" in proc.stderr
    first = only_folder(tmp_path)
    step = steps_of(first)["gloo-p2"]
    assert step["status"] == "failed" and "run failed" in step["note"]
    run = next((first / "runs" / "gloo-p2").iterdir())
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert "outcome: FAILED steps: gloo-p2" in (first / "SUMMARY.md").read_text()
    # a second run (out of budget before any measurement) writes a new folder and leaves the first alone
    before = (first / "steps.json").read_text()
    proc = run_script(["--cpu", "--out", str(tmp_path), "--no-install", "--budget-s", "1", *skip], timeout=120)
    assert proc.returncode == 1 and "budget" in proc.stderr
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(folders) == 2 and (first / "steps.json").read_text() == before
    second = next(p for p in folders if p != first)
    assert steps_of(second)["gloo-p2"]["status"] == "skipped" and steps_of(second)["gloo-p2"]["note"].startswith(
        "budget"
    )
    assert not (second / "runs").exists()


@pytest.mark.parametrize("bad", [["--gloo-procs", "two"], ["--budget-s", "0"], ["--gloo-procs", "0"]])
def test_bad_options_exit_2(tmp_path: Path, bad: list[str]) -> None:
    proc = run_script(["--cpu", "--out", str(tmp_path), *bad], timeout=60)
    assert proc.returncode == 2 and not list(tmp_path.iterdir())


def test_shell_wrapper_parses() -> None:
    assert subprocess.run(["bash", "-n", str(ROOT / "gpu_evidence" / "gpu_evidence.sh")]).returncode == 0


# -- pieces ---------------------------------------------------------------------------------------------------
def test_gpu_names_and_hbm_specs() -> None:
    ev, roof = _load("gpu_evidence"), _load("gpu_roof")
    assert ev.gpu_slug("NVIDIA H100 80GB HBM3") == "h100-80gb-hbm3" and ev.gpu_slug(None) == "unknown"
    assert roof.hbm_spec("NVIDIA H100 80GB HBM3")[0] == 3350
    assert roof.hbm_spec("NVIDIA H100 PCIe")[0] == 2000
    assert roof.hbm_spec("NVIDIA H100 NVL")[0] == 3900
    assert roof.hbm_spec("NVIDIA H200")[0] == 4800
    assert roof.hbm_spec("NVIDIA A100-SXM4-80GB")[0] == 2039
    assert roof.hbm_spec("NVIDIA A100-PCIE-40GB")[0] == 1555
    assert roof.hbm_spec("NVIDIA GH200 480GB")[0] is None  # HBM3 or HBM3e: not told by the name
    assert roof.hbm_spec("Tesla T4")[0] == 320
    spec, source = roof.hbm_spec("Imaginary GPU 9000")
    assert spec is None and source.startswith("unknown")
    assert roof.parse_sizes("64M,1G,512") == [64 << 20, 1 << 30, 512]
    with pytest.raises(ValueError):
        roof.parse_sizes("64Q")


def test_hbm_specs_come_from_the_hardware_catalog() -> None:
    """One table of GPU figures: every catalog GPU's HBM figure is what the roof step holds the add against."""
    from analysis.hardware import catalog

    roof = _load("gpu_roof")
    for gpu in catalog().gpus:
        assert roof.hbm_spec(gpu.name)[0] == gpu.hbm_gbps, gpu.id


def _point(coll: str, alg: str, nbytes: int, t: float, p: int = 1, graph: bool = False, in_place: bool = True) -> dict:
    return {
        "collective": coll,
        "algorithm": alg,
        "bytes": nbytes,
        "time_us": t,
        "block_time_us": t * 0.9,
        "algbw_gbps": nbytes / t * 1e-3,
        "busbw_gbps": 0.0 if p == 1 else nbytes / t * 1e-3,
        "world_size": p,
        "in_place": in_place,
        "correct": True,
        "noisy": False,
        "graph": graph,
    }


def test_summary_headlines_use_algbw_at_world_1_and_graph_savings() -> None:
    summary = _load("gpu_summary")
    points = [
        _point("all_reduce", a, n, t)
        for a, f in (("builtin", 1.0), ("ring", 2.0), ("tree", 4.0))
        for n, t in ((1024, 10 * f), (4096, 12 * f), (1 << 26, 400 * f))
    ]
    rows = summary.headline_rows(points)
    assert [r[2] for r in rows] == ["4 KiB", "64 MiB"] and {r[3] for r in rows} == {"algbw"}
    assert rows[0][5].endswith("x0.50") and rows[0][6].endswith("x0.25")
    graph = [dict(p, time_us=p["time_us"] - 5, block_time_us=p["block_time_us"] - 6, graph=True) for p in points]
    saving = summary.graph_saving_from_runs(points, graph)
    assert saving[0] == ("1 KiB", "10.00", "5.00", "5.00", "9.00", "3.00", "6.00")


def test_summary_reads_model_fits(tmp_path: Path) -> None:
    summary = _load("gpu_summary")
    header = (
        "scope,collective,algorithm,backend,world_size,alpha_us,alpha_us_lo,alpha_us_hi,bw_gbps,bw_gbps_lo,"
        "bw_gbps_hi,gamma_gbps,r2,mape,n_points,device,dtype,op,in_place,piece,bytes_min,bytes_max,method,"
        "loo_mape,breaks_bytes"
    )
    rows = [
        "model,*,*,gloo,,50,40,60,2.5,2,3,4.5,0.9,20,100,cpu,float32,*,False,0,1024,1048576,"
        '"nnls-rel; alpha, beta, gamma; world sizes 2,4,8,16",25,',
        "model,all_reduce,ring,gloo,,60,50,70,2,1.5,2.5,,0.9,15,20,cpu,float32,sum,True,0,1024,1048576,"
        '"nnls-rel; world sizes 2,4,8,16",18,',
        "model,all_gather,ring,gloo,,60,50,70,2,1.5,2.5,,0.9,15,20,cpu,float32,none,True,0,1024,1048576,x,18,",
        "model,all_gather,ring,gloo,,61,50,70,2,1.5,2.5,,0.9,15,20,cpu,float32,none,False,0,1024,1048576,x,18,",
        "model,all_gather,bruck,gloo,,60,50,70,2,1.5,2.5,,0.9,15,20,cpu,float32,none,False,0,1024,1048576,x,18,",
        "curve,all_reduce,ring,gloo,2,60,50,70,2,1.5,2.5,,0.9,15,20,cpu,float32,sum,True,0,1024,1048576,x,,",
    ]
    (tmp_path / "fits.csv").write_text("\n".join([header, *rows]) + "\n")
    out = summary.fit_model_rows(tmp_path / "fits.csv")
    assert [(r[0], r[1]) for r in out] == [("*", "*"), ("all_reduce", "ring"), ("all_gather", "ring")]
    assert out[0][2] == "2,4,8,16" and out[0][3] == "50 [40, 60]" and out[0][5] == "4.5"
    assert out[2][3].startswith("61")  # out-of-place preferred where both variants were fitted


def test_several_ranks_per_gpu_only_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """collbench run --backend nccl --nprocs 2 on one GPU: refused unless NCCL_MULTI_RANK_GPU_ENABLE=1."""
    from bench import run
    from bench.errors import UsageError
    from collbench.cli import build_parser

    monkeypatch.setattr(run, "visible_gpus", lambda: 1)
    ns = build_parser("run").parse_args(["--backend", "nccl", "--nprocs", "2", "-e", "4K"])
    monkeypatch.delenv("NCCL_MULTI_RANK_GPU_ENABLE", raising=False)
    with pytest.raises(UsageError, match="NCCL_MULTI_RANK_GPU_ENABLE"):
        run.validate(ns, None)
    monkeypatch.setenv("NCCL_MULTI_RANK_GPU_ENABLE", "1")
    config, world = run.validate(ns, None)
    assert world == 2 and config.device == "cuda"


# -- on a GPU only --------------------------------------------------------------------------------------------
@needs_gpu
@pytest.mark.timeout(200)
def test_timing_and_roof_helpers_on_cuda(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = subprocess.run(
        [
            sys.executable,
            str(ROOT / "gpu_evidence" / "gpu_timing.py"),
            "--sizes",
            "1K,1M",
            "--iters",
            "20",
            "--out",
            str(tmp_path / "t.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert t.returncode == 0, t.stderr[-2000:]
    timing = json.loads((tmp_path / "t.json").read_text())
    for p in timing["points"]:
        assert p["correct"] and p["events_us"] > 0 and p["graph_us"] > 0 and "graph_saving_us" in p
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "gpu_evidence" / "gpu_roof.py"),
            "--sizes",
            "64M",
            "--iters",
            "5",
            "--out",
            str(tmp_path / "r.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    roof = json.loads((tmp_path / "r.json").read_text())
    assert roof["device"] == "cuda" and roof["best"]["float32"]["mem_gbps"] > 10 and roof["gamma_gbps"] > 0


@needs_gpu
@pytest.mark.timeout(600)
def test_short_gpu_evidence_run(tmp_path: Path) -> None:
    proc = run_script(["--out", str(tmp_path), "--budget-s", "400", "--gloo-procs", "2", "--no-install"], timeout=560)
    folder = only_folder(tmp_path)
    steps = steps_of(folder)
    assert folder.name.startswith("gpu-")
    for name in ("install", "env", "nccl-w1", "timing", "roof", "nccl-w1-graph", "gloo-p2", "summary"):
        assert steps[name]["status"] == "ok", (name, steps[name], proc.stderr[-2000:])
    assert steps["nccl-multirank"]["status"] in ("ok", "info")  # NCCL's answer, either way
    assert "Launch overhead a CUDA graph removes" in (folder / "SUMMARY.md").read_text()


def test_parse_args_defaults() -> None:
    ev = _load("gpu_evidence")
    args = ev.parse_args(["--cpu"])
    assert isinstance(args, argparse.Namespace) and args.procs == [2] and args.budget_s == 480
    assert ev.parse_args([]).procs == [2, 4, 8, 16]


def _fake_python(tmp_path: Path, stdout: str, code: int = 0) -> str:
    """A 'python' that prints ``stdout`` (as collbench scale --json would) and exits with ``code``."""
    fake = tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{stdout}\nEOF\nexit {code}\n")
    fake.chmod(0o755)
    return str(fake)


@pytest.mark.parametrize(
    ("n_wrong", "code", "status"), [(0, 0, "ok"), (2, 1, "failed"), (0, 3, "failed")]
)
def test_scale_step_reads_the_summary_and_fails_on_wrong_steps(tmp_path: Path, n_wrong: int, code: int,
                                                              status: str) -> None:  # fmt: skip
    ev_mod = _load("gpu_evidence")
    summary = {"step_ms": 298.43, "step_ms_lo": 298.24, "step_ms_hi": 298.77, "compute_ms": 297.98,
               "compute_kind": "matmul chain sized to the duration", "comm_ms": 0.47, "comm_exposed_ms": 0.56,
               "n_wrong": n_wrong, "status": "complete"}  # fmt: skip
    ev = ev_mod.Evidence(tmp_path / "folder", 60.0, "gpu", _fake_python(tmp_path, "progress line\n" +
                         json.dumps(summary), code), None)  # fmt: skip
    step = ev_mod.step_scale(ev, 30.0)
    assert step.status == status, step.note
    if status == "ok":
        assert step.note.startswith("step 298.4 ms [298.2, 298.8], compute 298.0 ms (matmul chain")
        assert "all-reduce 0.47 ms, exposed 0.56 ms, 0 wrong" in step.note
    else:
        assert f"exit {code}" in step.note


@pytest.mark.timeout(200)
def test_no_analysis_still_compares(tmp_path: Path) -> None:
    """--no-analysis skips fit and report, not compare: compare needs pandas and scipy only (the H200 image had
    both but no bokeh, and compare was skipped as if they were missing)."""
    proc = run_script(["--cpu", "--out", str(tmp_path), "--no-analysis", "--skip", "timing,roof,gloo"], timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    steps = steps_of(only_folder(tmp_path))
    assert steps["fit"]["status"] == steps["report"]["status"] == "skipped"
    assert steps["compare"]["status"] == "ok" and "first run" in steps["compare"]["note"]
