"""A GSM modem driver over pyserial: send and receive SMS with AT commands (3GPP TS 27.005).

A lab rig commands a physical CMe2100 through any AT-command GSM modem (USB stick, module on
a serial port) with the same :class:`~simulator.gateways.cme2100.sender.CommandSender` the
simulator uses. The port is a pyserial URL (``/dev/ttyUSB0``, ``rfc2217://host:port``,
``socket://host:port``, or the path of the simulated modem's pty).

PDU mode (``AT+CMGF=0``, the default) is used because concatenated SMS need a user data
header, which text mode cannot send; commands and responses above 160 characters therefore
go as concatenated SMS (:mod:`simulator.gateways.cme2100.pdu`). Text mode (``mode="text"``,
``AT+CMGF=1``) is supported for single-part messages only and raises :class:`ModemError`
for longer texts.

AT commands used: ``ATE0`` (no echo), ``AT+CMEE=1`` (numeric errors), ``AT+CMGF``,
``AT+CNMI=2,1,0,0,0`` (new messages announced as ``+CMTI: "SM",<index>``), ``AT+CMGS``
(send), ``AT+CMGL`` (list stored messages), ``AT+CMGD`` (delete).
Errors: :class:`ModemError` with the command and the modem's final result
(``ERROR``, ``+CMS ERROR: <n>``, ``+CME ERROR: <n>``) or ``timeout``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime

import serial

from simulator.core.text import decimal
from simulator.gateways.cme2100.pdu import (
    PduError,
    Reassembler,
    decode_pdu,
    encode_submit,
    tpdu_length,
)
from simulator.gateways.cme2100.sms import SINGLE_SEPTETS, septet_length

FINAL = re.compile(r"^(OK|ERROR|\+CMS ERROR: ?[0-9]+|\+CME ERROR: ?.+|NO CARRIER)$")
URC = re.compile(r"^\+(CMTI|CDSI|CMT|CDS):")
CTRL_Z = b"\x1a"


class ModemError(Exception):
    """An AT command that failed: ``command`` sent, ``result`` (final result code or
    ``"timeout"``), ``lines`` received before it."""

    def __init__(self, command: str, result: str, lines: list[str] | None = None) -> None:
        self.command, self.result, self.lines = command, result, list(lines or [])
        super().__init__(f"{command!r}: {result}")


@dataclass(frozen=True)
class ReceivedSms:
    """A complete received message (parts of a concatenated SMS joined)."""

    number: str
    text: str
    timestamp: datetime | None


class GsmModem:
    """AT-command SMS modem on a pyserial URL.

    ``baudrate`` in bit/s; ``timeout`` in s for each command's final result; ``mode`` is
    ``"pdu"`` (default) or ``"text"``. Call :meth:`init` before use (or use ``with``).
    Raises ``serial.SerialException`` if the port cannot be opened.
    """

    def __init__(
        self, url: str, *, baudrate: int = 115200, timeout: float = 10.0, mode: str = "pdu"
    ) -> None:
        if mode not in ("pdu", "text"):
            raise ValueError(f"mode must be 'pdu' or 'text', got {mode!r}")
        self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
        self.timeout = timeout
        self.mode = mode
        self.urcs: list[str] = []  # unsolicited result codes seen (+CMTI ...)
        self._buf = bytearray()
        self._reference = 0
        self._reassembler = Reassembler()
        #: stored messages that could not be decoded: (index, PDU hex, the PduError)
        self.rejected: list[tuple[int, str, PduError]] = []

    # -- life cycle ---------------------------------------------------------------------------
    def init(self) -> GsmModem:
        """Echo off, numeric errors, message format, new-message indications."""
        self.command("AT")
        self.command("ATE0")
        self.command("AT+CMEE=1")
        self.command("AT+CMGF=0" if self.mode == "pdu" else "AT+CMGF=1")
        self.command("AT+CNMI=2,1,0,0,0")
        return self

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> GsmModem:
        return self.init()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- line I/O -----------------------------------------------------------------------------
    def _read_line(self, deadline: float, *, prompt: bool = False) -> str | None:
        """The next non-empty line (or the ``> `` prompt when ``prompt``); None at deadline."""
        while True:
            if prompt:
                i = self._buf.find(b"> ")
                j = self._buf.find(b"\n")
                if i >= 0 and (j < 0 or i < j):
                    del self._buf[: i + 2]
                    return "> "
            j = self._buf.find(b"\n")
            if j >= 0:
                line = self._buf[:j].decode("ascii", "replace").strip()
                del self._buf[: j + 1]
                if line:
                    return line
                continue
            if time.monotonic() >= deadline:
                return None
            self._buf += self.port.read(max(1, self.port.in_waiting))

    def _collect(self, command: str, *, timeout: float | None = None) -> list[str]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        lines: list[str] = []
        while True:
            line = self._read_line(deadline)
            if line is None:
                raise ModemError(command, "timeout", lines)
            if line == command:  # echo (before ATE0 took effect)
                continue
            if URC.match(line):
                self.urcs.append(line)
                continue
            if FINAL.match(line):
                if line == "OK":
                    return lines
                raise ModemError(command, line, lines)
            lines.append(line)

    def command(self, command: str, *, timeout: float | None = None) -> list[str]:
        """Send one AT command; return the information lines before ``OK``."""
        self.port.write(command.encode("ascii") + b"\r")
        return self._collect(command, timeout=timeout)

    # -- sending ------------------------------------------------------------------------------
    def send_sms(self, number: str, text: str) -> list[int]:
        """Send ``text`` to ``number`` (concatenated in PDU mode if longer than 160 septets).

        Returns the message references (``+CMGS: <mr>``), one per part.
        """
        if self.mode == "text":
            if septet_length(text) > SINGLE_SEPTETS:
                raise ModemError("AT+CMGS", "text mode cannot send concatenated SMS; use PDU mode")
            return [self._submit(f'AT+CMGS="{number}"', text.encode("ascii", "replace"))]
        self._reference = (self._reference + 1) % 256
        refs = []
        for pdu in encode_submit(number, text, reference=self._reference):
            refs.append(self._submit(f"AT+CMGS={tpdu_length(pdu)}", pdu.encode("ascii")))
        return refs

    def _submit(self, command: str, body: bytes) -> int:
        self.port.write(command.encode("ascii") + b"\r")
        deadline = time.monotonic() + self.timeout
        while True:
            line = self._read_line(deadline, prompt=True)
            if line is None:
                raise ModemError(command, "timeout waiting for the '> ' prompt")
            if line == "> ":
                break
            if URC.match(line):
                self.urcs.append(line)
            elif FINAL.match(line):
                raise ModemError(command, line)
        self.port.write(body + CTRL_Z)
        lines = self._collect(command)
        for line in lines:
            if line.startswith("+CMGS:"):
                mr = decimal(line.split(":", 1)[1].strip().split(",")[0])
                if mr is None:
                    raise ModemError(command, f"bad message reference in {line!r}", lines)
                return mr
        raise ModemError(command, "no +CMGS reference in the response", lines)

    # -- receiving ----------------------------------------------------------------------------
    def receive(self, *, delete: bool = True) -> list[ReceivedSms]:
        """Every complete message stored in the modem (parts are buffered until complete).

        Listed with ``AT+CMGL`` and, with ``delete``, removed with ``AT+CMGD`` once read.
        """
        self.urcs.clear()
        out: list[ReceivedSms] = []
        command = "AT+CMGL=4" if self.mode == "pdu" else 'AT+CMGL="ALL"'
        for index, fields, body in parse_cmgl(self.command(command), command):
            if self.mode == "text":
                number = fields[1].strip('"') if len(fields) > 1 else ""
                whole: str | None = body
                ts = None
            else:
                try:
                    sms = decode_pdu(body)
                except PduError as exc:
                    # Set aside and deleted like any read message: one message this driver
                    # cannot read must not stay in storage and stop every later receive().
                    self.rejected.append((index, body, exc))
                    whole = None
                else:
                    number, ts = sms.number, sms.timestamp
                    whole = self._reassembler.add(sms)
            if whole is not None:
                out.append(ReceivedSms(number, whole, ts))
            if delete:
                self.command(f"AT+CMGD={index}")
        return out

    def wait_for_sms(self, count: int = 1, timeout: float | None = None) -> list[ReceivedSms]:
        """Poll for ``count`` complete messages (``ModemError`` ``timeout`` otherwise)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        got: list[ReceivedSms] = []
        while True:
            got += self.receive()
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise ModemError("wait_for_sms", f"timeout: {len(got)} of {count} messages", [])
            # Wait for a +CMTI indication (or just a little) before listing again.
            line = self._read_line(min(deadline, time.monotonic() + 0.2))
            if line is not None and URC.match(line):
                self.urcs.append(line)


def parse_cmgl(lines: list[str], command: str = "AT+CMGL") -> list[tuple[int, list[str], str]]:
    """The stored messages of an ``AT+CMGL`` response (TS 27.005 §3.4.2 PDU, §4.1 text):
    ``(index, the other header fields, the line after the header)`` for each
    ``+CMGL: <index>,...`` line. Raises :class:`ModemError` for a header without a decimal
    index or without its body line."""
    out = []
    for i, line in enumerate(lines):
        if not line.startswith("+CMGL:"):
            continue
        fields = line.split(":", 1)[1].strip().split(",")
        index = decimal(fields[0].strip())
        if index is None or i + 1 >= len(lines):
            what = "no decimal index" if index is None else "no message line"
            raise ModemError(command, f"{what} in {line!r} (line {i + 1})", lines)
        out.append((index, fields[1:], lines[i + 1]))
    return out
