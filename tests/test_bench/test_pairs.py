"""collbench pairs: the round-robin schedule, the flag rule on constructed matrices, and one real run on gloo with a
planted slow rank (the test-only fault hook: COLLBENCH_TEST_SLOW_US on COLLBENCH_TEST_FAULT_RANK)."""

from __future__ import annotations

import csv
import json
from itertools import combinations
from pathlib import Path

import pytest
from bench_helpers import run_cli, run_dir_from

from analysis.pairs import analyse
from bench.pairings import one_factorisation


@pytest.mark.parametrize("p", range(1, 13))
def test_one_factorisation_covers_every_pair_once_in_o_p_rounds(p: int) -> None:
    rounds = one_factorisation(p)
    assert len(rounds) == (0 if p == 1 else p - 1 if p % 2 == 0 else p)
    seen = [pair for r in rounds for pair in r]
    assert sorted(seen) == list(combinations(range(p), 2))
    for r in rounds:
        used = [x for pair in r for x in pair]
        assert len(used) == len(set(used)) and len(used) >= p - 1  # every rank (but one, for odd p) once


def _records(p: int, bw=lambda a, b: 10.0, lat=lambda a, b: 5.0) -> list[dict]:
    return [{"rank_a": a, "rank_b": b, "latency_us": lat(a, b), "bw_a_to_b_gbps": bw(a, b), "bw_b_to_a_gbps": bw(b, a),
             "bibw_gbps": 2 * bw(a, b), "n_wrong": 0} for a, b in combinations(range(p), 2)]  # fmt: skip


def test_a_slow_rank_is_named_and_its_peers_are_not() -> None:
    for p in (3, 4, 5, 8):
        v = analyse(_records(p, bw=lambda a, b: 1.0 if 2 in (a, b) else 10.0), ["n0"] * p)
        assert v.flagged_ranks == [2] and v.slow_links == [] and v.flagged
        assert {(x.rank_a, x.rank_b) for x in v.pairs if x.flagged} == {
            pr for pr in combinations(range(p), 2) if 2 in pr
        }


def test_a_slow_link_is_a_pair_not_a_rank() -> None:
    v = analyse(_records(6, lat=lambda a, b: 50.0 if (a, b) == (1, 4) else 5.0), ["n0"] * 6)
    assert v.flagged_ranks == [] and v.slow_links == ["1-4"] and v.flagged


def test_inter_node_pairs_are_compared_with_inter_node_pairs_and_a_slow_node_is_named() -> None:
    nodes = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    # inter-node links are 10x slower than intra-node ones: that is the machine, nothing is flagged
    fast = analyse(_records(12, bw=lambda a, b: 100.0 if nodes[a] == nodes[b] else 10.0), nodes)
    assert not fast.flagged and {x.link for x in fast.pairs} == {"intra", "inter"}
    # node c's network is slow: every inter-node pair touching it
    slow = analyse(_records(12, bw=lambda a, b: 100.0 if nodes[a] == nodes[b] else 2.0 if "c" in (nodes[a], nodes[b])
                            else 10.0), nodes)  # fmt: skip
    assert slow.flagged_nodes == ["c"] and slow.flagged


def test_a_half_speed_nic_is_named_and_latency_noise_is_not() -> None:
    """The emulated 8-node case: node 5's NIC at exactly half speed (bandwidth score 0.50, which a threshold of 0.5
    flags or misses by rounding), and on a loaded host a few healthy pairs' small-message latency at 2-3x."""
    p = 8
    noisy = {(1, 3): 2.2, (1, 7): 2.8, (3, 6): 2.7, (0, 5): 8.7}
    v = analyse(_records(p, bw=lambda a, b: 0.0239 if 5 in (a, b) else 0.0479,
                         lat=lambda a, b: 56.0 * noisy.get((a, b), 1.0)), [f"node{r}" for r in range(p)])  # fmt: skip
    assert v.flagged_nodes == ["node5"] and v.flagged_ranks == [5] and v.slow_links == []
    # a link 3.5x slower in latency alone is still a slow link
    v = analyse(_records(p, lat=lambda a, b: 196.0 if (a, b) == (2, 6) else 56.0), [f"node{r}" for r in range(p)])
    assert v.slow_links == ["2-6"] and v.flagged_nodes == [] and v.flagged_ranks == []
    # a rank whose latency is 4x on every link is flagged for latency, with the reason
    v = analyse(_records(6, lat=lambda a, b: 20.0 if 3 in (a, b) else 5.0), ["n0"] * 6)
    assert v.flagged_ranks == [3] and "latency" in v.ranks[3]["reason"]


def test_second_look_takes_pairs_slow_against_their_own_kind_in_disjoint_rounds() -> None:
    from bench.pairs import _disjoint_rounds, second_look

    nodes = ["a", "a", "b", "b", "c", "c"]
    lat = {pr: (5.0 if nodes[pr[0]] == nodes[pr[1]] else 50.0) for pr in combinations(range(6), 2)}
    lat[(0, 2)], lat[(2, 3)], lat[(1, 4)] = 150.0, 12.0, 90.0  # inter 3x, intra 2.4x, inter 1.8x their medians
    merged = {pr: {"latency_us": x} for pr, x in lat.items()}
    again = second_look(merged, nodes)
    assert again == [(0, 2), (2, 3)]
    rounds = _disjoint_rounds([(0, 1), (1, 2), (2, 3), (0, 3), (4, 5)])
    assert sorted(pr for r in rounds for pr in r) == [(0, 1), (0, 3), (1, 2), (2, 3), (4, 5)]
    for r in rounds:
        used = [x for pr in r for x in pr]
        assert len(used) == len(set(used))


def test_bad_options_are_one_line_and_exit_2(tmp_path: Path) -> None:
    for args, words in ((["--threshold", "2"], "--threshold"), (["--nprocs", "1"], "at least 2 ranks"),
                        (["--latency-factor", "0.5"], "--latency-factor"), (["--latency-factor", "inf"], "finite"),
                        (["--large-bytes", "x"], "x"), (["--timeout", "inf"], "--timeout must be a finite"),
                        (["-n", "99999999999999999999"], "--iters must be a finite"),
                        (["--nprocs", "2", "--large-bytes", "1T"], "GiB available")):  # fmt: skip
        proc = run_cli(["pairs", *args, "--out", str(tmp_path)], timeout=60)
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.alone
@pytest.mark.timeout(180)
def test_planted_slow_rank_is_flagged_and_no_other(tmp_path: Path) -> None:
    args = ["pairs", "--nprocs", "4", "--ranks-per-node", "2", "--large-bytes", "256K", "-n", "3", "-w", "1",
            "--out", str(tmp_path)]  # fmt: skip
    env = {"COLLBENCH_TESTING": "1", "COLLBENCH_TEST_FAULT_RANK": "1", "COLLBENCH_TEST_SLOW_US": "20000"}
    proc = run_cli(args, timeout=170, **env)
    assert proc.returncode == 1, proc.stderr
    assert "# flagged ranks: 1\n" in proc.stdout, proc.stdout
    run_dir = run_dir_from(proc.stdout)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "complete" and meta["pairs"]["flagged_ranks"] == [1]
    assert meta["pairs"]["nodes"] == ["node0", "node0", "node1", "node1"] and meta["nnodes"] == 2
    with open(run_dir / "pairs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and all(int(r["n_wrong"]) == 0 for r in rows)
    assert {r["link"] for r in rows if {r["rank_a"], r["rank_b"]} == {"0", "1"}} == {"intra"}
    slow = [r for r in rows if "1" in (r["rank_a"], r["rank_b"])]
    # a sleep of 20 ms before each of rank 1's two steps makes a round trip >= 40 ms, so latency (round trip / 2)
    # sits at 20 ms; one late wake-up of rank 0 can shift an iteration's boundary by a little, so 10 % slack
    assert all(float(r["latency_us"]) >= 0.9 * 20000 for r in slow), [r["latency_us"] for r in slow]
    matrix = list(csv.reader(open(run_dir / "pairs_bw_gbps.csv")))
    assert len(matrix) == 5 and matrix[1][1] == "" and float(matrix[1][2]) > 0
    assert (run_dir / "pairs.png").stat().st_size > 1000
