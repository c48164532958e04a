"""What ``collbench hunt`` prints and writes: the verdict table, hunt.json, hunt.csv and hunt.png (torch-free).

Everything here reads the JSON form of a search (``bench.hunt_strategy.HuntResult.to_json`` plus the node
names), so a simulated and a measured hunt print and plot alike.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

CSV_FIELDS = ("round", "phase", "kind", "nodes", "rail", "busbw_gbps", "ratio", "time_us", "n_wrong", "unreachable")


def node_label(data: dict[str, Any], node: int, rail: int | None) -> str:
    """'node5' (or its host name), with the NIC when one of several is blamed: 'node5 NIC 1'."""
    names = data.get("node_names") or []
    name = names[node] if node < len(names) else f"node{node}"
    return name if rail is None or data.get("rails", 1) == 1 else f"{name} NIC {rail}"


def blame_label(data: dict[str, Any], b: dict[str, Any]) -> str:
    """What a blame names: its node or NIC (``node_label``), or for a link its two nodes: 'node2 - node5' (with
    the NIC when there are several: 'node2 - node5 NIC 1')."""
    if b["kind"] != "link":
        return node_label(data, b["node"], b["rail"])
    a, z = (node_label(data, n, None) for n in b["nodes"])
    return f"{a} - {z}" if b["rail"] is None or data.get("rails", 1) == 1 else f"{a} - {z} NIC {b['rail']}"


def summary_lines(data: dict[str, Any]) -> list[str]:
    """The terminal table: one line per blamed node or NIC, then the totals; 'no slow node found' with the
    smallest slowdown the search could have seen."""
    lines = [f"# hunt: {data['nodes']} nodes x {data['rails']} NIC(s), {data['n_rounds']} rounds, "
             f"{data['n_tests']} tests, {data['seconds']:.1f} s; noise {100 * data['noise_sigma']:.1f} % "
             f"(robust sd), a test is low below {100 * data['cut']:.0f} % of the healthy median"]  # fmt: skip
    if data.get("local_cut") is not None:
        lines[0] += (f"; node-local tests: noise {100 * data['local_noise_sigma']:.1f} %, low below "
                     f"{100 * data['local_cut']:.0f} %")  # fmt: skip
    if data.get("pairs_rounds") is not None:
        lines[0] += f"; the full pairs matrix takes {data['pairs_rounds']} rounds"
    if data["blamed"]:
        lines.append(f"{'blamed':<24} {'kind':<12} {'busbw GB/s':>11} {'healthy GB/s':>13} {'confidence':>10}  tests")
        for b in data["blamed"]:
            bw = "-" if b["busbw_gbps"] is None else f"{b['busbw_gbps']:.4g}"
            ref = "-" if b["reference_gbps"] is None else f"{b['reference_gbps']:.4g}"
            tests = "; ".join(f"r{e['round']} {e['kind']} {_members(e['nodes'])}"
                              + ("" if e.get("ratio") is None else f" {100 * e['ratio']:.0f}%")
                              for e in b["evidence"])  # fmt: skip
            lines.append(f"{blame_label(data, b):<24} {b['kind']:<12} {bw:>11} {ref:>13} "
                         f"{b['confidence']:>10.4f}  {tests}")  # fmt: skip
    else:
        lines.append(f"# no slow node found: the smallest slowdown this search could see is "
                     f"{100 * data['min_detectable_slowdown']:.0f} % of the healthy busbw")  # fmt: skip
        crossed, links = links_crossed(data)
        if crossed < links:
            lines.append(f"# links crossed by a test: {crossed} of {links} (a slow link is seen only in a ring that "
                         "crosses it; --sweep-links crosses every one)")  # fmt: skip
    if data.get("suspects"):
        lines.append("# still suspect when the budget ran out (not blamed): "
                     + ", ".join(node_label(data, s["node"], s["rail"]) for s in data["suspects"]))  # fmt: skip
    if data.get("planted") is not None:
        planted = ", ".join(_planted_label(data, p) + f" x{p['factor']:g}" for p in data["planted"])
        lines.append(f"# planted: {planted or 'nothing'}; found exactly: {'yes' if data.get('found') else 'no'}")
    return lines


def links_crossed(data: dict[str, Any]) -> tuple[int, int]:
    """(links some ring test of the search crossed, links of the cluster): each node to the next in a test's ring
    order, the last to the first, per rail."""
    from bench.hunt_strategy import Test, max_links, ring_links

    crossed = {lk for rnd in data["rounds"] for t in rnd["tests"]
               for lk in ring_links(Test(t["kind"], tuple(t["nodes"]), t["rail"]))}  # fmt: skip
    return len(crossed), max_links(data["nodes"]) * data["rails"]


def _members(nodes: list[int]) -> str:
    """A test's nodes in ring order, '3+7+12'; a long ring (a sweep's) shortened to its first ones and its size."""
    if len(nodes) <= 8:
        return "+".join(map(str, nodes))
    return "+".join(map(str, nodes[:4])) + f"+... ({len(nodes)} nodes)"


def _planted_label(data: dict[str, Any], p: dict[str, Any]) -> str:
    if p.get("peer") is None:
        return node_label(data, p["node"], p["rail"])
    return blame_label(data, {"kind": "link", "nodes": [p["node"], p["peer"]], "rail": p["rail"]})


def _ratio(data: dict[str, Any], rnd: dict[str, Any], test: dict[str, Any]) -> float | None:
    """busbw / the healthy median of its kind (the lower of the run's and this round's controls', as the search
    judged it)."""
    if test["busbw_gbps"] is None:
        return None
    controls = [t["busbw_gbps"] for t in rnd["tests"]
                if t["kind"] == "control" and t["rail"] == test["rail"] and t["busbw_gbps"]]  # fmt: skip
    key = "local" if test["rail"] is None else f"rail{test['rail']}"
    ref = data["reference_gbps"].get(f"sweep-{key}" if test["kind"] == "sweep" else key)
    ref = ref or data["reference_gbps"].get(key)
    if controls:
        ordered = sorted(controls)
        mid = len(ordered) // 2
        median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        ref = min(median, ref) if ref else median
    return test["busbw_gbps"] / ref if ref else None


def _cut(data: dict[str, Any], kind: str) -> float:
    """The cut the search judged a test of ``kind`` by (node-local tests have their own)."""
    return data["local_cut"] if kind == "local" and data.get("local_cut") is not None else data["cut"]


def rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per test of every round (the rows of hunt.csv)."""
    out = []
    for rnd in data["rounds"]:
        for t in rnd["tests"]:
            out.append({"round": rnd["index"], "phase": rnd["phase"], "kind": t["kind"],
                        "nodes": " ".join(map(str, t["nodes"])), "rail": "" if t["rail"] is None else t["rail"],
                        "busbw_gbps": t["busbw_gbps"], "ratio": _ratio(data, rnd, t), "time_us": t["time_us"],
                        "n_wrong": t["n_wrong"], "unreachable": " ".join(map(str, t["unreachable"]))})  # fmt: skip
    return out


def write_files(data: dict[str, Any], run_dir: Path) -> list[Path]:
    """hunt.json, hunt.csv and hunt.png into the hunt's fresh ``run_dir``; created exclusively ("x"), so a file
    already there is never replaced."""
    paths = [run_dir / "hunt.json", run_dir / "hunt.csv", run_dir / "hunt.png"]
    if paths[2].exists():
        raise FileExistsError(f"{paths[2]} exists")
    with open(paths[0], "x") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    with open(paths[1], "x", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_FIELDS))
        w.writeheader()
        w.writerows(rows(data))
    figure(data, paths[2])
    return paths


def figure(data: dict[str, Any], path: Path) -> None:
    """Nodes by rounds: each cell the busbw / healthy median of the test the node was in that round (its lowest
    over NICs), blamed nodes marked; the colour scale ends at the cut the search used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n, rounds = data["nodes"], data["rounds"]
    m = np.full((n, max(1, len(rounds))), np.nan)
    for rnd in rounds:
        for t in rnd["tests"]:
            r = _ratio(data, rnd, t)
            for node in t["nodes"]:
                if r is not None:
                    old = m[node, rnd["index"]]
                    m[node, rnd["index"]] = r if np.isnan(old) else min(old, r)
    fig, ax = plt.subplots(figsize=(3 + 0.4 * len(rounds), 2 + min(12.0, 0.18 * n)))
    im = ax.imshow(m, aspect="auto", cmap="RdYlGn", vmin=min(0.3, data["cut"] - 0.2), vmax=1.1,
                   interpolation="nearest")  # fmt: skip
    fig.colorbar(im, ax=ax, fraction=0.046, label="busbw / healthy median")
    ax.set_xticks(range(len(rounds)))
    ax.set_xticklabels([f"{r['index']}\n{r['phase'][:4]}" for r in rounds], fontsize=7)
    ax.set_xlabel("round")
    ax.set_ylabel("node")
    links = [b for b in data["blamed"] if b["kind"] == "link"]
    for b in data["blamed"]:
        mark = f"<L{links.index(b) + 1}" if b in links else "<"  # a link: both its nodes, the same number
        for node in b.get("nodes") or [b["node"]]:
            ax.annotate(mark, (len(rounds) - 0.5, node), color="navy" if b in links else "black", fontsize=9,
                        va="center", annotation_clip=False)  # fmt: skip
    named = "".join(f"; L{i + 1}: {blame_label(data, b)}" for i, b in enumerate(links))
    ax.set_title(f"hunt: {len(data['blamed'])} blamed, {len(rounds)} rounds{named}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report_markdown(data: dict[str, Any], run_id: str, figure_name: str) -> str:
    """The hunt's report: the verdict, the blamed with their tests, and every round (``collbench report`` on a
    hunt run directory)."""
    out = [f"# collbench hunt: {run_id}", ""]
    out += [f"- {line.lstrip('# ')}" for line in summary_lines(data) if line.startswith("#")]
    if data["blamed"]:
        out += ["", "## Blamed", "",
                "| node / NIC | kind | busbw (GB/s) | healthy median (GB/s) | confidence | tests |",
                "|---|---|---:|---:|---:|---|"]  # fmt: skip
        for b in data["blamed"]:
            tests = "; ".join(f"round {e['round']} {e['kind']} {_members(e['nodes'])}"
                              + ("" if e.get("ratio") is None else f" ({100 * e['ratio']:.0f} %)")
                              for e in b["evidence"])  # fmt: skip
            bw = "-" if b["busbw_gbps"] is None else f"{b['busbw_gbps']:.4g}"
            ref = "-" if b["reference_gbps"] is None else f"{b['reference_gbps']:.4g}"
            out.append(f"| {blame_label(data, b)} | {b['kind']} | {bw} | {ref} | "
                       f"{b['confidence']:.4f} | {tests} |")  # fmt: skip
    out += ["", "## Nodes by rounds", "", f"![nodes by rounds]({figure_name})", "", "## Rounds", "",
            "| round | phase | tests | low | seconds |", "|---:|---|---:|---:|---:|"]  # fmt: skip
    by_round: dict[int, list[dict[str, Any]]] = {}
    for row in rows(data):
        by_round.setdefault(row["round"], []).append(row)
    for rnd in data["rounds"]:
        mine = by_round.get(rnd["index"], [])
        low = sum(1 for r in mine if r["ratio"] is None or r["n_wrong"] or r["ratio"] < _cut(data, r["kind"]))
        out.append(f"| {rnd['index']} | {rnd['phase']} | {len(mine)} | {low} | {rnd['seconds']:.2f} |")
    return "\n".join(out) + "\n"
