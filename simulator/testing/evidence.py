"""Per-test evidence folders: what a lab keeps of every test that used the bench, pass or fail.

One folder per test under the evidence directory (``--mbench-evidence``), named after the
test id (characters outside ``[A-Za-z0-9_.-]`` become ``_``), with:

* ``trace.jsonl``: the test's bench trace (header line, then events; docs/trace.md);
* ``wire.log``: the serial bridge's timestamped wire log, one line per ``bridge_*`` event
  (UTC wall time of the first byte, ms; kind; direction; hex), when the run had a bridge;
* files the test attached (``evidence.attach(name, data)``), e.g. the push suite's received
  reports (``received.json``);
* ``operator.log``: the operator prompts of the test and their answers, when there were any;
* ``verdict.txt``: test id, outcome (``bench fault`` for a :class:`BenchError`), duration (s),
  measurements with limits and the message of a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def folder_name(nodeid: str) -> str:
    """A file-system-safe folder name for a pytest node id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150] or "test"


def wire_log(trace: Any) -> str:
    """The bridge's events of ``trace`` as timestamped text lines ("" without a bridge)."""
    lines = []
    for ev in trace:
        if not ev.kind.startswith("bridge_"):
            continue
        d = ev.to_dict()
        walls = d.get("byte_wall") or [d.get("wall")]
        wall = walls[0] if walls and walls[0] is not None else None
        stamp = (
            datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")
            if wall is not None
            else f"t={d.get('t')}"
        )
        rest = {k: v for k, v in d.items() if k not in ("kind", "t", "wall", "byte_t", "byte_wall")}
        direction = rest.pop("direction", "")
        data = rest.pop("hex", "")
        extra = " ".join(f"{k}={v}" for k, v in sorted(rest.items()) if k not in ("source", "v"))
        lines.append(f"{stamp} {ev.kind} {direction} {data} {extra}".rstrip())
    return "\n".join(lines) + ("\n" if lines else "")


def write_folder(
    root: Path,
    nodeid: str,
    *,
    verdict: dict[str, Any],
    trace: Any = None,
    attachments: dict[str, Any] | None = None,
    prompts: list[Any] = (),
) -> Path:
    """Write one test's evidence folder under ``root`` and return it (see the module doc).

    ``verdict``: ``outcome``, ``duration_s``, ``measurements`` (dicts), ``message``;
    ``attachments``: file name -> ``str``, ``bytes``, a :class:`Path` (copied) or any JSON-able
    object (written as JSON); a path is hard-linked where it can be, else copied."""
    folder = root / folder_name(nodeid)
    if folder.exists():
        shutil.rmtree(folder)  # a rerun replaces the old evidence, never mixes with it
    folder.mkdir(parents=True)
    if trace is not None:
        trace.write_jsonl(folder / "trace.jsonl")
        log = wire_log(trace)
        if log:
            (folder / "wire.log").write_text(log, encoding="utf-8")
    for name, data in (attachments or {}).items():
        target = folder / folder_name(name)
        if isinstance(data, Path):
            try:  # tests sharing one run's files share their bytes too
                os.link(data, target)
            except OSError:
                shutil.copyfile(data, target)
        elif isinstance(data, bytes):
            target.write_bytes(data)
        elif isinstance(data, str):
            target.write_text(data, encoding="utf-8")
        else:
            target.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    if prompts:
        (folder / "operator.log").write_text(
            "".join(
                f"{datetime.fromtimestamp(p.asked, UTC).isoformat(timespec='seconds')} "
                f"{p.message!r} -> {p.answer!r}\n"
                for p in prompts
            ),
            encoding="utf-8",
        )
    (folder / "verdict.txt").write_text(_verdict_text(nodeid, verdict), encoding="utf-8")
    return folder


def _verdict_text(nodeid: str, v: dict[str, Any]) -> str:
    lines = [
        f"test: {nodeid}",
        f"outcome: {v['outcome']}",
        f"duration_s: {v.get('duration_s', 0):.3f}",
    ]
    for m in v.get("measurements", []):
        lines.append(
            f"measurement: {m['name']} = {m['value']:.6g} {m['unit']} "
            f"[{m['low']} .. {m['high']}] {'pass' if m['passed'] else 'FAIL'}"
        )
    if v.get("message"):
        lines += ["message:", v["message"].rstrip()[-3000:]]
    return "\n".join(lines) + "\n"
