"""``collbench fit RUN... [--out DIR] [--robust huber|theil-sen] [--boot N] [--seed S]``: writes fits.csv."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from analysis import fit_table
from analysis.errors import AnalysisError
from analysis.fitting import fit_all
from analysis.loader import load_runs
from analysis.outputs import add_force_argument, claim_output_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run directories (or parents of run directories)")
    parser.add_argument("--out", help="directory for fits.csv (default: <first run>/fit); an earlier fits.csv there "
                        "is refused unless --force")
    add_force_argument(parser)
    parser.add_argument("--robust", choices=("huber", "theil-sen"), help="robust curve fits instead of relative WLS")
    parser.add_argument("--boot", type=int, default=200, help="bootstrap replicates for the CIs (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--no-breaks", action="store_true", help="one line per curve (no breakpoint search)")


def run(args: argparse.Namespace) -> int:
    if args.boot < 0:
        raise AnalysisError("--boot must be >= 0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_runs(args.runs)
    for w in caught:
        print(f"collbench: warning: {w.message}")
    out = claim_output_dir(args.out or Path(df["run_dir"].iloc[0]) / "fit", ("fits.csv",), args.force,
                           default=not args.out)  # fmt: skip
    fits = fit_all(df, robust=args.robust, n_boot=args.boot, seed=args.seed, breaks=not args.no_breaks)
    if fits.empty:
        raise AnalysisError("nothing to fit: every curve has fewer than 3 sizes (and no model has 2 world sizes)")
    path = fit_table.write_csv(fits, out)
    print(fit_table.text(fits))
    skipped = df.groupby(["collective", "algorithm", "world_size"])["bytes"].nunique()
    for (c, a, p), k in skipped[skipped < 3].items():
        print(f"collbench: warning: {c}/{a} p={p}: {k} size(s), no curve fit (needs 3)")
    print(f"# wrote {path}")
    return 0
