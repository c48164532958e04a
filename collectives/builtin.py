"""The backend's own collectives behind collbench's signatures, with the same validation.

Each collective's module declares its builtin as a :class:`Builtin`: ``check`` (the argument checks every
algorithm runs, plus what the backend refuses; returns None on a rank outside the group) and ``call`` (the
bare torch.distributed call). :func:`checked` makes the public function the registry lists as ``builtin``;
:func:`bind` checks once and returns the bare call, for timing loops. What each backend runs underneath is
described next to each collective (its module's ``BUILTIN`` comment) and modelled in ``collectives.costs``.

Differences from the hand-written algorithms, checked before any communication:
- Gloo has no ReduceOp.AVG: ``ValueError`` (the hand-written algorithms do support AVG).
- Gloo reduces a fixed set of dtypes (the eight in ``validate.REDUCIBLE_DTYPES``); anything else
  is a ``TypeError`` from validation, as for every algorithm.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch.distributed as dist
from torch.distributed import ReduceOp


@dataclass(frozen=True)
class Builtin:
    """A collective's builtin: its checks (None = this rank is not in the group) and the bare torch call, both
    with the collective's signature."""

    check: Callable[..., object]
    call: Callable[..., None]


def check_backend_op(op: ReduceOp, group: dist.ProcessGroup | None) -> None:
    """ValueError for ReduceOp.AVG on gloo, which has none."""
    if op == ReduceOp.AVG and "gloo" in str(dist.get_backend(group)).lower():
        raise ValueError("builtin: the gloo backend does not support ReduceOp.AVG; use SUM or a hand-written algorithm")


def checked(builtin: Builtin, name: str) -> Callable[..., None]:
    """The public builtin of collective ``name``: checks, then the torch call (nothing on a non-member rank)."""

    @functools.wraps(builtin.call)
    def fn(*args: object, **kwargs: object) -> None:
        if builtin.check(*args, **kwargs) is not None:
            builtin.call(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = builtin.call.__doc__
    fn.builtin = builtin  # type: ignore[attr-defined]  # what bind() reads
    return fn


def bind(fn: Callable[..., None], *args: object, **kwargs: object) -> Callable[[], None]:
    """A zero-argument call of ``fn(*args, **kwargs)`` for timing loops.

    For the builtin collectives the arguments are checked here, once (raising as the call would), and the
    returned call goes straight to torch: per-call validation costs a few µs, 5-15 % of a small gloo
    all_reduce, which the builtin baseline must not pay. Any other ``fn`` is bound as it is.
    """
    parts: Builtin | None = getattr(fn, "builtin", None)
    if parts is None:
        return functools.partial(fn, *args, **kwargs)
    if parts.check(*args, **kwargs) is None:  # not a member of the group: nothing to do
        return lambda: None
    return functools.partial(parts.call, *args, **kwargs)
