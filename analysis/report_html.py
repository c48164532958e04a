"""report.html: one self-contained page (figures embedded as data URIs, the Bokeh library inlined once, one small
stylesheet, nothing fetched from the network) from the report's blocks. Printable: the figure grid and the
cards become one column, and figures, cards and tables are not split across pages (a collapsed table prints
as its summary line; open it before printing to print it)."""

from __future__ import annotations

import base64
import html

from analysis import report_interactive
from analysis.report_blocks import Block

STYLE = """
:root{--ink:#1d2430;--muted:#5b6573;--line:#d9dee5;--soft:#f4f6f9;--accent:#2b6cb0;--good:#2f855a;--warn:#b7791f}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);
 max-width:1320px;margin:0 auto;padding:1.2em 1.6em;background:#fff}
h1{font-size:1.45em;margin:.2em 0 .6em;overflow-wrap:anywhere}
h2{font-size:1.2em;margin:1.8em 0 .5em;padding-bottom:.2em;border-bottom:2px solid var(--line)}
h3{font-size:1.02em;margin:0 0 .4em}
p,li{max-width:75em}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:1em;margin:.5em 0 1em}
.card{border:1px solid var(--line);border-left:5px solid var(--accent);border-radius:6px;padding:.8em 1em;
 background:var(--soft)}
.card table{margin:.3em 0;background:#fff;width:100%}.card td:nth-child(-n+4){white-space:nowrap}
.card p{margin:.3em 0;font-size:.93em;color:var(--muted)}
table{border-collapse:collapse;font-size:13px;margin:.6em 0}
th{background:var(--soft);text-align:left;font-weight:600}
td,th{border:1px solid var(--line);padding:3px 7px;vertical-align:top}
td{font-variant-numeric:tabular-nums}
tbody tr:nth-child(even) td{background:#fafbfc}
details{margin:.6em 0}
summary{cursor:pointer;font-weight:600;color:var(--accent)}
.look{background:#fffbea;border-left:4px solid var(--warn);padding:.35em .8em;margin:.5em 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:1em;align-items:start}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:.5em;background:#fff}
figure img{width:100%;height:auto;display:block}
figcaption{color:var(--muted);font-size:.9em;margin-top:.3em}
ul{padding-left:1.3em}
@media print{body{max-width:none;padding:0;font-size:11px}.grid,.cards{grid-template-columns:1fr}
 figure,.card,table{break-inside:avoid}h2{break-after:avoid}}
"""


def _table(b: Block) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in b.header)
    rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b.rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return f"<details><summary>{e(b.summary)}</summary>{table}</details>" if b.summary else table


def _figure(b: Block, divs: dict[int, str]) -> str:
    e = html.escape
    if b.kind == "interactive":
        return f"<figure>{divs[id(b)]}<figcaption>{e(b.text)}</figcaption></figure>"
    assert b.path is not None
    data = base64.b64encode(b.path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{e(b.text)}" loading="eager" src="data:image/png;base64,{data}">'
            f"<figcaption>{e(b.text)}</figcaption></figure>")  # fmt: skip


def to_html(blocks: list[Block], title: str) -> str:
    """The page: consecutive figures form a grid, consecutive headline cards a row of cards."""
    e = html.escape
    shown = [b for b in blocks if not (b.kind == "img" and (b.md_only or b.path is None))]
    head_js, divs = report_interactive.render([b for b in shown if b.kind == "interactive"])
    body: list[str] = []
    in_grid = in_cards = card_open = False
    for b in shown:
        figure = b.kind in ("img", "interactive")
        if in_grid and not figure:
            body.append("</div>")
            in_grid = False
        if in_cards and not card_open and b.kind != "card":
            body.append("</div>")
            in_cards = False
        card_open = (card_open or b.kind == "card") and b.kind != "endcard"
        if figure and not in_grid:
            body.append('<div class="grid">')
            in_grid = True
        if b.kind == "card" and not in_cards:
            body.append('<div class="cards">')
            in_cards = True
        if b.kind in ("h1", "h2", "h3"):
            body.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "card":
            body.append(f'<section class="card"><h3>{e(b.text)}</h3>')
        elif b.kind == "endcard":
            body.append("</section>")
        elif b.kind == "p":
            body.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "look":
            body.append(f'<p class="look">{e(b.text)}</p>')
        elif b.kind == "list":
            body.append("<ul>" + "".join(f"<li>{e(r[0])}</li>" for r in b.rows) + "</ul>")
        elif b.kind == "table":
            body.append(_table(b))
        elif figure:
            body.append(_figure(b, divs))
        elif b.kind == "details":
            body.append(f"<details><summary>{e(b.text)}</summary>")
        elif b.kind == "end":
            body.append("</details>")
    body += ["</div>"] * (in_grid + in_cards)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{e(title)}</title>'
            f"<style>{STYLE}</style>{head_js}</head><body>\n" + "\n".join(body) + "\n</body></html>\n")  # fmt: skip

