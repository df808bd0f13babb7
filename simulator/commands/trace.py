"""``meterbench trace``: check trace files against the trace schema (docs/trace.md).

* ``meterbench trace validate FILE...``: every invalid line as ``FILE:LINE: field 'NAME':
  message``; a file without a header (a schema 1 trace) or of another schema version gives
  one error naming the version found and the one expected. Exit 0: all valid, 1: invalid,
  2: a file cannot be read.
* ``meterbench trace schema``: print the JSON Schema (the content of docs/trace.schema.json).
"""

from __future__ import annotations

import sys

from simulator.core.events import TRACE_SCHEMA_VERSION


def add_parser(sub) -> None:
    p = sub.add_parser("trace", help="trace files: validate against the schema, print the schema")
    verbs = p.add_subparsers(dest="trace_verb", metavar="ACTION")
    v = verbs.add_parser(
        "validate", help=f"check trace.jsonl files against schema {TRACE_SCHEMA_VERSION}"
    )
    v.add_argument("files", nargs="+", metavar="FILE", help="trace.jsonl file(s)")
    v.add_argument(
        "--max-errors", type=int, default=None, metavar="N", help="stop a file after N errors"
    )
    v.set_defaults(func=_validate)
    s = verbs.add_parser("schema", help="print the JSON Schema of a trace line")
    s.set_defaults(func=_schema)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _validate(args) -> int:
    from simulator.core.trace_schema import TraceVersionError, validate_trace

    worst = 0
    for name in args.files:
        try:
            errors = validate_trace(name, max_errors=args.max_errors)
        except TraceVersionError as exc:
            print(f"meterbench trace validate: {exc}", file=sys.stderr)
            worst = max(worst, 1)
            continue
        except (OSError, UnicodeDecodeError) as exc:
            print(f"meterbench trace validate: {name}: cannot read: {exc}", file=sys.stderr)
            worst = 2
            continue
        for err in errors:
            print(err)
        if errors:
            lines = len({err.line for err in errors})
            print(f"{name}: {lines} invalid line(s)", file=sys.stderr)
            worst = max(worst, 1)
        else:
            print(f"{name}: valid (trace schema {TRACE_SCHEMA_VERSION})")
    return worst


def _schema(args) -> int:
    from simulator.core.trace_schema import schema_text

    sys.stdout.write(schema_text())
    return 0
