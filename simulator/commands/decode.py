"""``meterbench decode [HEX ...] [--file F] [--json] [--wmbus] [--key HEX | --keys FILE]``.

Decodes wired M-Bus frames (EN 13757-2/-3) and prints one readable block per frame, or with
``--json`` one JSON object per frame and line (the :func:`telegram_json` shape plus a
``"frame"`` part with C, A and CI). Input:

* HEX arguments are joined (spaces and ``0x`` are ignored, so ``68 15 15 68 ..`` works) and
  split into frames back to back (``E5``, short, control and long frames may follow each
  other). Input that does not start with ``E5``/``10``/``68`` is read as a frame body
  ``C A CI data`` without link header, as the Elvaco Stream mode reports carry it (seed 003
  §9.3.2, §9.4).
* ``--file F``: one frame per line (``#`` comments and blank lines skipped; in a ``;``-separated
  Stream mode CSV line ``serial;device id;date;count;telegram-hex`` the last field is the
  telegram, and the heading line ``(...;telegram)`` is skipped); a file whose lines together form one
  frame (the libmbus ``.hex`` files) is read as that frame.

Errors (bad hex, :class:`~simulator.mbus.errors.MBusError` with offset) are printed to stderr
and, with ``--json``, as ``{"error": ...}`` objects; the next frame is still decoded. Exit
status: 0 all decoded, 1 at least one error, 2 usage (no input, bad ``--key``/``--keys``,
``--wmbus`` unavailable). ``--wmbus`` hands the same arguments to
``simulator.wmbus.decode_cli.main``.

wM-Bus containers: a record ``0D FD 3B <len> <telegram>`` (a CMe3100 Stream Plugin or wM-Bus
gateway forwarding a wireless telegram from its L-field, CRCs removed; seed 003 §9.4) is opened
with :func:`simulator.wmbus.decode_cli.open_container`, decrypted with ``--key``/``--keys`` when
given. The text table shows the inner link header, TPL security mode and records under the
container row; ``--json`` adds to that record an ``"inner"`` object in the ``--wmbus --json``
shape (or ``{"source", "error"}``). A container that does not parse or cannot be decrypted is
shown with its typed error (offset counted from the container's L-field) and a warning on
stderr; it does not change the exit status: the outer frame decoded, so that frame counts as
decoded (0).
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from simulator.mbus.errors import ApplicationError, MBusError
from simulator.mbus.frames import (
    ACK,
    START_LONG,
    START_SHORT,
    ControlFrame,
    Frame,
    LongFrame,
    describe,
    frame_length,
    parse_body,
    parse_frame,
)
from simulator.mbus.telegram import MEDIUM_NAMES, Telegram, decode_telegram, telegram_json

WMBUS_MODULE = "simulator.wmbus.decode_cli"
_STARTS = (ACK, START_SHORT, START_LONG)


def add_parser(sub) -> None:
    p = sub.add_parser("decode", help="decode wired M-Bus frames (or wM-Bus with --wmbus)")
    p.add_argument(
        "hex", nargs="*", help="frame bytes in hex, with or without spaces; - reads stdin"
    )
    p.add_argument(
        "--file",
        "-f",
        type=Path,
        default=None,
        help="file with one frame per line, or one frame over several lines (- = stdin)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per frame")
    p.add_argument("--wmbus", action="store_true", help="decode wireless M-Bus telegrams")
    p.add_argument(
        "--key",
        default=None,
        help="AES-128 key (32 hex characters) for wM-Bus telegrams/containers",
    )
    p.add_argument(
        "--keys", default=None, help="key file (CMe3100 format) for wM-Bus telegrams/containers"
    )
    p.set_defaults(func=main)


class InputError(Exception):
    """Input that is not hex at all; carries where it came from."""


def clean_hex(text: str, where: str) -> bytes:
    """Hex text -> bytes; spaces, ``:``, ``-`` and ``0x`` prefixes are ignored."""
    t = re.sub(r"0[xX]", "", text)
    t = re.sub(r"[\s:,-]", "", t)
    if len(t) % 2:
        raise InputError(f"{where}: odd number of hex digits ({len(t)})")
    try:
        return bytes.fromhex(t)
    except ValueError:
        bad = next((i for i, ch in enumerate(t) if ch not in "0123456789abcdefABCDEF"), 0)
        raise InputError(f"{where}: not hex at character {bad} ({t[bad]!r})") from None


def _is_whole(buf: bytes) -> bool:
    """True if ``buf`` is exactly one frame, or a frame body (Stream mode)."""
    if not buf:
        return False
    if buf[0] not in _STARTS:
        return True
    try:
        return frame_length(buf) == len(buf)
    except MBusError:
        return False


def read_units(args) -> list[tuple[str, bytes | InputError]]:
    """The byte strings to decode, each with where it came from (``argument``, ``F:line``).

    ``-`` as the only HEX argument, or ``--file -``, reads standard input like a file
    (lines named ``stdin:N``).
    """
    units: list[tuple[str, bytes | InputError]] = []
    hex_args = list(args.hex)
    if hex_args == ["-"]:
        units.extend(_lines(sys.stdin.read(), "stdin"))
        hex_args = []
    if hex_args:
        try:
            units.append(("argument", clean_hex("".join(hex_args), "argument")))
        except InputError as exc:
            units.append(("argument", exc))
    if args.file is not None:
        if str(args.file) == "-":
            units.extend(_lines(sys.stdin.read(), "stdin"))
        else:
            text = Path(args.file).read_text(encoding="utf-8", errors="replace")
            units.extend(_lines(text, str(args.file)))
    return units


def _lines(text: str, name: str) -> list[tuple[str, bytes | InputError]]:
    """The units of a file's text: one frame per line, or one frame over several lines."""
    lines: list[tuple[str, bytes | InputError]] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if ";" in line:  # Stream mode CSV: (serial;device;date;count;telegram)
            line = line.rstrip(")").split(";")[-1]
            if line.strip().lower() == "telegram":  # the heading line (seed 003 §9.3.2)
                continue
        where = f"{name}:{n}"
        try:
            lines.append((where, clean_hex(line, where)))
        except InputError as exc:
            lines.append((where, exc))
    good = [b for _, b in lines if isinstance(b, bytes)]
    if len(lines) > 1 and good and not all(_is_whole(b) for b in good):
        joined = b"".join(good)
        if _is_whole(joined) or (joined[:1] and joined[0] in _STARTS):
            lines = [(name, joined)]
    return lines


def split_unit(buf: bytes) -> list[tuple[int, Frame | MBusError]]:
    """Frames back to back (or one body) -> [(start offset, frame or error)]."""
    if not buf:
        return []
    if buf[0] not in _STARTS:
        try:
            return [(0, parse_body(buf))]
        except MBusError as exc:
            return [(0, exc)]
    out: list[tuple[int, Frame | MBusError]] = []
    pos = 0
    while pos < len(buf):
        rest = buf[pos:]
        try:
            total = frame_length(rest)
        except MBusError as exc:
            out.append((pos, exc))  # cannot find the next frame boundary: give up on the rest
            break
        if total is None or total > len(rest):
            total = len(rest)
        try:
            out.append((pos, parse_frame(rest[:total])))
        except MBusError as exc:
            out.append((pos, exc))
        pos += total
    return out


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.10g}"
    if isinstance(v, bytes):
        return v.hex().upper()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return "" if v is None else str(v)


def format_telegram(
    t: Telegram,
    nested: dict[int, list[str]] | None = None,
    value_cells: dict[int, str] | None = None,
) -> str:
    """A readable block: header line, then one row per record.

    ``nested``: record index -> lines printed indented under that record's row (an opened
    wM-Bus container); ``value_cells``: record index -> text shown instead of the value (an
    opened container names its telegram rather than repeating its bytes).
    """
    nested = nested or {}
    value_cells = value_cells or {}
    h = t.header
    lines = []
    if h.raw_address is not None:
        j = telegram_json(t)["header"]
        lines.append(
            f"  id {j['id']}  manufacturer {j['manufacturer']}  version {j['version']}  "
            f"medium {MEDIUM_NAMES.get(j['medium_code'], 'reserved')} ({j['medium_code']:02X})"
        )
    lines.append(
        f"  CI {h.ci:02X}  access {h.access_no}  status {h.status:02X}"
        + (f" ({', '.join(h.status_flags)})" if h.status_flags else "")
        + f"  signature {h.signature:04X}"
    )
    rows = [("#", "function", "st", "ta", "su", "quantity", "value", "unit", "coding")]
    for i, r in enumerate(t.records):
        unit = r.unit or (r.plain_unit or "")
        value = _fmt_value(r.value) if r.invalid is None else f"? ({r.invalid}: {r.data.hex()})"
        value = value_cells.get(i, value)
        coding = " ".join(f"{b:02X}" for b in (r.dif, *r.dife, r.vif, *r.vife))
        extra = f" [{'; '.join(r.vife_text)}]" if r.vife_text else ""
        rows.append(
            (
                str(i),
                r.function,
                str(r.storage),
                str(r.tariff),
                str(r.subunit),
                r.quantity + extra,
                value,
                unit,
                coding,
            )
        )
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    for n, row in enumerate(rows):
        lines.append(
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        )
        lines.extend(f"      | {text}" for text in nested.get(n - 1, ()))
    if t.more_follow:
        lines.append("  (more records follow in the next telegram: DIF 1F)")
    if t.manufacturer_data:
        lines.append(f"  manufacturer data: {t.manufacturer_data.hex(' ').upper()}")
    return "\n".join(lines)


def _error_json(where: str, exc: Exception) -> dict[str, Any]:
    err: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, MBusError):
        err.update(offset=exc.offset, reason=exc.reason)
    if isinstance(exc, ApplicationError):
        err.update(code=exc.code, meaning=exc.meaning)
    return {"source": where, "error": err}


def _frame_json(frame: Frame) -> dict[str, Any]:
    if not hasattr(frame, "c"):
        return {"type": "ack"}
    out: dict[str, Any] = {
        "type": type(frame).__name__,
        "c": f"{frame.c:02X}",
        "a": frame.a,
        "function": frame.name,
    }
    if isinstance(frame, LongFrame | ControlFrame):
        out["ci"] = f"{frame.ci:02X}"
    return out


@dataclass
class Containers:
    """How to open wM-Bus container records: the wM-Bus decode module and the key(s)."""

    module: ModuleType | None = None
    keys: Any = None

    def open_all(self, t: Telegram, label: str, err: TextIO) -> dict[int, Any]:
        """Record index -> parsed inner telegram or its WMBusError, for every container."""
        if self.module is None:
            return {}
        error_types = self.module.WMBusError
        found: dict[int, Any] = {}
        for i, r in enumerate(t.records):
            if r.quantity != "container" or r.invalid is not None or not r.data:
                continue
            try:
                found[i] = self.module.open_container(r.data, self.keys)
            except error_types as exc:
                found[i] = exc
                print(
                    f"warning: {label}: record {i} (container): {type(exc).__name__}: {exc}",
                    file=err,
                )
        return found

    def table_parts(
        self, t: Telegram, inner: dict[int, Any]
    ) -> tuple[dict[int, list[str]], dict[int, str]]:
        """The ``nested`` lines and ``value_cells`` of :func:`format_telegram` for ``inner``."""
        nested: dict[int, list[str]] = {}
        cells: dict[int, str] = {}
        for i, item in inner.items():
            if isinstance(item, self.module.WMBusError):
                nested[i] = [
                    "container not decoded (offsets from its L-field): "
                    f"{type(item).__name__}: {item}"
                ]
            else:
                nested[i] = self.module.describe(item).splitlines()
                cells[i] = f"wM-Bus telegram, {len(t.records[i].data)} bytes:"
        return nested, cells


def decode_all(args, out: TextIO, err: TextIO, containers: Containers | None = None) -> int:
    units = read_units(args)
    if not units:
        print("meterbench decode: no input (give HEX arguments or --file)", file=err)
        return 2
    status = 0
    count = 0
    for where, buf in units:
        if isinstance(buf, InputError):
            status = 1
            print(f"error: {buf}", file=err)
            if args.json:
                print(json.dumps(_error_json(where, buf), ensure_ascii=False), file=out)
            continue
        for start, item in split_unit(buf):
            count += 1
            label = f"{where}" + (f" @{start}" if start else "")
            if isinstance(item, MBusError):
                status = 1
                print(f"error: {label}: {type(item).__name__}: {item}", file=err)
                if args.json:
                    print(json.dumps(_error_json(label, item), ensure_ascii=False), file=out)
                continue
            status |= _emit(item, label, count, args.json, out, err, containers or Containers())
    return status


def _emit(
    frame: Frame,
    label: str,
    count: int,
    as_json: bool,
    out: TextIO,
    err: TextIO,
    containers: Containers,
) -> int:
    telegram = None
    if (
        isinstance(frame, LongFrame | ControlFrame)
        and frame.ci in (0x70, 0x72, 0x73, 0x78, 0x7A)
        and not frame.calling
    ):
        try:
            telegram = decode_telegram(frame)
        except MBusError as exc:
            print(f"error: {label}: {type(exc).__name__}: {exc}", file=err)
            if as_json:
                doc = _error_json(label, exc)
                doc["frame"] = _frame_json(frame)
                print(json.dumps(doc, ensure_ascii=False), file=out)
            else:
                print(f"frame {count} ({label}): {describe(frame)}", file=out)
            return 1
    inner = containers.open_all(telegram, label, err) if telegram is not None else {}
    if as_json:
        doc = telegram_json(telegram) if telegram is not None else {}
        for i, item in inner.items():
            doc["records"][i]["inner"] = containers.module.container_json(
                item, f"{label} record {i}"
            )
        doc["frame"] = _frame_json(frame)
        doc["source"] = label
        print(json.dumps(doc, ensure_ascii=False), file=out)
    else:
        print(f"frame {count} ({label}): {describe(frame)}", file=out)
        if telegram is not None:
            nested, cells = containers.table_parts(telegram, inner)
            print(format_telegram(telegram, nested, cells), file=out)
    return 0


def _wmbus_module() -> ModuleType | None:
    """The wM-Bus decode module, or ``None`` if it is not installed."""
    try:
        return importlib.import_module(WMBUS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name and WMBUS_MODULE.startswith(exc.name):
            return None
        raise


def _not_available(err: TextIO) -> int:
    print(
        f"meterbench decode: wM-Bus decoding is not available ({WMBUS_MODULE} is not installed)",
        file=err,
    )
    return 2


def _run_wmbus(args, out: TextIO, err: TextIO) -> int:
    module = _wmbus_module()
    if module is None:
        return _not_available(err)
    return int(module.main(args, out, err) or 0)


def _containers(args, err: TextIO) -> Containers | int:
    """The container opener for a wired decode, or an exit status 2 (bad key usage)."""
    module = _wmbus_module()
    if module is None:
        # without the wM-Bus module containers stay hex blobs; keys cannot be used at all
        return _not_available(err) if (args.key or args.keys) else Containers()
    try:
        return Containers(module, module.parse_keys(args))
    except (module.UsageError, module.KeyFileError) as exc:
        print(f"meterbench decode: {exc}", file=err)
        return 2


def main(args, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if args.wmbus:
        return _run_wmbus(args, out, err)
    containers = _containers(args, err)
    if isinstance(containers, int):
        return containers
    try:
        return decode_all(args, out, err, containers)
    except OSError as exc:
        print(f"meterbench decode: {exc}", file=err)
        return 2
