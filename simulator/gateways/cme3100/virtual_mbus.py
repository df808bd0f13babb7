"""The CMe3100's Virtual M-Bus service: M-Bus requests answered from the value database
(seed 002 §6.27, §6.28; 004 §6.27.1 and §6.28.1 shots; CME3100.md §4, §9, Gaps #11).

"The master device will never communicate directly on the M-Bus, but only with the Metering
Gateway and its meter value database" (002 §6.27): this module is sans-I/O. It takes request
frames (bytes) and the world time (s) and returns what the gateway sends back; it never
touches the bus, a socket or a clock. :mod:`.virtual_mbus_server` serves it on TCP.

The gateway plays every installed meter (:class:`VirtualMeter`). Per connection a
:class:`VirtualLink` keeps the selection and, per meter, the EN 13757-2 FCB state. The rules
(docs/cme3100.md "Services" says why where the manuals are silent):

==============================  =============================================================
request                         answer
==============================  =============================================================
SND_NKE to a meter's primary    ``E5``; that meter's FCB state and telegram position reset
SND_NKE to 253                  deselects; ``E5`` only if a meter was selected (as a slave)
SND_NKE to 254                  ``E5`` (the gateway answers for itself)
SND_UD CI 52 to 253             mask matches exactly one meter: ``E5``, it is selected; none:
                                silence, nothing selected; n > 1: ``E5`` n times (what a
                                real wire carries from n slaves), all n selected
SND_UD CI 56 to 253             deselect, silence
REQ_UD2 to one meter            the RSP_UD of its latest stored value (see below)
REQ_UD1 to one meter            ``E5`` (no class-1 data)
other SND_UD to one meter       ``E5``, no effect (the database cannot be written); CI 50
                                (application reset) also resets the FCB state
anything to 255                 silence (broadcast without reply)
==============================  =============================================================

"One meter": a primary address names the installed meter with that primary address (meter
list ``PrimaryAddress``, else the A-field of its stored telegram); 253 names the selected
meter; 254 names the only installed meter. When the address names no meter or several,
the gateway is silent (on a wire several would collide; it cannot choose).

REQ_UD2 (EN 13757-2 §5.7 FCB rule, as :class:`~simulator.mbus.slave.Slave` does it):

- FCV = 1 and the FCB equals the previous REQ_UD2's: the previous reply again, byte for byte;
- otherwise a new telegram: the next telegram of the readout being served if it has more
  (multi-telegram readout, 002 §6.25.4), else the first telegram of the meter's latest
  value (:meth:`ValueDatabase.latest_value`): the stored bytes unchanged (same A-field,
  access number and checksum as read from the meter; a bare ``C A CI data`` body is framed
  as ``68 L L 68 .. CS 16``);
- a value older than ``expiry_s`` (``now - readout.at > expiry_s``) is *expired*:
  ``expired="no_reply"`` (default, 004 UI: "will not send back a reply") gives silence;
  ``"not_valid"`` (002: a "not valid" notification) sends the stored telegram with the
  status byte's *temporary error* bit (0x10, EN 13757-3 §6.3) set and the checksum
  recomputed; a telegram without a status byte (CI other than 72/7A) cannot be marked and
  gets silence;
- a meter without any stored value (never read, failed, passive): silence.

Errors: :meth:`VirtualLink.handle` raises :class:`~simulator.mbus.errors.FrameError` (with
the byte offset) for bytes that are not one valid frame; a valid frame it does not serve is
an :class:`Answer` with an empty reply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulator.core import events as ev
from simulator.gateways.cme3100.readout import Readout
from simulator.gateways.cme3100.value_db import ValueDatabase
from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.errors import MBusError
from simulator.mbus.frames import (
    ACK,
    ADDR_BROADCAST,
    ADDR_BROADCAST_REPLY,
    ADDR_NETWORK,
    REQ_UD1,
    REQ_UD2,
    SND_NKE,
    SND_UD,
    START_LONG,
    ControlFrame,
    LongFrame,
    ShortFrame,
    checksum,
    parse_body,
    parse_frame,
)
from simulator.mbus.telegram import CI_LONG_HEADER, CI_SHORT_HEADER

E5 = bytes([ACK])
CI_APPLICATION_RESET, CI_SELECT, CI_DESELECT = 0x50, 0x52, 0x56
#: EN 13757-3 status byte bit 4: temporary error (the bench's "not valid" mark, Gaps #11).
STATUS_TEMPORARY_ERROR = 0x10
#: Offset of the status byte in the user data: CI 72 after ID, man, ver, med, access no;
#: CI 7A after the access number.
STATUS_OFFSET = {CI_LONG_HEADER: 9, CI_SHORT_HEADER: 1}
EXPIRED_MODES = ("no_reply", "not_valid")


class VirtualMbusError(ValueError):
    """Bad settings of the Virtual M-Bus model (says which and why)."""


@dataclass(frozen=True)
class VirtualMeter:
    """An installed meter as the service sees it: ``meter`` its value-database key (8-digit
    identification), ``primary`` its meter-list primary address (None if not given),
    ``secondary`` its meter-list secondary address (8 digits or 16 hex, "" if none)."""

    meter: str
    primary: int | None = None
    secondary: str = ""


@dataclass(frozen=True)
class Answer:
    """What the gateway sends for one request: ``reply`` (empty = silence) and why.

    ``outcome``: ``ack``, ``rsp_ud``, ``repeat`` (same FCB), ``not_valid`` (expired, marked),
    ``expired`` (no reply), ``no_value``, ``no_meter`` (address names none), ``ambiguous``
    (names several), ``deselected``, ``ignored`` (a reply-direction frame, broadcast 255);
    ``meter``: the meter answered for; ``age_s``: age of the value served (s)."""

    reply: bytes
    outcome: str
    meter: str = ""
    telegram: int | None = None
    age_s: float | None = None

    def event(self, request: bytes, source: str) -> ev.VirtualMbusExchange:
        """This answer as a trace event (the server emits it when given a world)."""
        return ev.VirtualMbusExchange(
            source=source,
            request=bytes(request).hex(),
            reply=self.reply.hex(),
            outcome=self.outcome,
            meter=self.meter,
            telegram=self.telegram if self.telegram is not None else ev.UNSET,
            age_s=round(self.age_s, 6) if self.age_s is not None else ev.UNSET,
        )


def long_frame(telegram: bytes) -> bytes:
    """A stored telegram as a long frame: unchanged if it is one, else the ``C A CI data``
    body framed. Raises :class:`~simulator.mbus.errors.FrameError` for anything else."""
    buf = bytes(telegram)
    if buf[:1] == bytes([START_LONG]):
        parse_frame(buf)  # validates
        return buf
    return parse_body(buf).to_bytes()


def mark_not_valid(frame: bytes) -> bytes | None:
    """``frame`` (a long frame) with the temporary-error status bit set and the checksum
    recomputed; None if its CI-field carries no status byte (module doc)."""
    out = bytearray(frame)
    at = STATUS_OFFSET.get(out[6]) if len(out) > 7 else None
    if at is None or 7 + at >= len(out) - 2:
        return None
    out[7 + at] |= STATUS_TEMPORARY_ERROR
    out[-2] = checksum(bytes(out[4:-2]))
    return bytes(out)


def wire_address(meter: VirtualMeter, value: Readout | None) -> tuple[bytes | None, str]:
    """The 8 wire bytes a selection is matched against: from the stored telegram's long
    header (what the meter itself would match), else the meter list's 16-hex address;
    ``(None, id)`` when only the 8-digit ID is known."""
    if value is not None:
        try:
            frame = parse_frame(long_frame(value.telegrams[0]))
        except MBusError:
            frame = None
        if isinstance(frame, LongFrame) and frame.ci == CI_LONG_HEADER and len(frame.data) >= 8:
            return frame.data[:8], ""
    text = meter.secondary.strip()
    if len(text) == 16:
        try:
            return SecondaryAddress.parse(text).to_bytes(), ""
        except MBusError:
            pass
    ident = text[:8] if len(text) >= 8 and text[:8].isdigit() else meter.meter
    return None, ident


def mask_selects(mask: SecondaryMask, wire: bytes | None, ident: str) -> bool:
    """True if ``mask`` selects the meter (nibble F = any, :meth:`SecondaryMask.matches`);
    with only the ID known, the mask must wildcard manufacturer, version and medium."""
    if wire is not None:
        return mask.matches_bytes(wire)
    if mask.raw[4:] != b"\xff" * 4 or not ident.isdigit():
        return False
    return mask.matches_bytes(bytes.fromhex(ident.zfill(8))[::-1] + b"\xff" * 4)


class VirtualMbus:
    """The service over one gateway's value database (module doc).

    ``db``: the value database; ``meters``: returns the installed meters now (called per
    request, so installs and licence changes show at once); ``expiry_s`` (> 0 s) and
    ``expired`` (:data:`EXPIRED_MODES`) as the settings. Raises :class:`VirtualMbusError`."""

    def __init__(
        self,
        db: ValueDatabase,
        meters: Callable[[], Sequence[VirtualMeter]],
        *,
        expiry_s: float = 3600.0,
        expired: str = "no_reply",
    ) -> None:
        if not expiry_s > 0:
            raise VirtualMbusError(f"expiry_s must be > 0 s, got {expiry_s!r}")
        if expired not in EXPIRED_MODES:
            raise VirtualMbusError(f"expired must be one of {EXPIRED_MODES}, got {expired!r}")
        self.db, self.meters = db, meters
        self.expiry_s, self.expired = float(expiry_s), expired

    def link(self) -> VirtualLink:
        """A fresh link (one per client connection: its own selection and FCB state)."""
        return VirtualLink(self)

    def by_primary(self, address: int) -> list[VirtualMeter]:
        out = []
        for m in self.meters():
            primary = m.primary
            if primary is None:
                value = self.db.latest_value(m.meter)
                primary = _a_field(value) if value is not None else None
            if primary == address:
                out.append(m)
        return out

    def matching(self, mask: SecondaryMask) -> list[VirtualMeter]:
        out = []
        for m in self.meters():
            wire, ident = wire_address(m, self.db.latest_value(m.meter))
            if mask_selects(mask, wire, ident):
                out.append(m)
        return out


def _a_field(value: Readout) -> int | None:
    try:
        return parse_frame(long_frame(value.telegrams[0])).a  # type: ignore[union-attr]
    except MBusError:
        return None


@dataclass
class _LinkState:
    """EN 13757-2 link state of one meter on one connection."""

    last_fcb: bool | None = None
    last_reply: bytes | None = None
    readout: Readout | None = None
    index: int = 0


class VirtualLink:
    """One master's conversation with the service: selection and FCB state per meter."""

    def __init__(self, service: VirtualMbus) -> None:
        self.service = service
        self.selected: tuple[str, ...] = ()
        self._state: dict[str, _LinkState] = {}

    def handle(self, data: bytes, now: float) -> Answer:
        """Answer the request frame ``data`` at world time ``now`` (s).

        Raises :class:`~simulator.mbus.errors.FrameError` if ``data`` is not one valid frame.
        """
        frame = parse_frame(bytes(data))
        if not isinstance(frame, ShortFrame | ControlFrame | LongFrame) or not frame.calling:
            return Answer(b"", "ignored")
        a, fn, ci = frame.a, frame.function, getattr(frame, "ci", None)
        if a == ADDR_BROADCAST:
            return Answer(b"", "ignored")
        if fn == SND_UD and a == ADDR_NETWORK and ci in (CI_SELECT, CI_DESELECT):
            return self._selection(frame)
        if fn == SND_NKE and a == ADDR_NETWORK:
            was = self.selected
            self.selected = ()
            for m in was:
                self._state.pop(m, None)
            return Answer(E5 if was else b"", "ack" if was else "deselected")
        if fn == SND_NKE and a == ADDR_BROADCAST_REPLY:
            self._state.clear()
            return Answer(E5, "ack")
        targets = self._targets(a)
        if len(targets) != 1:
            return Answer(b"", "ambiguous" if targets else "no_meter")
        meter = targets[0]
        if fn == SND_NKE:
            self._state.pop(meter, None)
            return Answer(E5, "ack", meter)
        if fn == REQ_UD2 and isinstance(frame, ShortFrame):
            return self._rsp_ud(meter, frame, now)
        if fn == REQ_UD1 and isinstance(frame, ShortFrame):
            return Answer(E5, "ack", meter)
        if fn == SND_UD and ci is not None:
            if ci == CI_APPLICATION_RESET:
                self._state.pop(meter, None)
            return Answer(E5, "ack", meter)
        return Answer(b"", "ignored", meter)

    # -- addressing -------------------------------------------------------------------------
    def _targets(self, a: int) -> list[str]:
        svc = self.service
        if a == ADDR_NETWORK:
            return list(self.selected)
        if a == ADDR_BROADCAST_REPLY:
            return [m.meter for m in svc.meters()]
        return [m.meter for m in svc.by_primary(a)]

    def _selection(self, frame: ControlFrame | LongFrame) -> Answer:
        if frame.ci == CI_DESELECT:
            self.selected = ()
            return Answer(b"", "deselected")
        try:
            mask = SecondaryMask(bytes(frame.data))
        except MBusError:
            self.selected = ()
            return Answer(b"", "no_meter")
        found = [m.meter for m in self.service.matching(mask)]
        self.selected = tuple(found)
        for m in found:
            self._state.pop(m, None)
        if not found:
            return Answer(b"", "no_meter")
        if len(found) > 1:
            return Answer(E5 * len(found), "ambiguous")
        return Answer(E5, "ack", found[0])

    # -- REQ_UD2 ----------------------------------------------------------------------------
    def _rsp_ud(self, meter: str, frame: ShortFrame, now: float) -> Answer:
        st = self._state.setdefault(meter, _LinkState())
        if frame.fcv and st.last_reply is not None and st.last_fcb == frame.fcb:
            return Answer(st.last_reply, "repeat", meter, st.index, self._age(st.readout, now))
        if st.readout is not None and st.index + 1 < len(st.readout.telegrams):
            readout, index = st.readout, st.index + 1
        else:
            readout, index = self.service.db.latest_value(meter), 0
        if readout is None:
            return Answer(b"", "no_value", meter)
        age = self._age(readout, now)
        reply = long_frame(readout.telegrams[index])
        outcome = "rsp_ud"
        if age is not None and age > self.service.expiry_s:
            marked = mark_not_valid(reply) if self.service.expired == "not_valid" else None
            if marked is None:
                return Answer(b"", "expired", meter, index, age)
            reply, outcome = marked, "not_valid"
        st.readout, st.index, st.last_reply = readout, index, reply
        st.last_fcb = frame.fcb if frame.fcv else None
        return Answer(reply, outcome, meter, index, age)

    @staticmethod
    def _age(readout: Readout | None, now: float) -> float | None:
        return None if readout is None else now - readout.at
