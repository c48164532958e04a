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
