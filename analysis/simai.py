"""``collbench export --simai``: measured bus bandwidths as SimAI's ``busbw.yaml``, which its analytical simulator
(SimAI-Analytical, ``-busbw``) reads to time each parallel group's collectives.

The file (aliyun/SimAI ``example/busbw.yaml`` and ``docs/Tutorial.md``, section "Busbw Setting"): a first line
naming the setting, then one block per parallel group with ``<collective>,: <busbw GB/s>`` (``null`` where
unknown), and ``PP:`` with one ``busbw:`` for the pipeline's point-to-point transfers::

    test
    TP:
    allreduce,: 300
    allgather,: 280
    reducescatter,: 280
    alltoall,: 230
    DP:
    ...
    PP:
    busbw: 47.5

It is not YAML a YAML library accepts (a bare first line, keys ending in a comma): it is written line by line.
Each group's figure is the peak busbw of the builtin algorithm measured in the run the user names for that
group (``--tp`` a one-node run, ``--dp``/``--ep`` runs across nodes, ``--pp`` a send_recv run), the same figure
``collbench verdict`` reports. Never imports torch.
"""

from __future__ import annotations

import pandas as pd

from analysis.errors import AnalysisError
from collectives.spec import SEND_RECV

GROUPS = ("TP", "DP", "EP")
#: SimAI's collective keys -> collbench's collectives
KEYS = (("allreduce", "all_reduce"), ("allgather", "all_gather"), ("reducescatter", "reduce_scatter"),
        ("alltoall", "all_to_all"))  # fmt: skip


def peak_busbw(points: pd.DataFrame, collective: str) -> float | None:
    """The largest busbw (GB/s) of ``collective``'s builtin points in ``points`` (out of place when both were
    measured); None when the run has none."""
    sub = points[(points["collective"] == collective) & (points["algorithm"] == "builtin")]
    if sub.empty:
        return None
    if (~sub["in_place"].astype(bool)).any():
        sub = sub[~sub["in_place"].astype(bool)]
    if collective == SEND_RECV.name:
        return float(sub["busbw_gbps"].max())
    sub = sub[sub["world_size"] >= 2]
    return float(sub["busbw_gbps"].max()) if not sub.empty else None


def busbw_yaml(groups: dict[str, pd.DataFrame], name: str = "collbench") -> str:
    """busbw.yaml from each group's points (``TP``, ``DP``, ``EP``, ``PP``; a group not given, or a collective it
    did not measure, is ``null``) in the layout of SimAI's example; AnalysisError when no group has a figure."""
    if not name.strip() or "\n" in name or ":" in name:
        raise AnalysisError(f"--name {name!r}: one word or phrase on one line, without ':'")
    lines = [name.strip()]
    found = 0
    for group in GROUPS:
        points = groups.get(group)
        lines.append(f"{group}:")
        for key, coll in KEYS:
            bw = peak_busbw(points, coll) if points is not None else None
            found += bw is not None
            lines.append(f"{key},: {'null' if bw is None else f'{bw:.6g}'}")
    bw = None
    if "PP" in groups:
        bw = peak_busbw(groups["PP"], SEND_RECV.name)
        if bw is None:
            raise AnalysisError("--pp: the run has no send_recv points (measure send_recv for the pipeline's "
                                "transfers)")  # fmt: skip
        found += 1
    lines += ["PP:", f"busbw: {'null' if bw is None else f'{bw:.6g}'}"]
    if not found:
        raise AnalysisError("none of the runs has builtin all_reduce, all_gather, reduce_scatter or all_to_all "
                            "points at p >= 2 (or send_recv for --pp): nothing for SimAI")  # fmt: skip
    return "\n".join(lines) + "\n"
