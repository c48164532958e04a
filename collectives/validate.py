"""Argument checks shared by every algorithm, builtin included.

Every check runs before the first message, so bad input raises a clear ``TypeError`` /
``ValueError`` on the calling rank and the other ranks are never left waiting on a half-sent
step.  Ranks outside ``group`` get ``None`` back (after the tensor checks, as torch does) and
the algorithm returns without communicating or touching its tensors: torch.distributed does the
same (it warns and returns).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed import ReduceOp

from collectives.batched_p2p import Ctx, make_ctx
from collectives.reduce_ops import SUPPORTED_OPS
from collectives.spec import spec

#: dtypes the reducing collectives accept (what Gloo and NCCL both reduce).
REDUCIBLE_DTYPES: tuple[torch.dtype, ...] = (
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int8,
    torch.int32,
    torch.int64,
    torch.uint8,
)

_OP_NAMES = {ReduceOp.SUM: "SUM", ReduceOp.PRODUCT: "PRODUCT", ReduceOp.MIN: "MIN", ReduceOp.MAX: "MAX"}
_OP_NAMES[ReduceOp.AVG] = "AVG"


def op_name(op: object) -> str:
    """Short name of a ReduceOp for messages."""
    for known, name in _OP_NAMES.items():
        if _same_op(op, known):
            return name
    return str(op)


def _same_op(a: object, b: ReduceOp) -> bool:
    try:
        return bool(a == b)
    except (TypeError, RuntimeError):
        return False


def _initialized() -> None:
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("torch.distributed is not initialized: call dist.init_process_group first")


def check_tensor(t: object, name: str) -> torch.Tensor:
    """A dense, contiguous tensor, else TypeError/ValueError naming ``name``."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.layout != torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {t.layout}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous (call .contiguous() first); got strides {tuple(t.stride())}")
    return t


def check_op(op: object, dtype: torch.dtype) -> ReduceOp:
    """A supported ReduceOp that can reduce ``dtype``."""
    if not any(_same_op(op, k) for k in SUPPORTED_OPS):
        known = ", ".join(_OP_NAMES.values())
        raise ValueError(f"unsupported reduce op {op!r}; supported: {known}")
    if dtype not in REDUCIBLE_DTYPES:
        names = ", ".join(str(d).removeprefix("torch.") for d in REDUCIBLE_DTYPES)
        raise TypeError(f"cannot reduce dtype {dtype}; supported: {names}")
    if _same_op(op, ReduceOp.AVG) and not dtype.is_floating_point:
        raise ValueError(f"ReduceOp.AVG needs a floating dtype, got {dtype}")
    return op  # type: ignore[return-value]


def check_root(root: object, ctx: Ctx, name: str) -> int:
    """Group rank of the GLOBAL rank ``root``; ValueError if it is not in the group."""
    if isinstance(root, bool) or not isinstance(root, int):
        raise TypeError(f"{name} must be an int (a global rank), got {type(root).__name__}")
    if root not in ctx.global_ranks:
        raise ValueError(f"{name}={root} is not a rank of the group (global ranks {list(ctx.global_ranks)})")
    return ctx.global_ranks.index(root)


def check_pair(output: torch.Tensor, input: torch.Tensor, p: int, collective: str, rank: int) -> None:
    """Buffers of the blocked layouts: same dtype and device, output = p x input (``gather`` layout: all_gather,
    gather) or input = p x output (``scatter`` layout: reduce_scatter, scatter).

    The buffers may overlap only in the in-place layout of NCCL and nccl-tests: the small buffer is exactly
    this rank's block of the large one (gather layout: input = output block ``rank``; scatter layout: output =
    input block ``rank``)."""
    if output.dtype != input.dtype:
        raise TypeError(f"{collective}: output dtype {output.dtype} differs from input dtype {input.dtype}")
    if output.device != input.device:
        raise ValueError(f"{collective}: output on {output.device} but input on {input.device}")
    if spec(collective).layout == "gather":
        if output.numel() != p * input.numel():
            raise ValueError(
                f"{collective}: output has {output.numel()} elements, expected world size {p} x input "
                f"{input.numel()} = {p * input.numel()}"
            )
    elif input.numel() != p * output.numel():
        raise ValueError(
            f"{collective}: input has {input.numel()} elements, expected world size {p} x output "
            f"{output.numel()} = {p * output.numel()}"
        )
    if output.numel() > 0 and input.numel() > 0 and _overlap(output, input) and not is_in_place(output, input, rank):
        raise ValueError(
            f"{collective}: output and input overlap in memory; only the in-place layout is allowed "
            f"(the smaller buffer is exactly block {rank} of the larger)"
        )


def is_in_place(output: torch.Tensor, input: torch.Tensor, rank: int) -> bool:
    """True when the smaller of the two buffers is exactly block ``rank`` of the larger (nccl-tests' in-place)."""
    small, big = (input, output) if input.numel() <= output.numel() else (output, input)
    if small.untyped_storage().data_ptr() != big.untyped_storage().data_ptr():
        return False
    return small.data_ptr() == big.data_ptr() + rank * small.numel() * small.element_size()


def _overlap(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr():
        return False
    a0, b0 = a.data_ptr(), b.data_ptr()
    return a0 < b0 + b.numel() * b.element_size() and b0 < a0 + a.numel() * a.element_size()


def check_segment_bytes(segment_bytes: object) -> int:
    """A positive int segment size."""
    if isinstance(segment_bytes, bool) or not isinstance(segment_bytes, int):
        raise TypeError(f"segment_bytes must be an int, got {type(segment_bytes).__name__}")
    if segment_bytes <= 0:
        raise ValueError(f"segment_bytes must be positive, got {segment_bytes}")
    return segment_bytes


def _member(group: dist.ProcessGroup | None) -> Ctx | None:
    _initialized()
    if group is dist.GroupMember.NON_GROUP_MEMBER:  # what dist.new_group returns on non-members
        return None
    if group is not None and not isinstance(group, dist.ProcessGroup):
        raise TypeError(f"group must be a ProcessGroup or None, got {type(group).__name__}")
    if group is not None and dist.get_rank(group) < 0:
        return None
    return make_ctx(group)


def whole_args(
    collective: str, tensor: object, group: dist.ProcessGroup | None, root: object = None, op: object = None
) -> tuple[Ctx, int] | None:
    """Checks of any collective of the ``whole`` layout (one buffer of S per rank), read from its descriptor: the
    tensor, the op when it reduces, membership, the root when it has one (named ``src`` or ``dst`` as torch
    names it). (ctx, root group rank; 0 without a root), or None off-group."""
    desc = spec(collective)
    t = check_tensor(tensor, "tensor")
    if desc.reducing:
        check_op(op, t.dtype)
    ctx = _member(group)
    if ctx is None:
        return None
    return ctx, check_root(root, ctx, desc.root_name or "root") if desc.rooted else 0


def broadcast_args(tensor: object, src: object, group: dist.ProcessGroup | None) -> tuple[Ctx, int] | None:
    """Checks for broadcast; (ctx, src group rank) or None off-group."""
    return whole_args("broadcast", tensor, group, root=src)


def reduce_args(tensor: object, dst: object, op: object, group: dist.ProcessGroup | None) -> tuple[Ctx, int] | None:
    """Checks for reduce; (ctx, dst group rank) or None off-group."""
    return whole_args("reduce", tensor, group, root=dst, op=op)


def all_reduce_args(tensor: object, op: object, group: dist.ProcessGroup | None) -> Ctx | None:
    """Checks for all_reduce; ctx or None off-group."""
    args = whole_args("all_reduce", tensor, group, op=op)
    return None if args is None else args[0]


def all_gather_args(output: object, input: object, group: dist.ProcessGroup | None) -> Ctx | None:
    """Checks for all_gather (all_gather_into_tensor semantics); ctx or None off-group."""
    o = check_tensor(output, "output")
    i = check_tensor(input, "input")
    ctx = _member(group)
    if ctx is not None:
        check_pair(o, i, ctx.size, "all_gather", ctx.rank)
    return ctx


def reduce_scatter_args(output: object, input: object, op: object, group: dist.ProcessGroup | None) -> Ctx | None:
    """Checks for reduce_scatter (reduce_scatter_tensor semantics); ctx or None off-group."""
    o = check_tensor(output, "output")
    i = check_tensor(input, "input")
    check_op(op, i.dtype)
    ctx = _member(group)
    if ctx is not None:
        check_pair(o, i, ctx.size, "reduce_scatter", ctx.rank)
    return ctx


def pair_args(
    collective: str,
    output: object,
    input: object,
    group: dist.ProcessGroup | None,
    root: object = None,
    op: object = None,
) -> tuple[Ctx, int] | None:
    """Checks of any collective with a blocked layout (``gather``: output = p x input; ``scatter``: input = p x
    output), read from its descriptor: the two tensors, the op when it reduces, membership, the root when it
    has one (named as torch names it: ``src`` or ``dst``), the buffers (:func:`check_pair`).

    (ctx, root group rank; 0 without a root), or None off-group. A new collective with one of these layouts
    needs no check of its own."""
    desc = spec(collective)
    o = check_tensor(output, "output")
    i = check_tensor(input, "input")
    if desc.reducing:
        check_op(op, i.dtype)
    ctx = _member(group)
    if ctx is None:
        return None
    root_rank = check_root(root, ctx, desc.root_name or "root") if desc.rooted else 0
    check_pair(o, i, ctx.size, collective, ctx.rank)
    return ctx, root_rank


def _splits(splits: object, rows: int, p: int, name: str, tensor_name: str) -> list[int]:
    """Split sizes (rows of dim 0) of one side: p equal parts of ``rows`` for None, else p ints summing to rows."""
    if splits is None:
        if rows % p:
            raise ValueError(
                f"all_to_all: {tensor_name} has {rows} rows in dim 0, not a multiple of the world size {p} "
                f"(pass {name} for unequal splits)"
            )
        return [rows // p] * p
    if isinstance(splits, torch.Tensor) or not hasattr(splits, "__len__") or isinstance(splits, (str, bytes)):
        raise TypeError(f"all_to_all: {name} must be a list of ints, got {type(splits).__name__}")
    sizes = list(splits)  # type: ignore[call-overload]
    if len(sizes) != p:
        raise ValueError(f"all_to_all: {name} has {len(sizes)} entries, expected one per rank ({p})")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int):
            raise TypeError(f"all_to_all: {name} must hold ints, got {type(s).__name__} ({s!r})")
        if s < 0:
            raise ValueError(f"all_to_all: {name} holds a negative size {s}")
    if sum(sizes) != rows:
        raise ValueError(f"all_to_all: {name} sums to {sum(sizes)} but {tensor_name} has {rows} rows in dim 0")
    return sizes


def _row_elems(t: torch.Tensor, tensor_name: str) -> int:
    if t.dim() == 0:
        raise ValueError(f"all_to_all: {tensor_name} is a 0-dim tensor; it needs a dim 0 to split")
    return t[0].numel() if t.shape[0] else int(torch.Size(t.shape[1:]).numel())


def all_to_all_args(
    output: object,
    input: object,
    output_split_sizes: object,
    input_split_sizes: object,
    group: dist.ProcessGroup | None,
) -> tuple[Ctx, list[int], list[int]] | None:
    """Checks for all_to_all (``all_to_all_single`` semantics): (ctx, elements sent to each rank, elements
    received from each rank), or None off-group.

    Split sizes count rows of dim 0, as torch's; None splits dim 0 into p equal parts. Whatever one rank can
    check alone is checked here, before any message: sizes, sums, dtypes, devices, overlap. That rank i's
    ``input_split_sizes[j]`` equals rank j's ``output_split_sizes[i]`` only a message could tell (torch does
    not check it either); a mismatch makes the receive fail on the backend's size check.
    """
    o = check_tensor(output, "output")
    i = check_tensor(input, "input")
    ctx = _member(group)
    if ctx is None:
        return None
    if o.dtype != i.dtype:
        raise TypeError(f"all_to_all: output dtype {o.dtype} differs from input dtype {i.dtype}")
    if o.device != i.device:
        raise ValueError(f"all_to_all: output on {o.device} but input on {i.device}")
    row_o, row_i = _row_elems(o, "output"), _row_elems(i, "input")
    if row_o != row_i:
        raise ValueError(
            f"all_to_all: a row of output (dim 0) has {row_o} elements, a row of input {row_i}; they must match"
        )
    p = ctx.size
    send = _splits(input_split_sizes, i.shape[0], p, "input_split_sizes", "input")
    recv = _splits(output_split_sizes, o.shape[0], p, "output_split_sizes", "output")
    if output_split_sizes is None and input_split_sizes is None and o.shape[0] != i.shape[0]:
        raise ValueError(
            f"all_to_all: with equal splits output must have as many rows as input ({i.shape[0]}), got {o.shape[0]}"
        )
    if o.numel() > 0 and i.numel() > 0 and _overlap(o, i):
        raise ValueError("all_to_all: output and input overlap in memory; all_to_all is out of place only")
    return ctx, [s * row_i for s in send], [s * row_o for s in recv]
