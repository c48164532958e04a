"""collbench run --repeat K: K runs on fresh ranks, the case order rotated, in one parent with a manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_helpers import read_run, run_dir_from, run_main

from analysis.read_runs import load_run
from bench.plan import point_groups, rotated_plan
from bench.records import CaseSpec
from bench.schema import REPEAT_MANIFEST


def _case(algorithm: str, nbytes: int) -> CaseSpec:
    return CaseSpec(collective="all_reduce", algorithm=algorithm, backend="gloo", device="cpu", world_size=2,
                    dtype="float32", op="sum", bytes=nbytes, count=nbytes // 4, root=-1, in_place=True, iters=5,
                    warmup=1)  # fmt: skip


def test_rotated_plan_is_a_permutation_that_keeps_groups_together_and_starts_elsewhere() -> None:
    plan = [_case(a, n) for n in (1024, 4096, 16384) for a in ("builtin", "ring")]
    firsts = set()
    for index in range(3):
        order = rotated_plan(plan, index, 3)
        assert sorted(map(id, order)) == sorted(map(id, plan))
        groups = point_groups(order, True)
        assert len(groups) == 3 and all(len({c.bytes for c in g}) == 1 for g in groups)
        firsts.add((order[0].bytes, order[0].algorithm))
    assert len(firsts) == 3  # every repeat starts at another size and algorithm
    assert rotated_plan(plan, 0, 3) == plan and rotated_plan(plan, 0, 1) == plan


@pytest.mark.timeout(240)
def test_run_repeat_2_writes_two_runs_and_a_manifest(tmp_path: Path, capfd) -> None:
    args = ["run", "--repeat", "2", "--nprocs", "2", "--collectives", "all_reduce", "--algorithms", "builtin,ring",
            "-b", "1K", "-e", "4K", "-n", "5", "-w", "1", "--out", str(tmp_path)]  # fmt: skip
    res = run_main(args, capfd)
    assert res.returncode == 0, res.stderr
    top = run_dir_from(res.stdout)
    assert top.parent == tmp_path and "repeat2" in top.name
    manifest = json.loads((top / REPEAT_MANIFEST).read_text())
    assert manifest["kind"] == "collbench-repeat" and manifest["status"] == "complete" and manifest["repeat"] == 2
    assert [r["status"] for r in manifest["runs"]] == ["complete", "complete"]
    assert manifest["runs"][0]["first_case"] != manifest["runs"][1]["first_case"]
    run_ids = set()
    for entry in manifest["runs"]:
        run = top / entry["run_dir"]
        rows, meta = read_run(run)  # a normal run directory
        assert len(rows) == 4 and meta["status"] == "complete" and load_run(run).points.shape[0] == 4
        run_ids.add(meta["run_id"])
    assert len(run_ids) == 2
    # the two runs compare with one another, the parent against itself is refused
    from collbench.cli import main

    runs = [str(top / r["run_dir"]) for r in manifest["runs"]]
    assert main(["compare", *runs, "--json"]) in (0, 1)
    capfd.readouterr()
    assert main(["compare", str(top), str(top)]) == 2
    assert "same path" in capfd.readouterr().err


@pytest.mark.parametrize("bad", ["0", "101", "-3", "x"])
def test_bad_repeat_is_one_line_and_starts_nothing(tmp_path: Path, capfd, bad: str) -> None:
    res = run_main(["run", "--repeat", bad, "--nprocs", "2", "--out", str(tmp_path / "out")], capfd)
    err = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(err) == 1 and err[0].startswith("collbench: error:") and "--repeat" in err[0]
    assert not (tmp_path / "out").exists()
