"""collbench import of rccl-tests -Z csv/json files (real public samples), rccl-tests' -M algo/proto columns, and
one-line refusals (file, line, what was expected) with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.errors import AnalysisError
from analysis.importers import detect, parse_any
from analysis.nccltests import ParsedLog, parse_text, run_options
from analysis.read_runs import load_run
from collbench import cli

DATA = Path(__file__).resolve().parents[1] / "data"
RCCL = DATA / "rccl-tests"


def test_rccl_json_lines_first_version_reads_every_record():
    logs, fmt = parse_any(RCCL / "rccl-tests-93-json-lines.json")
    assert fmt == "rccl-tests-json" and len(logs) == 1
    log = logs[0]
    assert (log.collective, log.world_size) == ("all_reduce", 4)  # busBw / algBw = 1.5 = 2(p-1)/p at p = 4
    got = [(pt["bytes"], pt["in_place"], pt["time_us"], pt["n_wrong"], pt["dtype"]) for pt in log.points]
    assert got == [(1024, False, 19.184150000000002, 0, "float32"), (1024, True, 19.897650000000002, 0, "float32"),
                   (2048, False, 19.426650000000002, 0, "float32"), (2048, True, 20.260200000000005, 0, "float32"),
                   (4096, False, 19.961650000000002, 0, "float32")]  # fmt: skip
    assert log.points[0]["busbw_gbps"] == pytest.approx(0.08006609623048194, rel=1e-9)
    assert not [w for w in log.warnings if "busBw" in w]


def test_rccl_csv_mpi_header_without_nodes_is_not_shifted():
    """ROCm/rocm-systems#6004: the MPI header names 13 columns, the row has 14 (nodes); read by name, unshifted."""
    logs, fmt = parse_any(RCCL / "rocm-systems-6004-mpi-misaligned.csv")
    assert fmt == "rccl-tests-csv"
    (pt,) = logs[0].points
    assert (logs[0].world_size, pt["bytes"], pt["time_us"], pt["in_place"]) == (8, 1048576, 55.66, False)
    assert pt["busbw_gbps"] == pytest.approx(32.97, abs=0.01)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_rccl_json_list_with_cycles_merges_cycles_into_samples(tmp_path):
    """The #140 layout: a JSON list, numCycle per record; two cycles of one size -> one point, two samples."""
    rows = [{"numCycle": c, "name": "AllGather", "nodes": 2, "ranks": 2, "ranksPerNode": 1, "gpusPerRank": 8,
             "size": 1 << 20, "type": "bfloat16", "redop": "none", "inPlace": ip, "time": t,
             "algBw": (1 << 20) / t / 1e3, "busBw": (1 << 20) / t / 1e3 * 15 / 16, "wrong": "0"}
            for c, t in ((0, 100.0), (1, 120.0)) for ip in (0, 1)]  # fmt: skip
    text = "[\n" + ",\n".join(json.dumps(r, separators=(", ", ":")) for r in rows) + "\n]\n"
    logs, _ = parse_any(_write(tmp_path, "r.json", text))
    (log,) = logs
    assert (log.collective, log.world_size) == ("all_gather", 16)
    assert [(pt["in_place"], pt["samples_us"], pt["time_us"]) for pt in log.points] == [
        (False, [100.0, 120.0], 110.0), (True, [100.0, 120.0], 110.0)]
    assert any("2 cycles" in w for w in log.warnings)


def test_rccl_csv_first_version_with_spaces_and_na(tmp_path):
    text = ('collective, gpus, size, type, redop, inplace, time, algbw, busbw, #wrong\n'
            '"Broadcast", 2, 4096, "half", "sum", 0, 10.000000, 0.409600, 0.409600, "N/A"\n'
            '"Broadcast", 2, 4096, "half", "sum", 1, 11.000000, 0.372364, 0.372364, "N/A"\n')  # fmt: skip
    (log,), fmt = parse_any(_write(tmp_path, "b.csv", text))
    assert fmt == "rccl-tests-csv" and log.collective == "broadcast"
    assert [pt["n_wrong"] for pt in log.points] == [None, None]
    assert any("not checked" in w for w in log.warnings)


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("a.csv", "numCycle,collective,gpus,size,type,redop,inplace,time,algbw,busbw,#wrong\n"
              '0,"AllReduce",2,1024,"float","sum",0,abc,0.1,0.1,"0"\n', "a.csv:2: expected a number in 'time'"),
    ("b.csv", "numCycle,collective,gpus,size,type,redop,inplace,time,algbw,busbw,#wrong\n"
              '0,"AllReduce",2,1024,"float"\n', "b.csv:2: expected 11 fields"),
    ("c.json", '[\n{"name":"AllReduce", "gpus":2, "size":8, "type":"float", "redop":"sum", "inPlace":0, '
               '"time":1.0, "algBw":0.0, "busBw":0.0, "wrong":"0"},\n{"name":"AllReduce", oops\n]\n',
     "c.json:3: expected one rccl-tests JSON result object per line"),
    ("d.json", '{"name":"HyperCube", "gpus":2, "size":8, "type":"float", "redop":"sum", "inPlace":0, '
               '"time":1.0, "algBw":0.0, "busBw":0.0, "wrong":"0"}\n', "d.json:1: this is an rccl-tests HyperCube"),
    ("e.json", '{"name":"AllReduce", "gpus":2, "size":8, "type":"float", "inPlace":0, '
               '"algBw":0.0, "busBw":0.0}\n', "e.json:1: expected the rccl-tests result keys time"),
])  # fmt: skip
def test_rccl_bad_files_get_one_line_with_file_and_line(tmp_path, capsys, name, text, expected):
    path = _write(tmp_path, name, text)
    with pytest.raises(AnalysisError, match="expected|this is an") as exc:
        parse_any(path)
    assert "\n" not in str(exc.value)
    assert str(exc.value).startswith(str(tmp_path / expected.split(":")[0]) + ":")
    assert expected.split(": ", 1)[1] in str(exc.value)
    out = tmp_path / "out"
    assert cli.main(["import", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("collbench: error: ") and not out.exists()


def test_import_rccl_json_writes_a_run_that_loads(tmp_path, capsys):
    out = tmp_path / "runs"
    assert cli.main(["import", str(RCCL / "rccl-tests-93-json-lines.json"), "--out", str(out)]) == 0
    (run_dir,) = out.iterdir()
    run = load_run(run_dir)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["source"]["format"] == "rccl-tests-json"
    assert len(run.points) == 5 and sorted(run.points["bytes"].unique()) == [1024, 2048, 4096]


def test_detect_keeps_nccl_tests_formats():
    nccl = DATA / "nccl-tests"
    assert detect(nccl / "gb10-2node-all_reduce.log") == "nccl-tests-text"
    assert detect(nccl / "synthetic-reduce_scatter.json") == "nccl-tests-json"


#: rccl-tests' table header with `-M 1` / `-A 1`: `algo proto nchannels` after the in-place half
RCCL_ALGO_HEADER = ("#       size         count      type   redop    root     time   algbw   busbw #wrong"
                    "     time   algbw   busbw #wrong     algo     proto   nchannels")  # fmt: skip


def _rccl_algo_log(rows: list[str]) -> ParsedLog:
    """An all_reduce_perf table of ``rows`` under RCCL_ALGO_HEADER, read as 8 ranks."""
    return parse_text("\n".join(["# Collective test starting: all_reduce_perf", RCCL_ALGO_HEADER, *rows]), world_size=8)


def test_rccl_text_algo_proto_columns_are_read_not_refused():
    """rccl-tests -M 1 prints `algo proto nchannels` after the in-place half (src/common.cu, its PRINT formats)."""
    rows = ["     1048576        262144     float     sum      -1    55.66   18.84   32.97      0    55.10   19.03"
            "   33.30      0     RING    SIMPLE          16",
            "        1024           256     float     sum      -1    12.00    0.09    0.15      0    12.10    0.08"
            "    0.15      0      N/A       N/A         N/A"]  # fmt: skip
    log = _rccl_algo_log(rows)
    assert [pt["bytes"] for pt in log.points] == [1048576, 1048576, 1024, 1024]
    assert log.points[1]["time_us"] == 55.10
    assert "1048576 B: RING/SIMPLE, 16 channels" in log.algo_proto


def test_rccl_algo_column_takes_rccls_own_algorithm_names():
    """The algo column prints RCCL's algorithm name (rcclTestsGetAlgoName, "%8s  %8s  %10d"): besides NCCL's
    RING/TREE, RCCL's own `Direct` and `RING*` (a ring RCCL runs with its own kernels), as a public tuning note on
    rccl-tests' `-A 1` (the flag's letter in ROCm/rocm-systems' rccl-tests, `-M` being --memory_report there)
    reports them. A `RING*` row was dropped before; here it is read."""
    rows = ["   134217728      33554432     float     sum      -1   1010.5  132.82  232.44      0   1008.9  133.03"
            "  232.81      0     RING*    SIMPLE          56",
            "     2097152        524288     float     sum      -1    40.10   52.30   91.52      0    40.02   52.40"
            "   91.70      0    Direct        LL          16"]  # fmt: skip
    log = _rccl_algo_log(rows)
    assert [(pt["bytes"], pt["time_us"]) for pt in log.points] == [
        (134217728, 1010.5), (134217728, 1008.9), (2097152, 40.10), (2097152, 40.02)]
    assert "134217728 B: RING*/SIMPLE, 56 channels" in log.algo_proto
    assert "2097152 B: Direct/LL, 16 channels" in log.algo_proto


# --- nccl-tests' newer text and JSON output ------------------------------------------------------------------
# Rows below are written with nccl-tests' own formats (src/util.cu of NVIDIA/nccl-tests 2.19.6:
# writeBenchmarkLinePreamble "%12li  %12li  %8s  %6s  %6s", the "  %7s  %6s  %6s  %6g" halves, writeTimestamp
# "%21s" of "%Y-%m-%d %H:%M:%S", writeMemInfo "# %-20s : %s"); no public log of -N, -M or alltoallv_perf was found.

def _row(size: int, t_oop: float, t_ip: float, p: int = 8, ts: str = "") -> str:
    f = 2 * (p - 1) / p
    half = [f"  {t:7.2f}  {size / t / 1e3:6.2f}  {size / t / 1e3 * f:6.2f}  {0:6g}" for t in (t_oop, t_ip)]
    return f"{size:12d}  {size // 4:12d}  {'float':>8s}  {'sum':>6s}  {-1:6d}" + "".join(half) + (f"{ts:>21s}" if ts
                                                                                                 else "")  # fmt: skip


_HDR = ("#       size         count      type   redop    root     time   algbw   busbw  #wrong     time   algbw   busbw"
        "  #wrong")  # fmt: skip


def test_run_cycles_become_samples_of_one_point():
    """-N 3: the sweep printed three times in one table -> one point per size and side, three samples."""
    sizes = (1 << 20, 1 << 22)
    times = {0: (50.0, 120.0), 1: (70.0, 150.0), 2: (60.0, 130.0)}
    rows = [_row(s, times[c][i], times[c][i] + 1) for c in range(3) for i, s in enumerate(sizes)]
    log = parse_text("\n".join(["# Collective test starting: all_reduce_perf", _HDR, *rows]), world_size=8)
    assert [(pt["bytes"], pt["in_place"]) for pt in log.points] == [(s, ip) for s in sizes for ip in (False, True)]
    first = log.points[0]
    assert first["samples_us"] == [50.0, 70.0, 60.0] and first["time_us"] == 60.0
    assert (first["time_us_min"], first["time_us_max"]) == (50.0, 70.0)
    assert first["busbw_gbps"] == pytest.approx((1 << 20) / 60.0 / 1e3 * 1.75)
    assert any("3 cycles (-N)" in w for w in log.warnings)


def test_timestamps_memory_report_and_alltoallv_are_read(tmp_path):
    """-S 1 timestamps at each row's end, the -M 1 memory footer, and alltoallv_perf imported as a variant."""
    hdr = _HDR + "            timestamp"
    rows = [_row(1 << 20, 100.0, 101.0, p=4, ts="2026-07-09 16:03:21").replace("     sum", "    none"),
            _row(1 << 21, 190.0, 191.0, p=4, ts="2026-07-09 16:03:22").replace("     sum", "    none")]
    mem = ("# GPU memory usage     : Initialization 1.02 GB | User-Allocated 24.0 MB | Collective 512 KB | "
           "Total  1.05 GB")
    text = "\n".join(["# Collective test starting: alltoallv_perf", hdr, *rows, mem,
                      "# Collective test concluded: alltoallv_perf"])  # fmt: skip
    log = parse_text(text, world_size=4)
    assert log.collective == "all_to_all" and [pt["bytes"] for pt in log.points] == [1 << 20, 1 << 21]
    assert log.points[0]["time_us"] == 100.0
    assert any(w.startswith("alltoallv_perf: imported as all_to_all") for w in log.warnings)
    assert any("GPU memory usage" in w and "Total  1.05 GB" in w for w in log.warnings)


def _per_process_doc(times: list[list[float]], hosts: list[str]) -> dict:
    """A -J -I 1 document in util.cu's layout (JSON_FILE_VERSION 3): one devices entry per process."""
    maxes = [max(col) for col in zip(*times, strict=True)]
    per_iter = {"skipped_iterations": 0, "min_us": min(maxes), "max_us": max(maxes),
                "avg_us": sum(maxes) / len(maxes), "times_us": maxes, "per_process_max_times_us": times}  # fmt: skip
    size = 1 << 20
    half = {"time": per_iter["avg_us"], "alg_bw": size / per_iter["avg_us"] / 1e3, "bus_bw": 0.0, "nwrong": 0.0}
    half["bus_bw"] = half["alg_bw"] * 2 * 3 / 4
    return {"version": 3, "args": ["./build/all_reduce_perf", "-I", "1", "-J", "r.json"], "nccl_version": 22903,
            "config": {"nthreads": 1, "ngpus": 1, "iterations": len(maxes),
                       "devices": [{"rank": r, "hostname": h, "device_info": "NVIDIA H100"}
                                   for r, h in enumerate(hosts)]},
            "results": [{"size": size, "count": size // 4, "type": "float", "redop": "sum", "root": "    -1",
                         "out_of_place": half, "in_place": half, "out_of_place_per_iter": per_iter,
                         "in_place_per_iter": per_iter, "actual_iterations": len(maxes)}]}  # fmt: skip


def test_per_process_times_tell_system_wide_spikes_from_one_straggler(tmp_path, capsys):
    base = [[100.0] * 10 for _ in range(4)]
    for p in range(4):
        base[p][3] = 400.0  # every process: system-wide
    base[2][5] = 400.0  # process 2 alone (host b): straggler
    base[2][7] = base[3][7] = 400.0  # two of four, both on host b: partial
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_per_process_doc(base, ["a", "a", "b", "b"])))
    (log,), fmt = parse_any(path)
    assert fmt == "nccl-tests-json" and log.world_size == 4
    notes = [w for w in log.warnings if w.startswith("per-process times:")]
    assert len(notes) == 3
    assert "2 of 20 iterations spiked" in notes[0] and "system-wide" in notes[0]  # both sides, iteration 3
    assert "straggler process 2 (host b)" in notes[1] and "in 2 of 20" in notes[1]
    assert "host b had processes spike" in notes[2] and "in 2 iterations" in notes[2]
    assert cli.main(["import", str(path), "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "straggler process 2 (host b)" in out and "system-wide" in out


def test_per_process_times_without_spikes_say_nothing(tmp_path):
    flat = [[100.0 + p for _ in range(10)] for p in range(4)]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_per_process_doc(flat, ["a", "a", "b", "b"])))
    (log,), _ = parse_any(path)
    assert not [w for w in log.warnings if w.startswith("per-process times:")]


def test_device_api_and_registration_options_are_recorded(tmp_path):
    """-D 1 -R 2 (nccl-tests 2.19 with NCCL 2.28: the device-API kernel on symmetric memory) leave the table's
    layout alone; the run records them and warns that it compares only with runs of the same -D."""
    cmd = "mpirun -np 8 ./build/all_reduce_perf -b 1M -e 4M -f 2 -g 1 -D 1 -R 2"
    text = "\n".join([cmd, "# Collective test starting: all_reduce_perf", _HDR, _row(1 << 20, 50.0, 51.0)])
    log = parse_text(text, world_size=8)
    assert log.nccl_env["nccl_tests_device_implementation"] == "1"
    assert log.nccl_env["nccl_tests_local_register"] == "symmetric"
    assert any(w.startswith("-D 1: nccl-tests' own device-API kernel") for w in log.warnings)
    doc = _per_process_doc([[100.0] * 4, [100.0] * 4], ["a", "b"])
    doc["args"] += ["-D", "1", "-R", "2"]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    (jlog,), _ = parse_any(path)
    assert jlog.nccl_env["nccl_tests_device_implementation"] == "1"
    assert any(w.startswith("-R 2: buffers registered (symmetric)") for w in jlog.warnings)


def test_bitwise_repeatability_columns_are_read_and_a_difference_is_said():
    """A newer nccl-tests' bitwise repeatability check adds `#bitdiff` after `#wrong` on each side (src/util.cu,
    writeResultHeader: "  %8s" after "#wrong", title `out-of-place + bitwise`); the table is read as usual and a
    non-zero count is said in the warnings. Rows written with those printf widths (no public log found)."""
    hdr = ("#       size         count      type   redop    root     time   algbw   busbw  #wrong  #bitdiff     time   "
           "algbw   busbw  #wrong  #bitdiff ")  # fmt: skip
    rows = [f"{s:12d}  {s // 4:12d}  {'float':>8s}  {'sum':>6s}  {-1:6d}"
            + "".join(f"  {t:7.2f}  {s / t / 1e3:6.2f}  {s / t / 1e3 * 1.75:6.2f}  {0:6g}  {d:8g}" for t, d in halves)
            for s, halves in ((1 << 20, ((55.66, 0), (55.10, 0))), (1 << 22, ((120.5, 0), (121.0, 3))))]
    text = "\n".join(["# Collective test starting: all_reduce_perf", "#", "# Bitwise Repeatability: 5 comparisons "
                      "after one reference run ", hdr, *rows])  # fmt: skip
    log = parse_text(text, world_size=8)
    assert [(pt["bytes"], pt["time_us"], pt["n_wrong"]) for pt in log.points] == [
        (1 << 20, 55.66, 0), (1 << 20, 55.10, 0), (1 << 22, 120.5, 0), (1 << 22, 121.0, 0)]
    assert [w for w in log.warnings if "#bitdiff" in w] == [
        "all_reduce 4194304 B in place: #bitdiff 3: results differed bit for bit between repeats of the same call"]


def test_a_value_glued_to_its_short_option_is_read():
    """getopt reads `-R1` as `-R 1`: the command line of a real alltoall_perf run (NVIDIA/nccl issue #2169,
    "NCCL v2.30.4, -R1", copied from the thread) registers its buffers."""
    cmd = ("mpirun -np 4 -x LD_LIBRARY_PATH -x NCCL_ALGO=Ring -x NCCL_DEBUG=INFO -x NCCL_DEBUG_FILE=ncclDebug.%h.%p "
           "-x NCCL_TOPO_DUMP_FILE=ncclSystem.txt -x NCCL_PROTO=Simple --timeout 20 ./build/alltoall_perf -b 500M "
           "-e 524M -g 1 -n 10 -w 1 -R1")  # fmt: skip
    env, notes = run_options(cmd)
    assert env == {"nccl_tests_local_register": "local"} and notes[0].startswith("-R 1: buffers registered (local)")
    assert run_options("all_reduce_perf -D2 -R 2")[0] == {"nccl_tests_device_implementation": "2",
                                                          "nccl_tests_local_register": "symmetric"}  # fmt: skip
    assert run_options("all_reduce_perf -Rx -R12a --local_register") == ({}, [])


def test_a_host_slow_at_every_size_is_named_without_spikes(tmp_path):
    """Host b's processes take 1.3x host a's every iteration: no spike over 1.5x the average, a slow host."""
    times = [[100.0] * 10, [101.0] * 10, [130.0] * 10, [131.0] * 10]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_per_process_doc(times, ["a", "a", "b", "b"])))
    (log,), _ = parse_any(path)
    notes = [w for w in log.warnings if w.startswith("per-process times:")]
    assert len(notes) == 1 and "host b is slow at every size" in notes[0] and ">= 1.30x" in notes[0]
