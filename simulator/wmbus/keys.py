"""The CMe3100 encryption key file and key matching (CMe3100 manual, seed 002 §6.15).

The file is CSV with the header ``Address, Key, Manufacturer, DeviceType, Version`` (any case,
any column order; ``,``, ``;`` or tab separated; Excel 97-2003 files are not read: save as
CSV). Each row is a key and the filter of the meters it applies to (Table 6):

* ``Address``: the meter's ID (up to 8 digits, e.g. ``13360079``; or 8 hex digits such as
  ``1234ABCD`` for the meters whose A-field ID is not BCD, as decoders print it) or its 16-hex
  secondary address (libmbus form, ID + manufacturer + version + medium), ``-1`` = any;
* ``Key``: 32 hex characters (AES-128);
* ``Manufacturer``: three letters, ``*`` = any;
* ``DeviceType``: 0..255 (decimal or ``0x..``), ``-1`` = any;
* ``Version``: 0..255 (decimal or ``0x..``), ``-1`` = any.

Matching (the manual gives no order between overlapping rows, so the bench defines one): keys
linked to one meter (§6.15.3, :meth:`KeyStore.link`) come first; then rows by specificity,
the number of fields that are not wildcards, most specific first; ties keep file order.
:meth:`KeyStore.lookup` returns the first; :meth:`KeyStore.candidates` all, in that order, so a
decoder can try each until one passes the telegram's own check (2F 2F, MAC, payload CRC).

A bad file raises :class:`~simulator.wmbus.frame.KeyFileError` listing *every* bad line as
``file:line: field: problem`` (its ``issues``), never just the first.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from simulator.core.text import CsvRowError, csv_rows, is_decimal, is_letters
from simulator.wmbus.frame import KeyFileError

COLUMNS = ("address", "key", "manufacturer", "devicetype", "version")
_HEX32 = re.compile(r"[0-9A-Fa-f]{32}")
_HEX16 = re.compile(r"[0-9A-Fa-f]{16}")
_HEX8 = re.compile(r"[0-9A-Fa-f]{8}")


def id_text(meter_id: int | str) -> str:
    """A meter ID as the key store compares it: 8 characters, decimal digits for a BCD ID
    (``13360079``), upper-case hex digits for one that is not BCD (``1234ABCD``, see
    :attr:`~simulator.wmbus.frame.LinkHeader.id_text`). Both spellings of one ID agree."""
    if isinstance(meter_id, int):
        return f"{meter_id:08d}"
    return meter_id.strip().upper().zfill(8)


@dataclass(frozen=True)
class KeyFileIssue:
    """One problem in a key file: where (file, 1-based line, column name) and what."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


@dataclass(frozen=True)
class KeyEntry:
    """One key with its matching criteria; ``None`` = wildcard (-1 / *). ``id`` is the ID's
    8-character text (:func:`id_text`)."""

    key: bytes
    id: str | None = None
    manufacturer: str | None = None
    device_type: int | None = None
    version: int | None = None
    line: int = 0
    linked: bool = False

    @property
    def specificity(self) -> int:
        return sum(
            v is not None for v in (self.id, self.manufacturer, self.device_type, self.version)
        )

    def matches(self, manufacturer: str, id: int | str, version: int, device_type: int) -> bool:  # noqa: A002
        return (
            (self.id is None or self.id == id_text(id))
            and (self.manufacturer is None or self.manufacturer == manufacturer.upper())
            and (self.device_type is None or self.device_type == device_type)
            and (self.version is None or self.version == version)
        )


def _parse_byte_field(text: str, name: str, issues: list[str]) -> int | None:
    t = text.strip()
    if t == "-1":
        return None
    try:
        v = int(t, 16) if t.lower().startswith("0x") else int(t, 10)
    except ValueError:
        issues.append(f"{name}: {text!r} is not -1 or a number 0..255")
        return None
    if not 0 <= v <= 255:
        issues.append(f"{name}: {v} is outside 0..255")
        return None
    return v


class KeyStore:
    """Encryption keys for wireless meters with CMe3100 matching rules (module docstring)."""

    def __init__(self, entries: list[KeyEntry] | None = None) -> None:
        self._entries: list[KeyEntry] = list(entries or [])
        self._linked: dict[tuple[str, str, int, int], bytes] = {}

    def __len__(self) -> int:
        return len(self._entries) + len(self._linked)

    @property
    def entries(self) -> list[KeyEntry]:
        return list(self._entries)

    # --- loading --------------------------------------------------------------------------

    @classmethod
    def from_csv(cls, path: str | Path) -> KeyStore:
        """Read a key file; :class:`KeyFileError` (with all issues) if any line is bad or the
        file cannot be read."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"{p}: cannot read key file: {exc}") from None
        return cls.parse(text, source=str(p))

    @classmethod
    def parse(cls, text: str, source: str = "<keys>") -> KeyStore:
        """Parse key-file text (see module docstring). Blank lines are skipped."""
        lines = text.splitlines()
        first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
        if first is None:
            raise KeyFileError(
                f"{source}: empty key file (needs the header line "
                "Address,Key,Manufacturer,DeviceType,Version)"
            )
        head_line = lines[first]
        delim = max((",", ";", "\t"), key=head_line.count)
        reader = csv.reader(io.StringIO(text), delimiter=delim)
        issues: list[KeyFileIssue] = []
        entries: list[KeyEntry] = []
        columns: dict[str, int] | None = None
        try:
            rows = list(csv_rows(reader))
        except CsvRowError as exc:
            raise KeyFileError(
                f"{source}:{exc.line}: {exc.reason}",
                issues=[KeyFileIssue(source, exc.line, "csv", exc.reason)],
            ) from None
        for line, row in rows:
            if not any(cell.strip() for cell in row):
                continue
            if columns is None:
                names = [c.strip().lower().replace(" ", "") for c in row]
                missing = [c for c in COLUMNS if c not in names]
                if missing:
                    raise KeyFileError(
                        f"{source}:{line}: header must name the columns Address, Key, "
                        f"Manufacturer, DeviceType, Version; missing {', '.join(missing)}",
                        issues=[
                            KeyFileIssue(source, line, "header", f"missing {', '.join(missing)}")
                        ],
                    )
                columns = {c: names.index(c) for c in COLUMNS}
                continue
            problems: list[str] = []
            cells = {c: (row[i] if i < len(row) else None) for c, i in columns.items()}
            for c, v in cells.items():
                if v is None:
                    problems.append(f"{c}: missing (row has {len(row)} fields)")
            if problems:
                issues += [KeyFileIssue(source, line, *p.split(": ", 1)) for p in problems]
                continue
            entry_fields: dict = {}
            key_text = cells["key"].strip()
            if not _HEX32.fullmatch(key_text):
                problems.append(
                    f"key: must be 32 hex characters, got {len(key_text)} ({key_text!r})"
                )
            addr = cells["address"].strip()
            if addr != "-1":
                if is_decimal(addr) and len(addr) <= 8:
                    entry_fields["id"] = id_text(int(addr))
                elif _HEX8.fullmatch(addr):
                    entry_fields["id"] = id_text(addr)
                elif _HEX16.fullmatch(addr):
                    from simulator.mbus.address import SecondaryAddress
                    from simulator.mbus.errors import MBusError

                    try:
                        a = SecondaryAddress.parse(addr)
                        entry_fields.update(
                            id=id_text(a.id),
                            manufacturer=a.manufacturer,
                            version=a.version,
                            device_type=a.medium,
                        )
                    except MBusError as exc:
                        problems.append(f"address: {exc.reason}")
                else:
                    problems.append(
                        f"address: {addr!r} is not -1, an ID of up to 8 digits, "
                        "8 hex digits (a non-BCD ID) or a 16-hex secondary address"
                    )
            man = cells["manufacturer"].strip()
            if man != "*":
                if len(man) == 3 and is_letters(man):
                    if entry_fields.get("manufacturer", man.upper()) != man.upper():
                        problems.append(f"manufacturer: {man!r} contradicts the address")
                    entry_fields["manufacturer"] = man.upper()
                else:
                    problems.append(f"manufacturer: {man!r} is not * or three letters")
            for col, name in (("devicetype", "device_type"), ("version", "version")):
                v = _parse_byte_field(cells[col], col, problems)
                if v is not None:
                    if entry_fields.get(name, v) != v:
                        problems.append(f"{col}: {v} contradicts the address")
                    entry_fields[name] = v
            if problems:
                issues += [KeyFileIssue(source, line, *p.split(": ", 1)) for p in problems]
                continue
            entries.append(KeyEntry(key=bytes.fromhex(key_text), line=line, **entry_fields))
        if columns is None:
            raise KeyFileError(f"{source}: no header line")
        if issues:
            n = len({i.line for i in issues})
            raise KeyFileError(
                f"{source}: {n} bad line{'s' if n != 1 else ''}:\n"
                + "\n".join(str(i) for i in issues),
                issues=issues,
            )
        return cls(entries)

    # --- linking and matching -------------------------------------------------------------

    def add(
        self,
        key: bytes,
        *,
        id: int | str | None = None,
        manufacturer: str | None = None,  # noqa: A002
        device_type: int | None = None,
        version: int | None = None,
    ) -> None:
        """Register a key as the web interface does (§6.15.2); ``None`` = any. ``id`` is a
        number (BCD ID) or the 8 hex digits of a non-BCD ID."""
        if len(key) != 16:
            raise KeyFileError(f"an AES-128 key is 16 bytes, got {len(key)}")
        self._entries.append(
            KeyEntry(
                bytes(key),
                None if id is None else id_text(id),
                manufacturer and manufacturer.upper(),
                device_type,
                version,
            )
        )

    def link(
        self,
        key: bytes,
        manufacturer: str,
        id: int | str,
        version: int,  # noqa: A002
        device_type: int,
    ) -> None:
        """Link a key to one meter (§6.15.3): it is used for that meter before any file row."""
        if len(key) != 16:
            raise KeyFileError(f"an AES-128 key is 16 bytes, got {len(key)}")
        self._linked[(manufacturer.upper(), id_text(id), version, device_type)] = bytes(key)

    def candidates(
        self,
        manufacturer: str,
        id: int | str,
        version: int,  # noqa: A002
        device_type: int,
    ) -> list[bytes]:
        """Every key that may apply to the meter, best first (module docstring). ``id``: the
        BCD ID as a number, or a non-BCD ID's 8 hex digits (:func:`id_text`)."""
        out: list[bytes] = []
        linked = self._linked.get((manufacturer.upper(), id_text(id), version, device_type))
        if linked is not None:
            out.append(linked)
        ordered = sorted(
            (e for e in self._entries if e.matches(manufacturer, id, version, device_type)),
            key=lambda e: -e.specificity,  # sorted() is stable: ties keep file order
        )
        for e in ordered:
            if e.key not in out:
                out.append(e.key)
        return out

    def lookup(
        self,
        manufacturer: str,
        id: int | str,
        version: int,  # noqa: A002
        device_type: int,
    ) -> bytes | None:
        """The best key for the meter, or ``None``."""
        c = self.candidates(manufacturer, id, version, device_type)
        return c[0] if c else None
