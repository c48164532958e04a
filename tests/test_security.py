"""Security: result files are data only, no subprocess goes through a shell, no secret lands in a result file."""

from __future__ import annotations

import ast
import csv
import json
import os
import pickle  # noqa: S403 - only to build a hostile payload; the scan below skips this file
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "build", "dist", ".ruff_cache", ".pytest_cache"}

BANNED_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
BANNED_BUILTINS = {"eval", "exec", "compile", "__import__"}
BANNED_ATTRS = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
    ("torch", "load"),
    ("yaml", "load"),
    ("yaml", "unsafe_load"),
    ("pd", "read_pickle"),
    ("pandas", "read_pickle"),
    ("np", "load"),  # allow_pickle pitfalls: results are csv/json only
    ("numpy", "load"),
}


def _sources() -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]  # pruned, not walked (.venv holds all of torch)
        files += [Path(folder, n) for n in names if n.endswith(".py")]
    return sorted(f for f in files if f != Path(__file__).resolve())


def _dotted(node: ast.AST) -> tuple[str, ...]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return tuple(reversed(parts))


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(ROOT)  # once per file: per node it was most of the scan's time
    found = []
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names if a.name.split(".")[0] in BANNED_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in BANNED_MODULES:
            found.append(f"{where} imports from {node.module}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if len(name) == 1 and name[0] in BANNED_BUILTINS:
                found.append(f"{where} calls {name[0]}()")
            if name[-2:] in BANNED_ATTRS:
                found.append(f"{where} calls {'.'.join(name)}()")
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append(f"{where} passes shell={ast.unparse(kw.value)}")
    return found


def test_scan_finds_what_it_bans(tmp_path: Path) -> None:
    """The scanner itself: each banned construct in a sample file is reported."""
    sample = ROOT / "tests" / f"_security_sample_{tmp_path.name}.py"
    sample.write_text(
        "import pickle\nimport os, subprocess, torch\nfrom marshal import loads\n"
        "eval('1')\nos.system('ls')\nsubprocess.run('ls', shell=True)\ntorch.load('x.pt')\n"
    )
    try:
        problems = _problems(sample)
    finally:
        sample.unlink()
    assert len(problems) == 6, problems


def test_source_has_no_unsafe_calls() -> None:
    """No pickle/marshal, eval/exec, os.system/popen, shell=True, torch.load or yaml.load anywhere."""
    sources = _sources()
    assert len(sources) > 20  # the scan really covers the tree
    problems = [p for path in sources for p in _problems(path)]
    assert problems == []


def test_subprocess_calls_take_argument_lists() -> None:
    """Every subprocess.run/Popen/check_* call in the packages and programs passes a list, never a command string."""
    for package in ("bench", "collectives", "analysis", "scripts", "gpu_evidence", "research"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or _dotted(node.func)[:1] != ("subprocess",) or not node.args:
                    continue
                first = node.args[0]
                is_string = isinstance(first, ast.JoinedStr) or (
                    isinstance(first, ast.Constant) and isinstance(first.value, str)
                )
                assert not is_string, f"{path.relative_to(ROOT)}:{node.lineno} passes a command string"


SECRETS = {
    "GITHUB_TOKEN": "ghp-collbench-secret-1",
    "AWS_SECRET_ACCESS_KEY": "aws-collbench-secret-2",
    "HF_TOKEN": "hf-collbench-secret-3",
    "TORCH_HUB_TOKEN": "torch-collbench-secret-4",  # allowed prefix, secret name
    "NCCL_IB_PASSWD": "nccl-collbench-secret-5",
    "SLURM_JOB_ACCOUNT": "slurm-collbench-secret-6",  # SLURM_* outside the short allow-list
    "CUDA_API_KEY": "cuda-collbench-secret-7",
    "DATABASE_URL": "postgres://u:collbench-secret-8@db/x",
    "GLOO_AUTH_COOKIE": "gloo-collbench-secret-9",
}


def test_allowed_environment_drops_secret_names() -> None:
    from bench.run_writer import allowed_environment

    env = {**SECRETS, "NCCL_DEBUG": "INFO", "OMP_NUM_THREADS": "1", "SLURM_JOB_ID": "42", "HOME": "/root"}
    assert allowed_environment(env) == {"NCCL_DEBUG": "INFO", "OMP_NUM_THREADS": "1", "SLURM_JOB_ID": "42"}


@pytest.mark.timeout(90)
def test_no_secret_lands_in_a_result_file(tmp_path: Path) -> None:
    env = {
        **SECRETS,
        "NCCL_DEBUG": "WARN",
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
    }
    args = [sys.executable, "-m", "collbench", "run", "--nprocs", "2", "--collectives", "all_reduce"]
    args += ["--algorithms", "builtin", "-b", "1K", "-e", "1K", "-n", "2", "-w", "1", "--quiet", "--out", str(tmp_path)]
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=80)
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["environment"] == {"NCCL_DEBUG": "WARN", "OMP_NUM_THREADS": "1"}  # recorded, allow-listed
    for path in run_dir.iterdir():
        text = path.read_text()
        for name, value in SECRETS.items():
            assert value not in text, f"{name} leaked into {path.name}"


def _hostile_run(run_dir: Path) -> Path:
    """A run directory whose text fields carry code and a pickle payload; reading it must run none of it."""
    from bench.schema import CSV_COLUMNS

    marker = run_dir.parent / "PWNED"
    code = f"__import__('os').system('touch {marker}')"
    payload = pickle.dumps(print).hex()  # what a pickle-based reader would execute on load
    row = dict.fromkeys(CSV_COLUMNS, "")
    row.update(collective="all_reduce", algorithm=code, backend="gloo", device="cpu", world_size="2")
    row.update(dtype="float32", op="sum", bytes="1024", count="256", root="-1", in_place="true", iters="3")
    row.update(warmup="1", time_us="10", algbw_gbps="0.1", busbw_gbps="0.1", correct="true", n_wrong="0")
    row.update(noisy="false", cuda_graph="false")
    run_dir.mkdir()
    with open(run_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerow(row)
    meta = {
        "schema_version": 1,
        "run_id": code,
        "status": "complete",
        "config": {"py/object": "os.system", "__reduce__": payload},
        "warnings": [f"!!python/object/apply:os.system ['touch {marker}']"],
        "points": [{"samples_us": [1.0, 2.0]}],
    }
    (run_dir / "run.json").write_text(json.dumps(meta))
    return marker


def test_loader_treats_code_and_pickle_payloads_as_data(tmp_path: Path) -> None:
    from analysis.read_runs import load_run

    marker = _hostile_run(tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert not marker.exists()
    assert run.points["algorithm"].iloc[0].startswith("__import__(")  # a plain string
    assert run.meta["config"]["py/object"] == "os.system" and isinstance(run.meta["config"]["__reduce__"], str)
    assert run.points["samples_us"].iloc[0] == (1.0, 2.0)


def test_a_pickle_file_is_rejected_not_loaded(tmp_path: Path) -> None:
    from analysis.errors import AnalysisError
    from analysis.read_runs import load_run

    _hostile_run(tmp_path / "run")
    (tmp_path / "run" / "results.csv").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(AnalysisError, match="results.csv"):
        load_run(tmp_path / "run")
    (tmp_path / "run" / "run.json").write_bytes(pickle.dumps({"schema_version": 1}))
    with pytest.raises(AnalysisError, match="corrupt run.json"):
        load_run(tmp_path / "run")
