"""HTML building blocks of the run report: escaped text, tables, embedded PNGs and the page.

The page stands alone: the CSS is inline, every image is a base64 ``data:`` URI, and there is
no script and no external URL, so it opens offline, in a mail or as an issue attachment. Every
piece of text goes through :func:`html.escape` here, since file names and class names come
from the user's data and may hold markup.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from html import escape

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       color: #1f2328; background: #f6f8fa; margin: 0; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 10px; border-bottom: 1px solid #d0d7de; padding-bottom: 6px; }
.sub { color: #59636e; margin: 0 0 16px; }
.stats { display: flex; flex-wrap: wrap; gap: 10px; margin: 0 0 14px; }
.stat { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 14px; }
.stat b { display: block; font-size: 18px; }
.stat span { color: #59636e; font-size: 12px; }
nav { margin: 0 0 18px; font-size: 13px; }
nav a { color: #0969da; margin-right: 12px; text-decoration: none; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 16px 20px;
          margin: 0 0 16px; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0 8px; }
th, td { border-bottom: 1px solid #eaeef2; padding: 3px 12px 3px 0; text-align: left;
         vertical-align: top; }
th { color: #59636e; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre, td.mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; white-space: pre-wrap; }
img { max-width: 100%; height: auto; display: block; margin: 6px 0; }
img.pixels { image-rendering: pixelated; }
.note { color: #59636e; font-style: italic; }
.error { color: #cf222e; } .warning { color: #9a6700; } .info { color: #0969da; }
.figures { display: flex; flex-wrap: wrap; gap: 14px; }
figure { margin: 0; } figure img { width: 220px; margin: 0 0 2px; }
figcaption { font-size: 12px; color: #59636e; }
.cols { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
"""


@dataclass
class Section:
    """One titled block of the page; `body` is HTML that was escaped when it was built."""

    id: str
    title: str
    body: str
    missing: str | None = None     # why the section could not be drawn, if it could not


def text(value) -> str:
    """Any value as escaped HTML text."""
    return escape(str(value))


def para(value, cls: str | None = None) -> str:
    return f'<p class="{escape(cls)}">{text(value)}</p>' if cls else f"<p>{text(value)}</p>"


def note(value) -> str:
    """A grey remark, e.g. why a section is empty."""
    return para(value, "note")


def table(header: list[str], rows: list[list], numeric: set[int] = frozenset(),
          mono: set[int] = frozenset()) -> str:
    """A table; columns in `numeric` are right-aligned, those in `mono` use a fixed-width font."""
    def cell(i, v):
        cls = "num" if i in numeric else "mono" if i in mono else ""
        return f'<td class="{cls}">{text(v)}</td>' if cls else f"<td>{text(v)}</td>"

    head = "".join(f"<th>{text(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv_tables(items: list[tuple[str, object]], columns: int = 3) -> str:
    """Key-value pairs as `columns` side-by-side two-column tables, to keep long lists short."""
    per = max(1, -(-len(items) // columns))   # ceil
    parts = [table(["key", "value"], [[k, v] for k, v in items[i:i + per]], mono={1})
             for i in range(0, len(items), per)]
    return f'<div class="cols">{"".join(parts)}</div>'


def image(png: bytes, alt: str, pixels: bool = False, width: int | None = None) -> str:
    """A PNG embedded as a data: URI; `pixels` keeps small images crisp when enlarged."""
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    cls = ' class="pixels"' if pixels else ""
    size = f' width="{int(width)}"' if width else ""
    return f'<img src="{src}" alt="{escape(alt)}"{cls}{size}>'


def page(title: str, subtitle: str, stats: list[tuple[str, str]], sections: list[Section]) -> str:
    """The whole document: a heading with key numbers, links to each section, the sections."""
    cards = "".join(f'<div class="stat"><b>{text(v)}</b><span>{text(k)}</span></div>'
                    for k, v in stats)
    nav = "".join(f'<a href="#{escape(s.id)}">{text(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{escape(s.id)}"><h2>{text(s.title)}</h2>{s.body}</section>'
                   for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{text(title)}</title><style>{CSS}</style></head>\n<body><main>"
            f"<h1>{text(title)}</h1><p class=\"sub\">{text(subtitle)}</p>"
            f'<div class="stats">{cards}</div><nav>{nav}</nav>\n{body}</main></body></html>\n')
