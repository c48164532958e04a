"""``collbench pairs``' verdict: flags, per-rank and per-node summaries, files and heatmap (torch-free).

Input: one record per unordered pair (a < b) as measured by ``bench.pairs`` (in the rounds of
``bench.pairings``): one-way latency at the small size (ping-pong / 2), uni-directional bandwidth both ways
and bi-directional bandwidth at the large size (an OSU-style window of outstanding messages), and wrong
elements seen by the receivers.

Flag rule (docs/protocol.md, "collbench pairs"). A pair's figures are its latency and its bandwidth, the
slower of its two directions. Pairs are compared only with pairs of their own kind (intra-node with
intra-node, inter-node with inter-node); ranks with ranks; nodes with nodes:

- the *reference* of a kind is the median over ranks of each rank's median pair of that kind (a rank's
  typical link); a slow rank drags its own median down but only one of p values of the reference, where
  the plain median over pairs would already sit on the slow pairs at p = 4 (3 of 6 pairs touch a rank);
- a pair's *bandwidth score* is bandwidth / reference and its *latency score* reference latency / latency
  (1 = typical); a pair is flagged when its bandwidth score < threshold (default 0.7) or its latency exceeds
  latency_factor (default 3) times the reference. Latency has its own, looser bound because small-message
  latency on a shared host swings by 2-3x with the scheduler (docs/noise.md) while bandwidth at a
  bandwidth-bound size holds within a few percent (a NIC at half speed scores 0.50, healthy links 0.94-1.0 on
  the emulated cluster), so one threshold for both either misses a half-speed NIC or flags noise;
- a rank is flagged when the median bandwidth score of its pairs (all kinds, each against its own reference)
  is below the threshold, or the median latency score below 1 / latency_factor: most of its links are slow,
  so the rank (its GPU, NIC or process) is the common cause.
  Ranks are flagged one at a time, worst first, and the others are then scored without the pairs touching
  a flagged rank (explaining away: a slow rank gives every other rank one slow pair, which with a noisy
  pair or two would otherwise push a healthy rank's median under the threshold);
- with several nodes, a node is flagged by the same rule over the inter-node pairs that touch it;
- a flagged pair neither of whose ranks (nor nodes) is flagged is reported as a *slow link*.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_THRESHOLD = 0.7  # flag bandwidth below this fraction of the reference (the --threshold default)
DEFAULT_LATENCY_FACTOR = 3.0  # flag latency above this multiple of the reference (--latency-factor)


@dataclass
class PairRow:
    """One unordered pair's figures and verdict (a row of pairs.csv)."""

    rank_a: int
    rank_b: int
    node_a: str
    node_b: str
    link: str  # intra | inter
    latency_us: float
    bw_a_to_b_gbps: float
    bw_b_to_a_gbps: float
    bw_gbps: float  # the slower direction
    bibw_gbps: float
    n_wrong: int
    flagged: bool = False
    reason: str = ""


@dataclass
class Verdict:
    """Everything ``collbench pairs`` reports."""

    p: int
    nodes: list[str]  # node of each rank
    threshold: float
    latency_factor: float
    pairs: list[PairRow]
    reference: dict[str, dict[str, float]]  # kind -> {"bw_gbps", "latency_us"}
    ranks: list[dict[str, Any]]
    node_summary: list[dict[str, Any]]
    flagged_pairs: list[str] = field(default_factory=list)
    flagged_ranks: list[int] = field(default_factory=list)
    flagged_nodes: list[str] = field(default_factory=list)
    slow_links: list[str] = field(default_factory=list)
    wrong_pairs: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.flagged_pairs or self.flagged_ranks or self.flagged_nodes or self.wrong_pairs)

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold, "latency_factor": self.latency_factor, "nodes": self.nodes,
            "reference": self.reference, "ranks": self.ranks,
            "node_summary": self.node_summary, "flagged_pairs": self.flagged_pairs,
            "flagged_ranks": self.flagged_ranks, "flagged_nodes": self.flagged_nodes, "slow_links": self.slow_links,
            "wrong_pairs": self.wrong_pairs,
        }  # fmt: skip


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass(frozen=True)
class Rule:
    """The flag rule: bandwidth below ``threshold`` x the reference, or latency above ``latency_factor`` x it."""

    threshold: float = DEFAULT_THRESHOLD
    latency_factor: float = DEFAULT_LATENCY_FACTOR

    def why(self, bw_score: float, lat_score: float) -> str:
        """Why a pair, rank or node with these scores (median or single) is slow; '' when it is not."""
        why = []
        if bw_score < self.threshold:
            why.append(f"bandwidth score {bw_score:.2f} < {self.threshold:g}")
        if lat_score * self.latency_factor < 1:
            why.append(f"latency {1 / lat_score:.2g}x the median > {self.latency_factor:g}x")
        return "; ".join(why)

    def badness(self, bw_score: float, lat_score: float) -> float:
        """< 1 when flagged; the smaller, the further past a bound (orders ranks for explaining away)."""
        return min(bw_score / self.threshold, lat_score * self.latency_factor)


def _bad(bw: float, lat: float, ref: dict[str, float], rule: Rule) -> str:
    why = []
    if bw < rule.threshold * ref["bw_gbps"]:
        why.append(f"bandwidth {bw:.3g} GB/s < {rule.threshold:g} x {ref['bw_gbps']:.3g}")
    if lat > ref["latency_us"] * rule.latency_factor:
        why.append(f"latency {lat:.3g} us > {rule.latency_factor:g} x {ref['latency_us']:.3g}")
    return "; ".join(why)


def _scores(pairs: list[PairRow], reference: dict[str, dict[str, float]]) -> tuple[float, float]:
    """Median bandwidth score and median latency score of these pairs, each against its kind's reference."""
    if not pairs:
        return 1.0, 1.0
    bw = _median([x.bw_gbps / reference[x.link]["bw_gbps"] for x in pairs])
    lat = _median([reference[x.link]["latency_us"] / x.latency_us for x in pairs])
    return bw, lat


def analyse(records: list[dict[str, Any]], nodes: list[str], threshold: float = DEFAULT_THRESHOLD,
            latency_factor: float = DEFAULT_LATENCY_FACTOR) -> Verdict:
    """Flags and summaries of the measured pairs (module docstring)."""
    rule = Rule(threshold, latency_factor)
    p = len(nodes)
    rows = []
    for rec in sorted(records, key=lambda r: (r["rank_a"], r["rank_b"])):
        a, b = rec["rank_a"], rec["rank_b"]
        link = "intra" if nodes[a] == nodes[b] else "inter"
        bw = min(rec["bw_a_to_b_gbps"], rec["bw_b_to_a_gbps"])
        rows.append(PairRow(a, b, nodes[a], nodes[b], link, rec["latency_us"], rec["bw_a_to_b_gbps"],
                            rec["bw_b_to_a_gbps"], bw, rec["bibw_gbps"], int(rec["n_wrong"])))  # fmt: skip
    per_rank: dict[int, dict[str, list[PairRow]]] = {r: {} for r in range(p)}
    for row in rows:
        for r in (row.rank_a, row.rank_b):
            per_rank[r].setdefault(row.link, []).append(row)
    rank_med = {r: {k: (_median([x.bw_gbps for x in v]), _median([x.latency_us for x in v]))
                    for k, v in kinds.items()} for r, kinds in per_rank.items()}  # fmt: skip
    # a rank's median pair per kind; the reference of a kind is the median of these over ranks
    reference = {}
    for kind in ("intra", "inter"):
        meds = [m[kind] for m in rank_med.values() if kind in m]
        if meds:
            reference[kind] = {"bw_gbps": _median([m[0] for m in meds]), "latency_us": _median([m[1] for m in meds])}
    v = Verdict(p, list(nodes), threshold, latency_factor, rows, reference, [], [])
    for row in rows:
        row.reason = _bad(row.bw_gbps, row.latency_us, reference[row.link], rule)
        row.flagged = bool(row.reason)
        if row.flagged:
            v.flagged_pairs.append(f"{row.rank_a}-{row.rank_b} ({row.link}): {row.reason}")
        if row.n_wrong:
            v.wrong_pairs.append(f"{row.rank_a}-{row.rank_b}: {row.n_wrong} wrong elements received")
    # ranks, explaining away: flag the rank furthest past a bound, then score the others without the pairs it
    # explains (a slow rank gives every other rank one slow pair), and repeat
    scores = {r: _scores([x for k in per_rank[r].values() for x in k], reference) for r in range(p)}
    while True:
        cand = {r: rule.badness(*sc) for r, sc in scores.items() if r not in v.flagged_ranks and rule.why(*sc)}
        if not cand:
            break
        worst = min(cand, key=cand.get)
        v.flagged_ranks.append(worst)
        for r in range(p):
            if r not in v.flagged_ranks:
                kept = [x for k in per_rank[r].values() for x in k if not {x.rank_a, x.rank_b} & set(v.flagged_ranks)]
                scores[r] = _scores(kept, reference)
    v.flagged_ranks.sort()
    for r in range(p):
        mine = [x for kind in per_rank[r].values() for x in kind]
        why = "median pair " + rule.why(*scores[r]) if r in v.flagged_ranks else ""
        v.ranks.append({
            "rank": r, "node": nodes[r], "pairs": len(mine), "score": scores[r][0], "latency_score": scores[r][1],
            "bw_median_gbps": _median([x.bw_gbps for x in mine]),
            "latency_median_us": _median([x.latency_us for x in mine]),
            "flagged": bool(why), "reason": why,
        })  # fmt: skip
    names = sorted(set(nodes), key=nodes.index)
    if len(names) > 1:
        for n in names:
            touch = [x for x in rows if x.link == "inter" and n in (x.node_a, x.node_b)]
            bw_score, lat_score = _scores(touch, reference)
            why = rule.why(bw_score, lat_score)
            why = f"median inter-node pair {why}" if why else ""
            v.node_summary.append({"node": n, "ranks": [r for r in range(p) if nodes[r] == n], "score": bw_score,
                                   "latency_score": lat_score,
                                   "inter_bw_median_gbps": _median([x.bw_gbps for x in touch]),
                                   "inter_latency_median_us": _median([x.latency_us for x in touch]),
                                   "flagged": bool(why), "reason": why})  # fmt: skip
            if why:
                v.flagged_nodes.append(n)
    for row in rows:
        if (
            row.flagged
            and not ({row.rank_a, row.rank_b} & set(v.flagged_ranks))
            and not ({row.node_a, row.node_b} & set(v.flagged_nodes))
        ):
            v.slow_links.append(f"{row.rank_a}-{row.rank_b}")
    return v


def matrix(v: Verdict, what: str) -> list[list[float | None]]:
    """p x p matrix: ``bw`` (row i, column j: bandwidth i -> j, GB/s) or ``latency`` (us, symmetric)."""
    m: list[list[float | None]] = [[None] * v.p for _ in range(v.p)]
    for x in v.pairs:
        if what == "bw":
            m[x.rank_a][x.rank_b], m[x.rank_b][x.rank_a] = x.bw_a_to_b_gbps, x.bw_b_to_a_gbps
        else:
            m[x.rank_a][x.rank_b] = m[x.rank_b][x.rank_a] = x.latency_us
    return m


def write_files(v: Verdict, run_dir: Path) -> list[Path]:
    """pairs.csv (one row per pair), pairs_bw_gbps.csv and pairs_latency_us.csv (p x p), pairs.png into the
    pairs run's fresh ``run_dir``; created exclusively ("x"), so files already there are never replaced."""
    out = [run_dir / "pairs.csv", run_dir / "pairs_bw_gbps.csv", run_dir / "pairs_latency_us.csv"]
    png = run_dir / "pairs.png"
    if png.exists():
        raise FileExistsError(f"{png} exists")
    with open(out[0], "x", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(v.pairs[0]))) if v.pairs else None
        if w:
            w.writeheader()
            w.writerows(asdict(x) for x in v.pairs)
    for path, what in ((out[1], "bw"), (out[2], "latency")):
        with open(path, "x", newline="") as f:
            w2 = csv.writer(f)
            w2.writerow(["rank", *range(v.p)])
            for i, row in enumerate(matrix(v, what)):
                w2.writerow([i, *("" if x is None else f"{x:.6g}" for x in row)])
    heatmap(v, png)
    return [*out, png]


def heatmap(v: Verdict, path: Path) -> None:
    """Bandwidth and latency matrices side by side, node boundaries drawn, flagged pairs marked x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(5 + 0.5 * v.p, 2.5 + 0.25 * v.p))
    bounds = [i - 0.5 for i in range(1, v.p) if v.nodes[i] != v.nodes[i - 1]]
    for ax, what, title, cmap in ((axes[0], "bw", "bandwidth i -> j (GB/s)", "viridis"),
                                  (axes[1], "latency", "one-way latency (us)", "magma_r")):  # fmt: skip
        m = np.array([[np.nan if x is None else x for x in row] for row in matrix(v, what)], dtype=float)
        im = ax.imshow(m, cmap=cmap)
        fig.colorbar(im, ax=ax, fraction=0.046)
        for b in bounds:
            ax.axhline(b, color="red", lw=1.5)
            ax.axvline(b, color="red", lw=1.5)
        for x in v.pairs:
            if x.flagged:
                for i, j in ((x.rank_a, x.rank_b), (x.rank_b, x.rank_a)):
                    ax.text(j, i, "x", ha="center", va="center", color="red", fontsize=9, fontweight="bold")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("rank j")
        ax.set_ylabel("rank i")
        ax.set_xticks(range(v.p))
        ax.set_yticks(range(v.p))
    flagged = f"flagged ranks {v.flagged_ranks}" if v.flagged_ranks else "no rank flagged"
    fig.suptitle(f"collbench pairs, p = {v.p}, bandwidth below {v.threshold:g} or latency above "
                 f"{v.latency_factor:g}x the median: {flagged}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary_lines(v: Verdict) -> list[str]:
    """The printed report: per-rank and per-node tables, then the flags."""
    lines = [f"# per rank (median over its {v.p - 1} pairs; reference per link kind: " + ", ".join(
        f"{k} {r['bw_gbps']:.3g} GB/s {r['latency_us']:.3g} us" for k, r in v.reference.items()) + ")"]  # fmt: skip
    lines.append(f"# {'rank':>4} {'node':<16} {'bw_GBps':>10} {'latency_us':>11} {'score':>6} {'lat_x':>6}  flag")
    for r in v.ranks:
        flag = f"SLOW ({r['reason']})" if r["flagged"] else "ok"
        bw, lat = r["bw_median_gbps"], r["latency_median_us"]
        lat_x = 1 / r["latency_score"]
        lines.append(f"  {r['rank']:>4} {r['node'][:16]:<16} {bw:>10.4g} {lat:>11.4g} {r['score']:>6.2f} "
                     f"{lat_x:>6.2f}  {flag}")  # fmt: skip
    if v.node_summary:
        lines.append(f"# {'node':<16} {'ranks':<16} {'inter_bw_GBps':>13} {'inter_lat_us':>12}  flag")
        for n in v.node_summary:
            flag = f"SLOW ({n['reason']})" if n["flagged"] else "ok"
            ranks = ",".join(map(str, n["ranks"]))[:16]
            lines.append(f"  {n['node'][:16]:<16} {ranks:<16} {n['inter_bw_median_gbps']:>13.4g} "
                         f"{n['inter_latency_median_us']:>12.4g}  {flag}")  # fmt: skip
    lines.append(f"# flagged ranks: {', '.join(map(str, v.flagged_ranks)) or 'none'}")
    if v.node_summary:
        lines.append(f"# flagged nodes: {', '.join(v.flagged_nodes) or 'none'}")
    lines.append(f"# flagged pairs: {len(v.flagged_pairs)} of {len(v.pairs)}")
    lines += [f"#   {x}" for x in v.flagged_pairs]
    lines.append(f"# slow links (pairs whose ranks are otherwise fine): {', '.join(v.slow_links) or 'none'}")
    lines += [f"# WRONG DATA {x}" for x in v.wrong_pairs]
    return lines
