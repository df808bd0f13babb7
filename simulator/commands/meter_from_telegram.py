"""A new meter type file from a real telegram (``meterbench meter from-telegram HEX``).

Wired: a long frame (``68 L L 68 08 A 72 ...``, EN 13757-2) with a long header (CI 72: the
secondary address gives ID, manufacturer, version, medium). Wireless: a wM-Bus telegram from
its L-field (EN 13757-4, unencrypted or with ``key``). Every data record becomes a record with
its DIF/VIF coding (data field, storage, tariff, subunit, function, VIFEs) and a ``constant``
profile at the telegram's value; the telegram is the file's golden telegram and its
``decode --json`` the expected decode. Records the model cannot send back (plain-text or
manufacturer-specific VIFs, invalid values, DIF 0F/1F tails) are listed in a comment and left
out. Raises ``ValueError`` for input that is neither.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from simulator.commands.meter_golden import decode_json
from simulator.mbus.frames import LongFrame, parse_frame
from simulator.mbus.telegram import MEDIUM_NAMES, decode_telegram

_UNSUPPORTED_VIF = (0x7C, 0x7E, 0x7F)  # plain text, any VIF, manufacturer specific


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, datetime):
        return v.replace(tzinfo=None).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bytes):
        return f'{{ hex = "{v.hex().upper()}" }}'
    return json.dumps(str(v), ensure_ascii=False)  # a TOML basic string


def _decode(raw: bytes, key: bytes | None) -> tuple[str, dict[str, Any], list]:
    """(link, identity, records) of a wired long frame or a wireless telegram."""
    if raw[:1] == b"\x68":
        frame = parse_frame(raw)
        if not isinstance(frame, LongFrame):
            raise ValueError("a wired telegram must be a long frame (68 L L 68 ... 16)")
        t = decode_telegram(frame)
        a = t.header.address
        if a is None:
            raise ValueError(
                "the telegram has no long header (CI 72): no manufacturer, version, medium"
            )
        ident = dict(id=a.id, manufacturer=a.manufacturer, version=a.version, medium=a.medium)
        return "wired", ident, t.records
    from simulator.wmbus.frame import WMBusError
    from simulator.wmbus.telegram import parse_telegram

    try:
        w = parse_telegram(raw, keys=key)
    except WMBusError as exc:
        raise ValueError(f"not a wired long frame (68 ...) nor a wM-Bus telegram: {exc}") from None
    if w.encrypted and not w.decrypted:
        raise ValueError("the wireless telegram is encrypted: give its key")
    lk = w.link
    ident = dict(id=lk.id, manufacturer=lk.manufacturer, version=lk.version, medium=lk.device_type)
    return "wireless", ident, w.records


def meter_file_text(raw: bytes, name: str | None = None, key: bytes | None = None) -> str:
    """The TOML text of a meter type file modelled on the telegram ``raw``."""
    link, ident, records = _decode(raw, key)
    expected = decode_json(raw, link) if key is None else None
    if expected is None:
        raise ValueError("golden telegrams must decode without a key; give a plain telegram")
    medium_name = MEDIUM_NAMES.get(ident["medium"], "meter")
    name = name or f"{ident['manufacturer'].lower()}_{ident['medium']:02x}_v{ident['version']}"
    lines = [
        f"# Modelled on a real {link} telegram by `meterbench meter from-telegram`: every record",
        "# is a constant at the telegram's value; replace profiles to make it move.",
        f"name = {json.dumps(name)}",
        f"description = {json.dumps(medium_name + ' (' + ident['manufacturer'] + ')')}",
        f'manufacturer = "{ident["manufacturer"]}"',
        f"version = {ident['version']}",
        f"medium = 0x{ident['medium']:02X}",
        "",
        "[wired]",
        "",
        "[wireless]",
        "",
    ]
    skipped: list[str] = []
    used: dict[str, int] = {}
    for r in records:
        vif = r.vif & 0x7F
        if r.invalid or (r.dif & 0x0F) == 0xF or vif in _UNSUPPORTED_VIF or r.plain_unit:
            skipped.append(f"{r.quantity} (DIF {r.dif:02X} VIF {r.vif:02X})")
            continue
        base = r.quantity if r.quantity[:1].isalpha() else f"q_{r.quantity}"
        base = "".join(c if c.isalnum() else "_" for c in base.lower())
        used[base] = used.get(base, 0) + 1
        rec_name = base if used[base] == 1 else f"{base}_{used[base]}"
        lines += [
            "[[records]]",
            f"name = {json.dumps(rec_name)}",
            f"data_field = 0x{r.dif & 0x0F:X}",
            f"vif = 0x{vif:02X}",
        ]
        if r.vife:
            lines.append(f"vife = [{', '.join(f'0x{b & 0x7F:02X}' for b in r.vife)}]")
        for field in ("storage", "tariff", "subunit"):
            if getattr(r, field):
                lines.append(f"{field} = {getattr(r, field)}")
        if r.function != "instantaneous":
            lines.append(f'function = "{r.function}"')
        lines += [f'profile = {{ kind = "constant", value = {_toml_value(r.value)} }}', ""]
    if not used:
        raise ValueError(f"no record of the telegram can be modelled (left out: {skipped})")
    if skipped:
        lines[2:2] = ["# Not modelled: " + ", ".join(skipped)]
    lines += [
        "[[golden]]",
        f'link = "{link}"',
        'source = "meterbench meter from-telegram"',
        f"id = {ident['id']}",
        "rebuild = false       # a real meter's bytes; the model sends the same records",
        f'telegram = "{raw.hex(" ").upper()}"',
        "expected = '''",
        json.dumps(expected, indent=1, ensure_ascii=False),
        "'''",
        "",
    ]
    return "\n".join(lines)
