"""Receive buffers that CPU collectives reuse from call to call, instead of allocating them each time.

Why: a reducing step receives its peer's data into a scratch buffer. Allocated per call, a buffer of a few MiB
comes from ``mmap`` (glibc's threshold) and each of its pages faults in, zero-filled by the kernel, when the
receive first writes it. On the 2-core VM (gloo, p = 2, 16 MiB all-reduce) that was 500-900 minor faults and
about 2-3 ms of system time per call of the ring, a fifth of its time, and the reason it trailed gloo's builtin
(which reuses its buffers). CUDA tensors need none of this: torch's caching allocator already makes allocation
free there, so they are allocated per call as before.

One buffer per thread and dtype (``threading.local``: threads never share one), grown to the largest request and
kept; requests above ``CAP_BYTES`` are allocated per call (their faults are small next to their transfers), and
so are requests below ``MIN_BYTES``: there the kept path was no faster than a fresh ``torch.empty`` (glibc's
heap, and its mmap threshold that rises to the size last freed, serve those without faults) and often slower
(gloo, p = 2, in-process A/B of the two paths in alternating blocks on the 2-core VM: kept/fresh median time
1.02-1.08 at 1-16 KiB, 1.02-1.25 at 128 KiB-1 MiB, 1.02-1.04 at 4 MiB; 0.975 for the ring at 16 MiB). A
request made while that dtype's buffer is lent (one algorithm built on another) gets a fresh allocation. A call
that raises gives its buffer up: a receive it posted may still be pending, and must never land in a later call's
data.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: largest buffer kept between calls, per thread and dtype
CAP_BYTES = 64 << 20
#: smallest request served from the kept buffer (the ring all-reduce's at 16 MiB and p = 2 is 8 MiB)
MIN_BYTES = 8 << 20


class _Kept(threading.local):
    """This thread's kept buffers and the dtypes whose buffer is lent right now."""

    def __init__(self) -> None:
        self.bufs: dict[torch.dtype, torch.Tensor] = {}
        self.lent: set[torch.dtype] = set()


_KEPT = _Kept()


@contextmanager
def scratch(numel: int, like: torch.Tensor) -> Iterator[torch.Tensor]:
    """A flat uninitialised tensor of ``numel`` elements of ``like``'s dtype and device, for one call.

    On CPU it is a view of this thread's kept buffer (valid until the ``with`` block ends); elsewhere, outside
    ``MIN_BYTES``-``CAP_BYTES`` or when the buffer is already lent, a new tensor.
    """
    dtype = like.dtype
    nbytes = numel * like.element_size()
    if like.device.type != "cpu" or not MIN_BYTES <= nbytes <= CAP_BYTES or dtype in _KEPT.lent:
        yield torch.empty(numel, dtype=dtype, device=like.device)
        return
    buf = _KEPT.bufs.get(dtype)
    if buf is None or buf.numel() < numel:
        _KEPT.bufs.pop(dtype, None)  # free the smaller one before the larger is allocated
        buf = _KEPT.bufs[dtype] = torch.empty(numel, dtype=dtype)
    _KEPT.lent.add(dtype)
    try:
        yield buf.narrow(0, 0, numel)
    except BaseException:
        _KEPT.bufs.pop(dtype, None)  # a posted receive may still write into it
        raise
    finally:
        _KEPT.lent.discard(dtype)
