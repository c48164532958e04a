"""``collbench fit RUN... [--out DIR] [--robust huber|theil-sen] [--boot N] [--seed S]``: writes fits.csv."""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path

import pandas as pd

from analysis.errors import AnalysisError
from analysis.fitting import FIT_COLUMNS, fit_all
from analysis.loader import load_runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run directories (or parents of run directories)")
    parser.add_argument("--out", help="directory for fits.csv (default: <first run>/fit)")
    parser.add_argument("--robust", choices=("huber", "theil-sen"), help="robust curve fits instead of relative WLS")
    parser.add_argument("--boot", type=int, default=200, help="bootstrap replicates for the CIs (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--no-breaks", action="store_true", help="one line per curve (no breakpoint search)")


def format_table(fits: pd.DataFrame) -> str:
    """Readable fit table: one line per fit, CIs in brackets."""

    def num(x: float, fmt: str = "{:.2f}") -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)

    lines = [
        f"{'scope':<6} {'collective':<15} {'algorithm':<18} {'p':>3} {'ip':>2} {'bytes':>19}  "
        f"{'alpha_us [95% CI]':<28} {'bw_gbps [95% CI]':<26} {'gamma':>7} {'r2':>6} {'mape%':>6} {'loo%':>6}"
    ]  # ip: in-place variant; r2 on ln t; loo: leave-one-world-size-out MAPE of model fits
    for r in fits.itertuples(index=False):
        p = "-" if r.world_size is None or pd.isna(r.world_size) else str(int(r.world_size))
        alpha = f"{num(r.alpha_us)} [{num(r.alpha_us_lo)}, {num(r.alpha_us_hi)}]"
        bw = f"{num(r.bw_gbps, '{:.3f}')} [{num(r.bw_gbps_lo, '{:.3f}')}, {num(r.bw_gbps_hi, '{:.3f}')}]"
        sizes = f"{int(r.bytes_min)}..{int(r.bytes_max)}"
        ip = "-" if r.in_place is None or pd.isna(r.in_place) else "y" if bool(r.in_place) else "n"
        lines.append(
            f"{r.scope:<6} {r.collective:<15} {r.algorithm:<18} {p:>3} {ip:>2} {sizes:>19}  {alpha:<28} {bw:<26} "
            f"{num(r.gamma_gbps, '{:.3f}'):>7} {num(r.r2, '{:.3f}'):>6} {num(r.mape, '{:.1f}'):>6} "
            f"{num(r.loo_mape, '{:.1f}'):>6}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.boot < 0:
        raise AnalysisError("--boot must be >= 0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_runs(args.runs)
    for w in caught:
        print(f"collbench: warning: {w.message}")
    fits = fit_all(df, robust=args.robust, n_boot=args.boot, seed=args.seed, breaks=not args.no_breaks)
    if fits.empty:
        raise AnalysisError("nothing to fit: every curve has fewer than 3 sizes (and no model has 2 world sizes)")
    out = Path(args.out) if args.out else Path(df["run_dir"].iloc[0]) / "fit"
    try:
        out.mkdir(parents=True, exist_ok=True)
        fits.to_csv(out / "fits.csv", index=False, columns=list(FIT_COLUMNS), float_format="%.7g")
    except OSError as exc:
        raise AnalysisError(f"cannot write {out / 'fits.csv'}: {exc.strerror}") from None
    print(format_table(fits))
    skipped = df.groupby(["collective", "algorithm", "world_size"])["bytes"].nunique()
    for (c, a, p), k in skipped[skipped < 3].items():
        print(f"collbench: warning: {c}/{a} p={p}: {k} size(s), no curve fit (needs 3)")
    print(f"# wrote {out / 'fits.csv'}")
    return 0
