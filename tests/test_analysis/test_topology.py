"""Topology as ranks, nodes and the NVLink domain, never guessed: import from complete rank lines only, the
options of import / verdict / report / predict, bad numbers refused, NVLink domains as the fast tier, and
the above-the-roof notes per collective and vendor."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from analysis import hardware, topology, verdict
from analysis.errors import AnalysisError
from analysis.read_runs import find_runs
from collbench import cli

DATA = Path(__file__).resolve().parents[1] / "data"
NCCL = DATA / "nccl-tests"
SERIES = DATA / "scaling" / "nccl-tests-309-h100-ib400"


def _import(capsys, tmp: Path, log: Path, *opts: str) -> tuple[dict, str]:
    """Import ``log`` into a fresh directory under ``tmp``; (run.json, stderr)."""
    out = tmp / f"imp{len(list(tmp.glob('imp*')))}"
    assert cli.main(["import", str(log), "--out", str(out), *opts]) == 0
    err = capsys.readouterr().err
    (run,) = find_runs(out)
    return run.meta, err


def test_rank_lines_prove_topology_only_when_complete() -> None:
    full = {r: ("a" if r < 8 else "b") for r in range(16)}
    topo, warning = topology.from_rank_lines(full, 16)
    assert (topo.nnodes, topo.gpus_per_node, topo.source, warning) == (2, 8, "rank lines", None)
    last_only = {71: "slurm-gb200-207-171"}
    topo, warning = topology.from_rank_lines(last_only, 72)
    assert (topo.nnodes, topo.gpus_per_node) == (None, None)
    assert "rank lines for 1 of 72 ranks (missing: rank 0-70)" in warning
    elided = {r: "h" for r in (0, 1, 2, 61, 62, 63)}
    assert "missing: rank 3-60" in topology.from_rank_lines(elided, 64)[1]
    assert "no rank lines for its 16 ranks" in topology.from_rank_lines({}, 16)[1]
    uneven = {0: "a", 1: "a", 2: "a", 3: "b"}
    topo, warning = topology.from_rank_lines(uneven, 4)
    assert (topo.nnodes, topo.gpus_per_node) == (2, None) and "a: 3, b: 1" in warning
    assert topology.from_rank_lines({}, 1)[0].nnodes == 1  # one rank: one node, nothing to prove


def test_import_records_unknown_with_one_warning_and_what_was_given(tmp_path: Path, capsys) -> None:
    meta, err = _import(capsys, tmp_path, NCCL / "gb200-nvl72-all_reduce.log")
    assert meta["nnodes"] is None and meta["ranks_per_node"] is None and meta["hardware"]["nnodes"] is None
    assert err.count("collbench: warning:") == 1 and "missing: rank 0-70" in err
    assert any("nodes and GPUs per node are unknown" in w for w in meta["warnings"])
    meta, err = _import(capsys, tmp_path, NCCL / "gb200-nvl72-all_reduce.log", "--nnodes", "18",
                        "--gpus-per-node", "4", "--nvlink-domain-gpus", "72")  # fmt: skip
    assert err == "" and (meta["nnodes"], meta["ranks_per_node"]) == (18, 4)
    assert meta["hardware"]["nvlink_domain_gpus"] == 72 and meta["hardware"]["topology_source"] == "given"
    assert not any("unknown" in w for w in meta["warnings"])
    meta, _ = _import(capsys, tmp_path, NCCL / "gb200-nvl72-all_reduce.log", "--gpus-per-node", "4")
    assert (meta["nnodes"], meta["ranks_per_node"]) == (18, 4)  # one number fixes the other from the world size
    meta, err = _import(capsys, tmp_path, NCCL / "a3mega-h100-16rank-all_reduce.md.log")
    assert err == "" and (meta["nnodes"], meta["ranks_per_node"]) == (2, 8)
    assert meta["hardware"]["topology_source"] == "rank lines"


@pytest.mark.parametrize("opts,msg", [
    (["--nnodes", "0"], "--nnodes must be >= 1"),
    (["--nnodes", "-2"], "--nnodes must be >= 1"),
    (["--gpus-per-node", "5"], "--gpus-per-node 5 does not divide the world size 72"),
    (["--nnodes", "5"], "--nnodes 5 does not divide the world size 72"),
    (["--nnodes", "2", "--gpus-per-node", "4"], "= 8, not the world size 72"),
    (["--gpus-per-node", "8", "--nvlink-domain-gpus", "4"], "smaller than a node of 8 GPUs"),
    (["--gpus-per-node", "8", "--nvlink-domain-gpus", "36"], "not a whole number of nodes"),
])  # fmt: skip
def test_import_refuses_bad_topology(opts: list[str], msg: str, tmp_path: Path, capsys) -> None:
    assert cli.main(["import", str(NCCL / "gb200-nvl72-all_reduce.log"), "--out", str(tmp_path), *opts]) == 2
    err = capsys.readouterr().err
    assert err.startswith("collbench: error:") and err.count("\n") == 1 and msg in err
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_world_size_contradicting_complete_rank_lines_is_refused(tmp_path: Path, capsys) -> None:
    """16 rank lines 0-15 on two hosts whose busbw/algbw fits p = 16 only: --world-size 32 would recompute every
    busbw with F(32) = 1.94 instead of F(16) = 1.875; --world-size 8 contradicts rank line 15."""
    log = str(NCCL / "a3mega-h100-16rank-all_reduce.md.log")
    for given, msg in (("32", "busbw/algbw fits p = 16 only"), ("8", "which name rank 15")):
        assert cli.main(["import", log, "--out", str(tmp_path), "--world-size", given]) == 2
        err = capsys.readouterr().err
        assert err.startswith("collbench: error:") and err.count("\n") == 1 and msg in err
    assert cli.main(["import", log, "--out", str(tmp_path), "--world-size", "16"]) == 0  # agrees: accepted


def _gb200_meta(p: int, **kw) -> dict:
    return {"device": "cuda", "world_size": p, "hardware": {"gpu_model": "NVIDIA GB200"}, **kw}


def test_nvlink_domain_is_the_fast_tier_and_the_network_is_between_domains() -> None:
    """A 144-GPU (2-rack) GB200 all_reduce is judged against the network between racks (each rack's 72 NICs of
    400 Gb/s = 3600 GB/s, capped by the GPU's 900 GB/s NVLink), not one GPU's 50 GB/s share."""
    m = hardware.resolve(_gb200_meta(144), overrides={"system": "gb200-nvl72"})
    assert (m.nnodes, m.gpus_per_node, m.domain_gpus) == (36, 4, 72)
    r = verdict.roof(m, "all_reduce", 144)
    assert (r.gbps, r.kind) == (900, "link") and "2 NVLink domains of 72 GPUs" in r.why and "3600 GB/s" in r.why
    slow = hardware.resolve(_gb200_meta(144), overrides={"system": "gb200-nvl72", "nic_gbps": 100.0})
    r = verdict.roof(slow, "all_reduce", 144)  # 18 trays x 4 x 100 Gb/s / 8 = 900: equal to the link: network
    assert r.kind == "network" and r.gbps == pytest.approx(900.0)
    a2a = verdict.roof(m, "all_to_all", 144)  # B (n - 1) / (d (n - d)) with d = 72 per domain
    assert a2a.gbps == pytest.approx(3600 * 143 / (72 * 72))
    partial = verdict.roof(hardware.resolve(_gb200_meta(100), overrides={"system": "gb200-nvl72"}), "all_gather", 100)
    assert "7 node(s) x 4" in partial.why and "smallest domain" in partial.why  # 28 GPUs in the second rack
    inside = verdict.roof(m, "all_reduce", 72)
    assert inside.kind == "link" and "inside one NVLink domain of 72" in inside.why
    unknown = verdict.roof(hardware.resolve(_gb200_meta(1440)), "all_reduce", 1440)
    assert unknown.gbps is None and "unknown number of nodes" in unknown.why and "inside one node" not in unknown.why


def test_verdict_options_fix_the_topology_and_refuse_bad_numbers(tmp_path: Path, capsys) -> None:
    _import(capsys, tmp_path, NCCL / "gb200-20rack-1440rank-all_reduce.log")
    run = str(next(tmp_path.glob("imp0")))
    assert cli.main(["verdict", run]) == 0
    out = capsys.readouterr().out
    assert "topology unknown" in out and "roof unknown" in out and "inside one node" not in out
    assert cli.main(["verdict", run, "--system", "gb200-nvl72", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (mach,) = doc["machines"].values()
    assert (mach["nnodes"], mach["gpus_per_node"], mach["nvlink_domain_gpus"]) == (360, 4, 72)
    assert mach["origin"]["nnodes"].startswith("world size / GPUs per node")  # what was used is printed
    assert doc["verdicts"][0]["roof_gbps"] == 900
    for opts, msg in ((["--gpus-per-node", "7"], "does not divide the world size 1440"),
                      (["--nnodes", "0"], "nnodes must be > 0"),
                      (["--gpus-per-node", "8", "--nvlink-domain-gpus", "4"], "smaller than a node"),
                      (["--nnodes", "2", "--gpus-per-node", "4"], "not the world size 1440")):  # fmt: skip
        assert cli.main(["verdict", run, *opts]) == 2
        err = capsys.readouterr().err
        assert err.startswith("collbench: error:") and err.count("\n") == 1 and msg in err, err
    report = tmp_path / "report"
    assert cli.main(["report", run, "--out", str(report), "--gpus-per-node", "7", "--boot", "0"]) == 2
    assert "does not divide the world size 1440" in capsys.readouterr().err and not report.exists()


def test_old_import_with_one_rank_line_is_not_one_node() -> None:
    """run.json written before this rule: nnodes 1, ranks_per_node 1 from the one rank line of 72 ranks."""
    meta = _gb200_meta(72, nnodes=1, ranks_per_node=1)
    meta["hardware"].update(rank_hosts=["slurm-gb200-207-171"], nnodes=1, gpus_per_node=1)
    m = hardware.resolve(meta)
    assert m.nnodes is None and any("ignored as unknown" in n for n in m.notes)
    m = hardware.resolve(meta, overrides={"gpus_per_node": 4})
    assert (m.nnodes, m.gpus_per_node) == (18, 4)


def _machine(gpu: str, p: int, nnodes: int, g: int) -> hardware.Machine:
    meta = {"device": "cuda", "world_size": p, "nnodes": nnodes, "ranks_per_node": g,
            "hardware": {"gpu_model": gpu}}  # fmt: skip
    return hardware.resolve(meta, overrides={"nic_gbps": 400.0, "nics_per_node": 8})


def test_above_roof_notes_name_what_can_exceed_it() -> None:
    nv_net, amd_net = _machine("NVIDIA H100 80GB HBM3", 16, 2, 8), _machine("AMD Instinct MI300X", 16, 2, 8)
    nv_node, amd_node = _machine("NVIDIA H100 80GB HBM3", 8, 1, 8), _machine("AMD Instinct MI355X", 8, 1, 8)

    def note(m: hardware.Machine, coll: str) -> str:
        p = m.nnodes * m.gpus_per_node
        return verdict.above_roof_note(m, coll, verdict.roof(m, coll, p), p)

    assert "NVLSTree or SHARP" in note(nv_net, "all_reduce") and "tree" in note(nv_net, "all_reduce")
    assert "NVLS" in note(nv_node, "all_reduce") and "tree" not in note(nv_node, "all_reduce")
    for text in (note(amd_net, "all_reduce"), note(amd_node, "all_reduce"), note(nv_net, "all_to_all"),
                 note(amd_net, "all_to_all"), note(nv_node, "all_gather"), note(nv_net, "broadcast")):
        assert "NVLS" not in text and "SHARP" not in text, text
    assert "tree" in note(amd_net, "all_reduce") and "not an error" in note(amd_net, "all_reduce")
    assert "no in-switch reduction" in note(amd_node, "all_reduce")
    assert "--nics-per-node" in note(nv_net, "all_to_all") and "no tree" in note(nv_net, "all_to_all")
    assert "nothing NCCL or RCCL runs for broadcast" in note(nv_net, "broadcast")


def test_predict_topology_options(tmp_path: Path, capsys) -> None:
    """--gpus-per-node / --nvlink-domain-gpus set the fast tier and say so; --nnodes needs one world size."""
    base = ["predict", "--fits", str(tmp_path / "series"), "--world-sizes", "128", "--bytes", "1G", "--boot", "0"]
    for log in sorted(SERIES.glob("*.log")):
        assert cli.main(["import", str(log), "--out", str(tmp_path / "series")]) == 0
    capsys.readouterr()
    assert cli.main([*base, "--gpus-per-node", "8"]) == 0
    assert "# fast tier: nodes of 8 GPUs" in capsys.readouterr().out
    assert cli.main([*base, "--nvlink-domain-gpus", "16", "--gpus-per-node", "8"]) == 0
    assert "# fast tier: NVLink domains of 16 GPUs (8 GPUs per node)" in capsys.readouterr().out
    assert cli.main(["import", str(NCCL / "gb200-nvl72-all_reduce.log"), "--out", str(tmp_path / "series")]) == 0
    capsys.readouterr()  # a 72-rank run without complete rank lines joins the series: refused until told
    assert cli.main(base) == 2
    assert "is unknown (its log's rank lines are incomplete" in capsys.readouterr().err
    for opts, msg in ((["--nnodes", "2"], "world sizes 16, 32, 64, 72"),
                      (["--gpus-per-node", "6"], "does not divide the world size 16"),
                      (["--gpus-per-node", "8", "--nvlink-domain-gpus", "4"], "smaller than a node")):  # fmt: skip
        assert cli.main([*base, *opts]) == 2
        err = capsys.readouterr().err
        assert err.startswith("collbench: error:") and err.count("\n") == 1 and msg in err, err


def test_topology_check_rules() -> None:
    topology.check(4, None, 8, None)  # part of one node: allowed
    topology.check(4, 1, 8, None)
    with pytest.raises(AnalysisError, match="= 4, not the world size 8"):
        topology.check(8, 1, 4, None)
    with pytest.raises(AnalysisError, match="does not divide"):
        topology.check(12, None, 8, None)
    with pytest.raises(AnalysisError, match="smaller than a node"):
        topology.check(None, None, 8, 4)


#: every committed multi-node log with hardware its source names: (file, --system or the NIC options, hand
#: roof GB/s, peak busbw
#: read off the log's out-of-place column). Hand roof (docs/fitting.md, "Verdict"): a ring across nodes or
#: NVLink domains is bounded by min(GPU link, NIC total of one node or domain); inside one domain by the link.
EVIDENCE = [
    ("scaling/nccl-tests-309-h100-ib400/2node-all_reduce.log", "dgx-h100", min(450, 8 * 400 / 8), 466.73),
    ("scaling/nccl-tests-309-h100-ib400/4node-all_reduce.log", "dgx-h100", min(450, 8 * 400 / 8), 324.99),
    ("scaling/nccl-tests-309-h100-ib400/8node-all_reduce.log", "dgx-h100", min(450, 8 * 400 / 8), 320.70),
    ("nccl-tests/nccl-tests-309-ring-h100-2node.log", "dgx-h100", min(450, 8 * 400 / 8), 392.69),
    ("nccl-tests/nccl-tests-290-srun-label-h100-2node.log", "dgx-h100", min(450, 8 * 400 / 8), 166.22),
    ("nccl-tests/nccl-tests-290-ring-h100-2node.log", "dgx-h100", min(450, 8 * 400 / 8), 102.10),
    ("nccl-tests/a3mega-h100-16rank-all_reduce.md.log", "a3-mega", min(450, 8 * 200 / 8), 338.82),
    ("nccl-tests/gb200-nvl72-all_reduce.log", "gb200-nvl72", 900, 839.16),  # one NVLink domain: the link
    ("nccl-tests/gb200-20rack-1440rank-all_reduce.log", "gb200-nvl72", min(900, 18 * 4 * 400 / 8), 286.52),
    ("nccl-tests/oci-bm-gpu4-a100-2node-all_reduce.log", "--nic-gbps 100 --nics-per-node 16",
     min(300, 16 * 100 / 8), 190.02),
    ("nccl-tests/rccl-mi355x-pollara-2node-all_reduce.log", "mi355x-8x400", min(537.6, 8 * 400 / 8), 385.98),
    # all-to-all: B (n - 1) / (g (n - g)) = 400 x 15 / (8 x 8)
    ("nccl-tests/rccl-mi355x-pollara-2node-alltoall.log", "mi355x-8x400", 8 * 400 / 8 * 15 / (8 * 8), 91.09),
]


@pytest.mark.parametrize("name,system,roof_gbps,peak_gbps", EVIDENCE, ids=[e[0].split("/")[-1] for e in EVIDENCE])
def test_multi_node_logs_verdict_roof_equals_the_hand_check(
    name: str, system: str, roof_gbps: float, peak_gbps: float, tmp_path: Path, capsys
) -> None:
    """The table of results/README.md ("Roofs of public multi-node logs"): roof and share as computed by hand."""
    assert cli.main(["import", str(DATA / name), "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    hw = system.split() if system.startswith("--") else ["--system", system]
    assert cli.main(["verdict", str(tmp_path), *hw, "--json"]) == 0
    (v,) = [v for v in json.loads(capsys.readouterr().out)["verdicts"] if v["role"] == "builtin"]
    assert v["roof_gbps"] == pytest.approx(roof_gbps)
    assert v["peak_busbw_gbps"] == pytest.approx(peak_gbps, abs=0.05)  # recomputed from size and time
    assert v["ratio"] == pytest.approx(peak_gbps / roof_gbps, abs=0.005)


def test_hardware_file_topology_is_checked_and_used(tmp_path: Path, capsys) -> None:
    _import(capsys, tmp_path, NCCL / "gb200-nvl72-all_reduce.log")
    run = next(tmp_path.glob("imp0"))
    (run / "hardware.toml").write_text('system = "gb200-nvl72"\ngpus_per_node = 4\nnvlink_domain_gpus = 72\n')
    assert cli.main(["verdict", str(run), "--json"]) == 0
    (mach,) = json.loads(capsys.readouterr().out)["machines"].values()
    assert (mach["nnodes"], mach["gpus_per_node"]) == (18, 4) and "hardware file" in mach["origin"]["nnodes"]
    (run / "hardware.toml").write_text("gpus_per_node = 5\n")
    assert cli.main(["verdict", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not divide the world size 72 (hardware file hardware.toml)" in err


def test_elided_rank_list_is_unknown_until_given(tmp_path: Path, capsys) -> None:
    """The 8-node log of nccl-tests issue 309 with its rank list elided as people post it ('#  ...')."""
    lines = (SERIES / "8node-all_reduce.log").read_text().splitlines()
    kept = [ln for ln in lines if not re.match(r"#\s+Rank\s+(\d+)", ln) or int(ln.split()[2]) not in range(3, 61)]
    at = next(i for i, ln in enumerate(kept) if re.match(r"#\s+Rank\s+61\b", ln))
    elided = tmp_path / "elided.log"
    elided.write_text("\n".join([*kept[:at], "#  ...", *kept[at:]]) + "\n")
    meta, err = _import(capsys, tmp_path, elided)
    assert meta["world_size"] == 64 and meta["nnodes"] is None and "missing: rank 3-60" in err
    meta, err = _import(capsys, tmp_path, elided, "--nnodes", "8")
    assert err == "" and (meta["nnodes"], meta["ranks_per_node"]) == (8, 8)
