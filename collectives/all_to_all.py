"""All-to-all algorithms on point-to-point ops (``all_to_all_single`` semantics, equal or unequal splits).

Rank r's input is p blocks (block j, ``input_split_sizes[j]`` rows of dim 0, goes to rank j); its output is
p blocks (block j, ``output_split_sizes[j]`` rows, comes from rank j). Every algorithm first copies its own
block (input block r to output block r); ``input`` is never written.

- ``pairwise``: p - 1 steps; step s sends block r + s to rank r + s and receives block r - s from rank
  r - s (MPICH ``MPIR_Alltoall_intra_pairwise`` with the shift order it uses for any p; Thakur, Rabenseifner
  & Gropp 2005). Every block travels once, straight to its destination: the large-message schedule.
- ``bruck``: Bruck et al. 1997 (MPICH ``MPIR_Alltoall_intra_brucks``): ceil(lg p) steps. Block (src, dst)
  sits in slot i = dst - src (mod p); in step k every slot whose index has bit k set moves 2^k ranks on, all
  of them packed into one message. Each block is forwarded up to lg p times (about lg p / 2 of the data per
  step): fewer, larger messages, the small-message schedule. Slots received are kept as views of the step's
  receive buffer and copied to their place in ``output`` once at the end (the usual inverse rotation).
  With unequal splits the forwarding ranks need every block's size: the p x p split matrix is first
  all-gathered (Bruck all-gather of p int64 per rank, ceil(lg p) more steps of p^2 bytes x 8 in total).

A ring (p - 1 steps forwarding everything not yet delivered) moves (p - 1)/2 of n per rank against
(p - 1)/p for pairwise in the same p - 1 steps, so it never beats pairwise in this cost model and is not
included (it suits only networks that are physically rings). Costs: ``collectives.costs`` (all_to_all/*).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

from collectives import all_gather, validate
from collectives.batched_p2p import exchange
from collectives.builtin import Builtin
from collectives.harness import Data, Fn, Harness, Other, T, bind


def _offsets(sizes: list[int]) -> list[int]:
    out = [0]
    for s in sizes:
        out.append(out[-1] + s)
    return out


def _start(
    output: torch.Tensor,
    input: torch.Tensor,
    output_split_sizes: list[int] | None,
    input_split_sizes: list[int] | None,
    group: dist.ProcessGroup | None,
):  # noqa: ANN202 - (ctx, flat in, flat out, send sizes/offsets, recv sizes/offsets) or None
    args = validate.all_to_all_args(output, input, output_split_sizes, input_split_sizes, group)
    if args is None:
        return None
    ctx, send, recv = args
    inp, out = input.view(-1), output.view(-1)
    s_off, r_off = _offsets(send), _offsets(recv)
    r = ctx.rank
    out.narrow(0, r_off[r], recv[r]).copy_(inp.narrow(0, s_off[r], send[r]))
    return ctx, inp, out, send, s_off, recv, r_off


def pairwise(
    output: torch.Tensor,
    input: torch.Tensor,
    output_split_sizes: list[int] | None = None,
    input_split_sizes: list[int] | None = None,
    group: dist.ProcessGroup | None = None,
) -> None:
    """Pairwise exchange: p - 1 shifted steps, one block each way per step."""
    st = _start(output, input, output_split_sizes, input_split_sizes, group)
    if st is None:
        return
    ctx, inp, out, send, s_off, recv, r_off = st
    p, r = ctx.size, ctx.rank
    for s in range(1, p):
        to, frm = (r + s) % p, (r - s) % p
        exchange(
            ctx,
            sends=[(inp.narrow(0, s_off[to], send[to]), to)],
            recvs=[(out.narrow(0, r_off[frm], recv[frm]), frm)],
        )


def bruck(
    output: torch.Tensor,
    input: torch.Tensor,
    output_split_sizes: list[int] | None = None,
    input_split_sizes: list[int] | None = None,
    group: dist.ProcessGroup | None = None,
) -> None:
    """Bruck all-to-all: ceil(lg p) steps, each moving the slots whose index has the step's bit set."""
    st = _start(output, input, output_split_sizes, input_split_sizes, group)
    if st is None:
        return
    ctx, inp, out, send, s_off, recv, r_off = st
    p, r = ctx.size, ctx.rank
    if p == 1:
        return
    if output_split_sizes is None and input_split_sizes is None:
        m = send[0]  # equal splits: every block of every rank has m elements

        def size(src: int, dst: int) -> int:
            return m
    else:  # the forwarding ranks need every block's size: all-gather the split matrix first
        mine = torch.tensor(send, dtype=torch.int64, device=inp.device)
        full = torch.empty(p * p, dtype=torch.int64, device=inp.device)
        all_gather.bruck(full, mine, group=ctx.group)
        matrix = full.view(p, p).tolist()

        def size(src: int, dst: int) -> int:
            return matrix[src][dst]

    # slot i holds block (src, dst = src + i); before step k (bit d = 2^k) it sits on rank src + (i mod d)
    slots = [inp.narrow(0, s_off[(r + i) % p], send[(r + i) % p]) for i in range(p)]
    d = 1
    while d < p:
        idx = [i for i in range(1, p) if i & d]
        to, frm = (r + d) % p, (r - d) % p
        outgoing = torch.cat([slots[i] for i in idx])
        sizes = [size((frm - i % d) % p, (frm - i % d + i) % p) for i in idx]
        incoming = torch.empty(sum(sizes), dtype=inp.dtype, device=inp.device)
        exchange(ctx, sends=[(outgoing, to)], recvs=[(incoming, frm)])
        for i, piece in zip(idx, torch.split(incoming, sizes), strict=True):
            slots[i] = piece
        d <<= 1
    for i in range(1, p):  # slot i now holds the block from rank r - i
        src = (r - i) % p
        out.narrow(0, r_off[src], recv[src]).copy_(slots[i])


#: Algorithm name -> implementation; ``collectives.registry`` collects these (``builtin`` is added there).
ALGORITHMS = {"pairwise": pairwise, "bruck": bruck}


# --- builtin: all_to_all_single; Gloo ``gloo::alltoall`` (equal splits) / ``gloo::alltoallv``: the own block
# copied, then every send and receive posted at once and waited for (``gloo/alltoall.cc``); NCCL: grouped
# ``ncclSend``/``ncclRecv`` to every peer


def _check_builtin(output: torch.Tensor, input: torch.Tensor, output_split_sizes=None, input_split_sizes=None,  # noqa: ANN001
                   group=None) -> object:  # noqa: ANN001  # fmt: skip
    return validate.all_to_all_args(output, input, output_split_sizes, input_split_sizes, group)


def _torch_all_to_all(output: torch.Tensor, input: torch.Tensor, output_split_sizes=None, input_split_sizes=None,  # noqa: ANN001
                      group=None) -> None:  # noqa: ANN001  # fmt: skip
    """torch.distributed.all_to_all_single."""
    dist.all_to_all_single(output, input, output_split_sizes, input_split_sizes, group=group)


BUILTIN = Builtin(check=_check_builtin, call=_torch_all_to_all)


class _Harness(Harness):
    """``main`` is the send buffer (S, p blocks of S/p), ``other`` the receive buffer; equal splits."""

    def bind(self, fn: Fn, main: T, other: Other, root: int, op: object) -> Callable[[], None]:
        return bind(fn, other, main)

    def prepare(self, main: T, other: Other, data: Data) -> None:
        data.sentinel(other)
        data.fill(main)

    def count_wrong(self, main: T, other: Other, data: Data) -> int:
        chunk = main.numel() // data.p  # block j of the output is block ``rank`` of rank j's input
        parts = [data.values(main.dtype, k, data.rank * chunk, chunk) for k in range(data.p)]
        return data.wrong(other, torch.cat(parts))


HARNESS = _Harness()
