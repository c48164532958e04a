"""collbench import on the public corpus (tests/data/nccl-tests, PROVENANCE.md) and on generated tables.

Every row of every imported log is checked against the figures the log prints: the time exactly, algbw as
size/time and busbw as algbw x F(p) within the log's print rounding (today's nccl-tests definitions).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from run_copies import copy_run

from analysis.nccltests import DTYPES, busbw_factor, parse_text, parse_text_all, strip_prefixes
from collbench import cli
from collectives import costs
from collectives.spec import SEND_RECV, spec

DATA = Path(__file__).resolve().parents[1] / "data" / "nccl-tests"

#: real log -> (import options, collective, world size, table rows)
IMPORTS = {
    "8gpu-noheader-all_reduce.log": (["--collective", "all_reduce"], "all_reduce", 8, 11),
    "a3mega-h100-16rank-all_reduce.md.log": ([], "all_reduce", 16, 31),
    "gb10-2node-all_reduce.log": ([], "all_reduce", 2, 4),
    "gb200-nvl72-all_reduce.log": (["--collective", "all_reduce"], "all_reduce", 72, 5),
    "gpu-systems-lab-t4-i1-all_reduce.log": ([], "all_reduce", 2, 1),
    "nccl-tests-290-srun-label-h100-2node.log": ([], "all_reduce", 16, 11),
    "hpc-ai-envs-30-rccl-mi300x.log": ([], "all_reduce", 8, 1),
    "nccl-tests-252-cutoff-all_reduce.log": ([], "all_reduce", 8, 5),
    "nccl-tests-280-noleadingspace-rtx4090.log": ([], "all_reduce", 3, 3),
    "nccl-tests-82-broadcast-v100-old.log": ([], "broadcast", 2, 1),
    "nixpkgs-251856-all_gather-1rank.log": ([], "all_gather", 1, 1),
    "nccl-tests-287-alltoall-rtx5090.log": ([], "all_to_all", 1, 1),
    "nccl-tests-104-sendrecv-gtx1080-old.log": ([], "send_recv", 2, 1),
    "nccl-tests-214-sendrecv-a40-2node.log": (["--collective", "send_recv"], "send_recv", 2, 5),
    "superbench-a100-alltoall.log": ([], "all_to_all", 8, 34),
    "p5-mpirun-prefixed-all_reduce.log": (["--collective", "all_reduce", "--world-size", "16"], "all_reduce", 16, 3),
    "rccl-16rank-all_reduce.log": ([], "all_reduce", 16, 4),
    "rccl-2075-multitest-broadcast-tail.log": (["--world-size", "1"], "broadcast", 1, 10),
    "rccl-929-mi250x-old-error.log": ([], "all_reduce", 16, 8),
    "superbench-a100-allgather.log": ([], "all_gather", 8, 34),
    "superbench-a100-allreduce.log": ([], "all_reduce", 8, 34),
    "superbench-a100-broadcast.log": ([], "broadcast", 8, 34),
    "superbench-a100-reduce.log": ([], "reduce", 8, 34),
    "superbench-a100-reducescatter.log": ([], "reduce_scatter", 8, 34),
    "uccl-396-norank-all_reduce.log": ([], "all_reduce", 8, 6),
    "nccl-tests-290-ring-h100-2node.log": ([], "all_reduce", 16, 11),
    "nccl-tests-309-ring-h100-2node.log": ([], "all_reduce", 16, 14),
    "gb200-20rack-1440rank-all_reduce.log": ([], "all_reduce", 1440, 3),
    "oci-bm-gpu4-a100-2node-all_reduce.log": ([], "all_reduce", 16, 3),
    "rccl-mi355x-pollara-2node-all_reduce.log": ([], "all_reduce", 16, 31),
    "rccl-mi355x-pollara-2node-alltoall.log": ([], "all_to_all", 16, 31),
    "hisohara-rccl-mi300x-2node-nogroup.log": ([], "all_reduce", 16, 32),
    "hisohara-rccl-mi355x-2node-N2.log": ([], "all_reduce", 16, 31),
    "spx-h200-2node-g8-dall-all_reduce.log": ([], "all_reduce", 16, 36),
    "nccl-tests-331-sendrecv-t2-a100.log": (["--collective", "send_recv"], "send_recv", 2, 29),
    "awsome-slurm-104-a100-2node-srun-label.log": (["--collective", "scatter"], "scatter", 16, 29),
    "nccl-tests-350-gather-a100-2node-stepbytes.log": ([], "gather", 2, 85),
    "dstack-a3high-tcpx-hash-stripped.log": (["--collective", "all_gather"], "all_gather", 16, 11),
    "fork-gdr116-v100-4gpu-c0-debugprints.log": ([], "all_reduce", 4, 29),
    "nccl-tests-167-multi-op-max-min-rows.log": ([], "all_reduce", 16, 11),
}  # fmt: skip
#: real log -> what the one error line must say (exit 2, no traceback)
REFUSED = {
    "nccl-tests-5-failed-nccl1.log": "failed before printing any result",
    "nccl-tests-219-failed-a6000.log": "failed before printing any result",
    "rccl-2075-multitest-broadcast-tail.log": "pass --world-size",
    "p5-mpirun-prefixed-all_reduce.log": "pass --collective",
    "gpu-systems-lab-t4-failed-cuda-driver.log": "failed before printing any result",
    "gpu-systems-lab-t4-failed-config-only.json": "stopped after its config",
    "awsome-slurm-104-a100-2node-srun-label.log": "gather or scatter); pass --collective",
    "dstack-a3high-tcpx-hash-stripped.log": "pass --collective",
}
#: real logs of several tests -> (import options, world size of each run, rows of each, NCCL_IB_ADAPTIVE_ROUTING
#: and NCCL_IB_OOO_RQ of each run's command line) (test_several_real_tests_in_one_file)
MULTI = {
    "hisohara-rccl-mi325x-1-8node-egrep.log": ([], [8, 16, 32, 64], [3, 3, 3, 3], None),
    "spcx-2node-3cases-all_reduce.log": ([], [16, 16, 16], [24, 24, 24], [("0", "0"), ("1", "0"), ("1", "1")]),
}
#: real -J JSON file -> (collective, world size, results, samples per point)
JSON_IMPORTS = {"gpu-systems-lab-t4-i1-all_reduce.json": ("all_reduce", 2, 1, 50),
                "azure-chm-nd96isr-h100-8rank-all_reduce.json": ("all_reduce", 8, 1, 0)}  # fmt: skip


def _table(path: Path) -> tuple[list[list[str]], int]:
    """The log's table rows, read independently of the importer: tokens of lines that start with size, count,
    a type name (after any launcher prefix); and the numbers per half (4, or 8 with -I 1 columns), the halves
    being the last 2 x that many tokens."""
    rows, width = [], 4
    for ln in path.read_text().splitlines():
        ln = re.sub(r"^(\[\d+,\d+\]<stdout>:|\s*\d+:\s)", "", ln)
        t = ln.split()
        if "i_p99" in t:
            width = 8
        if len(t) >= 11 and t[0].isdigit() and t[1].isdigit() and t[2] in DTYPES:
            rows.append(t)
    return rows, width


def _rounding(text: str) -> float:
    return 0.5 * 10 ** -(len(text.split(".")[1]) if "." in text else 0)


def _import(name: str, opts: list[str], out: Path, capsys) -> list[Path]:
    assert cli.main(["import", str(DATA / name), "--out", str(out), *opts]) == 0, capsys.readouterr().err
    return [Path(ln.split(" -> ")[-1]) for ln in capsys.readouterr().out.splitlines() if " -> " in ln]


def test_the_corpus_is_real_and_documented() -> None:
    prov = (DATA / "PROVENANCE.md").read_text()
    real = [p.name for p in DATA.iterdir() if p.suffix in (".log", ".json") and not p.name.startswith("synthetic-")]
    assert len(real) >= 15
    for name in real:
        assert f"`{name}`" in prov, f"{name} has no provenance"
    assert set(IMPORTS) | set(REFUSED) | set(JSON_IMPORTS) | set(MULTI) >= set(real)


@pytest.mark.parametrize("name", sorted(IMPORTS))
def test_every_row_matches_the_log(name: str, tmp_path: Path, capsys) -> None:
    opts, collective, p, n_rows = IMPORTS[name]
    (run_dir,) = _import(name, opts, tmp_path, capsys)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["world_size"] == p and meta["config"]["collectives"] == [collective]
    points = meta["points"]
    table, w = _table(DATA / name)
    # all_to_all and send_recv are out of place only: nccl-tests' unchecked in-place alltoall / sendrecv column
    # is not imported
    halves = 1 if collective == "send_recv" or spec(collective).variants("both") == (False,) else 2
    assert len(table) == n_rows
    # a row printed again identically in the same test (rccl-tests' repeated 0-byte rows) is one point
    table = list(dict.fromkeys(tuple(row) for row in table))
    assert len(points) == halves * len(table)
    f = busbw_factor(collective, p)  # nccl-tests' F(p); 1 for sendrecv
    for row, i in zip(table, range(0, len(points), halves), strict=True):
        nbytes = int(row[0])
        for half, pt in zip((row[-2 * w : -w], row[-w:])[:halves], points[i : i + halves], strict=True):
            if w == 8:  # -I 1: i_min and i_max of the iterations are kept
                assert (pt["time_us_min"], pt["time_us_max"]) == (float(half[4]), float(half[5]))
            assert pt["bytes"] == nbytes and pt["count"] == int(row[1]) and pt["collective"] == collective
            assert pt["time_us"] == float(half[0])  # exactly the printed time
            t, dt = float(half[0]), _rounding(half[0])
            if t > 0:  # today's definitions, from S and t: algbw = S/t, busbw = algbw x F(p)
                assert pt["algbw_gbps"] == nbytes / t / 1e3 and pt["busbw_gbps"] == pt["algbw_gbps"] * f
            if t - dt > 0:  # and the log's printed figures agree with them within print rounding
                lo, hi = nbytes / (t + dt) / 1e3, nbytes / (t - dt) / 1e3
                assert lo - _rounding(half[1]) - 1e-9 <= float(half[1]) <= hi + _rounding(half[1]) + 1e-9
                assert lo * f - _rounding(half[2]) - 1e-9 <= float(half[2]) <= hi * f + _rounding(half[2]) + 1e-9
        assert [pt["in_place"] for pt in points[i : i + halves]] == [False, True][:halves]


@pytest.mark.parametrize("name", sorted(JSON_IMPORTS))
def test_every_json_result_matches_the_file(name: str, tmp_path: Path, capsys) -> None:
    collective, p, n_results, n_samples = JSON_IMPORTS[name]
    (run_dir,) = _import(name, [], tmp_path, capsys)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["world_size"] == p and meta["config"]["collectives"] == [collective]
    doc = json.loads((DATA / name).read_text())
    points = meta["points"]
    assert len(doc["results"]) == n_results and len(points) == 2 * n_results
    f = costs.busbw_factor(collective, p)
    for res, i in zip(doc["results"], range(0, len(points), 2), strict=True):
        for key, pt in (("out_of_place", points[i]), ("in_place", points[i + 1])):
            half, t, nbytes = res[key], float(res[key]["time"]), int(res["size"])
            assert pt["time_us"] == t and pt["bytes"] == nbytes and pt["in_place"] == (key == "in_place")
            assert pt["algbw_gbps"] == nbytes / t / 1e3 and pt["busbw_gbps"] == pt["algbw_gbps"] * f
            # the file's %lf figures agree (6 decimals; the time printed is itself rounded to 1e-6 us)
            assert abs(float(half["alg_bw"]) - pt["algbw_gbps"]) <= 5e-7 + pt["algbw_gbps"] * 1e-9
            assert abs(float(half["bus_bw"]) - pt["busbw_gbps"]) <= 5e-7 + pt["busbw_gbps"] * 1e-9
            if not n_samples:  # no -I 1: no per-iteration times, the point has no samples
                assert f"{key}_per_iter" not in res and pt["samples_us"] == []
                continue
            samples = [float(x) for x in res[f"{key}_per_iter"]["times_us"]]
            # every iteration's time (run.json keeps samples to 1e-4 us)
            assert pt["samples_us"] == pytest.approx(samples, abs=5e-5) and len(samples) == n_samples
            assert min(samples) == float(res[f"{key}_per_iter"]["min_us"])
            assert pt["time_us_min"] == pytest.approx(min(samples), abs=5e-5)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refusals_are_one_clear_line(name: str, tmp_path: Path, capsys) -> None:
    assert cli.main(["import", str(DATA / name), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and REFUSED[name] in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "out").exists()


def test_what_the_log_tells_about_the_machine(tmp_path: Path, capsys) -> None:
    (run,) = _import("a3mega-h100-16rank-all_reduce.md.log", [], tmp_path, capsys)
    hw = json.loads((run / "run.json").read_text())["hardware"]
    assert hw["nnodes"] == 2 and hw["gpus_per_node"] == 8 and hw["hosts"] == ["ztan-mig-235z", "ztan-mig-gq73"]
    assert hw["gpu_models"] == ["NVIDIA H100 80GB HBM3"] * 16
    (run,) = _import("nccl-tests-82-broadcast-v100-old.log", [], tmp_path, capsys)
    meta = json.loads((run / "run.json").read_text())
    assert meta["versions"]["nccl"] == "2.9.6+cuda11.2" and meta["hardware"]["nnodes"] == 2
    assert meta["environment"]["NCCL_ALGO"] == "Ring" and meta["environment"]["NCCL_PROTO"] == "Simple"
    assert "broadcast_perf" in meta["config"]["source_command"]
    (run,) = _import("hpc-ai-envs-30-rccl-mi300x.log", [], tmp_path, capsys)
    meta = json.loads((run / "run.json").read_text())
    assert meta["versions"]["nccl_tests"] == "develop:83d38d9"
    assert meta["hardware"]["gpu_model"] == "AMD Instinct MI300X"
    assert "inferred from the columns" in " ".join(meta["warnings"])


def test_old_error_column_and_zero_byte_rows() -> None:
    old = parse_text((DATA / "rccl-929-mi250x-old-error.log").read_text())
    assert old.world_size_source == "the launcher's -np x -g" and all(pt["correct"] for pt in old.points)
    assert all(pt["n_wrong"] is None for pt in old.points)
    ag = parse_text((DATA / "superbench-a100-allgather.log").read_text())
    assert sum(pt["bytes"] == 0 for pt in ag.points) == 10 and ag.collective_source.startswith("inferred")


def test_imported_runs_go_through_fit_report_compare(tmp_path: Path, capsys) -> None:
    runs = {}
    for name, (opts, *_rest) in IMPORTS.items():
        runs[name] = _import(name, opts, tmp_path / "runs", capsys)[0]
    for name, run in runs.items():
        rc = cli.main(["fit", str(run)])
        err = capsys.readouterr().err
        assert rc == 0 or (rc == 2 and "nothing to fit" in err and len(err.strip().splitlines()) == 1), (name, err)
        assert cli.main(["compare", str(run), str(copy_run(run, tmp_path))]) == 0, (name, capsys.readouterr().err)
        capsys.readouterr()
    # report renders figures: a few representative logs (0-byte rows, one size, world size 1, many ranks,
    # bandwidths printed as 0.00 at every size)
    for name in ("superbench-a100-allgather.log", "nixpkgs-251856-all_gather-1rank.log",
                 "a3mega-h100-16rank-all_reduce.md.log", "nccl-tests-280-noleadingspace-rtx4090.log"):  # fmt: skip
        assert cli.main(["report", str(runs[name]), "--boot", "10"]) == 0, (name, capsys.readouterr().err)
        capsys.readouterr()


# ---- generated tables: random prefixes, layouts and noise -------------------------------------------------

PREFIXES = st.sampled_from(["", "0: ", " 12: ", "[1,0]<stdout>:", "(head, rank=0, pid=3808) [1,0]<stdout>:",
                            "2024-05-01T10:00:00.123456789Z ", "[pod/launcher-abc/mpi] ",
                            "3: [1,3]<stdout>:"])  # fmt: skip
NOISE = st.sampled_from([
    "node1:123:456 [0] NCCL INFO Launch mode Parallel",
    "node1:123:456 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/IPC",
    "node1:123:456 [0] NCCL INFO NCCL_IB_HCA set by environment to mlx5",
    "user@host:~/nccl-tests$ ls",
    "",
])  # fmt: skip


def _fmt(x: float) -> str:
    return f"{x:.2f}"


#: the header columns between type and time of the pre-2020 table layout
OLD_LAYOUT = {"all_reduce": "redop", "reduce_scatter": "redop", "reduce": "redop    root", "broadcast": "root",
              "all_gather": "", "all_to_all": "redop"}  # fmt: skip


@st.composite
def tables(draw):
    coll = draw(st.sampled_from(costs.COLLECTIVES))
    p = draw(st.integers(2, 64))
    layout = draw(st.sampled_from(["new", "old"]))
    named = draw(st.booleans())
    ranks = draw(st.booleans())
    f = costs.busbw_factor(coll, p)
    dtype, esize = draw(st.sampled_from([("float", 4), ("half", 2), ("double", 8)]))
    sizes = sorted(draw(st.sets(st.integers(12, 33), min_size=2, max_size=6)))
    lines, rows = [], []
    if named:
        lines.append(f"# Collective test starting: {spec(coll).program}_perf")
    if layout == "old":
        lines.append(f"# nThread: 1 nGpus: 1 minBytes: 8 maxBytes: {1 << sizes[-1]} step: 2(factor) iters: 20")
    else:
        lines.append(f"# nThread 1 nGpus 1 minBytes 8 maxBytes {1 << sizes[-1]} step: 2(factor) warmup iters: 5 "
                     "iters: 20 agg iters: 1 validation: 1 graph: 0")  # fmt: skip
    if ranks:
        lines += [f"#  Rank {r:2d} Group  0 Pid {100 + r:6d} on node{r // 8} device {r % 8:2d} [0x{r:02x}] "
                  "NVIDIA H100 80GB HBM3" for r in range(p)]  # fmt: skip
    op = "sum" if coll in costs.REDUCING else "none"
    root = spec(coll).recorded_root(0)
    assume(layout == "new" or coll in OLD_LAYOUT)  # gather_perf and scatter_perf came after the old layout
    if layout == "new":
        lines.append("#       size         count      type   redop    root     time   algbw   busbw #wrong     time   "
                     "algbw   busbw #wrong")  # fmt: skip
    else:
        mid = OLD_LAYOUT[coll]
        lines.append(f"#       size         count      type   {mid}     time   algbw   busbw  error     time   algbw   "
                     "busbw  error")  # fmt: skip
    for k in sizes:
        nbytes = 1 << k
        t = draw(st.floats(5.0, 5e5)) if k < 30 else draw(st.floats(1e3, 5e5))
        t_text = f"{t:.1f}" if t < 1e4 else f"{t:.0f}"
        algbw = nbytes / float(t_text) / 1e3
        busbw = algbw * f
        if layout == "new":
            mid = f"{op:>7s} {root:7d}"
            wrong = "0"
        else:
            mid = {"all_reduce": f"{op:>7s}", "reduce_scatter": f"{op:>7s}", "reduce": f"{op:>7s} {root:7d}",
                   "broadcast": f"{root:7d}", "all_gather": "", "all_to_all": ""}[coll]  # fmt: skip
            wrong = "0e+00"
        half = f"{t_text:>8s} {_fmt(algbw):>7s} {_fmt(busbw):>7s} {wrong:>6s}"
        lines.append(f"{nbytes:12d}  {nbytes // esize:12d}  {dtype:>8s} {mid} {half} {half}")
        rows.append((nbytes, float(t_text), algbw, busbw))  # imported: S/t and algbw x F, not the printed figures
        if draw(st.booleans()):
            lines.append(draw(NOISE))
    lines.append("# Out of bounds values : 0 OK")
    prefix = draw(PREFIXES)
    text = "\n".join(prefix + ln for ln in lines)
    return text, coll, p, named, ranks, rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_generated_tables(case) -> None:
    text, coll, p, named, ranks, rows = case
    opts = {"collective": None if named else coll, "world_size": None if ranks else p}
    log = parse_text(text, **opts)
    assert log.collective == coll and log.world_size == p
    got = [(pt["bytes"], pt["time_us"], pt["algbw_gbps"], pt["busbw_gbps"]) for pt in log.points if not pt["in_place"]]
    assert got == rows
    if ranks:
        assert len(log.rank_hosts) == p


@settings(max_examples=60, deadline=None)
@given(st.lists(PREFIXES, min_size=1, max_size=3), st.text("abc #:[]()0123456789", max_size=30))
def test_prefixes_never_hide_a_table_line(prefixes, rest) -> None:
    row = ("     1048576        262144     float     sum      -1    105.9    9.90   17.33      0    105.7    9.92   "
           "17.37      0")
    assert strip_prefixes("".join(prefixes) + row) == row
    strip_prefixes("".join(prefixes) + rest)  # never raises


def test_world_size_from_busbw_algbw_of_the_largest_rows() -> None:
    # rows with small algbw fit many p; the largest ones decide (no per-row guesses that must agree)
    text = (DATA / "superbench-a100-allreduce.log").read_text()
    body = "\n".join(ln for ln in text.splitlines() if "Rank" not in ln and "nThread" not in ln)
    log = parse_text(body)
    assert log.world_size == 8 and log.world_size_source == "busbw/algbw"


def test_pre_2020_all_gather_is_converted_to_modern_semantics() -> None:
    # nccl-tests before PR #45: algbw = S/t x (p-1)/p and busbw = algbw; p = 4 from the rank lines
    ranks = "\n".join(f"#   Rank  {r} Pid  {10 + r} on  node device  {r} [0x00] Tesla V100-SXM2-16GB" for r in range(4))
    rows = []
    for nbytes, t in ((1048576, 45.10), (16777216, 420.3), (268435456, 6012.5)):
        a = nbytes / t / 1e3 * 3 / 4
        rows.append(f"{nbytes:12d} {nbytes // 16:13d}   float  {t:7.1f} {a:7.2f} {a:7.2f}  0e+00  {t:7.1f} {a:7.2f} "
                    f"{a:7.2f}  0e+00")  # fmt: skip
    text = ("# nThread 1 nGpus 4 minBytes 8 maxBytes 268435456 step: 2(factor) warmup iters: 5 iters: 20 "
            "validation: 1\n"
            f"# Using devices\n{ranks}\n#       size         count    type     time   algbw   busbw  error     time   "
            "algbw   busbw  error\n" + "\n".join(rows) + "\n")  # fmt: skip
    log = parse_text(text, collective="all_gather")
    assert log.world_size == 4 and any("before 2020" in w for w in log.warnings)
    for pt in log.points:
        assert pt["algbw_gbps"] == pytest.approx(pt["bytes"] / pt["time_us"] / 1e3)
        assert pt["busbw_gbps"] == pytest.approx(pt["algbw_gbps"] * 3 / 4)
    # without rank lines, busbw == algbw would give p = 1; algbw / (size/time) gives the truth
    log = parse_text(text.replace(ranks, ""), collective="all_gather")
    assert log.world_size == 4


@pytest.mark.parametrize("name", sorted(MULTI))
def test_several_real_tests_in_one_file(name: str, tmp_path: Path, capsys) -> None:
    """A file of several runs is one run directory per run, each with its own world size, rows and settings:
    four scales of one program grepped into one file (no headers between them, the sizes start again at another
    busbw/algbw), or three runs each under its own command line with other NCCL_IB_* settings."""
    opts, worlds, n_rows, settings = MULTI[name]
    runs = _import(name, opts, tmp_path, capsys)
    metas = [json.loads((r / "run.json").read_text()) for r in runs]
    assert [m["world_size"] for m in metas] == worlds and [len(m["points"]) // 2 for m in metas] == n_rows
    printed = [float(t[5]) for t in _table(DATA / name)[0]]  # out-of-place times, in the file's order
    assert [pt["time_us"] for m in metas for pt in m["points"] if not pt["in_place"]] == printed  # none merged
    if settings:  # each run's settings and command are those printed above its own table
        env = [(m["environment"]["NCCL_IB_ADAPTIVE_ROUTING"], m["environment"]["NCCL_IB_OOO_RQ"]) for m in metas]
        assert env == settings
        for m, (ar, ooo) in zip(metas, settings, strict=True):
            assert f"NCCL_IB_ADAPTIVE_ROUTING={ar} -x NCCL_IB_OOO_RQ={ooo}" in m["config"]["source_command"]


def test_rank_lines_without_a_device_name_still_give_the_nodes(tmp_path: Path, capsys) -> None:
    """rccl-tests rank lines that end at the bus id (no GPU name) still say 2 nodes x 8 ranks; the model is
    unknown, not an empty name."""
    (run_dir,) = _import("hisohara-rccl-mi355x-2node-N2.log", [], tmp_path, capsys)
    meta = json.loads((run_dir / "run.json").read_text())
    hw = meta["hardware"]
    assert (hw["nnodes"], hw["gpus_per_node"], hw["hosts"]) == (2, 8, ["mi355-gpu-23", "mi355-gpu-24"])
    assert hw["gpu_model"] is None and "gpu_models" not in hw


def test_a_command_after_a_root_prompt_is_the_command(tmp_path: Path, capsys) -> None:
    """``# mpirun ... all_reduce_perf ...`` (a root shell's prompt) is the test's command line, not a comment: its
    ``-x NCCL_*`` settings are the run's."""
    (run_dir,) = _import("spx-h200-2node-g8-dall-all_reduce.log", [], tmp_path, capsys)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["config"]["source_command"].startswith("mpirun --allow-run-as-root")
    assert meta["environment"]["NCCL_IB_QPS_PER_CONNECTION"] == "2" and meta["world_size"] == 16


def test_a_failed_check_is_said_and_kept(tmp_path: Path, capsys) -> None:
    """``Out of bounds values : 24 FAILED`` (a real 256-node GH200 run): the rows with #wrong > 0 are kept as
    correct = false and the import says so on stderr, once."""
    log = DATA.parent / "scaling" / "alps-gh200-ss11-awsofi1.13" / "256node-all_reduce.log"
    assert cli.main(["import", str(log), "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.count("nccl-tests' own check failed") == 1 and "#wrong > 0" in err
    (meta,) = [json.loads(p.read_text()) for p in tmp_path.glob("*/run.json")]
    bad = [pt for pt in meta["points"] if pt["n_wrong"]]
    assert bad and all(not pt["correct"] for pt in bad)
    assert all(pt["correct"] for pt in meta["points"] if pt["n_wrong"] == 0)


def test_the_headers_warmup_and_iters_are_kept(tmp_path: Path, capsys) -> None:
    """``warmup iters: 10 iters: 100`` in the header line: every point says so (warmup was left empty before)."""
    (run_dir,) = _import("gb10-2node-all_reduce.log", [], tmp_path, capsys)
    points = json.loads((run_dir / "run.json").read_text())["points"]
    assert {(pt["warmup"], pt["iters"]) for pt in points} == {(10, 100)}


def test_several_tests_in_one_file(tmp_path: Path, capsys) -> None:
    a = (DATA / "superbench-a100-allreduce.log").read_text()
    b = (DATA / "superbench-a100-broadcast.log").read_text()
    text = "Running: all_reduce_perf -g 8\n" + a + "Running: broadcast_perf -g 8\n" + b
    logs = parse_text_all(text)
    assert [lg.collective for lg in logs] == ["all_reduce", "broadcast"] and all(lg.world_size == 8 for lg in logs)
    path = tmp_path / "all.log"
    path.write_text(text)
    assert cli.main(["import", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "2 tests (all_reduce, broadcast): one run directory each" in out and out.count(" -> ") == 2


def test_json_edge_cases(tmp_path: Path, capsys) -> None:
    doc = json.loads((DATA / "synthetic-reduce_scatter.json").read_text())
    doc["config"]["devices"] = doc["config"]["devices"][:1]  # rank 0 only, while ngpus says 4
    doc["config"]["ngpus"] = 4
    for res in doc["results"]:
        res["root"] = "    -1"
    compact = json.dumps(doc, separators=(",", ":")).replace("/", "\\/")
    path = tmp_path / "rs.json"
    path.write_text(compact)  # no trailing newline
    assert cli.main(["import", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "world size 4" in capsys.readouterr().out
    cut = tmp_path / "cut.json"
    cut.write_text(compact[: compact.index('"results"')])
    assert cli.main(["import", str(cut), "--out", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stops after its config" in err[0]


def test_real_json_and_per_iteration_text(tmp_path: Path, capsys) -> None:
    # the -J file and the text log of one run (gpu-systems-lab, T4 x 2, nccl-tests 2.19.7, -I 1)
    (run,) = _import("gpu-systems-lab-t4-i1-all_reduce.json", [], tmp_path, capsys)
    meta = json.loads((run / "run.json").read_text())
    hw = meta["hardware"]
    assert meta["versions"]["nccl"] == "2.29.3" and meta["environment"] == {"NCCL_DEBUG": "INFO"}
    assert hw["hosts"] == ["22f64f592750"] and hw["nnodes"] == 1 and hw["gpus_per_node"] == 2
    assert hw["gpu_models"] == ["Tesla T4"]  # config.devices lists rank 0 only (the first of its process)
    assert any("config.devices lists 1 device" in w for w in meta["warnings"])
    assert "/kaggle/working/nccl-tests/build/all_reduce_perf" in meta["config"]["source_command"]
    (run,) = _import("gpu-systems-lab-t4-i1-all_reduce.log", [], tmp_path, capsys)
    meta = json.loads((run / "run.json").read_text())
    assert meta["versions"] == {"nccl": "2.29.3+cuda12.9", "nccl_tests": "2.19.7"}
    assert meta["hardware"]["gpu_models"] == ["Tesla T4", "Tesla T4"]
    (run,) = _import("nccl-tests-290-srun-label-h100-2node.log", [], tmp_path, capsys)
    hw = json.loads((run / "run.json").read_text())["hardware"]
    assert hw["nnodes"] == 2 and hw["gpus_per_node"] == 8 and hw["hosts"] == ["node005", "node007"]


def test_real_mpi_json_counts_one_device_entry_per_process(tmp_path: Path, capsys) -> None:
    """A -J file of an MPI run (Azure cluster-health-monitor, 8 processes x 1 H100, nccl-tests JSON version 3,
    pretty-printed as the repository keeps it): config.devices lists each process's rank, so the world size is
    1 x 1 x 8; the run's whole environment (an Open MPI job key among it) never reaches run.json."""
    name = "azure-chm-nd96isr-h100-8rank-all_reduce.json"
    (run,) = _import(name, [], tmp_path, capsys)
    meta = json.loads((run / "run.json").read_text())
    hw = meta["hardware"]
    assert meta["world_size"] == 8 and hw["hosts"] == ["nccl-json"]
    assert hw["nnodes"] == 1 and hw["gpus_per_node"] == 8 and hw["gpu_models"] == ["NVIDIA H100 80GB HBM3"] * 8
    assert meta["versions"]["nccl"] == "2.23.4"  # "nccl_version": 22304
    assert meta["environment"] == {"NCCL_IB_PCI_RELAXED_ORDERING": "1",
                                   "NCCL_TOPO_FILE": "/usr/local/share/topofiles/ndv5-topo.xml"}  # fmt: skip
    assert "1fa4f1ea1a8dae60" not in (run / "run.json").read_text()  # OMPI_MCA_orte_precondition_transports
    assert not any("config.devices lists" in w for w in meta["warnings"])
    out_of_place, in_place = meta["points"]
    assert out_of_place["bytes"] == 16 * 2**30 and out_of_place["time_us"] == 62517.395194
    assert round(out_of_place["busbw_gbps"], 6) == 480.902491 and round(in_place["busbw_gbps"], 6) == 479.686103
    assert out_of_place["iters"] == 20 and out_of_place["n_wrong"] == 0 and out_of_place["correct"]
    # above the 450 GB/s NVLink roof of H100 SXM: NVLink SHARP (NVLS) reduces in the NVSwitch, the verdict says so
    assert cli.main(["verdict", str(run), "--gpu", "h100-sxm"]) == 0
    text = capsys.readouterr().out
    assert "480.9 GB/s busbw at 16 GiB = 107 % of the 450 GB/s link roof: above the roof" in text
    assert "NVLink SHARP" in text


def test_sendrecv_logs_import_as_a_ring_shift(tmp_path: Path, capsys) -> None:
    """sendrecv_perf (every rank sends to r + 1 and receives from r - 1 at once) is send_recv / ring_shift: old
    layout named on its command line (one process, -g 2), new layout with rank lines given --collective."""
    (old,) = _import("nccl-tests-104-sendrecv-gtx1080-old.log", [], tmp_path, capsys)
    meta = json.loads((old / "run.json").read_text())
    assert meta["config"]["algorithms"] == [SEND_RECV.p2p.imported_algorithm] and meta["world_size"] == 2
    assert "one process (the command line names no launcher): its -t x -g" in " ".join(meta["warnings"])
    (pt,) = meta["points"]
    assert (pt["collective"], pt["algorithm"], pt["bytes"], pt["dtype"], pt["op"], pt["root"], pt["in_place"]) == (
        "send_recv", SEND_RECV.p2p.imported_algorithm, 37748744, "uint8", "none", -1, False)
    assert pt["time_us"] == 11732 and pt["busbw_gbps"] == pt["algbw_gbps"] == 37748744 / 11732 / 1e3  # F = 1
    (new,) = _import("nccl-tests-214-sendrecv-a40-2node.log", ["--collective", "send_recv"], tmp_path, capsys)
    meta = json.loads((new / "run.json").read_text())
    assert meta["hardware"]["hosts"] == ["gpu23", "gpu24"] and meta["nnodes"] == 2
    assert [p["bytes"] for p in meta["points"]] == [256, 512, 1024, 2048, 4096]
    assert [p["time_us"] for p in meta["points"]] == [34.24, 34.24, 34.24, 31.58, 30.74]
    assert all(p["busbw_gbps"] == p["algbw_gbps"] and p["op"] == "none" for p in meta["points"])
    assert any("in-place column is dropped" in w for w in meta["warnings"])
    # without --collective the columns say all_reduce at p = 2 (F = 1, sum, -1): the log cannot tell, the note says so
    log = parse_text((DATA / "nccl-tests-214-sendrecv-a40-2node.log").read_text())
    assert log.collective == "all_reduce" and "pass --collective send_recv" in log.collective_source
    for run in (old, new):
        assert cli.main(["compare", str(run), str(copy_run(run, tmp_path))]) == 0
    assert cli.main(["fit", str(new)]) == 0 and cli.main(["verdict", str(new)]) == 0
    assert "nccl-tests sendrecv_perf ring_shift" in capsys.readouterr().out
