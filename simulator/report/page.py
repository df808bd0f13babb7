"""``report.html``: a results folder as one static page (no server, no script, no network).

Works on any folder: a run's (``meterbench run`` writes it next to ``summary.json``) or a
sweep's (``meterbench report FOLDER``, or :func:`write_page` from the sweep). The page shows

- the summary: the run's console rows when given, then every figure of ``summary.json``
  flattened to ``key / sub-key | value`` rows;
- every picture: the ``*.png`` files of the folder and of its subfolders one level down,
  linked by relative path (so the folder can be moved or zipped whole);
- every table: each ``*.csv`` (``,``, ``;`` or tab separated) as an HTML table, in full up to
  :data:`MAX_ROWS` rows, else its first rows with the total and a link to the file;
- a list of the other files, linked.

The page links its pictures rather than embedding them: a sweep's folder may hold dozens.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

from simulator.core.text import csv_rows

NAME = "report.html"
#: Tables up to this many rows are shown whole; longer ones show their first rows.
MAX_ROWS = 60
HEAD_ROWS = 15

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1200px}
h1{font-size:22px;margin:0 0 .2em}h2{font-size:18px;margin:1.4em 0 .4em;border-bottom:1px
solid #ddd}.sub{color:#555;margin:0 0 1em}table{border-collapse:collapse;margin:.4em 0 1em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
td.long{overflow-wrap:anywhere;min-width:16em}.wide{overflow-x:auto;max-width:100%}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;width:calc(50% - 1.2em);margin:0 1em 1.2em 0;vertical-align:top}
figure img{width:100%;border:1px solid #ddd}figcaption{font-size:12px;color:#555}
summary{cursor:pointer;margin:.3em 0}.note{color:#555;font-size:12px}
"""


def _flatten(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _flatten(v, f"{prefix} / {k}" if prefix else str(k))
    else:
        yield prefix, value


def _cell(value: Any) -> str:
    if value is None:
        return "<td>-</td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int | float):
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        return f"<td class='num'>{escape(text)}</td>"
    if isinstance(value, list | dict):
        value = json.dumps(value)
    text = str(value)
    if len(text) > 40 and " " not in text:  # a telegram, a key: may break anywhere
        return f"<td class='long'>{escape(text)}</td>"
    return f"<td>{escape(text)}</td>"


def _rows_table(rows: Iterable[tuple[str, Any]], head: tuple[str, str] | None = None) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th>{_cell(v)}</tr>" for k, v in rows)
    top = "" if head is None else f"<tr><th>{head[0]}</th><th>{head[1]}</th></tr>"
    return f"<table>{top}{body}</table>"


def _read_csv(path: Path) -> tuple[list[str], list[list[str]], int]:
    """Header, first rows (all if at most MAX_ROWS) and the row count of a CSV file."""
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        first = fh.readline()
        fh.seek(0)
        delimiter = max(",;\t", key=first.count)
        rows: list[list[str]] = []
        count = 0
        for _line, row in csv_rows(csv.reader(fh, delimiter=delimiter)):
            count += 1
            rows.append(row)
            if count == MAX_ROWS + 1:
                count += _rows_left(fh, path, delimiter, count)
                break
    header, data = (rows[0], rows[1:]) if rows else ([], [])
    total = max(0, count - 1)
    return header, data if total <= MAX_ROWS else data[:HEAD_ROWS], total


#: Characters read at a time when counting the rest of a long table (a year's readouts.csv
#: is ~1.7 GB: it is streamed, never held whole).
CHUNK = 1 << 20


def _rows_left(fh: Any, path: Path, delimiter: str, done: int) -> int:
    """Rows ``csv.reader`` would still give from ``fh`` (raising as it would): without a
    quote, a NUL or a line over the field size limit in the rest, each line is one row
    (``\r``, ``\n`` or ``\r\n`` ends it) and is counted without parsing, in chunks of
    :data:`CHUNK` characters (a city's meters.csv has 100,000 rows, a year's readouts.csv
    14 million); else a reader counts them anew in ``path``, less the ``done`` rows before."""
    limit = csv.field_size_limit()
    ends, carry, last = 0, 0, ""  # carry: characters of the line still open
    while chunk := fh.read(CHUNK):
        if '"' in chunk or "\0" in chunk or _has_long_line(chunk, limit):
            break
        first = _first_end(chunk)
        if carry + first > limit:  # a line over two or more chunks
            break
        n = chunk.count("\n") + chunk.count("\r") - chunk.count("\r\n")
        if last == "\r" and chunk[0] == "\n":
            n -= 1  # one \r\n split over two chunks
        ends += n
        tail = len(chunk) - 1 - max(chunk.rfind("\n"), chunk.rfind("\r"))
        carry = carry + len(chunk) if first == len(chunk) else tail
        last = chunk[-1]
    else:
        if carry <= limit:
            return ends + (1 if last and last not in "\r\n" else 0)
    # a quote, a NUL or a long line: the reader decides (fh cannot seek back: it was iterated)
    with path.open(encoding="utf-8", errors="replace", newline="") as again:
        return sum(1 for _ in csv_rows(csv.reader(again, delimiter=delimiter))) - done


def _first_end(chunk: str) -> int:
    """Characters before the first line end of ``chunk`` (all of them if it has none)."""
    found = [i for i in (chunk.find("\n"), chunk.find("\r")) if i >= 0]
    return min(found) if found else len(chunk)


def _has_long_line(chunk: str, limit: int) -> bool:
    """A line of more than ``limit`` characters lies inside ``chunk``. Such a line holds a
    whole aligned block of ``limit // 2`` characters without a line end, so only a chunk
    with such a block is split into lines (a plain table never is)."""
    half = max(1, limit // 2)
    if len(chunk) <= limit:
        return False
    for i in range(0, len(chunk) - half + 1, half):
        if chunk.find("\n", i, i + half) < 0 and chunk.find("\r", i, i + half) < 0:
            return max(map(len, re.split(r"\r\n|\r|\n", chunk))) > limit
    return False


def _csv_section(folder: Path, path: Path) -> str:
    rel = path.relative_to(folder).as_posix()
    try:
        header, data, total = _read_csv(path)
    except (OSError, ValueError) as exc:
        return f"<p>{escape(rel)}: not readable as a table ({escape(str(exc))})</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(_number(c)) for c in row) + "</tr>" for row in data)
    table = f"<div class='wide'><table><tr>{head}</tr>{body}</table></div>"
    link = f"<a href='{escape(rel)}'>{escape(rel)}</a>"
    if total <= MAX_ROWS:
        return f"<h3>{link} ({total} rows)</h3>{table}"
    note = f"first {len(data)} of {total} rows; the whole table is in {link}"
    return (
        f"<details><summary>{escape(rel)} ({total} rows)</summary>"
        f"<p class='note'>{note}</p>{table}</details>"
    )


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text) if text.strip().lower() not in ("nan", "inf", "-inf") else text
    except ValueError:
        return text


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) + sorted(folder.glob(f"*/{pattern}"))


def render(
    folder: Path, title: str | None = None, rows: list[tuple[str, str]] | None = None
) -> str:
    """The page of ``folder`` as HTML text (see the module doc)."""
    folder = Path(folder)
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    if title is None:
        if summary is not None:
            title = f"{summary.get('scenario', folder.name)}: {summary.get('kind', '')} run"
        else:
            title = folder.name
    parts = [f"<h1>{escape(title)}</h1>"]
    if summary is not None:
        facts = [
            f"kind {summary.get('kind', '?')}",
            f"random seed {summary.get('seed', '?')}",
            f"{summary.get('sim_seconds', 0) / 3600:g} h simulated",
            f"meterbench {summary.get('meterbench_version', '?')}",
            f"scenario file {summary.get('scenario_path', '?')}",
        ]
        parts.append(f"<p class='sub'>{escape(' · '.join(facts))}</p>")
    if rows or summary is not None:
        parts.append("<h2 id='summary'>Summary</h2>")
    if rows:
        parts.append(_rows_table(rows))
    if summary is not None:
        every = _rows_table(_flatten(summary), ("figure", "value"))
        if rows:
            every = f"<details><summary>every figure of summary.json</summary>{every}</details>"
        parts.append(every)
    pictures = [p for p in _files(folder, "*.png")]
    parts.append(f"<h2 id='pictures'>Pictures ({len(pictures)})</h2>")
    for p in pictures:
        rel = escape(p.relative_to(folder).as_posix())
        parts.append(
            f"<figure><a href='{rel}'><img src='{rel}' alt='{rel}'></a>"
            f"<figcaption>{rel}</figcaption></figure>"
        )
    if not pictures:
        parts.append("<p>none in this folder</p>")
    tables = _files(folder, "*.csv")
    if tables:
        parts.append(f"<h2 id='tables'>Tables ({len(tables)})</h2>")
        parts += [_csv_section(folder, p) for p in tables]
    shown = {*pictures, *tables, folder / NAME, summary_path}
    others = [p for p in sorted(folder.rglob("*")) if p.is_file() and p not in shown]
    if others:
        links = "".join(
            f"<li><a href='{escape(p.relative_to(folder).as_posix())}'>"
            f"{escape(p.relative_to(folder).as_posix())}</a></li>"
            for p in others[:200]
        )
        more = f"<li>and {len(others) - 200} more</li>" if len(others) > 200 else ""
        listing = f"<ul>{links}{more}</ul>"
        if len(others) > 12:
            listing = f"<details><summary>list them</summary>{listing}</details>"
        parts.append(f"<h2 id='files'>Other files ({len(others)})</h2>{listing}")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def write_page(
    folder: Path, title: str | None = None, rows: list[tuple[str, str]] | None = None
) -> Path:
    """Write ``folder/report.html`` (:func:`render`) and return its path. ``rows``: the
    run's console (label, text) rows; ``title``: default the run's scenario, else the folder
    name. Raises ``OSError`` if the folder cannot be read or written."""
    path = Path(folder) / NAME
    path.write_text(render(Path(folder), title, rows), encoding="utf-8")
    return path
