"""Writers never overwrite: each refuses an existing output (exit 2, one line, the file byte-identical), replaces
it only with --force, and never writes inside a run directory it did not make (over its results.csv or run.json
least of all), --force or not."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from analysis.outputs import claim_output_dir, claim_output_file
from analysis.rundir import base_meta, new_run_dir, write_run_dir
from analysis.synthetic import TwoTierHardware, write_two_tier_run
from collbench.cli import main

HW = TwoTierHardware(alpha_intra_us=4.0, bw_intra_gbps=150.0, alpha_inter_us=12.0, bw_inter_gbps=40.0)
NCCL_LOG = Path(__file__).resolve().parents[1] / "data" / "nccl-tests" / "gb10-2node-all_reduce.log"
OLD = b"an earlier output, kept byte for byte\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two synthetic runs of 2 GPUs per node: one node and two nodes (export's two tiers)."""
    parent = tmp_path_factory.mktemp("runs")
    one = write_two_tier_run(parent, HW, nnodes=1, gpus_per_node=2, seed=1)
    two = write_two_tier_run(parent, HW, nnodes=2, gpus_per_node=2, seed=2)
    return one, two


def _export(runs: tuple[Path, Path], out: Path) -> list[str]:
    return ["export", "--astra-sim", "--fits", str(runs[0]), str(runs[1]), "--gpus-per-node", "2", "--out", str(out)]


# writer -> (the existing file a second call would write, the command line that writes it)
WRITERS: dict[str, Callable[[tuple[Path, Path], Path], tuple[Path, list[str]]]] = {
    "export --out FILE": lambda r, tmp: (tmp / "net.yml", _export(r, tmp / "net.yml")),
    "fit --out DIR": lambda r, tmp: (tmp / "fits" / "fits.csv", ["fit", str(r[0]), "--boot", "0", "--out",
                                                                  str(tmp / "fits")]),
    "fit (default <run>.fit)": lambda r, tmp: (r[0].with_name(f"{r[0].name}.fit") / "fits.csv",
                                               ["fit", str(r[0]), "--boot", "0"]),
    "report --out DIR": lambda r, tmp: (tmp / "rep" / "report.md", ["report", str(r[0]), "--boot", "0", "--out",
                                                                     str(tmp / "rep")]),
    "report --out DIR (fits.csv)": lambda r, tmp: (tmp / "rep" / "fits.csv", ["report", str(r[0]), "--boot", "0",
                                                                               "--out", str(tmp / "rep")]),
    "report (default <run>.report)": lambda r, tmp: (r[0].with_name(f"{r[0].name}.report") / "report.html",
                                                     ["report", str(r[0]), "--boot", "0"]),
}  # fmt: skip


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("collbench: error: "), lines
    return lines[0]


@pytest.mark.parametrize("writer", list(WRITERS))
def test_existing_output_is_refused_then_replaced_with_force(writer: str, runs, tmp_path: Path, capsys) -> None:
    existing, args = WRITERS[writer](runs, tmp_path)
    existing.parent.mkdir(parents=True, exist_ok=True)
    existing.write_bytes(OLD)
    try:
        assert main(args) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "--force" in line and str(existing.parent) in line, line
        assert existing.read_bytes() == OLD
        assert main([*args, "--force"]) == 0, capsys.readouterr().err
        assert existing.read_bytes() != OLD  # replaced by the new output (export, fit) or a newer one (report)
    finally:
        if existing.parent.parent == runs[0].parent:  # a default output beside the shared runs: remove it again
            shutil.rmtree(existing.parent)


@pytest.mark.parametrize("name", ["results.csv", "run.json"])
@pytest.mark.parametrize("force", [False, True], ids=["", "--force"])
def test_export_never_writes_over_a_runs_own_files(name: str, force: bool, runs, tmp_path: Path, capsys) -> None:
    """The reported data loss: export --out <run>/results.csv replaced the run's table with YAML."""
    target = runs[1] / name
    before = {p.name: p.read_bytes() for p in runs[1].iterdir() if p.is_file()}
    assert main([*_export(runs, target), *(["--force"] if force else [])]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"{target} is a result file of the run directory {runs[1]}" in line, line
    assert {p.name: p.read_bytes() for p in runs[1].iterdir() if p.is_file()} == before
    assert main(["fit", str(runs[1]), "--boot", "0", "--out", str(tmp_path / "fit")]) == 0  # still reads


@pytest.mark.parametrize("where", [".", "fit", "deep/er"])
@pytest.mark.parametrize("command", ["fit", "report"])
def test_report_and_fit_never_write_into_a_run_directory(command: str, where: str, tmp_path: Path, capsys) -> None:
    """--out <run> or a folder inside it is refused (exit 2, one line naming <run>.fit / <run>.report), --force or
    not, and the run directory stays exactly as it was: only the command that made a run writes inside it."""
    run = write_two_tier_run(tmp_path, HW, nnodes=1, gpus_per_node=2, seed=3)
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    for force in ([], ["--force"]):
        assert main([command, str(run), "--boot", "0", "--out", str(run / where), *force]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"run directory {run}: collbench never writes inside a run directory" in line, line
        assert line.endswith(f"e.g. {run.with_name(f'{run.name}.{command}')}"), line
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before


def test_claims_refuse_a_run_file_even_with_force(tmp_path: Path) -> None:
    from analysis.errors import AnalysisError

    run = write_two_tier_run(tmp_path, HW, nnodes=1, gpus_per_node=2)
    for name in ("results.csv", "run.json"):
        with pytest.raises(AnalysisError, match="never writes over"):
            claim_output_file(run / name, force=True)
        with pytest.raises(AnalysisError, match="never writes over"):
            claim_output_dir(run, (name,), force=True)
    for path in (run, run / "sub", run / "sub" / "deeper"):
        with pytest.raises(AnalysisError, match="never writes inside a run directory"):
            claim_output_dir(path, ("fits.csv",), force=True)
        with pytest.raises(AnalysisError, match="never writes inside a run directory"):
            claim_output_file(path / "net.yaml", force=True)
    assert sorted(p.name for p in run.iterdir()) == ["results.csv", "run.json"]
    assert claim_output_file(tmp_path / "elsewhere" / "results.csv") == tmp_path / "elsewhere" / "results.csv"
    assert claim_output_dir(tmp_path / "new" / "dir", ("fits.csv",)).is_dir()


def test_import_twice_makes_two_runs_and_keeps_the_first(tmp_path: Path, capsys) -> None:
    assert main(["import", str(NCCL_LOG), "--out", str(tmp_path)]) == 0
    (first,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    assert main(["import", str(NCCL_LOG), "--out", str(tmp_path)]) == 0
    dirs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(dirs) == 2 and first in dirs
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    capsys.readouterr()


def test_write_run_dir_refuses_an_existing_run(tmp_path: Path) -> None:
    from analysis.errors import AnalysisError

    run = new_run_dir(tmp_path, "t")
    write_run_dir(run, base_meta(run), [])
    before = (run / "results.csv").read_bytes(), (run / "run.json").read_bytes()
    with pytest.raises((AnalysisError, FileExistsError)):
        write_run_dir(run, base_meta(run), [])
    assert ((run / "results.csv").read_bytes(), (run / "run.json").read_bytes()) == before


@pytest.mark.parametrize("name", ["pairs.csv", "pairs_bw_gbps.csv", "pairs_latency_us.csv", "pairs.png"])
def test_pairs_files_never_replace_existing_ones(name: str, tmp_path: Path) -> None:
    """collbench pairs writes into its own fresh run directory; its writer creates each file exclusively anyway."""
    from itertools import combinations

    from analysis.pairs import analyse, write_files

    records = [{"rank_a": a, "rank_b": b, "latency_us": 5.0, "bw_a_to_b_gbps": 10.0, "bw_b_to_a_gbps": 10.0,
                "bibw_gbps": 20.0, "n_wrong": 0} for a, b in combinations(range(3), 2)]  # fmt: skip
    verdict = analyse(records, ["n0"] * 3)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert {p.name for p in write_files(verdict, fresh)} == {"pairs.csv", "pairs_bw_gbps.csv", "pairs_latency_us.csv",
                                                              "pairs.png"}  # fmt: skip
    (tmp_path / name).write_bytes(OLD)
    with pytest.raises(FileExistsError):
        write_files(verdict, tmp_path)
    assert (tmp_path / name).read_bytes() == OLD


#: (--out relative to a run directory that is the working directory, refused?): "." is below "..", not above it
RELATIVE = [(".", True), ("sub", True), ("sub/../deeper", True), ("./x/..", True), ("../x", False),
            ("../{run}/a", True), ("../{run}.fit", False), ("link/sub", True), ("link/../x", False)]  # fmt: skip


@pytest.mark.parametrize(("out", "refused"), RELATIVE, ids=[o for o, _ in RELATIVE])
def test_inside_a_run_judged_as_written_and_resolved(out: str, refused: bool, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from bench.schema import enclosing_run_dir, inside_run_error

    run = write_two_tier_run(tmp_path, HW, nnodes=1, gpus_per_node=2)
    (tmp_path / "link").symlink_to(run, target_is_directory=True)
    monkeypatch.chdir(run if not out.startswith("link") else tmp_path)
    out = out.format(run=run.name)
    line = inside_run_error(out)
    assert (line is not None) == refused, (out, line)
    assert (enclosing_run_dir(out) is not None) == refused
    if refused:
        assert "collbench never writes inside a run directory" in line and "e.g. " in line
