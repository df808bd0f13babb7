"""The JSON Schema of ``trace.jsonl``, generated from the event classes, and the file check.

:func:`trace_schema` builds a draft 2020-12 schema: one ``$defs`` entry per kind (plus the
header line), each a closed object whose ``kind`` is a ``const``, joined by ``oneOf``. It is
shipped as docs/trace.schema.json (a test checks the shipped file equals the generated one).

:func:`validate_trace` checks a file line by line against it. Each line is checked against the
definition of its own ``kind`` (faster than ``oneOf`` and the error names the field).
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.core.events import (
    EVENT_TYPES,
    HEADER_KIND,
    HEX,
    TRACE_FORMAT,
    TRACE_SCHEMA_VERSION,
    UNSET,
    TraceEvent,
)

SCHEMA_ID = "https://github.com/meterbench/meterbench/docs/trace.schema.json"
_HEX_PATTERN = "^([0-9a-f]{2})*$"


def _type_schema(tp: Any) -> dict[str, Any]:
    """Schema of one Python annotation (int, float, str, bool, list, dict, unions, Literal)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(tp)
        out = _type_schema(base)
        if HEX in meta:
            out = {"type": "string", "pattern": _HEX_PATTERN}
        docs = [m for m in meta if isinstance(m, str) and m != HEX]
        if docs:
            out["description"] = docs[-1]
        return out
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        return {"anyOf": [_type_schema(a) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin is list:
        (item,) = typing.get_args(tp)
        return {"type": "array", "items": _type_schema(item)}
    if origin is dict:
        _, value = typing.get_args(tp)
        return {"type": "object", "additionalProperties": _type_schema(value)}
    simple = {
        int: {"type": "integer"},
        float: {"type": "number"},
        str: {"type": "string"},
        bool: {"type": "boolean"},
        bytes: {"type": "string", "pattern": _HEX_PATTERN},
        type(None): {"type": "null"},
        typing.Any: {},
    }
    if tp in simple:
        return dict(simple[tp])
    raise TypeError(f"no JSON Schema for trace field type {tp!r}")


def event_schema(cls: type[TraceEvent]) -> dict[str, Any]:
    """The schema of one event class's lines."""
    hints = typing.get_type_hints(cls, include_extras=True)
    props: dict[str, Any] = {
        "t": _type_schema(hints["t"]),
        "kind": {"const": cls.KIND},
        "source": _type_schema(hints["source"]),
        "wall": {"type": "number", "description": "Unix time, s (real-time runs only)"},
    }
    required = ["t", "kind", "source"]
    # msgspec keeps the defaults of the last fields (NODEFAULT between them): align from the end
    names, given = cls.__struct_fields__[::-1], cls.__struct_defaults__[::-1]
    defaults = dict(zip(names, given, strict=False))
    for name in cls._declared:
        key = name.rstrip("_")
        props[key] = _type_schema(hints[name])
        if defaults.get(name, None) is not UNSET:  # required or nullable: always written
            required.append(key)
    doc = " ".join((cls.__doc__ or "").split())
    return {
        "title": cls.__name__,
        "description": doc,
        "x-event-version": cls.version,
        "type": "object",
        "properties": props,
        "required": sorted(required),
        "additionalProperties": False,
    }


def header_schema() -> dict[str, Any]:
    return {
        "title": "TraceHeader",
        "description": "First line of every trace file: format and schema version.",
        "type": "object",
        "properties": {
            "kind": {"const": HEADER_KIND},
            "format": {"const": TRACE_FORMAT},
            "schema": {"const": TRACE_SCHEMA_VERSION},
        },
        "required": ["format", "kind", "schema"],
        "additionalProperties": False,
    }


def trace_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one line of a ``trace.jsonl`` file."""
    defs = {HEADER_KIND: header_schema()}
    for kind in sorted(EVENT_TYPES):
        defs[kind] = event_schema(EVENT_TYPES[kind])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "meterbench trace.jsonl line",
        "description": (
            "One line of a meterbench trace file. The first line is the header "
            f"(kind {HEADER_KIND!r}, schema {TRACE_SCHEMA_VERSION}); every other line is one "
            "event, told apart by its 'kind'. Generated from simulator/core/events.py."
        ),
        "x-trace-schema-version": TRACE_SCHEMA_VERSION,
        "oneOf": [{"$ref": f"#/$defs/{k}"} for k in defs],
        "$defs": defs,
    }


def schema_text() -> str:
    """The schema as shipped in docs/trace.schema.json (2-space indent, sorted, newline)."""
    return json.dumps(trace_schema(), indent=2, sort_keys=True) + "\n"


def events_markdown() -> str:
    """The event table of docs/trace.md (kind, version, fields; optional ones in brackets)."""
    rows = ["| kind | v | fields (`[optional]`, `?` nullable) | what |", "|---|---|---|---|"]
    for kind in sorted(EVENT_TYPES):
        d = event_schema(EVENT_TYPES[kind])
        names = []
        for key, prop in d["properties"].items():
            if key in ("t", "kind", "source", "wall"):
                continue
            nullable = {"type": "null"} in prop.get("anyOf", [])
            name = f"`{key}`" + ("?" if nullable else "")
            names.append(name if key in d["required"] else f"[{name}]")
        first = d["description"].split(". ")[0].rstrip(".")
        rows.append(f"| `{kind}` | {d['x-event-version']} | {', '.join(names) or '-'} | {first} |")
    return "\n".join(rows) + "\n"


# -- checking a file -------------------------------------------------------------------------
class TraceVersionError(Exception):
    """The file is not a trace of this schema version (no header, or another version)."""


@dataclass(frozen=True)
class LineError:
    """One invalid line: ``line`` (1-based), ``field`` (JSON path, ``""`` = the whole line)."""

    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f" field {self.field!r}:" if self.field else ""
        return f"{self.path}:{self.line}:{where} {self.message}"


def _validators() -> dict[str, Any]:
    from jsonschema import Draft202012Validator

    return {k: Draft202012Validator(v) for k, v in trace_schema()["$defs"].items()}


def validate_trace(path: str | Path, *, max_errors: int | None = None) -> list[LineError]:
    """Every invalid line of the trace at ``path`` (empty list: valid).

    Raises :class:`TraceVersionError` when the first line is not a header of schema
    :data:`TRACE_SCHEMA_VERSION` (a version 1 trace has no header), and OSError /
    UnicodeDecodeError when the file cannot be read.
    """
    path = Path(path)
    validators = _validators()
    errors: list[LineError] = []
    with path.open(encoding="utf-8") as fh:
        first = fh.readline()
        _check_header(path, first)
        errors += _line_errors(path, 1, first, validators)
        for n, line in enumerate(fh, start=2):
            if max_errors is not None and len(errors) >= max_errors:
                break
            errors += _line_errors(path, n, line, validators)
    return errors


def _check_header(path: Path, first: str) -> None:
    try:
        head = json.loads(first)
    except json.JSONDecodeError:
        head = None
    if not isinstance(head, dict) or head.get("kind") != HEADER_KIND:
        raise TraceVersionError(
            f"{path}: no trace header on line 1: a schema version 1 trace (untyped, before "
            f"typed events) or not a trace; expected schema {TRACE_SCHEMA_VERSION}"
        )
    found = head.get("schema")
    if found != TRACE_SCHEMA_VERSION:
        raise TraceVersionError(
            f"{path}: trace schema version {found!r}, this meterbench reads version "
            f"{TRACE_SCHEMA_VERSION}"
        )


def _line_errors(path: Path, n: int, line: str, validators: dict[str, Any]) -> list[LineError]:
    if not line.strip():
        return [LineError(str(path), n, "", "empty line")]
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return [LineError(str(path), n, "", f"not JSON: {exc.msg} at column {exc.colno}")]
    if not isinstance(obj, dict):
        return [LineError(str(path), n, "", "not a JSON object")]
    kind = obj.get("kind")
    v = validators.get(kind) if isinstance(kind, str) else None
    if v is None:
        return [LineError(str(path), n, "kind", f"unknown event kind {kind!r}")]
    if kind == HEADER_KIND and n != 1:
        return [LineError(str(path), n, "kind", "header line after line 1")]
    out = []
    for err in sorted(v.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        field = ".".join(str(p) for p in err.absolute_path)
        if not field and err.validator == "additionalProperties":
            extra = sorted(set(obj) - set(v.schema["properties"]))
            field = ",".join(extra)
            msg = f"field(s) not in {kind!r} events"
        elif not field and err.validator == "required":
            msg = err.message
            field = msg.split("'")[1] if "'" in msg else ""
        else:
            msg = err.message
        out.append(LineError(str(path), n, field, msg))
    return out


__all__ = [
    "LineError",
    "TraceVersionError",
    "event_schema",
    "schema_text",
    "trace_schema",
    "validate_trace",
]
