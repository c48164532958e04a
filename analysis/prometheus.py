"""``collbench export --prometheus``: the headline figures of runs (each curve's peak busbw, its roof, the share
of the roof, the verdict) as a Prometheus text-format file for node-exporter's textfile collector, so a
cluster's dashboards can alert when a machine falls below its roof.

The text exposition format (version 0.0.4): per metric a ``# HELP`` and a ``# TYPE`` line, then samples
``name{label="value",...} number``; label values escape backslash, double quote and newline; no timestamps (the
textfile collector refuses them). Names follow Prometheus' conventions: base units (bytes per second, not GB/s;
a share as ``_ratio`` in 0..1; seconds), a ``collbench_`` prefix, ``_info`` for a gauge of value 1 that carries
labels. The figures are ``analysis.verdict``'s: a curve per (run, collective, world size, algorithm role).
Never imports torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from analysis.hardware import Machine
from analysis.verdict import Verdict

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: (metric, help) in the order they are written
METRICS = (
    ("collbench_busbw_peak_bytes_per_second", "Peak bus bandwidth (nccl-tests busbw) of a curve, bytes per second."),
    ("collbench_busbw_peak_message_bytes", "Message size S at which the curve's peak bus bandwidth was measured."),
    ("collbench_roof_bytes_per_second", "The roof the peak is held against (link, network or reduction), bytes "
     "per second; absent when unknown."),
    ("collbench_busbw_roof_ratio", "Peak bus bandwidth as a share of the roof (1 = at the roof); absent when the "
     "roof is unknown."),
    ("collbench_verdict_info", "The verdict on the curve (label rating: above, near, below, far below the roof, "
     "or no roof); always 1."),
)  # fmt: skip


def escape(value: str) -> str:
    """A label value as the text format writes it: backslash, double quote and newline escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    items = []
    for k, v in pairs:
        if not _LABEL.match(k) or k.startswith("__"):
            raise ValueError(f"bad Prometheus label name {k!r}")
        items.append(f'{k}="{escape(v)}"')
    return "{" + ",".join(items) + "}"


def _number(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:.10g}"


def text(verdicts: list[Verdict], machines: dict[str, Machine], host: str | None = None) -> str:
    """The exposition text of ``verdicts`` (every metric family once, HELP and TYPE first; samples sorted)."""
    samples: dict[str, list[str]] = {name: [] for name, _ in METRICS}
    for v in sorted(verdicts, key=lambda v: (v.run_id, v.collective, v.world_size, v.role, v.algorithm)):
        m = machines.get(v.run_id)
        base = [("run_id", v.run_id), ("collective", v.collective), ("world_size", str(v.world_size)),
                ("algorithm", v.algorithm), ("role", v.role), ("gpu", (m.gpu_name if m else None) or "unknown")]
        if host:
            base.append(("host", host))
        lab = _labels(base)
        samples["collbench_busbw_peak_bytes_per_second"].append(f"{lab} {_number(v.peak_busbw_gbps * 1e9)}")
        samples["collbench_busbw_peak_message_bytes"].append(f"{lab} {_number(float(v.peak_bytes))}")
        if v.roof_gbps:
            roof = _labels([*base, ("roof", v.roof_kind)])
            samples["collbench_roof_bytes_per_second"].append(f"{roof} {_number(v.roof_gbps * 1e9)}")
        if v.ratio is not None:
            samples["collbench_busbw_roof_ratio"].append(f"{lab} {_number(v.ratio)}")
        info = _labels([*base, ("rating", v.rating), ("roof", v.roof_kind)])
        samples["collbench_verdict_info"].append(f"{info} 1")
    lines = []
    for name, help_text in METRICS:
        assert _NAME.match(name)
        if not samples[name]:
            continue
        lines.append(f"# HELP {name} {help_text.replace(chr(92), chr(92) * 2)}")
        lines.append(f"# TYPE {name} gauge")
        lines += [f"{name}{s}" for s in samples[name]]
    return "\n".join(lines) + "\n" if lines else ""
