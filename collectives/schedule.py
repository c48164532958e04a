"""Record the schedule an algorithm really executes, without communicating.

``record(collective, algorithm, p, numel)`` runs the real algorithm code once per simulated rank with the
one P2P helper (``collectives.batched_p2p.exchange``) and the local reduction (``collectives.reduce_ops.combine``)
replaced by recorders, and the group membership check (``validate._member``) by a fake ``Ctx``.  No
process group is created and no data moves: the hand-written algorithms' control flow and message sizes
never depend on the data, only on (p, rank, numel, segment size), so each rank can run to completion on its
own, one after the other.  Every ``exchange`` call that carries a message becomes an event; every
``combine`` is charged to the rank's last event before it (the reduction of what that step received).
``post`` (a step posted without waiting: the pipelined rings) is recorded as an event when it is posted, so a
combine that overlaps a later posted step is charged to that step: the critical path adds it, as if it did
not overlap (the overlap is not in the additive cost form; docs/costs.md); a step posted ``behind`` the previous
one (a later segment of the same ring step) costs no alpha.
``collectives.critpath.critical_path`` then matches the messages and measures L, W, G.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Iterator, Sequence

import torch
from torch.distributed import ReduceOp

from collectives import validate
from collectives.batched_p2p import Ctx, Msg, Pending
from collectives.critpath import Event, Path, Schedule, critical_path, match
from collectives.spec import COLLECTIVES, CollectiveSpec, spec

__all__ = ["Event", "Path", "Schedule", "critical_path", "match", "record", "takes_segments"]

#: modules whose module-level ``exchange`` / ``combine`` names the algorithms call
#: every collective's algorithm module (``collectives.<name>``): the ones whose steps are recorded
_MODULES = tuple(importlib.import_module(f"collectives.{name}") for name in COLLECTIVES)
_EXCHANGE_USERS = tuple(m for m in _MODULES if hasattr(m, "exchange"))
_COMBINE_USERS = tuple(m for m in _MODULES if hasattr(m, "combine"))
_POST_USERS = tuple(m for m in _MODULES if hasattr(m, "post"))


def _call_args(desc: CollectiveSpec, numel: int, p: int, dtype: torch.dtype, root: int) -> tuple:
    """Arguments of one call with torch's signature: buffers by the layout of S, then root and op."""
    big = torch.zeros(numel, dtype=dtype)
    args: tuple = {
        "gather": (big, torch.zeros(numel // p, dtype=dtype)),  # (output, input)
        "scatter": (torch.zeros(numel // p, dtype=dtype), big),  # (output, input)
        "exchange": (big, torch.zeros(numel, dtype=dtype)),  # (output, input), equal splits
    }.get(desc.layout, (big,))
    if desc.rooted:
        args += (root,)
    if desc.reducing:
        args += (ReduceOp.SUM,)
    return args


class _Recorder:
    def __init__(self, p: int) -> None:
        self.p = p
        self.rank = 0
        self.events: list[list[Event]] = [[] for _ in range(p)]
        self.before = [0] * p

    def exchange(self, ctx: Ctx, sends: Sequence[Msg] = (), recvs: Sequence[Msg] = ()) -> None:
        s = [(int(peer), t.numel() * t.element_size()) for t, peer in sends if t.numel() > 0]
        r = [(int(peer), t.numel() * t.element_size()) for t, peer in recvs if t.numel() > 0]
        if not s and not r:  # exchange() skips empty calls too
            return
        for peer, _ in s + r:
            if not 0 <= peer < self.p or peer == ctx.rank:
                raise AssertionError(f"rank {ctx.rank} addresses peer {peer} (p = {self.p})")
        evs = self.events[self.rank]
        evs.append(Event(self.rank, len(evs), s, r))

    def post(self, ctx: Ctx, sends: Sequence[Msg] = (), recvs: Sequence[Msg] = (), *, behind: bool = False) -> Pending:
        evs = self.events[self.rank]
        before = len(evs)
        self.exchange(ctx, sends, recvs)
        if behind and len(evs) > before:
            evs[-1].alpha = 0
        return Pending()

    def combine(self, out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, op: ReduceOp) -> None:
        nbytes = out.numel() * out.element_size()
        evs = self.events[self.rank]
        if evs:
            evs[-1].combined += nbytes
        else:
            self.before[self.rank] += nbytes

    def member(self, group: object) -> Ctx:
        return Ctx(group=None, rank=self.rank, size=self.p, global_ranks=tuple(range(self.p)))


@contextlib.contextmanager
def _patched(rec: _Recorder) -> Iterator[None]:
    saved = []
    targets = [(m, "exchange", rec.exchange) for m in _EXCHANGE_USERS]
    targets += [(m, "combine", rec.combine) for m in _COMBINE_USERS]
    targets += [(m, "post", rec.post) for m in _POST_USERS]
    targets.append((validate, "_member", rec.member))
    try:
        for mod, name, fn in targets:
            saved.append((mod, name, getattr(mod, name)))
            setattr(mod, name, fn)
        yield
    finally:
        for mod, name, fn in reversed(saved):
            setattr(mod, name, fn)


def takes_segments(fn: object) -> bool:
    """True when the implementation takes ``segment_bytes`` (a pipelined algorithm)."""
    return "segment_bytes" in inspect.signature(fn).parameters  # type: ignore[arg-type]


def record(
    collective: str,
    algorithm: str,
    p: int,
    numel: int,
    *,
    segment_bytes: int | None = None,
    dtype: torch.dtype = torch.float32,
    root: int = 0,
) -> Schedule:
    """Run ``algorithm`` of ``collective`` on p simulated ranks and record what each executes.

    numel: elements of nccl-tests' S (the per-rank buffer; the gathered buffer for all_gather and
    reduce_scatter, the send buffer of all_to_all, which must then be a multiple of p).
    """
    from collectives.registry import get

    fn = get(collective, algorithm)
    kwargs = {}
    if segment_bytes is not None:
        if not takes_segments(fn):
            raise ValueError(f"{collective}/{algorithm} is not pipelined: it takes no segment_bytes")
        kwargs["segment_bytes"] = segment_bytes
    desc = spec(collective)
    if desc.blocked and numel % p:
        raise ValueError(f"{collective}: numel {numel} is not a multiple of p = {p}")
    rec = _Recorder(p)
    with _patched(rec):
        for r in range(p):
            rec.rank = r
            fn(*_call_args(desc, numel, p, dtype, root), **kwargs)
    return Schedule(p, numel * torch.tensor([], dtype=dtype).element_size(), rec.events, rec.before)
