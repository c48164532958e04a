"""Result schema v1 as ``analysis`` reads it (docs/results-schema.md); no torch, no bench import.

``tests`` check that these columns equal ``bench.measurement.CSV_COLUMNS``, so writer and reader cannot drift.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

CSV_COLUMNS: tuple[str, ...] = (
    "collective", "algorithm", "backend", "device", "world_size", "dtype", "op", "bytes", "count", "root",
    "in_place", "iters", "warmup", "time_us", "time_us_p10", "time_us_p25", "time_us_p75", "time_us_p90",
    "time_us_min", "time_us_max", "block_time_us", "algbw_gbps", "busbw_gbps", "correct", "n_wrong", "noisy",
    "segment_bytes", "graph",
)  # fmt: skip

INT_COLUMNS = ("world_size", "bytes", "count", "root", "iters", "warmup", "n_wrong", "segment_bytes")
FLOAT_COLUMNS = (
    "time_us", "time_us_p10", "time_us_p25", "time_us_p75", "time_us_p90", "time_us_min", "time_us_max",
    "block_time_us", "algbw_gbps", "busbw_gbps",
)  # fmt: skip
BOOL_COLUMNS = ("in_place", "correct", "noisy", "graph")
STR_COLUMNS = ("collective", "algorithm", "backend", "device", "dtype", "op")

#: columns that identify one point of a sweep (used to match points across runs)
POINT_KEY = ("collective", "algorithm", "backend", "device", "world_size", "dtype", "op", "bytes", "root", "in_place")
#: columns that identify one curve (time vs size)
CURVE_KEY = ("collective", "algorithm", "backend", "device", "world_size", "dtype", "op", "in_place")
