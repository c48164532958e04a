"""The report's opening: one headline card per machine that answers "is my number good?" before any detail:
peak busbw and share of the roof per collective (or why there is no roof, said once), the fastest algorithm by
size range, what changed against a baseline, and how many warnings and notes the detail below holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis.hardware import Machine
from analysis.read_runs import Run
from analysis.report_blocks import Block
from analysis.units import size_label
from analysis.verdict import Verdict
from collectives import costs
from collectives.spec import SEND_RECV

HEADER = ("collective", "p", "peak busbw (GB/s)", "share of roof", "fastest algorithm by size")
ORDER = {c: i for i, c in enumerate((*costs.COLLECTIVES, SEND_RECV.name))}


@dataclass(frozen=True)
class Counts:
    """What the detail sections hold for one run: warnings (status, wrong results, the run's own warnings),
    noisy points, verdict notes."""

    warnings: int
    noisy: int
    notes: int


def fastest_by_size(which: Sequence[tuple[str, ...]], collective: str, p: int) -> str:
    """'builtin to 230.9 KiB, then tree to 14.8 MiB, then ring' from the 'which algorithm when' rows of
    (collective, p) (their sizes: 'first - last')."""
    runs = [(r[3], r[2].split(" - ")[-1]) for r in which if r[0] == collective and r[1] == str(p)]
    if not runs:
        return "-"
    if len(runs) == 1:
        return f"{runs[0][0]} at every size"
    return ", then ".join(f"{alg} to {hi}" for alg, hi in runs[:-1]) + f", then {runs[-1][0]}"


def _best(vs: list[Verdict]) -> Verdict:
    """The verdict with the highest peak (busbw; algbw at p = 1)."""
    return max(vs, key=lambda v: v.peak_busbw_gbps if v.world_size >= 2 else v.peak_algbw_gbps)


def _row(vs: list[Verdict], which: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    v = _best(vs)
    at = f"({v.algorithm}, {size_label(v.peak_bytes)})"
    peak = f"{v.peak_busbw_gbps:.3g} {at}" if v.world_size >= 2 else f"algbw {v.peak_algbw_gbps:.3g} {at}"
    share = f"{100 * v.ratio:.0f} % of {v.roof_gbps:.4g} {v.roof_kind}" if v.ratio is not None else "no roof"
    if v.ratio is not None:
        share += f": {v.rating}"
    return (v.collective, str(v.world_size), peak, share, fastest_by_size(which, v.collective, v.world_size))


def card(title: str, runs: list[Run], vs: list[Verdict], which: Sequence[tuple[str, ...]],
         counts: dict[str, Counts], changed: str | None) -> list[Block]:  # fmt: skip
    """One machine's card: its runs, the per-collective table, why there is no roof (once), what changed, counts."""
    groups: dict[tuple[str, int], list[Verdict]] = {}
    for v in vs:
        groups.setdefault((v.collective, v.world_size), []).append(v)
    keys = sorted(groups, key=lambda k: (k[1], ORDER.get(k[0], 99), k[0]))
    rows = tuple(_row(groups[k], which) for k in keys)
    blocks = [Block("card", title), Block("p", f"Runs: {', '.join(r.run_id for r in runs)}")]
    if rows:
        blocks.append(Block("table", header=HEADER, rows=rows))
    no_roof = list(dict.fromkeys(v.roof_why for v in vs if v.roof_gbps is None))
    if no_roof and len(no_roof) <= 2:
        blocks += [Block("p", f"No roof: {why}") for why in no_roof]
    elif no_roof:
        blocks.append(Block("p", f"No roof for {sum(v.roof_gbps is None for v in vs)} rows: see the verdict detail"))
    if changed:
        blocks.append(Block("p", changed))
    total = Counts(*(sum(getattr(counts[r.run_id], f) for r in runs) for f in ("warnings", "noisy", "notes")))
    blocks.append(Block("p", f"{total.warnings} warning(s), {total.noisy} noisy point(s), {total.notes} verdict "
                             "note(s): see Warnings and the verdict detail below"))  # fmt: skip
    blocks.append(Block("endcard"))
    return blocks


def headline(runs: list[Run], vs: list[Verdict], machines: dict[str, Machine], which: Sequence[tuple[str, ...]],
             counts: dict[str, Counts], changed: dict[str, str]) -> list[Block]:  # fmt: skip
    """A card per distinct machine (runs with the same machine line share one), in run order."""
    by_machine: dict[str, list[Run]] = {}
    for r in runs:
        by_machine.setdefault(machines[r.run_id].describe(), []).append(r)
    blocks = [Block("h2", "At a glance")]
    for desc, group in by_machine.items():
        ids = {r.run_id for r in group}
        lines = [changed[r.run_id] for r in group if changed.get(r.run_id)]
        blocks += card(f"Machine: {desc}", group, [v for v in vs if v.run_id in ids], which, counts,
                       "; ".join(lines) or None)  # fmt: skip
    return blocks
