"""Which points a figure or a table shows when a sweep measured two variants of one point."""

from __future__ import annotations

import pandas as pd


def one_variant(df: pd.DataFrame) -> pd.DataFrame:
    """One variant per point: out-of-place where measured (nccl-tests' first column), else in-place; only
    correct points with a positive time."""
    df = df[df["correct"].astype(bool) & (df["time_us"] > 0)]
    oop = df[~df["in_place"].astype(bool)]
    keys = ["collective", "algorithm", "world_size", "bytes"]
    rest = df[df["in_place"].astype(bool)].merge(oop[keys].drop_duplicates(), on=keys, how="left", indicator=True)
    rest = rest[rest["_merge"] == "left_only"].drop(columns="_merge")
    return pd.concat([oop, rest], ignore_index=True)
