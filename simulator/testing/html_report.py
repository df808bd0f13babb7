"""A self-contained HTML report of a suite run, written from the plugin's JSON test record.

No pytest-html: the JSON record (:class:`simulator.testing.plugin.TestRecord`) already holds
the rig, the device under test, the git commit, every test's outcome and its measurements
with limits; this module renders them as one static page (inline CSS, no scripts).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f4f4f4}.passed{color:#176e2c}
.failed,.error{color:#b00020;font-weight:bold}.skipped{color:#8a6d00}
pre{white-space:pre-wrap;max-width:60em;font-size:12px;margin:0}
"""


def _lim(x: Any) -> str:
    return "" if x is None else f"{x:.6g}"


def render(record: dict[str, Any]) -> str:
    """The HTML text of a report for a JSON test record (a dict as written by the plugin)."""
    rig = record.get("rig", {})
    dev = record.get("device", {})
    tests = record.get("tests", [])
    counts: dict[str, int] = {}
    for t in tests:
        counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
    started = record.get("started")
    when = datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds") if started else "?"
    run = record.get("run", {})
    chosen = f" (by {rig['chosen_by']})" if rig.get("chosen_by") else ""
    ident = dev.get("source", "rig file")
    if dev.get("identify_error"):
        ident += f"; {dev['identify_error']}"
    head = [
        ("meterbench", run.get("meterbench_version") or record.get("meterbench_version", "?")),
        ("rig", f"{rig.get('name', '?')} ({rig.get('mode', '?')}) - {rig.get('path', '')}{chosen}"),
        ("adapter", run.get("adapter", "?")),
        ("features", ", ".join(rig.get("features", []))),
        ("device", f"{dev.get('model', '?')} firmware {dev.get('firmware', '?')}"),
        ("serial", dev.get("serial") or "(not given)"),
        ("identity from", ident),
        ("M-Bus settings", ", ".join(f"{k}={v}" for k, v in sorted(dev.get("mbus", {}).items()))),
        ("git commit", record.get("git_commit") or "unknown"),
        ("started (UTC)", when),
        ("result", ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))),
    ]
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<title>meterbench suite report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>meterbench suite report</h1><table>",
    ]
    out += [f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in head]
    out.append(
        "</table><h2>Tests</h2><table><tr><th>test</th><th>outcome</th>"
        "<th>time (s)</th><th>measurements (value, unit, limits)</th><th>evidence</th></tr>"
    )
    for t in tests:
        ms = "".join(
            f"<div class='{'passed' if m['passed'] else 'failed'}'>{escape(m['name'])}: "
            f"{m['value']:.6g} {escape(m['unit'])} [{_lim(m['low'])} .. {_lim(m['high'])}]"
            f"{_budget(m.get('budget'))}</div>"
            for m in t.get("measurements", [])
        )
        msg = t.get("message")
        detail = f"<pre>{escape(msg[-1500:])}</pre>" if msg and t["outcome"] != "passed" else ""
        name = t["nodeid"].split("::")[-1]
        folder = t.get("evidence")
        link = f"<a href='{escape(folder, quote=True)}/'>{escape(folder)}</a>" if folder else ""
        outcome = t["outcome"] + (" (bench fault)" if t.get("bench_fault") else "")
        out.append(
            f"<tr><td>{escape(name)}{detail}</td><td class='{t['outcome']}'>"
            f"{escape(outcome)}</td><td>{t.get('duration_s', 0):.3f}</td><td>{ms}</td>"
            f"<td>{link}</td></tr>"
        )
    out.append("</table></body></html>\n")
    return "\n".join(out)


def _budget(b: dict | None) -> str:
    """The budget a measurement's limits came from, e.g. ' (budget: nominal_s 2, ...)'."""
    if not b:
        return ""
    parts = [f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(b.items())]
    return escape(" (budget: " + ", ".join(parts) + ")")


def write_report(record_path: str | Path, html_path: str | Path) -> Path:
    """Read the JSON record at ``record_path`` and write the HTML report; return its path."""
    record = json.loads(Path(record_path).read_text(encoding="utf-8"))
    html_path = Path(html_path)
    html_path.write_text(render(record), encoding="utf-8")
    return html_path
