"""Interactive figures of report.html (Bokeh): busbw vs size per (collective, world size), one line per
algorithm; hovering a point shows its size, time, the time's 95% CI and busbw. The Bokeh library is inlined
once into the page (``render``), so the page stays one file that needs no network; report.md keeps the PNGs."""

from __future__ import annotations

import math

import pandas as pd
from bokeh.embed import components
from bokeh.models import ColumnDataSource, CustomJSTickFormatter, HoverTool, LogTicker
from bokeh.palettes import Category10_10
from bokeh.plotting import figure
from bokeh.resources import Resources

from analysis.selection import one_variant
from analysis.units import size_label
from collectives import costs
from collectives.spec import SEND_RECV, is_point_to_point

WIDTH, HEIGHT = 600, 360
#: a tick in bytes as analysis.units.size_label writes it (B, KiB, MiB, GiB)
SIZE_TICK_JS = ("const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let v = tick, i = 0; "
                "while (v >= 1024 && i < 4) { v /= 1024; i++; } return (Math.round(v * 10) / 10) + ' ' + u[i];")
TOOLTIPS = [("algorithm", "@algorithm"), ("size", "@size"), ("time", "@time_us{0,0.0} µs"),
            ("95% CI of time", "@ci"), ("busbw", "@busbw_gbps{0.000} GB/s"), ("noisy", "@noisy")]  # fmt: skip


def _ci(lo: object, hi: object) -> str:
    try:
        lo_f, hi_f = float(lo), float(hi)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "-"
    return f"[{lo_f:,.1f}, {hi_f:,.1f}] µs" if math.isfinite(lo_f) and math.isfinite(hi_f) else "-"


def _source(sub: pd.DataFrame, algorithm: str) -> ColumnDataSource:
    sub = sub.sort_values("bytes")
    lo = sub["time_us_ci_lo"] if "time_us_ci_lo" in sub else pd.Series([math.nan] * len(sub), index=sub.index)
    hi = sub["time_us_ci_hi"] if "time_us_ci_hi" in sub else lo
    return ColumnDataSource({
        "bytes": sub["bytes"].astype(float).tolist(),
        "busbw_gbps": sub["busbw_gbps"].astype(float).tolist(),
        "time_us": sub["time_us"].astype(float).tolist(),
        "size": [size_label(float(n)) for n in sub["bytes"]],
        "ci": [_ci(a, b) for a, b in zip(lo, hi, strict=True)],
        "noisy": ["yes" if bool(x) else "no" for x in sub["noisy"]] if "noisy" in sub else ["-"] * len(sub),
        "algorithm": [algorithm] * len(sub),
    })  # fmt: skip


def busbw_figures(df: pd.DataFrame) -> list[tuple[str, object]]:
    """(caption, Bokeh figure) per (collective, world size): busbw vs size with hover, log size axis."""
    data = one_variant(df)
    data = data[data["bytes"] > 0]
    order = {c: i for i, c in enumerate((*costs.COLLECTIVES, SEND_RECV.name))}
    out = []
    keys = sorted(data.groupby(["collective", "world_size"]).groups, key=lambda k: (int(k[1]), order.get(k[0], 99)))
    for coll, p in keys:
        g = data[(data["collective"] == coll) & (data["world_size"] == p)]
        p2p = is_point_to_point(str(coll))
        ylabel = "bytes moved per second (GB/s)" if p2p else "busbw (GB/s)"
        fig = figure(width=WIDTH, height=HEIGHT, x_axis_type="log", title=f"{coll}, world size {p}",
                     x_axis_label="message size S (binary units)", y_axis_label=ylabel,
                     tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="above")  # fmt: skip
        fig.xaxis.ticker = LogTicker(base=4, mantissas=[1])
        fig.xaxis.formatter = CustomJSTickFormatter(code=SIZE_TICK_JS)
        renderers = []
        for i, (alg, sub) in enumerate(g.groupby("algorithm")):
            src = _source(sub, str(alg))
            color = Category10_10[i % 10]
            fig.line("bytes", "busbw_gbps", source=src, color=color, line_width=1.5, legend_label=str(alg))
            renderers.append(fig.scatter("bytes", "busbw_gbps", source=src, color=color, size=7,
                                         legend_label=str(alg)))
        fig.add_tools(HoverTool(renderers=renderers, tooltips=TOOLTIPS))
        fig.legend.location = "top_left"
        fig.legend.click_policy = "hide"
        fig.legend.label_text_font_size = "8pt"
        what = "bytes moved per second" if p2p else "bus bandwidth"
        out.append((f"{coll}, p = {p}: {what} vs size; hover a point for size, time, 95% CI and busbw; "
                    "click a legend entry to hide its line", fig))  # fmt: skip
    return out


def render(blocks: list) -> tuple[str, dict[int, str]]:
    """(what goes into <head>: the Bokeh library inlined once and the figures' script; id(block) -> its div).
    Nothing when there is no interactive block."""
    if not blocks:
        return "", {}
    script, divs = components([b.figure for b in blocks])
    js = Resources(mode="inline", components=["bokeh"]).render_js()
    return js + script, {id(b): d for b, d in zip(blocks, divs, strict=True)}
