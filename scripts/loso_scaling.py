"""Leave-one-scale-out over real scaling series (tests/data/scaling/*): every multi-node scale is held out in
turn, ``collbench predict`` is built from the other logs of its series, and its headline prediction at the
held-out world size is compared with the measured time: the median relative error at sizes >= 1 GiB and how
many of the held-out points at >= 256 MiB the 95 % interval holds.

The headline is the ``builtin`` row where predict gives one (what NCCL would run), else the row marked best.
Run with PYTHONPATH pointing at the checkout to evaluate (so the same script measures before and after):

    PYTHONPATH=$PWD python scripts/loso_scaling.py tests/data/scaling
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from analysis.errors import AnalysisError
from analysis.nccltests import import_file
from analysis.predict import build_predictor, predict_table
from analysis.read_runs import find_runs

MIN_COVER_BYTES = 256 << 20
MIN_ERR_BYTES = 1 << 30


def _runs(logs: list[Path], root: Path) -> list[tuple[Path, object]]:
    for log in logs:
        import_file(log, root / log.stem)
    return [(p, run) for p in sorted(root.iterdir()) for run in find_runs(str(p))]


def evaluate(series: Path) -> list[dict]:
    """One record per held-out scale of ``series``."""
    logs = sorted(series.glob("*.log"))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = _runs(logs, Path(tmp))
        for held_dir, held in runs:
            pts = held.points
            pts = pts[(pts["collective"] == "all_reduce") & ~pts["in_place"].astype(bool)]
            p = int(pts["world_size"].iloc[0])
            nn = int(held.meta.get("nnodes") or (held.meta.get("hardware") or {}).get("nnodes") or 1)
            if nn < 2:
                continue
            g = p // nn
            rest = [str(d) for d, _ in runs if d != held_dir]
            big = pts[pts["bytes"] >= MIN_COVER_BYTES]
            rec = {"series": series.name, "held_out": held_dir.name, "nnodes": p // g, "n_points": len(big)}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pred, _ = build_predictor(rest, "all_reduce", gpus_per_node=g, n_boot=100)
                    table = predict_table(pred, "all_reduce", ["ring", "tree", "hierarchical", "builtin"],
                                          [int(b) for b in big["bytes"]], [p])  # fmt: skip
            except AnalysisError as exc:
                out.append(rec | {"error": str(exc)})
                continue
            head = table[table["algorithm"] == "builtin"]
            if head.empty:
                head = table[table["best"]]
            head = head.set_index("bytes")
            errs, covered = [], 0
            for r in big.itertuples(index=False):
                h = head.loc[int(r.bytes)]
                errs.append((abs(h.time_us - r.time_us) / r.time_us * 100, int(r.bytes)))
                covered += bool(h.time_us_lo <= r.time_us <= h.time_us_hi)
            e1g = [e for e, n in errs if n >= MIN_ERR_BYTES]
            rec |= {"algorithm": str(head["algorithm"].iloc[0]), "median_err_1g_pct": float(np.median(e1g)),
                    "covered": covered,
                    "width_8g": float(head["time_us_hi"].iloc[-1] / head["time_us_lo"].iloc[-1])}  # fmt: skip
            out.append(rec)
    return out


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "tests/data/scaling")
    allrec = [r for s in sorted(d for d in root.iterdir() if d.is_dir()) for r in evaluate(s)]
    for r in allrec:
        if "error" in r:
            print(f"{r['series']:<32} {r['nnodes']:>3} nodes held out: no prediction ({r['error']})")
            continue
        print(f"{r['series']:<32} {r['nnodes']:>3} nodes held out: {r['algorithm']:<8} median error >= 1 GiB "
              f"{r['median_err_1g_pct']:5.1f} %, {r['covered']}/{r['n_points']} inside the 95 % interval, "
              f"hi/lo at the largest size {r['width_8g']:.2f}")  # fmt: skip
    done = [r for r in allrec if "error" not in r]
    if done:
        pts = sum(r["n_points"] for r in done)
        cov = sum(r["covered"] for r in done)
        med = float(np.median([r["median_err_1g_pct"] for r in done]))
        print(f"overall: median of the held-out scales' median errors {med:.1f} %, coverage {cov}/{pts} "
              f"({100 * cov / pts:.0f} %)" if pts else "overall: no points")  # fmt: skip
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
