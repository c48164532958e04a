"""Device clocks for the one timing path: perf_counter_ns on CPU, CUDA events on the communication stream on GPU.

A clock records a mark before the first call and after every call of a back-to-back loop; it never forces
a device sync between calls, so the loop is nccl-tests' timed block and the gaps between marks are the
per-iteration samples.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def reset(self, n_marks: int) -> None: ...
    def mark(self, i: int) -> None: ...
    def durations_us(self) -> tuple[list[float], float]: ...


class CpuClock:
    """Host wall clock; the collectives on CPU (gloo) return when their result is ready."""

    def __init__(self) -> None:
        self._marks: list[int] = []

    def reset(self, n_marks: int) -> None:
        self._marks = [0] * n_marks

    def mark(self, i: int) -> None:
        self._marks[i] = time.perf_counter_ns()

    def durations_us(self) -> tuple[list[float], float]:
        """Per-interval durations and the whole span, in microseconds."""
        m = self._marks
        samples = [(m[i + 1] - m[i]) / 1e3 for i in range(len(m) - 1)]
        return samples, (m[-1] - m[0]) / 1e3


class CudaClock:
    """CUDA events recorded on ``stream`` (the stream the collectives are issued from)."""

    def __init__(self, stream) -> None:  # stream: torch.cuda.Stream
        import torch

        self._torch = torch
        self._stream = stream
        self._events: list = []

    def reset(self, n_marks: int) -> None:
        ev = self._torch.cuda.Event
        if len(self._events) < n_marks:
            self._events += [ev(enable_timing=True) for _ in range(n_marks - len(self._events))]
        self._n = n_marks

    def mark(self, i: int) -> None:
        self._events[i].record(self._stream)

    def durations_us(self) -> tuple[list[float], float]:
        e = self._events[: self._n]
        e[-1].synchronize()
        samples = [e[i].elapsed_time(e[i + 1]) * 1e3 for i in range(len(e) - 1)]
        return samples, e[0].elapsed_time(e[-1]) * 1e3
