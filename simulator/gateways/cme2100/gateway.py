"""The CMe2100 LTE G2 model: encrypted SMS commands, security states, install, defaults.

Behaviour from seed 000 (CMe2100 LTE G2 commissioning), made precise in
docs/cme2100-sms-protocol.md:

* **Security states.** ``"factory"``: only the factory communication key is known, and under
  it only ``common.security.product.communication.password=<new 16 character key>`` is
  accepted (the new key must be 16 printable ASCII characters and differ from the factory
  key). ``"password_set"``: only commands under the password are accepted; the factory key is
  rejected (reason ``factory_key``). Plain text, bad Base64URL, truncated frames, bad tags
  (wrong key, tampering) and replayed counters are rejected with their reason in the trace,
  no response and no state change.
* **Commands** (after authentication): ``qset email <recipient>``, ``install <expected
  number of meters> [CAD file]`` (seed 000: a secondary search), ``install primary <expected>
  [CAD file]`` (the bench's extension: a primary scan of addresses 0-250, then one REQ_UD2
  per address found to learn its secondary address; ``install secondary ...`` is the
  default spelled out), the password key above; anything else gets an ``ERROR`` response.
* **SMS coding.** :meth:`Cme2100.receive` takes the text of a GSM 7-bit SMS;
  :meth:`Cme2100.receive_pdu` takes SMS-DELIVER PDUs (concatenated parts joined) and so
  also UCS-2 SMS, which a phone sends when a character is not GSM 7-bit. Such an SMS is
  judged on its text; if it fails as Base64URL because of that character the reason is
  ``non_gsm`` (naming it), an unencrypted command stays ``plaintext``; a PDU that cannot be
  decoded is ``bad_pdu``.
* **Defaults after install:** every full hour all installed meters are read on the wired bus
  at 2400 bit/s; at 00:00 each day an e-mail Push Report (see
  :mod:`simulator.gateways.cme2100.report`) goes to the ``qset email`` recipient.

The model is a SimPy process of a :class:`~simulator.core.world.World`: SMS texts arrive with
:meth:`Cme2100.receive` (at the current world time) or :meth:`Cme2100.receive_at`; responses
are recorded in the trace and handed to ``on_sms`` listeners. The wired bus side uses the
``Master`` of :mod:`simulator.mbus.master` (``search_secondary``, ``read``) duck-typed, so the
model needs no bus when only the SMS channel is exercised.

Trace event kinds (source = the gateway name): ``sms`` (direction ``in``/``out``, text,
outcome ``accepted``/``rejected``/``sent``, reason, detail, counter, key, command),
``security_state`` (from, to), ``install`` (phase ``started``/``completed``, expected,
found, addresses, cad_file), ``readout_cycle`` (at its end: meters, ok, failed, baud, started),
``push`` (recipient, subject, meters, rows, outcome ``delivered``/``failed``/``skipped``,
error).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from typing import Any

import simpy

from simulator.core import events as ev
from simulator.core.text import decimal
from simulator.core.world import World
from simulator.gateways.cme2100.pdu import PduError, Reassembler, decode_pdu
from simulator.gateways.cme2100.protocol import (
    Direction,
    Frame,
    KeyFormatError,
    ReplayGuard,
    SmsProtocolError,
    authenticate,
    check_key_text,
    encrypt,
    open_frame,
    parse_text,
    sms_body,
)
from simulator.gateways.cme2100.report import ValueRow, build_report
from simulator.gateways.cme2100.sender import PASSWORD_KEY
from simulator.gateways.cme2100.settings import DEFAULTS
from simulator.gateways.cme2100.sms import first_non_gsm
from simulator.sinks.base import Report, Sink, WorldSink

PRIMARY, SECONDARY = "primary", "secondary"  # install addressing (bench syntax, see below)
INSTALL_USAGE = "install [primary|secondary] <expected number of meters> [CAD file]"
FACTORY = "factory"
PASSWORD_SET = "password_set"
READOUT_BAUD = DEFAULTS.readout_baud  # bit/s (seed 000, gateways/cme2100/settings.py)
READOUT_PERIOD = DEFAULTS.readout_period_s  # s
PUSH_PERIOD = DEFAULTS.push_period_s  # s

#: A valid e-mail address as the HTML Living Standard defines it (§4.10.5.1.5, "valid e-mail
#: address"): the rule browsers apply to <input type=email>.
EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_PLAIN_WORDS = ("qset", "install", "common.", "set", "get", "help", "status")


def looks_like_plaintext(text: str) -> bool:
    """True for an SMS that is evidently an unencrypted command (whitespace, '=', '.', a
    command word at the start): rejected as ``plaintext`` rather than as bad Base64URL."""
    t = text.strip().lower()
    return any(c in t for c in " =.@") or t.startswith(_PLAIN_WORDS)


class Cme2100:
    """A simulated CMe2100 LTE G2 on an SMS channel and (optionally) a wired M-Bus.

    Parameters: ``world``; ``factory_key`` (16 characters, as in the NFC status record);
    ``master``: an M-Bus ``Master`` for install and readouts (None: install finds nothing);
    ``sink``: where each Push Report goes (:mod:`simulator.sinks.base`; the report's bytes
    are the RFC 5322 message, its target the recipient; a failed delivery keeps the rows for
    the next report; default: an in-world sink); ``name``: trace source.
    Raises :class:`~simulator.gateways.cme2100.protocol.KeyFormatError` for a bad factory key.
    """

    def __init__(
        self,
        world: World,
        *,
        factory_key: str,
        master: Any = None,
        sink: Sink | None = None,
        name: str = "cme2100",
        mail_from: str = "cme2100@meterbench.invalid",
    ) -> None:
        self.world = world
        self.factory_key = check_key_text(factory_key)
        self.password: str | None = None
        self.master = master
        self.sink: Sink = sink if sink is not None else WorldSink(status=250)
        self.name = name
        self.mail_from = mail_from
        self.recipient: str | None = None
        #: the meters found by install: SecondaryAddress (secondary search) or int (primary)
        self.installed: list[Any] = []
        self._identity: dict[int, Any] = {}  # primary address -> the SecondaryAddress it answers
        self.on_sms: list[Callable[[str], None]] = []
        self.inbox: simpy.Store = simpy.Store(world.env)
        self._guard = ReplayGuard()
        self._pdu_parts = Reassembler()
        self._response_counter: dict[str, int] = {}
        self._installing = False
        self._hourly_started = False
        self._pending: list[ValueRow] = []
        self._reports = 0
        world.process(self._sms_loop())
        world.process(self._daily_push_loop())

    # -- public -----------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return FACTORY if self.password is None else PASSWORD_SET

    @property
    def key(self) -> str:
        """The key commands must be encrypted with now."""
        return self.password or self.factory_key

    def receive(self, text: str) -> None:
        """An SMS arrives now (world time)."""
        self.inbox.put(text)

    def receive_pdu(self, pdu_hex: str) -> None:
        """An SMS-DELIVER PDU (hex, SMSC field first) arrives now, as the modem reads it.

        Parts of a concatenated SMS are held until the message is complete; a UCS-2 message
        (DCS 08, what a phone sends when a character is not GSM 7-bit) is handled as its
        text, with the coding kept for the rejection reason (``non_gsm``). A PDU that cannot
        be decoded is rejected ``bad_pdu`` with the octet offset.
        """
        try:
            sms = self._pdu_parts.add_message(decode_pdu(pdu_hex))
        except PduError as err:
            self._reject(pdu_hex, "bad_pdu", str(err))
            return
        if sms is not None:
            self.inbox.put((sms.text, sms.coding))

    def receive_at(self, t: float, text: str) -> None:
        """An SMS arrives at world time ``t`` (s)."""

        def later() -> Generator:
            yield self.world.timeout(t - self.world.now)
            self.inbox.put(text)

        self.world.process(later())

    # -- SMS handling -----------------------------------------------------------------------
    def _sms_loop(self) -> Generator:
        while True:
            item = yield self.inbox.get()
            text, coding = item if isinstance(item, tuple) else (item, "gsm7")
            self._handle(text, coding)

    def _reject(
        self,
        text: str,
        reason: str,
        detail: str = "",
        counter: int | None = None,
        coding: str = "gsm7",
    ):
        self.world.emit(
            ev.Sms(
                source=self.name,
                direction="in",
                text=text,
                outcome="rejected",
                reason=reason,
                detail=detail,
                counter=counter,
                state=self.state,
                coding="ucs2" if coding == "ucs2" else ev.UNSET,
            )
        )

    def _handle(self, text: str, coding: str = "gsm7") -> None:
        text = sms_body(text)  # spec §3 step 0: only surrounding space / CR / LF
        try:
            frame = parse_text(text)
        except SmsProtocolError as err:
            reason, detail = err.reason, err.detail
            if text and looks_like_plaintext(text):
                reason = "plaintext"
            elif coding == "ucs2" and (bad := first_non_gsm(text)) is not None:
                # the phone went UCS-2 because of this character: name it, not just the
                # first non-Base64URL one
                i, ch = bad
                reason = "non_gsm"
                detail = f"character {ch!r} (U+{ord(ch):04X}) at offset {i} is not GSM 7-bit"
            if coding == "ucs2":
                detail += " (SMS sent UCS-2 coded)"
            self._reject(text, reason, detail, coding=coding)
            return
        key, label = self._authentic_key(frame)
        if key is None:
            reason = label  # bad_tag or factory_key
            self._reject(text, reason, "", frame.counter, coding)
            return
        try:
            message = open_frame(key, frame, direction=Direction.COMMAND)
            self._guard.accept(key, message)
        except SmsProtocolError as err:
            self._reject(text, err.reason, err.detail, frame.counter, coding)
            return
        command = message.text.strip()
        self.world.emit(
            ev.Sms(
                source=self.name,
                direction="in",
                text=text,
                outcome="accepted",
                counter=frame.counter,
                key=label,
                command=_redact(command),
                state=self.state,
                coding="ucs2" if coding == "ucs2" else ev.UNSET,
            )
        )
        self._dispatch(command, key)

    def _authentic_key(self, frame: Frame) -> tuple[str | None, str]:
        """(key, label) the frame authenticates under, or (None, reason)."""
        if frame.direction != Direction.COMMAND:
            return None, "bad_direction"
        if self.password is None:
            if authenticate(self.factory_key, frame):
                return self.factory_key, "factory"
            return None, "bad_tag"
        if authenticate(self.password, frame):
            return self.password, "password"
        if authenticate(self.factory_key, frame):
            return None, "factory_key"
        return None, "bad_tag"

    def _respond(self, key: str, text: str) -> None:
        counter = self._response_counter.get(key, 0) + 1
        self._response_counter[key] = counter
        sms = encrypt(key, text, counter=counter, direction=Direction.RESPONSE)
        self.world.emit(
            ev.Sms(
                source=self.name,
                direction="out",
                text=sms,
                outcome="sent",
                counter=counter,
                plain=_redact(text),
            )
        )
        for listener in self.on_sms:
            listener(sms)

    def _dispatch(self, command: str, key: str) -> None:
        head, sep, value = command.partition("=")
        if sep and " " not in head.strip():
            self._configure(head.strip(), value.strip(), key)
            return
        if self.state == FACTORY:
            self._respond(key, f"ERROR factory state: set {PASSWORD_KEY}=<16 characters> first")
            return
        words = command.split()
        verb = words[0].lower() if words else ""
        if verb == "qset":
            self._qset(words[1:], key)
        elif verb == "install":
            self._install_command(words[1:], key)
        else:
            self._respond(key, f"ERROR unknown command '{verb}'")

    def _configure(self, name: str, value: str, key: str) -> None:
        if name != PASSWORD_KEY:
            self._respond(key, f"ERROR unknown configuration key '{name}'")
            return
        try:
            check_key_text(value)
        except KeyFormatError as exc:
            self._respond(key, f"ERROR {PASSWORD_KEY}: {exc}")
            return
        if value == self.factory_key:
            self._respond(key, "ERROR the new password must differ from the factory key")
            return
        before = self.state
        self.password = value
        self.world.emit(ev.SecurityState(source=self.name, from_=before, to=self.state))
        # Confirmed under the key the command came with: the head-end switches after this.
        self._respond(key, "OK communication password set")

    def _qset(self, args: list[str], key: str) -> None:
        if len(args) != 2 or args[0].lower() != "email":
            self._respond(key, "ERROR usage: qset email <recipient>")
            return
        if not EMAIL_RE.fullmatch(args[1]):
            self._respond(key, f"ERROR invalid e-mail address '{args[1]}'")
            return
        self.recipient = args[1]
        self._respond(key, f"OK e-mail recipient set to {args[1]}")

    def _install_command(self, args: list[str], key: str) -> None:
        addressing = SECONDARY
        if args and args[0].lower() in (PRIMARY, SECONDARY):
            addressing, args = args[0].lower(), args[1:]
        expected = decimal(args[0]) if args else None
        if not 1 <= len(args) <= 2 or expected is None:
            self._respond(key, f"ERROR usage: {INSTALL_USAGE}")
            return
        if self._installing:
            self._respond(key, "ERROR installation already in progress")
            return
        cad = args[1] if len(args) == 2 else None
        self._installing = True
        by = " by primary address" if addressing == PRIMARY else ""
        self._respond(key, f"installation started, expecting {expected} meters{by}")
        self.world.emit(
            ev.Install(
                source=self.name,
                phase="started",
                expected=expected,
                cad_file=cad,
                method="primary_scan" if addressing == PRIMARY else ev.UNSET,
            )
        )
        self.world.process(self._install(expected, cad, addressing))

    # -- wired bus ----------------------------------------------------------------------------
    def _install(self, expected: int, cad: str | None, addressing: str = SECONDARY) -> Generator:
        found: list[Any] = []
        if self.master is not None:
            bus = getattr(self.master, "bus", None)
            if bus is not None:
                bus.baud = READOUT_BAUD
            if addressing == PRIMARY:
                found = list((yield from self.master.scan_primary()))
            else:
                found = list((yield from self.master.search_secondary()))
        self._identity = {}
        if addressing == PRIMARY:
            # one REQ_UD2 each: the identity (secondary address) each primary address answers
            # with, for the Push Report rows (a meter that does not answer stays unnamed)
            for a in found:
                readout = yield from self.master.read(a)
                self._identity[a] = _identity_of(readout)
        self.installed = sorted(found)
        self._installing = False
        primary = addressing == PRIMARY
        names = [self._identity.get(a) for a in self.installed] if primary else self.installed
        self.world.emit(
            ev.Install(
                source=self.name,
                phase="completed",
                expected=expected,
                found=len(found),
                addresses=[str(a) for a in names if a is not None],
                cad_file=cad,
                method="primary_scan" if primary else ev.UNSET,
                primary_addresses=list(self.installed) if primary else ev.UNSET,
            )
        )
        verdict = "OK" if len(found) == expected else "MISMATCH"
        self._respond(
            self.key,
            f"installation completed: found {len(found)} of {expected} expected meters {verdict}",
        )
        if not self._hourly_started:
            self._hourly_started = True
            self.world.process(self._hourly_loop())

    def _hourly_loop(self) -> Generator:
        while True:
            yield self.world.timeout(_seconds_to_next(self.world, READOUT_PERIOD))
            yield from self._read_all()

    def _read_all(self) -> Generator:
        ok = failed = 0
        started = self.world.now
        for address in list(self.installed):
            readout = yield from self.master.read(address)
            at = self.world.clock(readout.started).isoformat()
            if isinstance(address, int):  # installed by primary address: name it as it answers
                self._identity[address] = _identity_of(readout) or self._identity.get(address)
            name = self._identity.get(address, address) if isinstance(address, int) else address
            if readout.ok:
                ok += 1
                for telegram in readout.telegrams:
                    self._pending += [_row(at, name, "ok", r) for r in telegram.records]
            else:
                failed += 1
                self._pending.append(_row(at, name, readout.error or "failed", None))
        self.world.emit(
            ev.ReadoutCycle(
                source=self.name,
                meters=len(self.installed),
                ok=ok,
                failed=failed,
                baud=READOUT_BAUD,
                started=started,
            )
        )

    # -- push report --------------------------------------------------------------------------
    def _daily_push_loop(self) -> Generator:
        while True:
            yield self.world.timeout(_seconds_to_next(self.world, PUSH_PERIOD))
            self._push()

    def _push(self) -> None:
        if self.recipient is None or not self.installed:
            self.world.emit(
                ev.Push(
                    source=self.name,
                    outcome="skipped",
                    error="no e-mail recipient"
                    if self.recipient is None
                    else "no installed meters",
                )
            )
            return
        self._reports += 1
        rows = list(self._pending)
        msg = build_report(
            gateway=self.name,
            sender=self.mail_from,
            recipient=self.recipient,
            at=self.world.clock(),
            rows=rows,
            meters=len(self.installed),
            sequence=self._reports,
        )
        report = Report(
            self.recipient, (msg.as_bytes(),), "message/rfc822", (("From", self.mail_from),)
        )
        delivery = self.sink.deliver(report)
        self.world.emit(
            ev.Push(
                source=self.name,
                outcome="delivered" if delivery.ok else "failed",
                error="" if delivery.ok else delivery.reason,
                recipient=self.recipient,
                subject=msg["Subject"],
                meters=len(self.installed),
                rows=len(rows),
                window=[rows[0].timestamp, rows[-1].timestamp] if rows else ev.UNSET,
            )
        )
        if delivery.ok:  # else keep the rows for the next report
            del self._pending[: len(rows)]


def _seconds_to_next(world: World, period: float) -> float:
    """Seconds from now to the next multiple of ``period`` since midnight UTC of the calendar.

    Computed in world seconds (not datetime arithmetic, which rounds to microseconds).
    """
    start = world.start
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    t = (start - midnight).total_seconds() + world.now
    return (t // period + 1) * period - t


def _identity_of(readout: Any) -> Any:
    """The secondary address in the first RSP_UD of a readout, or None."""
    if not readout.ok or not readout.telegrams:
        return None
    return getattr(readout.telegrams[0].header, "address", None)


def _redact(command: str) -> str:
    if command.startswith(PASSWORD_KEY + "="):
        return PASSWORD_KEY + "=" + "*" * len(command.split("=", 1)[1])
    return command


def _row(at: str, address: Any, status: str, record: Any) -> ValueRow:
    base = dict(
        timestamp=at,
        secondary_address=str(address),
        id=f"{getattr(address, 'id', 0):08d}",
        manufacturer=str(getattr(address, "manufacturer", "")),
        medium=str(getattr(address, "medium", "")),
        status=status,
    )
    if record is None:
        return ValueRow(**base)
    value = record.value
    if isinstance(value, bytes | bytearray):
        value = value.hex()
    elif hasattr(value, "isoformat"):
        value = value.isoformat()
    return ValueRow(
        **base,
        function=str(record.function),
        storage=str(record.storage),
        tariff=str(record.tariff),
        subunit=str(record.subunit),
        quantity=str(record.quantity),
        unit=str(record.unit),
        value="" if value is None else str(value),
    )
