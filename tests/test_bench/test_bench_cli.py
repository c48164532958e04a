"""End-to-end: ``collbench run`` on gloo with small sizes writes the schema, checks results, rejects bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench_helpers import ROOT, cli_env, read_run, run_cli, run_dir_from, run_main

from bench.schema import CSV_COLUMNS
from collectives.costs import busbw_factor
from collectives.spec import DEFAULT_SWEEP as COLLECTIVES  # what 'all' measures

RUN_JSON_KEYS = {
    "schema_version",
    "tool",
    "collbench_version",
    "run_id",
    "status",
    "status_reason",
    "start_time",
    "end_time",
    "command",
    "host",
    "writer",
    "launcher",
    "backend",
    "device",
    "world_size",
    "nnodes",
    "ranks_per_node",
    "versions",
    "hardware",
    "environment",
    "git_commit",
    "config",
    "warnings",
    "source",
    "points",
}
SMALL = ["-b", "1K", "-e", "4K", "-f", "4", "-n", "3", "-w", "1", "--timeout", "60"]


@pytest.fixture(scope="module")
def schema_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """The default sweep (every collective and algorithm, 1K and 4K) through ``python -m collbench``, once for the
    tests that read it."""
    out = tmp_path_factory.mktemp("schema")
    proc = run_cli(["run", "--nprocs", "2", *SMALL, "--out", str(out)], SECRET_TOKEN="hunter2")
    assert proc.returncode == 0, proc.stderr
    return proc, out, run_dir_from(proc.stdout)


@pytest.mark.timeout(120)
def test_run_writes_schema(schema_run: tuple[subprocess.CompletedProcess, Path, Path]) -> None:
    proc, out, run_dir = schema_run
    assert run_dir.parent == out
    with open(run_dir / "results.csv") as f:
        assert tuple(f.readline().strip().split(",")) == CSV_COLUMNS
    rows, meta = read_run(run_dir)
    assert set(meta) == RUN_JSON_KEYS
    assert meta["schema_version"] == 2 and meta["status"] == "complete" and meta["status_reason"] is None
    assert meta["launcher"] == "spawn" and meta["world_size"] == 2 and meta["backend"] == "gloo"
    assert meta["nnodes"] == 1 and meta["ranks_per_node"] == 2
    assert meta["end_time"] and meta["run_id"] == run_dir.name
    assert "SECRET_TOKEN" not in meta["environment"] and "hunter2" not in (run_dir / "run.json").read_text()
    for key in ("collectives", "algorithms", "min_bytes", "max_bytes", "step_factor", "iters", "warmup", "dtype"):
        assert key in meta["config"]
    # 1K and 4K, every registered algorithm: AR, bcast, reduce in place only; AG, RS both variants; all_to_all
    # out of place only
    import collectives

    variants = {"all_gather": 2, "reduce_scatter": 2}
    expected = 2 * sum(len(collectives.algorithms(c)) * variants.get(c, 1) for c in COLLECTIVES)
    assert len(rows) == expected and len(meta["points"]) == expected
    assert {r["collective"] for r in rows} == set(COLLECTIVES)
    for row, point in zip(rows, meta["points"], strict=True):
        assert row["correct"] == "true" and row["n_wrong"] == "0"
        assert row["in_place"] in ("true", "false") and row["noisy"] in ("true", "false")
        assert row["cuda_graph"] == "false" and row["device"] == "cpu" and row["iters"] == "3"
        t = [float(row[k]) for k in ("time_us_min", "time_us_p10", "time_us_p25", "time_us", "time_us_p75")]
        assert t == sorted(t) and t[0] > 0 and float(row["time_us_p90"]) <= float(row["time_us_max"])
        assert len(point["samples_us"]) == 3 and min(point["samples_us"]) == pytest.approx(t[0], rel=1e-3)
        assert int(row["count"]) * 4 == int(row["bytes"])
        assert row["op"] == ("none" if row["collective"] in ("broadcast", "all_gather", "all_to_all") else "sum")
        assert row["root"] == ("0" if row["collective"] in ("broadcast", "reduce") else "-1")
        expected_bus = float(row["algbw_gbps"]) * busbw_factor(row["collective"], 2)
        assert float(row["busbw_gbps"]) == pytest.approx(expected_bus, rel=2e-3, abs=1e-4)
    # table on stdout: one header per collective, then the run directory printed last
    assert proc.stdout.count("# all_reduce  backend gloo") == 1 and "out-of-place" in proc.stdout


def test_segment_bytes_default_is_recorded(schema_run: tuple[subprocess.CompletedProcess, Path, Path]) -> None:
    """Without --segment-bytes a pipelined algorithm's rows carry the default segment; config records none."""
    rows, meta = read_run(schema_run[2])
    assert [r["segment_bytes"] for r in rows if (r["collective"], r["algorithm"]) == ("reduce", "ring")] == [
        str(1 << 20)
    ] * 2  # 1K and 4K
    assert meta["config"]["segment_bytes"] is None


@pytest.mark.timeout(120)
@pytest.mark.parametrize("p", [3, 4])
def test_busbw_factor_json_and_root_end_to_end(tmp_path: Path, capfd, p: int) -> None:
    """busbw = algbw x F(p) in the written rows; --json's summary; --root reaches the rooted collectives."""
    args = ["run", "--nprocs", str(p), "-b", "4K", "-e", "4K", "-n", "2", "-w", "1", "--in-place", "no"]
    args += ["--algorithms", "builtin", "--root", "1", "--json"]
    proc = run_main([*args, "--out", str(tmp_path)], capfd)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "complete" and summary["points"] == len(COLLECTIVES) and summary["wrong_points"] == 0
    rows, meta = read_run(Path(summary["run_dir"]))
    assert meta["world_size"] == p and len(rows) == len(COLLECTIVES)
    for row in rows:
        algbw = int(row["bytes"]) / (float(row["time_us"]) * 1e3)
        assert float(row["algbw_gbps"]) == pytest.approx(algbw, rel=2e-3)
        factor = {"all_reduce": 2 * (p - 1) / p, "all_gather": (p - 1) / p, "reduce_scatter": (p - 1) / p,
                  "all_to_all": (p - 1) / p}.get(  # fmt: skip
            row["collective"], 1.0
        )
        assert float(row["busbw_gbps"]) == pytest.approx(algbw * factor, rel=2e-3)
        assert row["correct"] == "true"
        assert row["root"] == ("1" if row["collective"] in ("broadcast", "reduce") else "-1")
        if row["collective"] in ("all_gather", "reduce_scatter"):
            assert int(row["count"]) % p == 0  # rounded like nccl-tests


@pytest.mark.timeout(120)
def test_gather_and_scatter_run_when_named(tmp_path: Path, capfd) -> None:
    """Outside the default sweep, measured and checked exactly when named: every algorithm, both variants, root 1,
    busbw = algbw x (p-1)/p."""
    p = 3
    args = ["run", "--nprocs", str(p), "-b", "4K", "-e", "4K", "-n", "2", "-w", "1", "--collectives", "gather,scatter"]
    proc = run_main([*args, "--root", "1", "--json", "--out", str(tmp_path)], capfd)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "complete" and summary["wrong_points"] == 0
    rows, _ = read_run(Path(summary["run_dir"]))
    got = {(r["collective"], r["algorithm"], r["in_place"]) for r in rows}
    algorithms = ("builtin", "linear", "tree")
    assert got == {(c, a, v) for c in ("gather", "scatter") for a in algorithms for v in ("true", "false")}
    for row in rows:
        assert row["correct"] == "true" and row["root"] == "1" and row["op"] == "none"
        assert int(row["count"]) % p == 0
        assert float(row["busbw_gbps"]) == pytest.approx(float(row["algbw_gbps"]) * (p - 1) / p, rel=2e-3)


BAD = [
    (["--collectives", "all_reduce,alltoall"], "unknown collective 'alltoall'"),
    (["--algorithms", "nosuch"], "unknown algorithm 'nosuch'"),
    (["--algorithms", "test_hang"], "unknown algorithm 'test_hang'"),
    (["-b", "1X"], "bad size '1X'"),
    (["-b", "1M", "-e", "1K"], "larger than --max-bytes"),
    (["--nprocs", "0"], "--nprocs must be >= 1"),
    (["--nprocs", "64"], "too many for"),
    (["--nprocs", "4", "-e", "8G"], "GiB available"),
    (["--dtype", "int32", "--op", "avg"], "avg needs a floating dtype"),
    (["--dtype", "int16"], "unknown dtype 'int16'"),
    (["--dtype", "complex"], "unknown dtype"),
    (["--op", "xor"], "unknown op"),
    (["--backend", "mpi"], "invalid choice"),
    (["--root", "5", "--nprocs", "2"], "--root 5 is not a rank"),
    (["--cuda-graph"], "--cuda-graph needs"),
    (["-f", "1"], "--step-factor must be > 1"),
    (["--iters", "zero"], "invalid int value"),
    (["--timeout", "0"], "--timeout must be > 0"),
    (["--timeout", "inf"], "--timeout must be a finite number"),
    (["--max-time-per-point", "inf"], "--max-time-per-point must be a finite number"),
    (["-f", "inf"], "--step-factor must be a finite number"),
    (["-n", "99999999999999999999"], "--iters must be a finite number"),
    (["--bogus"], "unrecognized arguments"),
]


@pytest.mark.timeout(120)
def test_bad_options_exit_2_with_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    """In process (an escaping exception fails the test as a traceback would); the console script once below."""
    from collbench.cli import main

    monkeypatch.setenv("COLLBENCH_TESTING", "0")
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [*BAD, (["--out", str(blocker / "sub")], "cannot create --out")]
    for args, message in cases:
        assert main(["run", *args]) == 2, args
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("collbench: error: "), (args, err)
        assert message in lines[0], (args, lines[0])
        assert out == "", (args, out)
    assert not (ROOT / "results").exists() or all(
        p.stat().st_mtime < blocker.stat().st_mtime for p in (ROOT / "results").iterdir()
    ), "a rejected run created a run directory"


@pytest.mark.timeout(60)
def test_bad_option_through_the_console_script() -> None:
    proc = run_cli(["run", "--nprocs", "64"], timeout=60, COLLBENCH_TESTING="0")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "too many for" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_unknown_command_and_analysis_dispatch(capsys) -> None:
    """In process, like test_bad_options_exit_2_with_one_line: an exception escaping the dispatcher fails the test
    as a traceback would."""
    from collbench.cli import COMMANDS, main

    assert main(["frobnicate"]) == 2 and capsys.readouterr().err.startswith("collbench: error: unknown command")
    assert main(["--help"]) == 0
    help_out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name}" in help_out
    assert main([]) == 2 and capsys.readouterr().out == help_out  # no command: the same help, exit 2
    code = main(["fit", "nothing"])  # dispatched to the fit command: a usage error, one line
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("collbench: error:"), err


def test_cli_imports_no_torch() -> None:
    code = "import sys, collbench.cli; sys.exit(1 if 'torch' in sys.modules else 0)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env(), timeout=60)
    assert proc.returncode == 0, "collbench.cli imports torch at module level"


def test_python_m_bench_is_an_alias_of_collbench() -> None:
    """``python -m bench`` (older scripts, torchrun lines) runs the same command line as ``python -m collbench``."""
    procs = [
        subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=cli_env(), capture_output=True,
                       text=True, timeout=60)  # fmt: skip
        for module in ("bench", "collbench")
        for args in (["--help"], ["pairs", "--threshold", "2"])
    ]
    alias, own = procs[:2], procs[2:]
    for a, b in zip(alias, own, strict=True):
        assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)
    assert alias[0].returncode == 0 and "  pairs" in alias[0].stdout
    assert alias[1].returncode == 2 and alias[1].stderr.startswith("collbench: error: --threshold")


@pytest.mark.timeout(120)
def test_progress_bar_on_tty_stderr_leaves_table_clean(tmp_path: Path) -> None:
    """With stderr on a terminal tqdm draws a bar there; stdout (the table) must stay free of bar output."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a 160-column terminal
    args = [
        sys.executable,
        "-m",
        "bench",
        "run",
        "--nprocs",
        "2",
        "--collectives",
        "all_reduce,all_gather",
        "--algorithms",
        "builtin",
    ]
    proc = subprocess.Popen(
        [*args, "-b", "1K", "-e", "64K", "-f", "2", "-n", "3", "-w", "1", "--out", str(tmp_path)],
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    out, _ = proc.communicate(timeout=100)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    err = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "visit/s]" in err or "?visit/s" in err, err[-500:]  # the bar (in case visits) was drawn on stderr
    assert "\r" not in out and "\x1b" not in out
    rows = [line for line in out.splitlines() if line and not line.startswith("#")]
    assert len(rows) == 2 * 7 + 1  # 7 sizes x (all_reduce, all_gather) rows + the run directory
    assert all(len(line.split()) >= 14 for line in rows[:-1])


def test_topology_from_launcher_env() -> None:
    from bench.run import topology

    assert topology(None, 3) == {"nnodes": 1, "ranks_per_node": 3}
    env = {"rank": 0, "world_size": 16, "local_rank": 0, "local_world_size": 8}
    assert topology(env, 16) == {"nnodes": 2, "ranks_per_node": 8}
    assert topology({**env, "group_world_size": 4, "local_world_size": 4}, 16) == {"nnodes": 4, "ranks_per_node": 4}
    assert topology({**env, "local_world_size": 3}, 8) == {"nnodes": 3, "ranks_per_node": 3}  # uneven: ceil
