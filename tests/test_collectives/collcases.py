"""Case runners executed inside the pool workers: build exact inputs, run an algorithm, check it.

Data are seeded integer-valued numbers chosen so every reduction is exact in every dtype
(docs/protocol.md, Buffers and data): small ranges for SUM/MIN/MAX/AVG, {-1, 1, 2} for PRODUCT ({1, 2, 3} for
uint8), int8/uint8 references computed modulo 2^8.  The reference is NumPy over all ranks'
inputs (each rank regenerates them locally).  Outputs of the blocked layouts are pre-filled with a sentinel
that differs from the expected value at every element.  Calls, inputs, references and bad inputs are built
from each collective's descriptor (``collectives.spec``: layout, root, reduction), never from its name.
"""

from __future__ import annotations

import importlib
import os
from functools import partial
from itertools import product
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed import ReduceOp

import collectives
from collectives.builtin import bind
from collectives.schedule import takes_segments
from collectives.spec import CollectiveSpec, spec

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int8": torch.int8,
    "int32": torch.int32,
    "int64": torch.int64,
    "uint8": torch.uint8,
}
OPS = {"SUM": ReduceOp.SUM, "PRODUCT": ReduceOp.PRODUCT, "MIN": ReduceOp.MIN, "MAX": ReduceOp.MAX, "AVG": ReduceOp.AVG}
# values in [-M/2, M/2): p * M/2 stays exact for p <= 8 (bf16: 8 * 16 = 128 <= 256, fp16: 8 * 128 <= 2048)
_RANGE = {"bfloat16": 32, "float16": 256, "int8": 256, "uint8": 256}
_NP = {"int8": np.int8, "uint8": np.uint8}


def gen(rank: int, numel: int, dtype: str, op: str, seed: int) -> np.ndarray:
    """int64 values of rank ``rank``'s input (exact in ``dtype``)."""
    i = np.arange(numel, dtype=np.int64)
    h = i * 7919 + rank * 104729 + seed * 31
    if op == "PRODUCT":
        v = np.array([1, 2, 3] if dtype == "uint8" else [-1, 1, 2], dtype=np.int64)
        return v[(h + i // 3) % 3]
    m = _RANGE.get(dtype, 2001)
    return h % m if dtype == "uint8" else h % m - m // 2


def to_torch(values: np.ndarray, dtype: str, device: str) -> torch.Tensor:
    """Exact conversion (int8/uint8 wrap modulo 2^8)."""
    if dtype in _NP:
        values = values.astype(_NP[dtype])  # C cast: modulo 2^8
    t = torch.from_numpy(np.ascontiguousarray(values))
    return t.to(dtype=DTYPES[dtype], device=device, copy=True)  # never share memory with values


def reference(inputs: list[np.ndarray], op: str) -> np.ndarray:
    """NumPy reduction over ranks, in int64 (float64 for AVG)."""
    stack = np.stack(inputs) if inputs[0].size else np.zeros((len(inputs), 0), dtype=np.int64)
    if op in ("SUM", "AVG"):
        s = stack.sum(axis=0)
        return s / len(inputs) if op == "AVG" else s
    if op == "PRODUCT":
        return stack.prod(axis=0)
    return stack.min(axis=0) if op == "MIN" else stack.max(axis=0)


def sentinel_like(expected: torch.Tensor) -> torch.Tensor:
    """Differs from ``expected`` at every element (outside the data range where the dtype allows)."""
    if expected.dtype in (torch.int8, torch.uint8):
        return expected.clone().add_(1)
    return torch.full_like(expected, -3000 if expected.is_floating_point() else -99999)


def same(got: torch.Tensor, want: torch.Tensor, op: str) -> str:
    """'' if equal (AVG: within a few ulp), else a short description of the first difference."""
    if got.shape != want.shape:
        return f"shape {tuple(got.shape)} != {tuple(want.shape)}"
    if op == "AVG":
        eps = torch.finfo(want.dtype).eps
        ok = torch.isclose(got.double(), want.double(), rtol=4 * eps, atol=0.0)
    else:
        ok = got == want
    if bool(ok.all()):
        return ""
    bad = (~ok).nonzero()[0].item()
    return f"{int((~ok).sum())} wrong elements, first at {bad}: got {got[bad].item()} want {want[bad].item()}"


def resolve(collective: str, algorithm: str) -> Any:
    """An algorithm by registry name, or 'module:function' for injected (broken) test algorithms."""
    if ":" in algorithm:
        mod, name = algorithm.split(":")
        return getattr(importlib.import_module(mod), name)
    return collectives.get(collective, algorithm)


def group_of(state: dict[str, Any], members: list[int] | None) -> Any:
    """None (default group) or a cached dist.new_group(members); every rank must call this alike."""
    if members is None:
        return None
    key = ("group", tuple(members))
    if key not in state:
        state[key] = dist.new_group(members)
    return state[key]


def call(f: Any, desc: CollectiveSpec, buffers: tuple, root: int, op: str, group: Any, kwargs: dict[str, Any]) -> None:
    """``f`` with torch's signature, built from the descriptor: the buffers (``tensor``, or ``output, input``),
    the root when the collective has one, the op when it reduces."""
    args = (*buffers, root) if desc.rooted else buffers
    extra = {"op": OPS[op]} if desc.reducing else {}
    f(*args, group=group, **extra, **kwargs)


def run_one(state: dict[str, Any], case: dict[str, Any]) -> str:
    """Run one case on this rank; '' on success, else what went wrong."""
    coll, alg, dtype, op = case["collective"], case["algorithm"], case["dtype"], case.get("op", "SUM")
    numel, seed, device = case["numel"], case.get("seed", 0), case.get("device", "cpu")
    desc = spec(coll)
    members = case.get("group")
    group = group_of(state, members)
    ranks = members if members is not None else list(range(dist.get_world_size()))
    me = dist.get_rank()
    fn = resolve(coll, alg)
    kwargs = case.get("kwargs", {})
    builtin_ok = case.get("compare_builtin", True) and not (op == "AVG" and state["backend"] == "gloo")
    builtin = collectives.get(coll, "builtin")
    p = len(ranks)
    if me not in ranks:  # non-member: must return without touching anything
        t = to_torch(gen(me, max(numel, 1), dtype, op, seed), dtype, device)
        before = t.clone()
        root = ranks[case.get("root", 0) % p]
        buffers = (t,) if desc.layout == "whole" else (torch.empty(0, dtype=t.dtype), t)
        call(fn, desc, buffers, root, op, group, kwargs)
        return "" if torch.equal(t, before) else "non-member rank's tensor was modified"
    gr = ranks.index(me)
    root_g = case.get("root", 0) % p
    root = ranks[root_g]
    if desc.layout == "exchange":
        return "; ".join(_all_to_all(case, fn, builtin if builtin_ok else None, group, p, gr, kwargs))
    in_place = case.get("in_place", False)
    # numel: the per-rank buffer of the whole layout, the block of the blocked ones
    sizes = {"whole": numel, "gather": numel, "scatter": p * numel}
    m = numel

    def inputs() -> tuple[list[np.ndarray], torch.Tensor]:
        vals = [gen(r, sizes[desc.layout], dtype, op, seed) for r in range(p)]
        if desc.reducing:
            full = to_torch(reference(vals, op), dtype, device) if op != "AVG" else _avg(vals, dtype, device)
        elif desc.layout == "gather":
            full = to_torch(np.concatenate(vals), dtype, device)
        else:  # the root's input reaches every rank (broadcast; scatter: its block)
            full = to_torch(vals[root_g], dtype, device)
        return vals, full.narrow(0, gr * m, m) if desc.layout == "scatter" else full

    vals, want = _cached(state, (coll, gr, root_g, p, numel, dtype, op, seed, device), inputs)
    errors, outs = [], {}
    for name, f in (("alg", fn), ("builtin", builtin)) if builtin_ok else (("alg", fn),):
        inp = to_torch(vals[gr], dtype, device)
        before = inp.clone()
        if desc.layout == "whole":  # in place by nature
            buffers, result = (inp,), inp
        else:
            out = sentinel_like(want)
            if in_place and desc.layout == "gather":  # nccl-tests layout: input is block gr of output
                out.narrow(0, gr * m, m).copy_(inp)
                inp = out.narrow(0, gr * m, m)
            elif in_place:  # scatter layout: output is block gr of input
                out = inp.narrow(0, gr * m, m)
            buffers, result = (out, inp), out
        call(f, desc, buffers, root, op, group, kwargs if name == "alg" else {})
        scratch_input = desc.input_at_root_only and gr != root_g  # read on the root only (scatter)
        if desc.layout != "whole" and not in_place and not scratch_input and not torch.equal(inp, before):
            errors.append(f"{name} modified its input")
        outs[name] = result.clone()
    if not desc.result_at_root_only or gr == root_g:  # reduce, gather: other ranks' buffers are scratch
        if err := same(outs["alg"], want, op):
            errors.append(f"vs reference: {err}")
        if "builtin" in outs and (err := same(outs["alg"], outs["builtin"], op)):
            errors.append(f"vs builtin: {err}")
    return "; ".join(errors)


def split_matrix(p: int, numel: int, seed: int) -> list[list[int]]:
    """Rows rank src sends rank dst in an unequal-splits case: 0 .. numel + 2, zeros included."""
    return [[(src * 3 + dst * 5 + seed) % (numel + 3) for dst in range(p)] for src in range(p)]


def _all_to_all(case: dict[str, Any], fn: Any, builtin: Any, group: Any, p: int, gr: int,
                kwargs: dict[str, Any]) -> list[str]:  # fmt: skip
    """all_to_all on this rank (group rank gr): equal splits of ``numel`` rows per block, or the unequal
    split_matrix (``unequal``); rows of ``width`` elements (dim 0 split, as torch's all_to_all_single)."""
    dtype, op, numel, seed, device = case["dtype"], "SUM", case["numel"], case.get("seed", 0), case.get("device", "cpu")
    width = case.get("width", 1)
    unequal = case.get("unequal", False)
    rows = split_matrix(p, numel, seed) if unequal else [[numel] * p for _ in range(p)]
    vals = [gen(src, sum(rows[src]) * width, dtype, op, seed) for src in range(p)]

    def block(src: int, dst: int) -> np.ndarray:
        start = sum(rows[src][:dst]) * width
        return vals[src][start : start + rows[src][dst] * width]

    want = to_torch(np.concatenate([block(src, gr) for src in range(p)]), dtype, device)
    shape_in = (sum(rows[gr]), width) if width > 1 else (sum(rows[gr]),)
    shape_out = (sum(rows[src][gr] for src in range(p)), width) if width > 1 else (want.numel(),)
    splits = {"input_split_sizes": rows[gr], "output_split_sizes": [rows[src][gr] for src in range(p)]}
    errors, outs = [], {}
    for name, f in (("alg", fn), ("builtin", builtin)) if builtin is not None else (("alg", fn),):
        inp = to_torch(vals[gr], dtype, device).view(shape_in)
        before = inp.clone()
        out = sentinel_like(want).view(shape_out)
        f(out, inp, group=group, **(splits if unequal else {}), **(kwargs if name == "alg" else {}))
        if not torch.equal(inp, before):
            errors.append(f"{name} modified its input")
        outs[name] = out.reshape(-1).clone()
    if err := same(outs["alg"], want, op):
        errors.append(f"vs reference: {err}")
    if "builtin" in outs and (err := same(outs["alg"], outs["builtin"], op)):
        errors.append(f"vs builtin: {err}")
    return errors


def _avg(vals: list[np.ndarray], dtype: str, device: str) -> torch.Tensor:
    return torch.from_numpy(reference(vals, "AVG").astype(np.float64)).to(dtype=DTYPES[dtype], device=device)


def _cached(state: dict[str, Any], key: tuple, make: Any) -> Any:
    """``make()``, reused by the next case with the same ``key`` (the same inputs and expected result: the
    algorithms of one size run back to back). Building 64 MiB of seeded data and its NumPy reference costs ~1.7 s
    a case; one entry, dropped by ``run_cases`` at the end, so no buffer outlives its run. Results and inputs are
    never mutated: every algorithm gets a fresh tensor (``to_torch`` copies)."""
    if state.get("inputs", (None,))[0] != key:
        state["inputs"] = None  # free the previous buffers first
        state["inputs"] = (key, make())
    return state["inputs"][1]


def run_cases(state: dict[str, Any], cases: list[dict[str, Any]]) -> list[str]:
    """Run every case in order on this rank; one error string ('' = pass) per case."""
    try:
        return [run_one(state, c) for c in cases]
    finally:
        state.pop("inputs", None)


# ---- deliberately broken algorithms (the checker must catch them) ----


def broken_all_reduce(tensor: torch.Tensor, op: Any = ReduceOp.SUM, group: Any = None) -> None:
    """Ring all-reduce, then corrupts the last element on group rank 1."""
    collectives.get("all_reduce", "ring")(tensor, op=op, group=group)
    if dist.get_rank(group) == 1 and tensor.numel() > 0:
        tensor.view(-1)[-1] += 1


def broken_all_gather(output: torch.Tensor, input: torch.Tensor, group: Any = None) -> None:
    """Fills every block except the last one (left as the caller pre-filled it)."""
    p = dist.get_world_size(group)
    full = torch.empty_like(output)
    collectives.get("all_gather", "ring")(full, input, group=group)
    m = input.numel()
    output.view(-1).narrow(0, 0, (p - 1) * m).copy_(full.view(-1).narrow(0, 0, (p - 1) * m))


def broken_reduce_scatter(output: torch.Tensor, input: torch.Tensor, op: Any = ReduceOp.SUM, group: Any = None) -> None:
    """Correct result, but scribbles on its input."""
    collectives.get("reduce_scatter", "ring")(output, input, op=op, group=group)
    input.view(-1).zero_()


# ---- bad input: must raise before any communication ----

_COMM_FUNCS = (
    "batch_isend_irecv",
    "isend",
    "irecv",
    "send",
    "recv",
    "broadcast",
    "reduce",
    "all_reduce",
    "all_gather_into_tensor",
    "reduce_scatter_tensor",
    "all_to_all_single",
    "gather",
    "scatter",
    "barrier",
)


class CommunicationAttempted(Exception):
    """Raised by the patched torch.distributed functions during a bad-input call."""


def bad_inputs(collective: str, algorithm: str) -> list[tuple[str, type[Exception], dict[str, Any]]]:
    """(label, expected exception, call arguments) for every kind of bad input of one collective (on 2 ranks)."""
    desc = spec(collective)
    f32 = torch.zeros(8)
    i32 = torch.zeros(8, dtype=torch.int32)
    noncontig = torch.zeros(4, 4).t()
    cases: list[tuple[str, type[Exception], dict[str, Any]]] = []
    if desc.layout == "exchange":  # run on a 2-rank group
        base = {"output": torch.zeros(8), "input": torch.zeros(8)}
        cases.append(("output wrong size", ValueError, {**base, "output": torch.zeros(10)}))
        cases.append(("input not a multiple of p", ValueError, {"output": torch.zeros(7), "input": torch.zeros(7)}))
        cases.append(("dtype mismatch", TypeError, {**base, "output": torch.zeros(8, dtype=torch.float64)}))
        cases.append(("device mismatch", ValueError, {**base, "output": torch.zeros(8, device="meta")}))
        cases.append(("non-contiguous input", ValueError, {**base, "input": torch.zeros(8, 2)[:, 0]}))
        cases.append(("row widths differ", ValueError, {**base, "output": torch.zeros(4, 2)}))
        cases.append(("0-dim tensor", ValueError, {**base, "input": torch.tensor(1.0)}))
        both = torch.zeros(16)
        cases.append(("overlapping buffers", ValueError, {"output": both[:8], "input": both[4:12]}))
        cases.append(("splits: one per rank", ValueError, {**base, "input_split_sizes": [8]}))
        cases.append(("splits: wrong sum", ValueError, {**base, "input_split_sizes": [4, 3]}))
        cases.append(("splits: negative", ValueError, {**base, "output_split_sizes": [10, -2]}))
        cases.append(("splits: not ints", TypeError, {**base, "output_split_sizes": [4.0, 4.0]}))
        cases.append(("splits: not a list", TypeError, {**base, "input_split_sizes": 4}))
        return cases
    if desc.layout == "whole":
        base: dict[str, Any] = {"tensor": f32.clone()}
        cases.append(("non-contiguous", ValueError, {**base, "tensor": noncontig}))
        cases.append(("not a tensor", TypeError, {**base, "tensor": [1.0, 2.0]}))
    else:  # the blocked layouts on 2 ranks: the large buffer is 2 blocks of the small one
        out, inp = (torch.zeros(16), torch.zeros(8)) if desc.layout == "gather" else (torch.zeros(4), torch.zeros(8))
        base = {"output": out, "input": inp}
        cases.append(("output wrong size", ValueError, {**base, "output": torch.zeros(out.numel() + 1)}))
        cases.append(("dtype mismatch", TypeError, {**base, "output": out.to(torch.float64)}))
        cases.append(("device mismatch", ValueError, {**base, "output": torch.zeros(out.numel(), device="meta")}))
        cases.append(("non-contiguous input", ValueError, {**base, "input": torch.zeros(inp.numel(), 2)[:, 0]}))
        if desc.layout == "gather":  # overlapping, but not the in-place layout (off by one element)
            overlap = {**base, "input": out.narrow(0, 1, inp.numel())}
        else:
            overlap = {**base, "output": inp.narrow(0, 1, out.numel())}
        cases.append(("overlapping buffers", ValueError, overlap))
    if desc.rooted:
        key = desc.root_name
        base[key] = 0
        cases = [(label, exc, {key: 0, **kwargs}) for label, exc, kwargs in cases]
        cases.append(("root outside group", ValueError, {**base, key: 7}))
        cases.append(("root negative", ValueError, {**base, key: -1}))
        cases.append(("root not int", TypeError, {**base, key: "0"}))
    if desc.reducing:
        t_key = "tensor" if desc.layout == "whole" else "input"
        cases.append(("AVG on int32", ValueError, {**base, t_key: i32.clone(), "op": ReduceOp.AVG}))
        cases.append(("bitwise op", ValueError, {**base, "op": ReduceOp.BAND}))
        cases.append(("op not a ReduceOp", ValueError, {**base, "op": "sum"}))
        bad_dtype = {**base, t_key: torch.zeros(8, dtype=torch.complex64)}
        if desc.layout == "scatter":
            bad_dtype["output"] = torch.zeros(4, dtype=torch.complex64)
        cases.append(("dtype cannot be reduced", TypeError, bad_dtype))
        if algorithm == "builtin":
            cases.append(("gloo has no AVG", ValueError, {**base, "op": ReduceOp.AVG}))
    if takes_segments(collectives.get(collective, algorithm)):
        cases.append(("segment_bytes 0", ValueError, {**base, "segment_bytes": 0}))
    return cases


def run_bad_inputs(state: dict[str, Any], actor: int) -> list[str]:
    """On rank ``actor`` only: every bad call of every algorithm must raise the expected error
    without touching torch.distributed's communication functions (patched to raise)."""
    if dist.get_rank() != actor:
        return []
    problems = []
    saved = {name: getattr(dist, name) for name in _COMM_FUNCS}

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise CommunicationAttempted

    for name in _COMM_FUNCS:
        setattr(dist, name, forbidden)
    try:
        for coll in collectives.COLLECTIVES:
            for alg in collectives.algorithms(coll):
                plain = collectives.get(coll, alg)
                # the builtin is also checked through bind (the harness's once-per-case check)
                variants = [(alg, plain)] + ([(f"{alg} via bind", partial(bind, plain))] if alg == "builtin" else [])
                for (name, fn), (label, exc, kwargs) in product(variants, bad_inputs(coll, alg)):
                    alg_ = name
                    try:
                        fn(**kwargs)
                    except CommunicationAttempted:
                        problems.append(f"{coll}/{alg_} {label}: communicated before failing")
                    except exc as e:
                        if not str(e):
                            problems.append(f"{coll}/{alg_} {label}: empty message")
                    except Exception as e:  # noqa: BLE001 - report the wrong type
                        problems.append(f"{coll}/{alg_} {label}: {type(e).__name__} instead of {exc.__name__}: {e}")
                    else:
                        problems.append(f"{coll}/{alg_} {label}: no error raised")
    finally:
        for name, fn_ in saved.items():
            setattr(dist, name, fn_)
    return problems


def bad_input_message(state: dict[str, Any], collective: str, algorithm: str, label: str) -> str:
    """The error message one bad call raises (for tests that read the wording)."""
    for lab, _, kwargs in bad_inputs(collective, algorithm):
        if lab == label:
            try:
                collectives.get(collective, algorithm)(**kwargs)
            except Exception as e:  # noqa: BLE001
                return f"{type(e).__name__}: {e}"
    return "no error"


def hang(state: dict[str, Any], rank: int, seconds: float) -> str:
    """Rank ``rank`` blocks (as a deadlocked algorithm would); the others return at once."""
    if dist.get_rank() == rank:
        import time

        time.sleep(seconds)
    return ""


def run_cases_as_nodes(state: dict[str, Any], cases: list[dict[str, Any]], local_world_size: int) -> list[str]:
    """run_cases with ``LOCAL_WORLD_SIZE`` set as torchrun sets it on nodes of that many ranks (the rail-aligned
    channel orders of ring_2ch read it), restored afterwards."""
    saved = os.environ.get("LOCAL_WORLD_SIZE")
    os.environ["LOCAL_WORLD_SIZE"] = str(local_world_size)
    try:
        return run_cases(state, cases)
    finally:
        if saved is None:
            os.environ.pop("LOCAL_WORLD_SIZE", None)
        else:
            os.environ["LOCAL_WORLD_SIZE"] = saved


def ring_page_faults(state: dict[str, Any], collective: str, numel: int, calls: int) -> float:
    """Minor page faults of this rank's process per call of the ``collective`` ring (1 MiB segments), after two
    warm-up calls: a receive buffer allocated per call faults its pages in on every call. glibc's mmap threshold is
    pinned at its 128 KiB default first, so an earlier test's allocations cannot raise it and hide the faults."""
    import ctypes
    import resource

    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD (glibc): fixed, no longer adjusted as blocks are freed

    fn = resolve(collective, "ring")
    t = torch.ones(numel)
    out = torch.empty(numel // dist.get_world_size())
    args = (t,) if collective == "all_reduce" else (out, t)
    call = partial(fn, *args, segment_bytes=1 << 20)
    call()
    call()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        call()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls
