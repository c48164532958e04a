"""The fits table for people (terminal and report) and for scripts (fits.csv): one formatter, one writer."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis.errors import AnalysisError
from analysis.fitting import FIT_COLUMNS
from analysis.units import size_label

HEADER: tuple[str, ...] = ("scope", "collective", "algorithm", "p", "in-place", "sizes", "alpha_us [95% CI]",
                           "bw_gbps [95% CI]", "gamma_gbps", "R2 (ln t)", "MAPE %", "loo %")  # fmt: skip
#: What the columns mean, for a caption under the table.
CAPTION = ("Fits: t = alpha + S / bw per curve (relative-error WLS, bootstrap 95% CI); model rows fit alpha, beta "
           "(and gamma) across world sizes with each algorithm's L(p), W(p), G(p); R2 on ln t; "
           "loo = leave-one-world-size-out prediction error.")  # fmt: skip


def _num(x: object, fmt: str = "{:.3g}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return "-"
    return fmt.format(x)


def rows(fits: pd.DataFrame) -> list[tuple[str, ...]]:
    """One row of HEADER per fit, every value already a string (CIs in brackets)."""
    out = []
    for r in fits.itertuples(index=False):
        p = "-" if r.world_size is None or pd.isna(r.world_size) else str(int(r.world_size))
        ip = "-" if r.in_place is None or pd.isna(r.in_place) else "y" if bool(r.in_place) else "n"
        out.append((
            r.scope, r.collective, r.algorithm, p, ip, f"{size_label(r.bytes_min)} - {size_label(r.bytes_max)}",
            f"{_num(r.alpha_us)} [{_num(r.alpha_us_lo)}, {_num(r.alpha_us_hi)}]",
            f"{_num(r.bw_gbps)} [{_num(r.bw_gbps_lo)}, {_num(r.bw_gbps_hi)}]", _num(r.gamma_gbps),
            _num(r.r2, "{:.3f}"), _num(r.mape, "{:.1f}"), _num(r.loo_mape, "{:.1f}"),
        ))  # fmt: skip
    return out


def text(fits: pd.DataFrame) -> str:
    """The table as aligned text for the terminal."""
    table = [HEADER, *rows(fits)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)


def write_csv(fits: pd.DataFrame, out_dir: Path) -> Path:
    """``out_dir``/fits.csv (FIT_COLUMNS, 7 significant digits); AnalysisError when it cannot be written."""
    path = Path(out_dir) / "fits.csv"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fits.to_csv(path, index=False, columns=list(FIT_COLUMNS), float_format="%.7g")
    except OSError as exc:
        raise AnalysisError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


#: fits.csv columns a reader needs, and what each numeric one may hold: (column, may be empty, may be 0, may be inf)
_FIT_NUMBERS: tuple[tuple[str, bool, bool, bool], ...] = (
    ("alpha_us", False, True, False),  # NNLS clips a latency below resolution to 0: collbench fit writes 0
    ("alpha_us_lo", True, True, False), ("alpha_us_hi", True, True, False),
    ("bw_gbps", False, False, True),  # a flat line (slope 0) has bandwidth inf: collbench fit writes inf
    ("bw_gbps_lo", True, False, True), ("bw_gbps_hi", True, False, True),
    ("gamma_gbps", True, False, True),  # empty: gamma not identified
    ("world_size", True, False, False), ("bytes_min", True, True, False), ("bytes_max", True, True, False),
    ("segment_bytes", True, False, False),
)  # fmt: skip


def check_fits(fits: pd.DataFrame, where: str) -> pd.DataFrame:
    """``fits`` (as read from a fits.csv) with its numbers as numbers, or AnalysisError with one line naming the
    first value that cannot come from a fit: text in a numeric column, nan, a negative time, a zero or negative
    bandwidth, an unknown scope. A prediction from such a row would be a wrong number, printed as if right."""
    missing = [c for c in ("scope", "collective", "algorithm", "alpha_us", "bw_gbps") if c not in fits.columns]
    if missing:
        raise AnalysisError(f"{where}: not a fits.csv (no column {missing[0]})")
    bad_scope = fits[~fits["scope"].isin(("curve", "model"))]
    if not bad_scope.empty:
        i = bad_scope.index[0]
        raise AnalysisError(f"{where}: row {i + 2}: scope {fits.at[i, 'scope']!r} is neither curve nor model")
    out = fits.copy()
    for col, may_be_empty, may_be_zero, may_be_inf in _FIT_NUMBERS:
        if col not in out.columns:
            continue
        raw = out[col]
        num = pd.to_numeric(raw, errors="coerce")
        for i in out.index:
            v, text_value = num[i], raw[i]
            empty = text_value is None or (isinstance(text_value, float) and math.isnan(text_value)) or (
                isinstance(text_value, str) and not text_value.strip())  # fmt: skip
            if empty:
                if may_be_empty:
                    continue
                raise AnalysisError(f"{where}: row {i + 2}: {col} is empty")
            if isinstance(text_value, str) and text_value.strip().lower() in ("nan", "-nan", "+nan"):
                v = math.nan
            elif pd.isna(v):
                raise AnalysisError(f"{where}: row {i + 2}: {col} {text_value!r} is not a number")
            if math.isnan(v) and may_be_empty:
                continue
            ok = not math.isnan(v) and v >= 0 and (may_be_zero or v > 0) and (may_be_inf or math.isfinite(v))
            if not ok:
                need = ("a finite number" if not may_be_inf else "a number") + (" >= 0" if may_be_zero else " > 0")
                raise AnalysisError(f"{where}: row {i + 2}: {col} = {text_value} cannot come from a fit (needs "
                                    f"{need})")  # fmt: skip
        out[col] = num
    return out
