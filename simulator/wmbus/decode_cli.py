"""``meterbench decode --wmbus``: decode (and decrypt) wireless M-Bus telegrams.

Called by the ``decode`` verb (``simulator/commands/decode.py``) as ``main(args)`` with
``args.hex`` (list of hex words: joined into *one* telegram, so ``2E 44 93 ..`` works),
``args.file`` (one telegram per line; ``#`` comments and blank lines skipped; rtlwmbus lines
``T1;1;1;date;rssi;;id;0x<hex>`` use their last field; wmbusmeters simulation files:
``telegram=|<hex>|`` lines, their expected-JSON ``{...}`` lines skipped; ``-``, or ``-`` as
the only HEX argument, reads standard input), ``args.json``, ``args.key`` (32 hex
characters) and ``args.keys`` (a CMe3100 key file, seed 002 §6.15).

Frame format A or B, with or without block CRCs, is detected. The telegrams of one call
share one receiver memory: a full frame teaches the format of later compact frames (CI 79)
and AFL fragments are joined into their message (a message still open at the end is an
error). Exit status: 0 all telegrams
decoded, 1 at least one failed (each failure is reported with its line and offset, the others
are still decoded), 2 bad usage (no input, bad key, bad key file: every bad line listed).
``--json`` prints one JSON object per telegram and line, like the wired ``decode``.

:func:`parse_keys`, :func:`open_container` and :func:`container_json` are also used by the wired
``decode`` to open the wM-Bus container record ``0D FD 3B`` (seed 003 §9.4) of a gateway's
RSP_UD.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, TextIO

from simulator.wmbus.afl import FragmentError
from simulator.wmbus.frame import KeyFileError, WMBusError
from simulator.wmbus.keys import KeyStore
from simulator.wmbus.listener import Listener
from simulator.wmbus.telegram import WMBusTelegram, parse_telegram, telegram_json


class UsageError(Exception):
    """Bad command-line input (exit status 2)."""


#: A wmbusmeters simulation-file line: ``telegram=|HEX|`` (``||`` = logged undecrypted; ``_``
#: marks the header/payload split; an optional ``+<seconds>`` after the closing bar).
_SIMULATION_LINE = re.compile(r"telegram=\|+([^|]*)\|(?:\+\d+)?")


def _clean_hex(text: str, where: str) -> bytes:
    t = text.strip()
    if t.startswith("telegram="):
        m = _SIMULATION_LINE.fullmatch(t)
        if m is None:
            raise UsageError(f"{where}: expected telegram=|HEX| (a wmbusmeters simulation line)")
        t = m.group(1)
    elif ";" in t:  # rtlwmbus / wmbusmeters simulation line: the telegram is the last field
        t = t.rsplit(";", 1)[1]
    t = t.replace(" ", "").replace(":", "").replace("_", "")
    if t[:2].lower() == "0x":
        t = t[2:]
    try:
        return bytes.fromhex(t)
    except ValueError:
        bad = next((i for i, ch in enumerate(t) if ch not in "0123456789abcdefABCDEF"), len(t))
        raise UsageError(
            f"{where}: not hex at character {bad}"
            if bad < len(t)
            else f"{where}: odd number of hex digits ({len(t)})"
        ) from None


def _inputs(args) -> list[tuple[str, bytes | UsageError]]:
    items: list[tuple[str, bytes | UsageError]] = []
    words = list(getattr(args, "hex", None) or [])
    sources = []  # files read line by line; "-" is standard input
    if words == ["-"]:
        words, sources = [], ["-"]
    if words:
        try:
            items.append(("argument", _clean_hex("".join(words), "argument")))
        except UsageError as exc:
            items.append(("argument", exc))
    path = getattr(args, "file", None)
    if path:
        sources.append(path)
    for path in sources:
        name = "stdin" if str(path) == "-" else str(path)
        try:
            if name == "stdin":
                lines = sys.stdin.read().splitlines()
            else:
                with open(path, encoding="utf-8") as fh:
                    lines = fh.read().splitlines()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc}") from None
        for n, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith(("#", "{")):
                continue  # "{" skips the expected-JSON lines of wmbusmeters simulation files
            where = f"{name}:{n}"
            try:
                items.append((where, _clean_hex(line, where)))
            except UsageError as exc:
                items.append((where, exc))
    if not items:
        raise UsageError("no telegram given (HEX arguments or --file)")
    return items


def parse_keys(args) -> KeyStore | bytes | None:
    """``args.key`` (32 hex characters) or ``args.keys`` (CMe3100 key file) -> key(s) or None.

    Raises :class:`UsageError` (both given, bad length, not hex) or
    :class:`~simulator.wmbus.frame.KeyFileError` (bad key file, every bad line listed).
    """
    key_hex = getattr(args, "key", None)
    key_file = getattr(args, "keys", None)
    if key_hex and key_file:
        raise UsageError("give --key or --keys, not both")
    if key_hex:
        k = key_hex.strip().replace(" ", "")
        if len(k) != 32:
            raise UsageError(f"--key must be 32 hex characters (AES-128), got {len(k)}")
        try:
            return bytes.fromhex(k)
        except ValueError:
            raise UsageError("--key is not hex") from None
    if key_file:
        return KeyStore.from_csv(key_file)
    return None


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.10g}"
    if isinstance(v, bytes):
        return v.hex().upper()
    return str(v)


def describe(t: WMBusTelegram) -> str:
    """Multi-line human summary of a parsed telegram."""
    lk = t.link
    lines = [
        f"{lk.c_name} {lk.manufacturer} {lk.id_text} version {lk.version} "
        f"device type {lk.device_type} (format {t.fmt}, {'CRCs ok' if t.crc else 'no CRCs'})"
    ]
    if t.ell:
        e = t.ell
        extra = f" SN={e['sn']:08X} security {e['security_mode']}" if "sn" in e else ""
        lines.append(f"ELL CI {e['ci']} CC={e['cc']:02X} ACC={e['acc']}{extra}")
    if t.afl:
        a = t.afl
        frag = f" in {a['fragments']} fragments" if a.get("fragments", 1) > 1 else ""
        lines.append(f"AFL MCL={a['mcl']} MCR={a['mcr']} MAC={a['mac']}{frag}")
    if t.format_signature is not None:
        lines.append(f"compact frame (CI 79), format signature {t.format_signature:04X}")
    if t.tpl:
        p = t.tpl
        hdr = f"TPL CI {p['ci']}"
        if p["ci"] != "78":
            hdr += (
                f" ACC={p['access_no']} status={p['status']:02X} config={p['config']:04X}"
                f" security mode {p['security_mode']}"
            )
        if "address" in p:
            hdr += f" address {p['address']}"
        lines.append(hdr)
    if t.encrypted:
        lines.append("encrypted, " + ("decrypted" if t.decrypted else "NOT decrypted"))
    if t.records_error:
        lines.append(f"records not decoded: {t.records_error}")
    for i, r in enumerate(t.records):
        unit = f" {r.unit}" if r.unit else ""
        lines.append(
            f"  {i:2d} {r.quantity:<24} {_value(r.value)}{unit}  "
            f"({r.function}, storage {r.storage}, tariff {r.tariff}, subunit {r.subunit})"
        )
    if t.more_follow:
        lines.append("  more records follow (DIF 1F)")
    if t.manufacturer_data:
        lines.append(f"  manufacturer data {t.manufacturer_data.hex().upper()}")
    return "\n".join(lines)


def _error_json(where: str, exc: Exception) -> dict:
    err: dict = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, WMBusError):
        err.update(offset=exc.offset, reason=exc.reason)
    return {"source": where, "error": err}


def open_container(data: bytes, keys: KeyStore | bytes | None = None) -> WMBusTelegram:
    """Parse the wireless telegram of a wired container record ``0D FD 3B <len> <telegram>``.

    ``data``: the record's data, the telegram from its L-field with the block CRCs removed
    (seed 003 §9.4.2), so it is parsed with ``crc=False``; ``keys`` as
    :func:`~simulator.wmbus.telegram.parse_telegram`. An encrypted telegram without a key is
    returned undecrypted (``decrypted=False``, ``records_error`` says why).

    Raises the :class:`~simulator.wmbus.frame.WMBusError` subclasses of ``parse_telegram``
    (``FrameError``, ``LayerError``, ``WrongKeyError``, ``SecurityError``); their offsets
    count from the container's L-field (byte 0 of ``data``).
    """
    return parse_telegram(data, keys=keys, crc=False)


def container_json(t: WMBusTelegram | WMBusError, where: str) -> dict:
    """The ``"inner"`` object of a container record in the wired ``decode --json``: the
    ``decode --wmbus --json`` shape of the telegram, or its ``{"source", "error"}`` object."""
    if isinstance(t, WMBusError):
        return _error_json(where, t)
    doc = telegram_json(t)
    doc["source"] = where
    return doc


def main(args, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the decode; returns the exit status (0 ok, 1 a telegram failed, 2 usage).

    Text output: one block per telegram. ``--json``: one JSON object per telegram and line
    (:func:`~simulator.wmbus.telegram.telegram_json` plus ``"source"``), errors as
    ``{"source": ..., "error": {"type", "message", "offset", "reason"}}``, as the wired
    ``decode`` does.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    as_json = bool(getattr(args, "json", False))
    try:
        keys = parse_keys(args)
        items = _inputs(args)
    except (KeyFileError, UsageError) as exc:
        print(f"error: {exc}", file=err)
        return 2
    status = 0
    # One receiver's memory across the input, as wmbusmeters keeps it: formats learned from
    # full frames expand later compact frames; AFL fragments are joined into their message.
    memory = Listener()
    for where, raw in items:
        if isinstance(raw, UsageError):
            print(f"error: {raw}", file=err)
            if as_json:
                print(json.dumps(_error_json(where, raw), ensure_ascii=False), file=out)
            status = 1
            continue
        try:
            t = memory.parse(raw, keys)
        except WMBusError as exc:
            print(f"error: {where}: {type(exc).__name__}: {exc}", file=err)
            if as_json:
                print(json.dumps(_error_json(where, exc), ensure_ascii=False), file=out)
            status = 1
            continue
        if as_json:
            doc = telegram_json(t)
            doc["source"] = where
            print(json.dumps(doc, ensure_ascii=False), file=out)
        else:
            if len(items) > 1:
                print(f"# {where}", file=out)
            print(describe(t), file=out)
    for sender in memory.fragments.pending:
        exc = FragmentError(f"AFL message from {sender.hex().upper()}: last fragment missing")
        print(f"error: end of input: FragmentError: {exc}", file=err)
        if as_json:
            print(json.dumps(_error_json("end of input", exc), ensure_ascii=False), file=out)
        status = 1
    return status
