"""``collbench fit RUN... [--out DIR] [--robust huber|theil-sen] [--boot N] [--seed S]``: fits every curve
(``analysis.fitting``), writes fits.csv and prints the table (``analysis.fits_table``)."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from analysis import fits_table
from analysis.fitting import fit_all
from analysis.outputs import claim_output_dir, default_output_dir
from analysis.read_runs import load_runs
from bench.errors import UsageError
from collbench.commands.options import add_force_argument, check_numbers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run directories (or parents of run directories)")
    parser.add_argument("--out", help="directory for fits.csv (default: <run>.fit beside a run directory, "
                        "<folder>/fit in a folder of runs; never inside a run directory); an earlier fits.csv there "
                        "is refused unless --force")
    add_force_argument(parser)
    parser.add_argument("--robust", choices=("huber", "theil-sen"), help="robust curve fits instead of relative WLS")
    parser.add_argument("--boot", type=int, default=200, help="bootstrap replicates for the CIs (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--no-breaks", action="store_true", help="one line per curve (no breakpoint search)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Fit every curve of the runs, write fits.csv and print the table and the curves too short to fit."""
    check_numbers(args, boot=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_runs(args.runs)
    for w in caught:
        print(f"collbench: warning: {w.message}")
    default = default_output_dir(args.runs[0], "fit")
    existed = Path(args.out or default).exists()
    out = claim_output_dir(args.out or default, ("fits.csv",), args.force, default=not args.out, instead=default)
    fits = fit_all(df, robust=args.robust, n_boot=args.boot, seed=args.seed, breaks=not args.no_breaks)
    if fits.empty:
        if not existed:
            out.rmdir()  # claimed (and made) above so a refusal comes before the fitting; nothing to put in it
        raise UsageError("nothing to fit: every curve has fewer than 3 sizes (and no model has 2 world sizes)")
    path = fits_table.write_csv(fits, out)
    print(fits_table.text(fits))
    skipped = df.groupby(["collective", "algorithm", "world_size"])["bytes"].nunique()
    for (c, a, p), k in skipped[skipped < 3].items():
        print(f"collbench: warning: {c}/{a} p={p}: {k} size(s), no curve fit (needs 3)")
    print(f"# wrote {path}")
    return 0
