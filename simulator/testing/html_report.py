"""A self-contained HTML report of a suite run, written from the plugin's JSON test record.

No pytest-html: the JSON record (:class:`simulator.testing.plugin.TestRecord`) already holds
the rig, the device under test, the git commit, every test's outcome and its measurements
with limits; this module renders them as one static page (inline CSS, no scripts):

- a header of the run facts (meterbench version, rig, mode, adapter/transport, DUT model,
  serial, firmware, git commit); a fact the record lacks is read from the rig file it names;
- per test, its outcome and a table of its measurements (value, unit, limits, pass/fail per
  measurement, as OpenHTF shows them) and a link to its evidence folder (record key
  ``evidence``: a path, a list of paths or ``{label: path}``);
- the timing histogram per baud as embedded PNGs (:mod:`simulator.testing.report_plots`).
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from simulator.testing.report_plots import histogram_png, timing_by_baud

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;
padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f4f4f4}
.passed,.PASS{color:#176e2c}.failed,.error,.FAIL{color:#b00020;font-weight:bold}
.skipped{color:#8a6d00}h3{margin:1.2em 0 .2em;font-size:15px}
pre{white-space:pre-wrap;max-width:70em;font-size:12px;margin:.3em 0;background:#fafafa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
"""


def _num(x: Any) -> str:
    return "" if x is None else f"{x:.6g}"


def _rig_file_facts(path: str | None) -> dict[str, str]:
    """Transport description from the rig file (when the record does not carry it)."""
    if not path or not Path(path).is_file():
        return {}
    from simulator.rig import load_rig
    from simulator.scenario import ScenarioError

    try:
        rig = load_rig(Path(path))
    except ScenarioError:
        return {}
    parts = []
    for t in rig.transports:
        where = t.url or t.tcp or ("pty" if t.pty else "?")
        parts.append(f"{t.name}: {where} {t.baud} bit/s 8{t.parity}1" + (" echo" if t.echo else ""))
    return {"transport": "; ".join(parts) or "none (simulated)"}


def header_facts(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The run facts shown at the top, in order, as (label, text)."""
    from simulator import __version__

    rig = record.get("rig", {})
    dev = record.get("device", {})
    run = record.get("run", {})  # the plugin's run facts (simulator/testing/run_facts.py)
    from_file = _rig_file_facts(rig.get("path"))
    version = (
        run.get("meterbench_version")
        or record.get("meterbench_version")
        or f"{__version__} (of the report writer)"
    )
    transport = (
        run.get("adapter")
        or rig.get("adapter")
        or rig.get("transport")
        or from_file.get("transport", "?")
    )
    chosen = f" (by {rig['chosen_by']})" if rig.get("chosen_by") else ""
    ident = dev.get("source", "rig file")
    if dev.get("identify_error"):
        ident += f"; {dev['identify_error']}"
    tests = record.get("tests", [])
    counts: dict[str, int] = {}
    for t in tests:
        counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
    started = record.get("started")
    when = datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds") if started else "?"
    return [
        ("meterbench version", version),
        ("rig", f"{rig.get('name', '?')} - {rig.get('path', '')}{chosen}"),
        ("mode", rig.get("mode", "?")),
        ("adapter / transport", transport),
        ("features", ", ".join(rig.get("features", []))),
        ("DUT model", dev.get("model", "?")),
        ("DUT serial", dev.get("serial") or "not given"),
        ("DUT firmware", dev.get("firmware", "?")),
        ("DUT identity from", ident),
        ("M-Bus settings", ", ".join(f"{k}={v}" for k, v in sorted(dev.get("mbus", {}).items()))),
        ("git commit", record.get("git_commit") or "unknown"),
        ("started (UTC)", when),
        ("result", ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no tests"),
    ]


def _measurements_table(ms: list[dict[str, Any]]) -> str:
    if not ms:
        return "<p>no measurements</p>"
    rows = [
        "<table><tr><th>measurement</th><th>value</th><th>unit</th><th>low</th><th>high</th>"
        "<th>result</th><th>limits from</th></tr>"
    ]
    for m in ms:
        verdict = "PASS" if m["passed"] else "FAIL"
        rows.append(
            f"<tr><td>{escape(m['name'])}</td><td class='num'>{_num(m['value'])}</td>"
            f"<td>{escape(m['unit'])}</td><td class='num'>{_num(m['low'])}</td>"
            f"<td class='num'>{_num(m['high'])}</td><td class='{verdict}'>{verdict}</td>"
            f"<td>{_budget(m.get('budget'))}</td></tr>"
        )
    return "".join(rows) + "</table>"


def _evidence_links(evidence: Any, base: Path | None) -> str:
    if not evidence:
        return ""
    if isinstance(evidence, str):
        items = [("evidence", evidence)]
    elif isinstance(evidence, dict):
        items = sorted((str(k), str(v)) for k, v in evidence.items())
    else:
        items = [(Path(str(p)).name, str(p)) for p in evidence]
    links = []
    for label, p in items:
        href = os.path.relpath(p, base) if base is not None and Path(p).is_absolute() else p
        links.append(f"<a href='{escape(Path(href).as_posix())}'>{escape(label)}</a>")
    return "<p>evidence: " + ", ".join(links) + "</p>"


def _histograms(record: dict[str, Any]) -> list[str]:
    out = ["<h2>Timing per baud</h2>"]
    per_baud = timing_by_baud(record)
    if not per_baud:
        return [*out, "<p>no timing measurements in this run</p>"]
    for baud, series in sorted(per_baud.items()):
        png = base64.b64encode(histogram_png(baud, series)).decode("ascii")
        out.append(
            f"<h3>{baud} bit/s</h3><img alt='timing histogram at {baud} bit/s' "
            f"src='data:image/png;base64,{png}'>"
        )
    return out


def render(record: dict[str, Any], base: Path | None = None) -> str:
    """The HTML text of a report for a JSON test record (a dict as written by the plugin).

    ``base``: the folder the page is written to (absolute evidence paths are linked relative
    to it).
    """
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<title>meterbench suite report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>meterbench suite report</h1><table class='facts'>",
    ]
    out += [
        f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in header_facts(record)
    ]
    out.append("</table><h2>Tests</h2>")
    for t in record.get("tests", []):
        name = t["nodeid"].split("::")[-1]
        out.append(
            f"<h3>{escape(name)} <span class='{t['outcome']}'>{t['outcome']}</span> "
            f"<small>{t.get('duration_s', 0):.3f} s</small></h3>"
        )
        msg = t.get("message")
        if msg and t["outcome"] != "passed":
            out.append(_message(msg))
        out.append(_evidence_links(t.get("evidence"), base))
        out.append(_measurements_table(t.get("measurements", [])))
    out += _histograms(record)
    out.append("</body></html>\n")
    return "\n".join(out)


def _message(msg: str) -> str:
    """The error lines of a failure (pytest's ``E`` lines) shown, the traceback tail folded."""
    errors = [ln[1:].strip() for ln in msg.splitlines() if ln.startswith("E ")]
    head = f"<pre class='failed'>{escape(chr(10).join(errors[-6:]))}</pre>" if errors else ""
    return f"{head}<details><summary>traceback</summary><pre>{escape(msg[-1500:])}</pre></details>"


def _budget(b: dict | None) -> str:
    """The budget a measurement's limits came from, e.g. 'nominal_s 2, ...'."""
    if not b:
        return ""
    parts = [f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(b.items())]
    return escape(", ".join(parts))


def write_report(record_path: str | Path, html_path: str | Path) -> Path:
    """Read the JSON record at ``record_path`` and write the HTML report; return its path."""
    record = json.loads(Path(record_path).read_text(encoding="utf-8"))
    html_path = Path(html_path)
    html_path.write_text(render(record, html_path.parent.resolve()), encoding="utf-8")
    return html_path
