"""Hardware catalog, name matching, hardware files and options, and the verdict (roof, share, notes)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from analysis import hardware, synthetic, verdict
from analysis.errors import AnalysisError
from analysis.read_runs import load_run
from collbench import cli

DATA = Path(__file__).resolve().parents[1] / "data" / "nccl-tests"
RESULTS = Path(__file__).resolve().parents[2] / "results"

# names as run.json, nvidia-smi / rocm-smi and nccl-tests rank lines print them -> catalog id
NAMES = {
    "NVIDIA H100 80GB HBM3": "h100-sxm",
    "NVIDIA H100 PCIe": "h100-pcie",
    "NVIDIA H100 NVL": "h100-nvl",
    "NVIDIA H200": "h200",
    "NVIDIA B200": "b200",
    "NVIDIA GB200": "gb200",
    "NVIDIA GB10": "gb10",
    "NVIDIA A100-SXM4-80GB": "a100-sxm-80",
    "A100-SXM4-40GB": "a100-sxm-40",
    "NVIDIA A100-PCIE-40GB": "a100-pcie-40",
    "NVIDIA A100 80GB PCIe": "a100-pcie-80",
    "Tesla V100-SXM2-16GB": "v100-sxm",
    "Tesla V100-SXM3-32GB": "v100-sxm",
    "Tesla V100-PCIE-32GB": "v100-pcie",
    "Tesla V100S-PCIE-32GB": "v100-pcie",
    "Tesla P100-PCIE-16GB": "p100-pcie",
    "NVIDIA L40S": "l40s",
    "NVIDIA GeForce RTX 4090": "rtx-4090",
    "AMD Instinct MI250X": "mi250x",
    "AMD Instinct MI300X": "mi300x",
    "NVIDIA GB300": "gb300",
    "NVIDIA B300 SXM6 AC": "b300",
    "NVIDIA H800": "h800",
    "NVIDIA H20": "h20",
    "NVIDIA A800-SXM4-80GB": "a800",
    "AMD Instinct MI355X": "mi355x",
    "AMD Instinct MI350X": "mi355x",
    "AMD Instinct MI325X": "mi325x",
    "AMD Instinct MI100": "mi100",
    "Device 738c": "mi100",
    "NVIDIA GeForce RTX 2080 Ti": "rtx-2080-ti",
    "NVIDIA GeForce RTX 3090": "rtx-3090",
    "NVIDIA L4": "l4",
    "NVIDIA L40": "l40",
    "NVIDIA A10": "a10",
    "NVIDIA A10G": "a10g",
    "NVIDIA RTX 6000 Ada Generation": "rtx-6000-ada",
}


@pytest.mark.parametrize("name,gpu_id", NAMES.items())
def test_catalog_matches_real_gpu_names(name: str, gpu_id: str) -> None:
    gpu = hardware.match_gpu(name)
    assert gpu is not None and gpu.id == gpu_id, name


@pytest.mark.parametrize("name", ["NVIDIA Graphics Device", "NVIDIA GH200 480GB", "Intel(R) Xeon(R) Processor", ""])
def test_unknown_names_are_unknown(name: str) -> None:
    assert hardware.match_gpu(name) is None


def test_every_catalog_entry_has_a_source_and_sane_numbers() -> None:
    cat = hardware.catalog()
    assert len(cat.gpus) >= 12 and len({g.id for g in cat.gpus}) == len(cat.gpus)
    for g in cat.gpus:
        assert len(g.source) > 20, g.id
        assert g.hbm_gbps is None or 200 <= g.hbm_gbps <= 10000, g.id
        assert g.link_gbps is None or 10 <= g.link_gbps <= 1000, g.id
    for s in cat.systems.values():
        assert s["source"] and (s["gpu"] in {g.id for g in cat.gpus})
    for n in cat.networks:
        assert n["source"] and n["gbps_per_port"] in (100, 200, 400, 800)


def test_catalog_names_in_the_import_corpus_resolve() -> None:
    """Every GPU name in the committed nccl-tests logs is either in the catalog or a known-generic name."""
    names = set()
    for log in DATA.glob("*.log"):
        names |= {m.strip() for m in re.findall(r"device\s+\d+\s+\[[^\]]*\][ \t]+(\S.*)", log.read_text())}
    assert "NVIDIA H100 80GB HBM3" in names and "AMD Instinct MI300X" in names
    unknown = {n for n in names if hardware.match_gpu(n) is None}
    assert unknown <= {"NVIDIA Graphics Device", "AMD Radeon Graphics"}, unknown


def _meta(**kw) -> dict:
    base = {"device": "cuda", "world_size": 8, "nnodes": 1, "ranks_per_node": 8,
            "hardware": {"gpu_model": "NVIDIA H100 80GB HBM3"}}  # fmt: skip
    base.update(kw)
    return base


def test_one_node_roof_is_the_link() -> None:
    m = hardware.resolve(_meta())
    r = verdict.roof(m, "all_reduce", 8)
    assert (r.gbps, r.kind) == (450, "link") and "inside one node" in r.why and "NVLink 4" in r.why


def test_multi_node_roof_is_the_nodes_nic_total_for_a_ring() -> None:
    """A ring crosses each node once: the node's NICs together carry what one GPU sends (two H100 nodes with
    8 x 400G reach ~390 GB/s busbw with NCCL_ALGO=Ring, which a 50 GB/s per-GPU roof cannot allow)."""
    meta = _meta(world_size=16, nnodes=2)
    m = hardware.resolve(meta, overrides={"nic_gbps": 400.0, "nics_per_node": 8})
    r = verdict.roof(m, "all_reduce", 16)
    assert r.kind == "network" and r.gbps == pytest.approx(8 * 400 / 8)  # 400 GB/s, below the 450 GB/s link
    assert "8 x 400 Gb/s / 8" in r.why and "crosses each node once" in r.why
    unknown = verdict.roof(hardware.resolve(meta), "all_reduce", 16)
    assert unknown.gbps is None and "--nic-gbps" in unknown.why and "450" in unknown.why
    p5 = hardware.resolve(meta, overrides={"system": "p5.48xlarge"})
    assert verdict.roof(p5, "all_gather", 16).gbps == pytest.approx(32 * 100 / 8)  # 400 GB/s
    fast = hardware.resolve(meta, overrides={"nic_gbps": 800.0, "nics_per_node": 8})
    capped = verdict.roof(fast, "broadcast", 16)
    assert (capped.gbps, capped.kind) == (450, "link")  # 800 GB/s of NICs exceed the GPU's own link


def test_all_to_all_network_roof_counts_the_traffic_that_stays_in_the_node() -> None:
    meta = _meta(world_size=16, nnodes=2)
    m = hardware.resolve(meta, overrides={"nic_gbps": 400.0, "nics_per_node": 8})
    r = verdict.roof(m, "all_to_all", 16)  # B (n - 1) / (g (n - g)) = 400 x 15 / (8 x 8)
    assert r.kind == "network" and r.gbps == pytest.approx(400 * 15 / 64)
    assert verdict.roof(m, "send_recv", 16).gbps == pytest.approx(400 / 8)  # one NIC, one direction


def test_emulated_cluster_roof_is_its_nic() -> None:
    """The emulated cluster of results/README.md: 4 nodes x 2 CPU ranks, one 0.4 Gb/s NIC each; rings measured
    0.045-0.047 GB/s busbw there, 89-94 % of this roof."""
    meta = _meta(world_size=8, nnodes=4, ranks_per_node=2, device="cpu", hardware={})
    m = hardware.resolve(meta, overrides={"nic_gbps": 0.4, "nics_per_node": 1})
    assert verdict.roof(m, "all_reduce", 8).gbps == pytest.approx(0.05)


def test_nvlink_domain_spans_nodes() -> None:
    meta = _meta(world_size=72, nnodes=18, ranks_per_node=4, hardware={"gpu_model": "NVIDIA Graphics Device"})
    m = hardware.resolve(meta, overrides={"system": "gb200-nvl72"})
    r = verdict.roof(m, "all_reduce", 72)
    assert (r.gbps, r.kind) == (900, "link") and "NVLink domain of 72" in r.why


def test_reduction_roof_binds_when_memory_is_slow() -> None:
    m = hardware.resolve(_meta(), overrides={"link_gbps": 450.0, "hbm_gbps": 300.0})
    r = verdict.roof(m, "all_reduce", 8)
    # ring all-reduce: F / (G gamma) = (2(p-1)/p) / ((p-1)/p) * B_mem / 3 = 2 * 300 / 3
    assert r.kind == "reduction" and r.gbps == pytest.approx(200.0)
    assert verdict.roof(m, "all_gather", 8).kind == "link"  # no combine: no reduction roof


def test_cpu_and_p1_and_unknown_gpu_say_why() -> None:
    cpu = hardware.resolve({"device": "cpu", "world_size": 2, "nnodes": 1, "hardware": {"gpu_model": None}})
    assert verdict.roof(cpu, "all_reduce", 2).gbps is None and "--link-gbps" in verdict.roof(cpu, "all_reduce", 2).why
    assert verdict.roof(cpu, "all_reduce", 1).kind == "none"
    odd = hardware.resolve(_meta(hardware={"gpu_model": "NVIDIA Graphics Device"}))
    assert odd.gpu is None and any("not in the hardware catalog" in n for n in odd.notes)


def _run(tmp: Path, bw_gbps: float, p: int = 2) -> Path:
    hw = synthetic.Hardware(alpha_us=5.0, bw_gbps=bw_gbps, gamma_gbps=0.0)
    run = synthetic.write_run(tmp, hw, cases=(("all_reduce", "ring"), ("all_reduce", "builtin")), world_size=p,
                              sizes=tuple(1 << k for k in range(16, 28, 2)), noise=0.0)  # fmt: skip
    meta = json.loads((run / "run.json").read_text())
    meta.update(device="cuda", hardware={"gpu_model": "NVIDIA H100 80GB HBM3"})
    (run / "run.json").write_text(json.dumps(meta))
    return run


def test_verdict_ratio_and_above_roof_note(tmp_path: Path) -> None:
    run = load_run(_run(tmp_path, bw_gbps=600.0))  # faster than the 450 GB/s NVLink 4 roof
    vs = verdict.run_verdicts(run, hardware.resolve(run.meta, run.path))
    assert {v.role for v in vs} == {"builtin", "best hand-written"}
    for v in vs:
        assert v.ratio == pytest.approx(v.peak_busbw_gbps / 450)
        assert v.rating == "above the roof" and any("NVLS" in n for n in v.notes)
        assert f"{100 * v.ratio:.0f} % of the 450 GB/s link roof" in v.sentence()


def test_hardware_file_beside_results_and_option_precedence(tmp_path: Path) -> None:
    run = _run(tmp_path / "results", bw_gbps=100.0)
    (tmp_path / "results" / "hardware.toml").write_text('link_gbps = 200\nnote = "lab box"\n')
    m = hardware.resolve(json.loads((run / "run.json").read_text()), run)
    assert m.link_gbps == 200 and m.origin["link_gbps"] == "hardware file hardware.toml"
    m = hardware.resolve(json.loads((run / "run.json").read_text()), run, {"link_gbps": 300.0})
    assert m.link_gbps == 300 and m.origin["link_gbps"] == "option"
    (tmp_path / "results" / "hardware.toml").write_text("nic_gbps = -5\n")
    with pytest.raises(AnalysisError, match="nic_gbps must be > 0"):
        hardware.resolve({}, run)
    (tmp_path / "results" / "hardware.toml").write_text("nics = 8\n")
    with pytest.raises(AnalysisError, match="unknown key 'nics'"):
        hardware.resolve({}, run)


def test_verdict_command_text_json_and_bad_input(tmp_path: Path, capsys) -> None:
    run = _run(tmp_path, bw_gbps=300.0)
    assert cli.main(["verdict", str(run)]) == 0
    out = capsys.readouterr().out
    assert "all_reduce p=2: 450 GB/s link roof" in out and "% of the 450 GB/s link roof" in out
    assert cli.main(["verdict", str(run), "--json", "--link-gbps", "600"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(v["roof_gbps"] == 600 and v["roof_kind"] == "link" for v in doc["verdicts"])
    assert cli.main(["verdict", str(run), "--gpu", "no-such-gpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("collbench: error:") and err.count("\n") == 1 and "not in the catalog" in err
    assert cli.main(["verdict", str(run), "--system", "nope"]) == 2
    assert "unknown system" in capsys.readouterr().err


def test_committed_gb200_verdict() -> None:
    """results/nccl-tests-gb200-nvl72: 839.16 GB/s (4 GiB, out-of-place) of NVLink 5's 900 GB/s = 93 %."""
    run = next(p for p in (RESULTS / "nccl-tests-gb200-nvl72").iterdir() if (p / "run.json").exists())
    r = load_run(run)
    (v,) = verdict.run_verdicts(r, hardware.resolve(r.meta, r.path))
    assert v.roof_gbps == 900 and v.peak_busbw_gbps == pytest.approx(839.16) and round(100 * v.ratio) == 93
    assert "NVLink domain of 72" in v.roof_why


def test_roof_min_bytes_keeps_burst_inflated_small_sizes_out_of_the_peak(tmp_path: Path) -> None:
    """An emulated NIC's token bucket passes small messages above its rate; the hardware file emulate writes says
    from which size peaks are judged, so a burst-inflated 64 KiB point is not called "above the roof"."""
    import pandas as pd

    run_dir = _run(tmp_path / "results", bw_gbps=100.0)
    csv_path = run_dir / "results.csv"
    df = pd.read_csv(csv_path)
    small = df["bytes"] == df["bytes"].min()
    for col in [c for c in df.columns if c.endswith("_gbps")]:
        df.loc[small, col] = df.loc[small, col] * 100  # the burst: 100x faster than the curve
    df.loc[small, "time_us"] = df.loc[small, "time_us"] / 100
    df.to_csv(csv_path, index=False)
    run = load_run(run_dir)
    plain = verdict.run_verdicts(run, hardware.resolve(run.meta, run.path))
    assert {v.peak_bytes for v in plain} == {int(df["bytes"].min())}  # without the key the burst is the peak
    (tmp_path / "results" / "hardware.toml").write_text("roof_min_bytes = 4194304\n")
    m = hardware.resolve(run.meta, run.path)
    judged = verdict.run_verdicts(run, m)
    assert all(v.peak_bytes >= 4194304 and v.peak_busbw_gbps < 450 for v in judged)
    assert "peaks judged at 4194304 B and above" in m.describe()
