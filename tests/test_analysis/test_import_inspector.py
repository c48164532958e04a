"""collbench import of NCCL Inspector logs: the records documented in NVIDIA/nccl give runs and verdicts; a log
with several sizes gives the same fit as the nccl-tests log its numbers come from; bad logs get one line."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
from run_copies import copy_run

from analysis.errors import AnalysisError
from analysis.importers import detect, parse_any
from analysis.nccltests import parse_text
from collbench import cli

DATA = Path(__file__).resolve().parents[1] / "data"
DOCUMENTED = DATA / "nccl-inspector" / "nccl-docs-documented.log"
#: one record of a real job (a 3-node nanoGPT run), kept verbatim in DataDog/datadog-agent's tests
DATADOG = DATA / "nccl-inspector" / "datadog-agent-nanogpt-3node-allreduce.log"


def test_documented_records_import_as_one_run_per_collective_and_world_size():
    logs, fmt = parse_any(DOCUMENTED)
    assert fmt == "nccl-inspector" == detect(DOCUMENTED)
    got = [(lg.collective, lg.world_size, lg.nnodes, [(pt["bytes"], pt["time_us"]) for pt in lg.points])
           for lg in logs]  # fmt: skip
    # ReduceScatter's coll_msg_size_bytes is one rank's block: S = msg x n_ranks (the plugin's own algbw says so)
    assert got == [("all_reduce", 8, 1, [(17179869184, 61974.0)]),
                   ("reduce_scatter", 8, 1, [(2147483648 * 8, 41057.0)]),
                   ("reduce_scatter", 32, 4, [(65536 * 32, 110.0)])]  # fmt: skip
    for lg in logs:  # busbw recomputed from S and the time agrees with what the plugin wrote
        assert not [w for w in lg.warnings if "differs" in w]
    assert logs[0].points[0]["busbw_gbps"] == pytest.approx(485.119099, rel=1e-6)
    assert logs[1].points[0]["busbw_gbps"] == pytest.approx(366.134533, rel=1e-6)
    assert any("neither datatype nor reduction" in w for w in logs[0].warnings)


def test_documented_records_give_a_verdict(tmp_path, capsys):
    out = tmp_path / "runs"
    assert cli.main(["import", str(DOCUMENTED), "--out", str(out)]) == 0
    capsys.readouterr()
    runs = sorted(out.iterdir())
    assert len(runs) == 3
    assert cli.main(["verdict", *map(str, runs), "--gpu", "h100-sxm"]) == 0
    text = capsys.readouterr().out
    assert "reduce_scatter p=8: 450 GB/s link roof" in text
    assert "366.1 GB/s busbw at 16 GiB = 81 % of the 450 GB/s link roof" in text
    assert "32 ranks across 4 nodes" in text  # nnodes from the records' header


def test_a_real_jobs_record_imports_and_gets_a_verdict_but_no_fit(tmp_path, capsys):
    """The one record of a real training job found in public (rank 1 of 3, one rank per node, 2.25 MiB AllReduce):
    world size and nodes from its header, busbw recomputed from S and the time as the plugin wrote it, a verdict
    that names the missing roof (the log states neither GPU nor network), and no fit (one size)."""
    (log,), fmt = parse_any(DATADOG)
    assert fmt == "nccl-inspector" == detect(DATADOG)
    (pt,) = log.points
    assert (log.collective, log.world_size, log.nnodes, log.hosts) == ("all_reduce", 3, 3,
                                                                      ["nanogpt-nccl-test-worker-0"])  # fmt: skip
    assert (pt["bytes"], pt["time_us"], pt["iters"], pt["in_place"]) == (2360832, 5663.0, 1, False)
    assert pt["busbw_gbps"] == pytest.approx(0.555850, abs=5e-7)  # the record's coll_busbw_gbs
    assert not [w for w in log.warnings if "differs" in w or "CPU" in w]
    out = tmp_path / "runs"
    assert cli.main(["import", str(DATADOG), "--out", str(out)]) == 0
    capsys.readouterr()
    (run,) = out.iterdir()
    assert cli.main(["verdict", str(run)]) == 0
    text = capsys.readouterr().out
    assert "3 ranks across 3 nodes" in text and "0.5558 GB/s busbw at 2.3 MiB" in text
    assert cli.main(["fit", str(run), "--out", str(tmp_path / "fit")]) == 2
    assert "fewer than 3 sizes" in capsys.readouterr().err


def test_format_v4_3_markers_carry_the_header_of_the_records_after_them(tmp_path):
    """Format v4.3 (NVIDIA/nccl plugins/profiler/inspector/README.md at 3254c695bb3d76c1dfe93accc37807e999998972,
    the Proxy-tracking pull request #2359): each communicator dump starts with a `dump_stats` marker carrying
    `header` and `metadata` once; the operation lines after it have neither, and `proxy_trace` records are no
    operations. The README's marker and AllReduce record, re-serialised one per line."""
    marker = {"header": {"id": "0x7f8c496ae9f661", "rank": 2, "n_ranks": 8, "nnodes": 1},
              "metadata": {"inspector_output_format_version": "v4.3", "git_rev": "",
                           "rec_mechanism": "nccl_profiler_interface", "dump_timestamp_us": 1748030377748202,
                           "hostname": "example-hostname", "pid": 1639453},
              "dump_stats": {"coll_records": 1024, "coll_dropped_total": 4096, "coll_dropped_since_last_dump": 512,
                             "p2p_records": 0, "p2p_dropped_total": 0, "p2p_dropped_since_last_dump": 0,
                             "proxy_records": 2}}  # fmt: skip
    coll = {"coll_perf": {"coll": "AllReduce", "coll_algo": "RING", "coll_proto": "LL", "coll_sn": 1407,
                          "coll_msg_size_bytes": 17179869184, "coll_exec_time_us": 61974,
                          "coll_algobw_gbs": 277.210914, "coll_busbw_gbs": 485.119099}}  # fmt: skip
    proxy = {"proxy_trace": {"record_type": "proxy_op", "record_sn": 42, "parent_type": "coll", "parent_sn": 1407}}
    path = tmp_path / "example-hostname-pid1639453.log"
    path.write_text("\n".join(json.dumps(r, separators=(",", ":")) for r in (marker, coll, proxy)) + "\n")
    assert detect(path) == "nccl-inspector"
    (log,), _ = parse_any(path)
    (pt,) = log.points
    assert (log.collective, log.world_size, log.nnodes, log.hosts) == ("all_reduce", 8, 1, ["example-hostname"])
    assert (pt["bytes"], pt["time_us"]) == (17179869184, 61974.0)
    assert pt["busbw_gbps"] == pytest.approx(485.119099, rel=1e-6)
    orphan = tmp_path / "orphan.log"  # an operation line whose marker was cut off: one line, exit 2
    orphan.write_text(json.dumps(coll) + "\n")
    with pytest.raises(AnalysisError, match="orphan.log"):
        parse_any(orphan)


def _records_from_nccl_tests(path: Path, collective: str, ranks: int = 2) -> list[str]:
    """Inspector records (inspector_json.cc's layout) of every out-of-place row of a real nccl-tests log: one call
    per size, seen by ``ranks`` ranks of one communicator, the last rank the slowest (the log's time)."""
    log = parse_text(path.read_text(), collective=collective)
    lines = []
    for sn, pt in enumerate(p for p in log.points if not p["in_place"]):
        for rank in range(ranks):
            t = pt["time_us"] * (1.0 if rank == ranks - 1 else 0.97)
            rec = {"header": {"id": "0xabc", "comm_name": "DP Group 0", "rank": rank, "n_ranks": log.world_size,
                              "nnodes": 1},
                   "metadata": {"inspector_output_format_version": "v4.0", "git_rev": "", "hostname": f"h{rank}",
                                "rec_mechanism": "nccl_profiler_interface", "dump_timestamp_us": 1, "pid": rank},
                   "coll_perf": {"coll": "AllReduce", "coll_sn": sn, "coll_msg_size_bytes": pt["bytes"],
                                 "coll_exec_time_us": t, "coll_timing_source": "kernel_gpu",
                                 "coll_algobw_gbs": pt["bytes"] / t / 1e3,
                                 "coll_busbw_gbs": pt["bytes"] / t / 1e3 * 2 * (log.world_size - 1) / log.world_size}}
            lines.append(json.dumps(rec, separators=(",", ":")))
    return lines


def _fit(run_dir: Path, out: Path) -> list[dict]:
    assert cli.main(["fit", str(run_dir), "--out", str(out)]) == 0
    with open(out / "fits.csv") as f:
        return [r for r in csv.DictReader(f) if r["scope"] == "curve" and r["in_place"] == "False"]


def test_a_log_of_several_sizes_fits_like_the_nccl_tests_log_of_its_numbers(tmp_path, capsys):
    """No public Inspector log with several sizes was found: this one carries the real GB200 NVL72 all_reduce
    numbers of tests/data/nccl-tests in the plugin's layout, and must give the same alpha and bandwidth."""
    src = DATA / "nccl-tests" / "gb200-nvl72-all_reduce.log"
    ins = tmp_path / "host-pid1.log"
    ins.write_text("\n".join(_records_from_nccl_tests(src, "all_reduce")) + "\n")
    assert cli.main(["import", str(ins), "--out", str(tmp_path / "a")]) == 0
    assert cli.main(["import", str(src), "--collective", "all_reduce", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    (a,), (b,) = list((tmp_path / "a").iterdir()), list((tmp_path / "b").iterdir())
    fa, fb = _fit(a, tmp_path / "fa"), _fit(b, tmp_path / "fb")
    assert len(fa) == len(fb) == 1 and fa[0]["n_points"] == "5" and fa[0]["dtype"] == "uint8"
    for key in ("alpha_us", "bw_gbps"):
        assert float(fa[0][key]) == pytest.approx(float(fb[0][key]), rel=1e-6)
    assert cli.main(["verdict", str(a), "--gpu", "gb200"]) == 0
    assert "of the" in capsys.readouterr().out
    assert cli.main(["compare", str(a), str(a)]) == 2  # one run on both sides is refused
    assert cli.main(["compare", str(a), str(copy_run(a, tmp_path))]) == 0


def test_a_call_seen_by_several_ranks_counts_once_at_the_slowest_rank(tmp_path):
    rec = {"header": {"id": "0x1", "rank": 0, "n_ranks": 2, "nnodes": 1}, "metadata": {"hostname": "h"},
           "coll_perf": {"coll": "AllGather", "coll_sn": 7, "coll_msg_size_bytes": 1 << 20, "coll_exec_time_us": 90}}
    other = json.loads(json.dumps(rec))
    other["header"]["rank"], other["coll_perf"]["coll_exec_time_us"] = 1, 100
    again = json.loads(json.dumps(rec))
    again["coll_perf"]["coll_sn"], again["coll_perf"]["coll_exec_time_us"] = 8, 120
    p2p = {"header": {"id": "0x1", "rank": 0, "n_ranks": 2}, "p2p_perf": {"p2p": "Send", "p2p_sn": 1}}
    path = tmp_path / "h-pid1.log.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in (rec, other, again, p2p)) + "\n")
    (log,), _ = parse_any(path)
    (pt,) = log.points
    assert (log.collective, log.world_size, pt["bytes"]) == ("all_gather", 2, 2 << 20)
    assert sorted(pt["samples_us"]) == [100.0, 120.0] and pt["time_us"] == 110.0 and pt["iters"] == 2
    assert any("1 point-to-point record(s)" in w for w in log.warnings)


@pytest.mark.parametrize(("lines", "expected"), [
    (['{"header":{"id":"0x1","rank":0,"n_ranks":2},"coll_perf":{"coll":"AllReduce","coll_sn":1,'
      '"coll_msg_size_bytes":8,"coll_exec_time_us":1}}', '{"header":{"id":"0x1", truncated'],
     ":2: expected one NCCL Inspector JSON record per line"),
    (['{"header":{"id":"0x1","rank":0},"coll_perf":{"coll":"AllReduce","coll_sn":1,"coll_msg_size_bytes":8,'
      '"coll_exec_time_us":1}}'], ":1: expected int 'n_ranks' in the record"),
    (['{"header":{"id":"0x1","rank":0,"n_ranks":2},"p2p_perf":{"p2p":"Send"}}'],
     ": no collective record collbench imports (AllReduce, AllGather, ReduceScatter, Broadcast, Reduce); it holds "
     "1 point-to-point"),
])  # fmt: skip
def test_bad_logs_get_one_line_and_exit_2(tmp_path, capsys, lines, expected):
    path = tmp_path / "bad.log"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnalysisError) as exc:
        parse_any(path)
    assert str(exc.value) == str(path) + expected or str(exc.value).startswith(str(path) + expected)
    assert cli.main(["import", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"collbench: error: {path}") and not (tmp_path / "out").exists()


def test_world_size_option_is_refused_for_a_format_that_records_it(tmp_path, capsys):
    assert cli.main(["import", str(DOCUMENTED), "--world-size", "8", "--out", str(tmp_path)]) == 2
    assert "--world-size is for nccl-tests logs" in capsys.readouterr().err


def test_a_jobs_per_process_logs_are_read_together(tmp_path, capsys):
    """One file per process (<host>-pid<pid>.log): given as a directory, a call's two ranks count once."""
    job = tmp_path / "nccl-inspector-1234"
    job.mkdir()
    for rank, t in ((0, 95.0), (1, 100.0)):
        rec = {"header": {"id": "0x5", "rank": rank, "n_ranks": 2, "nnodes": 2},
               "metadata": {"hostname": f"node{rank}", "pid": 10 + rank},
               "coll_perf": {"coll": "Broadcast", "coll_sn": 3, "coll_msg_size_bytes": 1 << 20,
                             "coll_exec_time_us": t, "coll_timing_source": "kernel_gpu"}}  # fmt: skip
        (job / f"node{rank}-pid{10 + rank}.log").write_text(json.dumps(rec) + "\n")
    (job / "notes.txt").write_text("not a log\n")
    out = tmp_path / "runs"
    assert cli.main(["import", str(job), "--out", str(out)]) == 0
    assert "(+1 more): broadcast, world size 2, 1 points" in capsys.readouterr().out
    (run_dir,) = out.iterdir()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["points"][0]["time_us"] == 100.0 and meta["world_size"] == 2 and meta["nnodes"] == 2
    assert meta["source"]["format"] == "nccl-inspector" and len(meta["source"]["more_files"]) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["import", str(empty), "--out", str(out)]) == 2
    assert "holding no NCCL Inspector log" in capsys.readouterr().err


def test_cpu_timed_records_and_a_wrong_busbw_are_counted(tmp_path):
    base = {"header": {"id": "0x2", "rank": 0, "n_ranks": 4, "nnodes": 1}, "metadata": {"hostname": "h"}}
    recs = []
    for sn, (src, busbw) in enumerate((("kernel_gpu", 15.0), ("kernel_cpu", 15.0), ("collective_cpu", 99.0))):
        # AllReduce, 1 MiB in 104.8576 us: algbw 10 GB/s, busbw 15 GB/s at 4 ranks (2 x 3 / 4)
        recs.append({**base, "coll_perf": {"coll": "AllReduce", "coll_sn": sn, "coll_msg_size_bytes": 1 << 20,
                                           "coll_exec_time_us": 104.8576, "coll_timing_source": src,
                                           "coll_busbw_gbs": busbw}})  # fmt: skip
    recs.append({**base, "coll_perf": {"coll": "AllToAll", "coll_sn": 9, "coll_msg_size_bytes": 8,
                                       "coll_exec_time_us": 5}})  # fmt: skip
    path = tmp_path / "h-pid1.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    (log,), _ = parse_any(path)
    assert log.points[0]["busbw_gbps"] == pytest.approx(15.0, rel=1e-6) and log.points[0]["iters"] == 3
    w = "\n".join(log.warnings)
    assert "2 record(s) timed on the CPU" in w and "1 record(s) whose coll_busbw_gbs differs" in w
    assert "1 AllToAll record(s) left out" in w
