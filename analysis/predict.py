"""``collbench predict``: time, busbw and the best algorithm at sizes and world sizes not measured, and
"will more GPUs help?" for a data-parallel step (docs/theory.md; docs/fitting.md, Model fit, Data-parallel step).

Each algorithm is predicted from its own ``model`` fit (alpha, beta across world sizes) when there is one,
else from the joint hardware fit (collective ``*``: alpha, beta, gamma shared by the hand-written
algorithms) through the algorithm's L(p), W(p), G(p) in ``collectives.costs`` (docs/costs.md), pipelined
algorithms at the segment size of the fitted runs.  builtin follows the backend's algorithm where it is
known; where it is not, its prediction is a lower bound, printed as such and never ranked best.
"""

from __future__ import annotations

import argparse
import math
import warnings

import pandas as pd

from analysis.errors import AnalysisError
from analysis.fitting import fit_all, model_time_us
from bench.sizes import parse_size
from collectives import costs


def parse_bytes(text: str) -> int:
    """'64K', '1M', '1.5G', '4096' -> bytes (powers of 1024, like nccl-tests), through ``bench.sizes``."""
    try:
        value = parse_size(text, fraction=True)
    except ValueError as exc:
        raise AnalysisError(str(exc)) from None
    if value <= 0:
        raise AnalysisError(f"bad size {text!r}: must be positive")
    return value


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise AnalysisError(f"bad {what} {text!r} (comma list of integers)") from None
    if not values or min(values) < 1:
        raise AnalysisError(f"bad {what} {text!r}: need positive integers")
    return values


def load_fits(paths: list[str]) -> pd.DataFrame:
    """A fits.csv, or run directories fitted on the fly."""
    if len(paths) == 1 and paths[0].endswith(".csv"):
        try:
            return pd.read_csv(paths[0])
        except FileNotFoundError:
            raise AnalysisError(f"{paths[0]}: no such file") from None
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError):
            raise AnalysisError(f"{paths[0]}: not a fits.csv") from None
    from analysis.loader import load_runs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_all(load_runs(paths), n_boot=0)


def _opt_str(row: pd.Series, name: str) -> str | None:
    v = row.get(name)
    return None if v is None or pd.isna(v) or v == "" else str(v)


def _params(fits: pd.DataFrame, collective: str, algorithm: str) -> dict | None:
    """How to predict ``algorithm``: alpha_us, bw_gbps, gamma_gbps, basis, and the segment size and backend
    of the fitted run (pipelined algorithms are predicted at the segment size they were measured with)."""
    models = fits[fits["scope"] == "model"]
    own = models[(models["collective"] == collective) & (models["algorithm"] == algorithm)]
    own = own.sort_values("in_place", key=lambda s: s.astype(str).str.lower())  # out-of-place first, as nccl-tests
    if not own.empty:
        r, basis = own.iloc[0], "own model fit"
    else:
        joint = models[models["collective"] == "*"]
        if joint.empty or algorithm == "builtin":
            return None
        r, basis = joint.iloc[0], "joint hardware fit"
    seg = r.get("segment_bytes")
    return {
        "alpha": float(r["alpha_us"]), "bw": float(r["bw_gbps"]),
        "gamma": r["gamma_gbps"] if pd.notna(r["gamma_gbps"]) else None, "basis": basis,
        "segment_bytes": int(seg) if seg is not None and pd.notna(seg) else None,
        "backend": _opt_str(r, "backend"), "backend_algorithm": _opt_str(r, "backend_algorithm"),
    }  # fmt: skip


def _time_us(collective: str, alg: str, p: int, n: float, par: dict) -> float:
    return float(model_time_us(collective, alg, p, n, par["alpha"], par["bw"], par["gamma"],
                               segment_bytes=par["segment_bytes"], backend=par["backend"],
                               backend_algorithm=par["backend_algorithm"]))  # fmt: skip


def predict_table(fits: pd.DataFrame, collective: str, algorithms: list[str], sizes: list[int],
                  world_sizes: list[int]) -> pd.DataFrame:  # fmt: skip
    """time_us and busbw_gbps per (algorithm, world size, bytes), with the best algorithm marked.

    A prediction from an assumed schedule (builtin where the backend's algorithm is unknown: lower-bound
    coefficients) is a lower bound on the time: ``lower_bound`` is True, its basis says so, and it is never
    marked best."""
    rows = []
    for alg in algorithms:
        par = _params(fits, collective, alg)
        if par is None:
            continue
        for p in world_sizes:
            for n in sizes:
                t = _time_us(collective, alg, p, n, par)
                c = costs.cost(collective, alg, p, nbytes=n, segment_bytes=par["segment_bytes"],
                               backend=par["backend"], backend_algorithm=par["backend_algorithm"])  # fmt: skip
                basis = par["basis"] + ("; LOWER BOUND (schedule assumed)" if c.assumed else "")
                busbw = n / t * 1e-3 * costs.busbw_factor(collective, p) if t > 0 else math.nan
                rows.append({"collective": collective, "algorithm": alg, "world_size": p, "bytes": n,
                             "time_us": t, "busbw_gbps": busbw, "basis": basis,
                             "lower_bound": bool(c.assumed)})  # fmt: skip
    df = pd.DataFrame(rows)
    if df.empty:
        raise AnalysisError(f"no model fit for {collective} ({', '.join(algorithms)}): fit runs at >= 2 world sizes")
    df["best"] = False
    ranked = df[~df["lower_bound"]]
    if not ranked.empty:
        best = ranked.loc[ranked.groupby(["world_size", "bytes"])["time_us"].idxmin()]
        df.loc[best.index, "best"] = True
    return df


def scaling_table(fits: pd.DataFrame, *, grad_bytes: int, compute_ms: float, world_sizes: list[int],
                  algorithm: str = "ring", overlap: float = 0.0, bucket_bytes: int | None = None,
                  collective: str = "all_reduce") -> pd.DataFrame:  # fmt: skip
    """Data-parallel step over world sizes (docs/fitting.md, Data-parallel step and scaling).

    comm_ms: all-reduce of ``grad_bytes``, or with ``bucket_bytes`` one all-reduce per bucket (full buckets and
    the remainder), each with its own latency terms and, for a pipelined algorithm, its own pipeline.
    Weak scaling (Gustafson, fixed per-GPU batch): step = compute + (1 - overlap) comm, speedup = p compute / step,
    efficiency = compute / step. Strong scaling (Amdahl, fixed global batch, ``compute_ms`` = one GPU's step):
    step = compute / p + (1 - overlap) comm, speedup = compute / step.
    """
    par = _params(fits, collective, algorithm)
    if par is None:
        raise AnalysisError(f"no model fit for {collective}/{algorithm}: fit runs at >= 2 world sizes")
    if not 0 <= overlap <= 1:
        raise AnalysisError("--overlap must be in [0, 1]")
    rows = []
    for p in world_sizes:
        if p <= 1:
            comm_us = 0.0
        elif bucket_bytes and bucket_bytes < grad_bytes:
            full, rest = divmod(grad_bytes, bucket_bytes)
            comm_us = full * _time_us(collective, algorithm, p, bucket_bytes, par)
            comm_us += _time_us(collective, algorithm, p, rest, par) if rest else 0.0
        else:
            comm_us = _time_us(collective, algorithm, p, grad_bytes, par)
        comm_ms = comm_us / 1e3
        exposed = (1 - overlap) * comm_ms
        weak_step = compute_ms + exposed
        strong_step = compute_ms / p + exposed
        rows.append({
            "world_size": p, "comm_ms": comm_ms, "compute_ms": compute_ms, "step_ms": weak_step,
            "comm_to_compute": comm_ms / compute_ms, "speedup": p * compute_ms / weak_step,
            "efficiency": compute_ms / weak_step, "strong_step_ms": strong_step,
            "strong_speedup": compute_ms / strong_step, "strong_efficiency": compute_ms / strong_step / p,
        })  # fmt: skip
    return pd.DataFrame(rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fits", nargs="+", required=True, help="a fits.csv, or run directories to fit")
    parser.add_argument("--collective", default="all_reduce", choices=costs.COLLECTIVES)
    parser.add_argument("--algorithm", default="all", help="algorithm name or 'all' (default)")
    parser.add_argument("--bytes", default="1M,64M,1G", help="sizes, e.g. 4K,1M,1G (default 1M,64M,1G)")
    parser.add_argument("--world-sizes", default="8,64,512", help="comma list (default 8,64,512)")
    parser.add_argument("--scaling", action="store_true", help="data-parallel step: will more GPUs help?")
    parser.add_argument("--grad-bytes", default="1G", help="gradient bytes all-reduced per step (--scaling)")
    parser.add_argument("--compute-ms", type=float, default=300.0, help="compute time of one step (--scaling)")
    parser.add_argument("--overlap", type=float, default=0.0, help="share of the all-reduce hidden by compute")
    parser.add_argument("--bucket-bytes", help="gradient bucket size, e.g. 25M (PyTorch DDP's default)")


def run(args: argparse.Namespace) -> int:
    fits = load_fits(args.fits)
    world_sizes = _int_list(args.world_sizes, "--world-sizes")
    if args.scaling:
        alg = "ring" if args.algorithm == "all" else args.algorithm
        bucket = parse_bytes(args.bucket_bytes) if args.bucket_bytes else None
        if args.compute_ms <= 0:
            raise AnalysisError("--compute-ms must be positive")
        table = scaling_table(
            fits, grad_bytes=parse_bytes(args.grad_bytes), compute_ms=args.compute_ms, world_sizes=world_sizes,
            algorithm=alg, overlap=args.overlap, bucket_bytes=bucket,
        )  # fmt: skip
        print(f"# data-parallel step: {args.collective}/{alg} of {args.grad_bytes} per step, compute "
              f"{args.compute_ms} ms, overlap {args.overlap:.0%}")  # fmt: skip
        print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        return 0
    algorithms = costs.cost_algorithms(args.collective) if args.algorithm == "all" else [args.algorithm]
    if args.algorithm != "all" and args.algorithm not in costs.cost_algorithms(args.collective):
        raise AnalysisError(f"unknown algorithm {args.algorithm!r} for {args.collective}")
    sizes = [parse_bytes(s) for s in args.bytes.split(",") if s.strip()]
    table = predict_table(fits, args.collective, algorithms, sizes, world_sizes)
    print(f"{'collective':<15} {'algorithm':<18} {'p':>5} {'bytes':>12} {'time_us':>12} {'busbw_gbps':>10}  basis")
    for r in table.sort_values(["world_size", "bytes", "time_us"]).itertuples(index=False):
        mark = "  <- best" if r.best else ("  (lower bound, not ranked)" if r.lower_bound else "")
        t = f"{'>=' if r.lower_bound else ''}{r.time_us:.1f}"
        print(f"{r.collective:<15} {r.algorithm:<18} {r.world_size:>5} {r.bytes:>12} {t:>12} "
              f"{r.busbw_gbps:>10.3f}  {r.basis}{mark}")  # fmt: skip
    return 0
