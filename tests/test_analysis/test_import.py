"""collbench import: real public nccl-tests logs parse exactly (every row, every number), every layout variant."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from analysis.errors import AnalysisError
from analysis.nccltests import parse_json, parse_text
from analysis.read_runs import load_run
from collbench import cli

DATA = Path(__file__).resolve().parents[1] / "data" / "nccl-tests"
#: file -> (import options, collective, world size, first row, last row, rows); a row is the log's numbers
REAL = {
    "gb200-nvl72-all_reduce.log": (
        ["--collective", "all_reduce"], "all_reduce", 72,
        (536870912, 134217728, 1806.7, 297.16, 586.06, 0, 1835.9, 292.43, 576.74, 0),
        (8589934592, 2147483648, 20299, 423.16, 834.57, 0, 20006, 429.37, 846.82, 0), 5,
    ),
    "gb10-2node-all_reduce.log": (
        [], "all_reduce", 2,
        (8192, 2048, 35.15, 0.23, 0.23, 0, 30.33, 0.27, 0.27, 0),
        (65536, 16384, 67.93, 0.96, 0.96, 0, 64.71, 1.01, 1.01, 0), 4,
    ),
    "8gpu-noheader-all_reduce.log": (
        ["--collective", "all_reduce"], "all_reduce", 8,
        (32768, 8192, 18.66, 1.76, 3.07, 0, 17.95, 1.83, 3.20, 0),
        (33554432, 8388608, 195.40, 171.72, 300.51, 0, 195.40, 171.73, 300.52, 0), 11,
    ),
    "rccl-16rank-all_reduce.log": (
        [], "all_reduce", 16,
        (2147483648, 536870912, 11186, 191.99, 359.98, 0, 11199, 191.75, 359.53, 0),
        (17179869184, 4294967296, 89235, 192.52, 360.98, 0, 89189, 192.62, 361.17, 0), 4,
    ),
    "p5-mpirun-prefixed-all_reduce.log": (
        ["--collective", "all_reduce", "--world-size", "16"], "all_reduce", 16,
        (8, 2, 12.90, 0.00, 0.00, 0, 12.87, 0.00, 0.00, 0),
        (32, 8, 22.25, 0.00, 0.00, 0, 13.34, 0.00, 0.00, 0), 3,
    ),
}  # fmt: skip


def _numbers(points: list[dict]) -> list[tuple]:
    """Log rows back from points: size, count, then time/algbw/busbw/#wrong out-of-place and in-place."""
    rows: dict[int, dict[bool, dict]] = {}
    for pt in points:
        rows.setdefault(pt["bytes"], {})[pt["in_place"]] = pt
    out = []
    for nbytes in sorted(rows):
        o, i = rows[nbytes][False], rows[nbytes][True]
        out.append((nbytes, o["count"], *(v for h in (o, i) for v in (h["time_us"], h["algbw_gbps"],
                                                                         h["busbw_gbps"], h["n_wrong"]))))  # fmt: skip
    return out


def _rounding(text: str) -> float:
    return 0.5 * 10 ** -(len(text.split(".")[1]) if "." in text else 0)


def _same_row(got: tuple, want: tuple, time_rounding: tuple[float, float] = (0.5, 0.5)) -> None:
    """Size, count, times and #wrong exactly; algbw/busbw are S/t and algbw x F, so the printed ones agree
    within their own rounding (0.005) plus what the time's print rounding moves them (out-of-place, in-place)."""
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if i in (3, 4, 7, 8):
            t, dt = (got[2], time_rounding[0]) if i < 5 else (got[6], time_rounding[1])
            tol = 0.005 + (abs(g) * dt / t if t > 0 else 0.0)
            assert abs(g - w) <= tol + 1e-9, (i, got, want)
        else:
            assert g == w, (i, got, want)


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_logs_import_exactly(name: str, tmp_path: Path, capsys) -> None:
    opts, collective, p, first, last, n_rows = REAL[name]
    assert cli.main(["import", str(DATA / name), "--out", str(tmp_path), *opts]) == 0
    run_dir = Path(capsys.readouterr().out.strip().split(" -> ")[-1])
    run = load_run(run_dir)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["launcher"] == "import" and meta["backend"] == "nccl" and meta["world_size"] == p
    assert meta["source"]["format"] == "nccl-tests-text" and len(meta["source"]["sha256"]) == 64
    df = run.points
    assert set(df.collective) == {collective} and set(df.algorithm) == {"builtin"} and len(df) == 2 * n_rows
    rows = _numbers(meta["points"])
    assert len(rows) == n_rows
    _same_row(rows[0], first)
    _same_row(rows[-1], last)
    # every data line of the file, number for number (an independent whitespace split of the log)
    lines = [re.sub(r"^\[\d+,\d+\]<stdout>:", "", ln) for ln in (DATA / name).read_text().splitlines()]
    table = [ln.split() for ln in lines if ln.strip() and ln.split()[0].isdigit()]
    want = [(int(t[0]), int(t[1]), *map(float, t[5:9]), *map(float, t[9:13])) for t in table]
    assert len(rows) == len(want)
    for got, w, tok in zip(rows, want, table, strict=True):
        _same_row(got, w, (_rounding(tok[5]), _rounding(tok[9])))
    assert (df.time_us == df.block_time_us).all() and df.time_us_p10.isna().all()


def test_layout_variants() -> None:
    old = parse_text((DATA / "synthetic-old-format-all_gather.log").read_text())
    assert old.collective == "all_gather" and old.world_size == 4 and old.iters == 20
    assert old.gpu_model == "Tesla V100-SXM2-16GB" and old.nccl_version == "2.7.8+cuda11.0"
    assert [pt["bytes"] for pt in old.points] == [1024, 1024, 16384, 16384, 262144, 262144, 4194304, 4194304]
    assert old.points[-1]["time_us"] == 199.7 and old.points[-1]["busbw_gbps"] == pytest.approx(15.75, abs=0.005)
    assert {pt["op"] for pt in old.points} == {"none"} and all(pt["n_wrong"] == 0 for pt in old.points)
    bcast = parse_text((DATA / "synthetic-broadcast-root-na.log").read_text())
    assert bcast.collective == "broadcast" and {pt["root"] for pt in bcast.points} == {1}
    assert all(pt["n_wrong"] is None for pt in bcast.points) and bcast.iters == 50
    js = parse_json((DATA / "synthetic-reduce_scatter.json").read_text())
    assert js.collective == "reduce_scatter" and js.world_size == 4 and len(js.points) == 6
    assert js.points[-1]["time_us"] == 328.9 and js.points[-1]["in_place"] is True
    # an MPI run of 2 processes x -g 2: devices lists ranks 0 and 2, the hosts of every rank follow
    assert js.rank_hosts == {0: "gpu-node-0", 1: "gpu-node-0", 2: "gpu-node-1", 3: "gpu-node-1"}
    assert js.nnodes == 2 and js.gpus_per_node == 2 and js.nccl_version == "2.27.3"
    assert all(len(pt["samples_us"]) == 20 for pt in js.points) and js.nccl_env == {"NCCL_ALGO": "Ring",
                                                                                    "NCCL_DEBUG": "WARN"}
    gb10 = parse_text((DATA / "gb10-2node-all_reduce.log").read_text())
    assert gb10.iters == 100 and gb10.tests_version == "2.20.0" and gb10.hosts == ["spark-d708", "spark-dbf4"]


def test_json_import_never_copies_the_environment(tmp_path: Path, capsys) -> None:
    assert cli.main(["import", str(DATA / "synthetic-reduce_scatter.json"), "--out", str(tmp_path)]) == 0
    run_dir = Path(capsys.readouterr().out.strip().split(" -> ")[-1])
    text = (run_dir / "run.json").read_text()
    assert "do-not-copy-me" not in text and "AWS_SECRET" not in text
    assert json.loads(text)["source"]["format"] == "nccl-tests-json"


def test_bad_files(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("hello\nno table here\n")
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    for path, msg in ((empty, "no nccl-tests result table"), (binary, "not a text file"),
                      (tmp_path / "missing.log", "no such file")):  # fmt: skip
        assert cli.main(["import", str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0]
    assert not (tmp_path / "out").exists()  # nothing written when an input is bad
    # rows of 0.00 GB/s only: the columns cannot tell all_reduce from reduce_scatter
    assert cli.main(["import", str(DATA / "p5-mpirun-prefixed-all_reduce.log"), "--out", str(tmp_path)]) == 2
    assert "pass --collective" in capsys.readouterr().err


def test_tuning_lines_mpich_prefix_and_timestamps() -> None:
    # TUNING lines as NCCL prints them, by name (2.19+) and by number (older); an MPICH -prepend-rank prefix;
    # a -S 1 timestamp at the end of a row (nccl-tests src/util.cu writeTimestamp)
    text = "\n".join([
        "[0] # nThread 1 nGpus 2 minBytes 1048576 maxBytes 1048576 step: 2(factor) warmup iters: 5 iters: 20 agg "
        "iters: 1 validation: 1 graph: 0",
        "[0] #  Rank  0 Group  0 Pid   1718 on node1 device  0 [0000:00:04] Tesla T4",
        "[0] #  Rank  1 Group  0 Pid   1718 on node1 device  1 [0000:00:05] Tesla T4",
        "[0] node1:1718:1718 [0] NCCL INFO 262144 Bytes -> Algo 0 proto 1 time 54.707825",
        "[0] node1:1718:1718 [0] NCCL INFO AllReduce: 1048576 Bytes -> Algo RING proto SIMPLE channel{Lo..Hi}={0..1}",
        "[0] #       size         count      type   redop    root     time   algbw   busbw  #wrong     time   algbw   "
        "busbw  #wrong           timestamp",
        "[0]      1048576        262144     float     sum      -1    105.9    9.90    9.90       0    105.7    9.92   "
        " 9.92       0  2025-10-28 12:34:56",
        "[0] # Collective test concluded: all_reduce_perf",
    ])  # fmt: skip
    log = parse_text(text)
    assert log.collective == "all_reduce" and log.world_size == 2 and len(log.points) == 2
    assert log.points[1]["time_us"] == 105.7 and log.algo_proto == ["Ring/Simple", "Tree/LL128"]


def test_alltoall_imports_as_all_to_all_out_of_place_only() -> None:
    """nccl-tests' alltoall is collbench's all_to_all; its unchecked in-place column is dropped, said once."""
    text = (DATA / "superbench-a100-alltoall.log").read_text()
    for given in (None, "alltoall", "all_to_all"):
        log = parse_text(text, collective=given)
        assert log.collective == "all_to_all" and log.world_size == 8
        assert len(log.points) == 34 and not any(pt["in_place"] for pt in log.points)
        assert sum("in-place column is dropped" in w for w in log.warnings) == 1
    big = log.points[-1]
    assert big["busbw_gbps"] == pytest.approx(big["algbw_gbps"] * 7 / 8, abs=0.01)
    with pytest.raises(AnalysisError, match="--collective all_reduce but the log measured all_to_all"):
        parse_text((DATA / "nccl-tests-287-alltoall-rtx5090.log").read_text(), collective="all_reduce")
    doc = json.loads((DATA / "synthetic-reduce_scatter.json").read_text())
    doc["args"][0] = "./build/alltoall_perf"
    js = parse_json(json.dumps(doc))
    assert js.collective == "all_to_all" and len(js.points) == 3 and not any(pt["in_place"] for pt in js.points)
