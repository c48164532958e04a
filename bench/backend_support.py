"""What each backend can reduce: checked before any process starts, so bad combinations exit 2 cleanly.

Measured on torch 2.13 (gloo): int16 and bool have no reduction kernels worth benchmarking (int16 fails
in gloo), AVG is defined for floating dtypes only (docs/protocol.md, Algorithm API). NCCL has no int16 type.
"""

from __future__ import annotations

from collectives.spec import spec

DTYPE_SIZES: dict[str, int] = {
    "float32": 4,
    "float64": 8,
    "float16": 2,
    "bfloat16": 2,
    "int8": 1,
    "uint8": 1,
    "int32": 4,
    "int64": 8,
}
FLOAT_DTYPES = frozenset({"float32", "float64", "float16", "bfloat16"})
OPS: tuple[str, ...] = ("sum", "prod", "min", "max", "avg")
BACKEND_DTYPES: dict[str, frozenset[str]] = {
    "gloo": frozenset(DTYPE_SIZES),
    "nccl": frozenset(DTYPE_SIZES),
}
BACKEND_OPS: dict[str, frozenset[str]] = {"gloo": frozenset(OPS), "nccl": frozenset(OPS)}


def check_combination(backend: str, dtype: str, op: str, collectives: list[str]) -> str | None:
    """None if ``backend`` can run every collective with ``dtype``/``op``, else a one-line reason."""
    if backend not in BACKEND_DTYPES:
        return f"unknown backend {backend!r}; choose gloo or nccl"
    if dtype not in BACKEND_DTYPES[backend]:
        return f"dtype {dtype} is not supported on {backend}; choose from {', '.join(sorted(BACKEND_DTYPES[backend]))}"
    if op not in OPS:
        return f"unknown op {op!r}; choose from {', '.join(OPS)}"
    if not any(spec(c).reducing for c in collectives):
        return None
    if op not in BACKEND_OPS[backend]:
        return f"op {op} is not supported on {backend}"
    if op == "avg" and dtype not in FLOAT_DTYPES:
        return f"op avg needs a floating dtype, got {dtype}"
    return None


def builtin_lacks_op(backend: str, op: str) -> bool:
    """True where the backend's own collectives have no such reduction (gloo has no AVG: its builtin is skipped
    on every reducing case, collectives.builtin.check_backend_op)."""
    return backend == "gloo" and op == "avg"
