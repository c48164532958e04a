"""The pieces a report is made of (``Block``) and their Markdown rendering; the HTML page is
``analysis.report_html``. Every string taken from a result file is escaped here and there (Markdown tables: ``|``
and newlines; HTML: ``html.escape``), so a hostile run.json cannot inject markup."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: a table longer than this is collapsed under its summary row (the page opens with the answer, not the detail)
LONG_TABLE_ROWS = 12


@dataclass(frozen=True)
class Block:
    """One piece of the report.

    kind: h1 | h2 | h3 | p | look (what to look at in the figures below) | table | list | img | interactive (HTML
    only: a Bokeh figure, ``figure``) | card (opens a headline card; text = its title) | endcard | details (opens
    a collapsed section; text = summary) | end.
    A table with ``summary`` is collapsed under that line; an img with ``md_only`` is the Markdown stand-in of an
    interactive figure (the page shows the interactive one).
    """

    kind: str
    text: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    path: Path | None = None
    summary: str = ""
    md_only: bool = False
    figure: Any = None


def md_cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _md_table(b: Block) -> list[str]:
    out = ["| " + " | ".join(md_cell(h) for h in b.header) + " |", "|" + "---|" * len(b.header)]
    out.extend("| " + " | ".join(md_cell(c) for c in r) + " |" for r in b.rows)
    if b.summary:
        return [f"<details><summary>{html.escape(md_cell(b.summary))}</summary>\n", *out, "", "</details>", ""]
    return [*out, ""]


def to_markdown(blocks: list[Block], base: Path) -> str:
    """report.md: the same blocks with PNG figures (no interactive ones, no script)."""
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(b.kind[1])} {md_cell(b.text)}\n")
        elif b.kind == "card":
            out.append(f"### {md_cell(b.text)}\n")
        elif b.kind == "p":
            out.append(md_cell(b.text) + "\n")
        elif b.kind == "look":
            out.append(f"What to look at: {md_cell(b.text)}\n")
        elif b.kind == "list":
            out.append("\n".join(f"- {md_cell(r[0])}" for r in b.rows) + "\n")
        elif b.kind == "table":
            out.extend(_md_table(b))
        elif b.kind == "img" and b.path is not None:
            out.append(f"![{md_cell(b.text)}]({b.path.relative_to(base).as_posix()})\n")
        elif b.kind == "details":
            out.append(f"<details><summary>{html.escape(md_cell(b.text))}</summary>\n")
        elif b.kind == "end":
            out.append("</details>\n")
    return "\n".join(out)
