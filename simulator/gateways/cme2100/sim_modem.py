"""A simulated GSM modem on a real pseudo-terminal, speaking the AT dialect of the driver.

For CI: the driver under test (:class:`~simulator.gateways.cme2100.modem.GsmModem`) opens
``SimulatedModem.path`` (``/dev/pts/N``) exactly as it would open a USB modem. The simulated
modem answers the 3GPP TS 27.005/27.007 commands the driver uses:

=====================  =============================================================
``AT``, ``ATE0/1``      OK (echo on until ``ATE0``, as real modems start)
``AT+CMEE=n``           OK
``AT+CMGF=0|1``, ``?``  PDU or text mode
``AT+CNMI=...``         OK; new messages are then announced as ``+CMTI: "SM",<index>``
``AT+CMGS=<len>``       PDU mode: ``> `` prompt, PDU hex + Ctrl-Z, ``+CMGS: <mr>``;
                        a PDU that does not decode or whose TPDU length differs from
                        ``<len>`` gets ``+CMS ERROR: 304``
``AT+CMGS="<number>"``  text mode: ``> `` prompt, text + Ctrl-Z
``AT+CMGL=<stat>``      PDU mode list (``+CMGL: <i>,<stat>,,<len>`` + PDU line)
``AT+CMGL="ALL"``       text mode list
``AT+CMGR=<i>``         read one; ``AT+CMGD=<i>`` delete (``+CMS ERROR: 321`` if empty)
anything else           ``ERROR``
=====================  =============================================================

The "network" side: every sent message (parts of concatenated SMS joined) goes to the
``on_sent(number, text)`` callback and to :attr:`sent`; :meth:`deliver` stores an incoming
message (split into concatenated SMS-DELIVER PDUs when long) and announces it.
The modem runs in one thread; :meth:`stop` ends it and closes the pty.
"""

from __future__ import annotations

import os
import re
import select
import threading
import tty
from collections.abc import Callable
from datetime import UTC, datetime

from simulator.gateways.cme2100.pdu import (
    PduError,
    Reassembler,
    decode_pdu,
    encode_deliver,
    tpdu_length,
)

CTRL_Z, ESC = 0x1A, 0x1B


class SimulatedModem:
    """A GSM modem on the controlling side of a fresh pty pair (``path`` is the terminal).

    ``number``: this modem's own number (the originator of messages it hands to
    ``on_sent`` is the destination the driver wrote); ``clock``: gives the service-centre
    time stamp of delivered messages (default: a fixed 2026-01-05T00:00Z, so runs repeat).
    """

    def __init__(
        self,
        *,
        on_sent: Callable[[str, str], None] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._fd, self._slave_fd = os.openpty()
        tty.setraw(self._fd)
        tty.setraw(self._slave_fd)  # keep it open: no hang-up while the driver reopens
        self.path = os.ttyname(self._slave_fd)
        self.on_sent = on_sent
        self.clock = clock or (lambda: datetime(2026, 1, 5, tzinfo=UTC))
        self.sent: list[tuple[str, str]] = []
        self.commands: list[str] = []  # every command line received (for tests)
        self.echo = True
        self.pdu_mode = False  # modems start in text mode until AT+CMGF=0 (TS 27.005 §3.2.3)
        self.indications = False
        self._store: dict[int, tuple[str, str]] = {}  # index -> (stat, pdu hex or text)
        self._texts: dict[int, tuple[str, str]] = {}  # index -> (number, text) for text mode
        self._mr = 0
        self._deliver_ref = 0
        self._reassembler = Reassembler()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-modem", daemon=True)

    def start(self) -> SimulatedModem:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for fd in (self._fd, self._slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> SimulatedModem:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- network side -------------------------------------------------------------------------
    def deliver(self, number: str, text: str, *, ucs2: bool = False) -> list[int]:
        """An SMS from ``number`` arrives: stored (one index per part) and announced.
        ``ucs2``: coded as a phone codes text outside GSM 7-bit (DCS 0x08)."""
        with self._lock:
            self._deliver_ref = (self._deliver_ref + 1) % 256
            indices = []
            for pdu in encode_deliver(
                number, text, timestamp=self.clock(), reference=self._deliver_ref, ucs2=ucs2
            ):
                index = self._free_index()
                self._store[index] = ("0", pdu)
                self._texts[index] = (number, decode_pdu(pdu).text)
                indices.append(index)
            if self.indications:
                for index in indices:
                    self._write(f'\r\n+CMTI: "SM",{index}\r\n')
            return indices

    def _free_index(self) -> int:
        i = 1
        while i in self._store:
            i += 1
        return i

    # -- terminal side ------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        data = text.encode("ascii", "replace")
        while data:
            n = os.write(self._fd, data)
            data = data[n:]

    def _run(self) -> None:
        buf = bytearray()
        body_for: str | None = None  # the AT+CMGS command whose body we are reading
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self._fd, 4096)
            except OSError:
                continue
            buf += chunk
            while True:
                if body_for is not None:
                    end = next((i for i, b in enumerate(buf) if b in (CTRL_Z, ESC)), -1)
                    if end < 0:
                        break
                    body, cancel = bytes(buf[:end]), buf[end] == ESC
                    del buf[: end + 1]
                    with self._lock:
                        self._write(self._sent_body(body_for, body, cancel))
                    body_for = None
                    continue
                i = buf.find(b"\r")
                if i < 0:
                    break
                line = buf[:i].decode("ascii", "replace").strip()
                del buf[: i + 1]
                if buf[:1] == b"\n":
                    del buf[:1]
                if not line:
                    continue
                with self._lock:
                    self.commands.append(line)
                    if self.echo:
                        self._write(line + "\r")
                    reply = self._command(line)
                    if reply.endswith("> "):
                        body_for = line
                    self._write(reply)

    def _command(self, line: str) -> str:
        up = line.upper()
        if up in ("AT", "ATZ") or up.startswith(("AT+CMEE=", "AT+CSCS=")):
            return "\r\nOK\r\n"
        if up in ("ATE0", "ATE1"):
            self.echo = up == "ATE1"
            return "\r\nOK\r\n"
        if up in ("AT+CMGF=0", "AT+CMGF=1"):
            self.pdu_mode = up.endswith("0")
            return "\r\nOK\r\n"
        if up == "AT+CMGF?":
            return f"\r\n+CMGF: {0 if self.pdu_mode else 1}\r\n\r\nOK\r\n"
        if up.startswith("AT+CNMI="):
            self.indications = up.split("=", 1)[1].split(",")[1:2] != ["0"]
            return "\r\nOK\r\n"
        if up.startswith("AT+CMGS="):
            return "\r\n> "
        if up.startswith("AT+CMGL"):
            return self._list(up)
        if up.startswith("AT+CMGR="):
            return self._read(up)
        if up.startswith("AT+CMGD="):
            index = _int(up.split("=", 1)[1].split(",")[0])
            if index not in self._store:
                return "\r\n+CMS ERROR: 321\r\n"
            del self._store[index]
            self._texts.pop(index, None)
            return "\r\nOK\r\n"
        return "\r\nERROR\r\n"

    def _sent_body(self, command: str, body: bytes, cancel: bool) -> str:
        if cancel:
            return "\r\nOK\r\n"
        arg = command.split("=", 1)[1].strip()
        if self.pdu_mode:
            pdu_hex = body.decode("ascii", "replace").strip()
            try:
                sms = decode_pdu(pdu_hex)
                if sms.kind != "submit" or tpdu_length(pdu_hex) != _int(arg):
                    raise PduError("not an SMS-SUBMIT of the announced length")
            except (PduError, ValueError, IndexError):
                return "\r\n+CMS ERROR: 304\r\n"
            number, whole = sms.number, self._reassembler.add(sms)
        else:
            number, whole = arg.strip('"'), body.decode("ascii", "replace")
        self._mr = (self._mr + 1) % 256
        if whole is not None:
            self.sent.append((number, whole))
            if self.on_sent is not None:
                # The callback may deliver a reply; release the lock around it.
                self._lock.release()
                try:
                    self.on_sent(number, whole)
                finally:
                    self._lock.acquire()
        return f"\r\n+CMGS: {self._mr}\r\n\r\nOK\r\n"

    def _list(self, up: str) -> str:
        out = []
        for index in sorted(self._store):
            stat, pdu = self._store[index]
            if self.pdu_mode:
                out.append(f"+CMGL: {index},{stat},,{tpdu_length(pdu)}\r\n{pdu}")
            else:
                number, text = self._texts[index]
                label = "REC UNREAD" if stat == "0" else "REC READ"
                out.append(f'+CMGL: {index},"{label}","{number}",,\r\n{text}')
            self._store[index] = ("1", pdu)
        body = "".join(f"\r\n{o}" for o in out)
        return f"{body}\r\n\r\nOK\r\n" if out else "\r\nOK\r\n"

    def _read(self, up: str) -> str:
        index = _int(up.split("=", 1)[1])
        if index not in self._store:
            return "\r\n+CMS ERROR: 321\r\n"
        stat, pdu = self._store[index]
        self._store[index] = ("1", pdu)
        if self.pdu_mode:
            return f"\r\n+CMGR: {stat},,{tpdu_length(pdu)}\r\n{pdu}\r\n\r\nOK\r\n"
        number, text = self._texts[index]
        return f'\r\n+CMGR: "REC UNREAD","{number}",,\r\n{text}\r\n\r\nOK\r\n'


def _int(text: str) -> int:
    m = re.match(r"\s*([0-9]+)", text)
    return int(m.group(1)) if m else -1
