"""Master mode: record a real M-Bus into golden telegram fixtures (``meterbench record``).

The bench acts as the M-Bus master through a master level converter (or any pyserial URL,
e.g. the bridge's own TCP service in the tests): it finds the meters by primary scan or by
secondary wildcard search, reads every telegram of each (REQ_UD2 with FCB toggling while the
meter signals more records with DIF 1F), and writes them in the ``fixtures/telegrams``
format: ``<name>.hex`` (the RSP_UD frame as hex) and ``<name>.json`` (where it came from and
its decode, :func:`simulator.mbus.telegram.telegram_json`), plus ``recorded.toml``, an mbus
scenario whose ``[[slaves]]`` replay the recordings (``telegram = [...]``).

This is a plain synchronous serial master (no world: it talks to real hardware in real
time). Timing follows libmbus (PROTOCOL.md §2.5): a reply must start within
``(330 + 11) bit times + 150 ms`` of the end of the request (about 0.3 s at 2400 bit/s, the
extra 100 ms covers USB adapters); a reply is complete when the frame grammar says so, or
after 3 character times of silence.

Errors: :class:`RecorderError` for a port that cannot be opened; silent meters, collisions
and bad frames are retried (``retries``) and reported in :attr:`Recording.problems`, never
raised.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import serial

from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.errors import MBusError
from simulator.mbus.frames import (
    ADDR_NETWORK,
    FCB,
    REQ_UD2,
    SND_NKE,
    SND_UD,
    LongFrame,
    ShortFrame,
    frame_length,
    parse_frame,
)
from simulator.mbus.telegram import Telegram, decode_telegram, telegram_json

CHAR_BITS = 11


class RecorderError(Exception):
    """The recorder cannot work at all (port cannot be opened); says which port and why."""


def reply_timeout(baud: int) -> float:
    """libmbus's wait for a first reply byte (s): (330 + 11) bit times + 150 ms."""
    return (330 + 11) / baud + 0.150


@dataclass
class MeterRecording:
    """One meter: how it was addressed and its RSP_UD frames in order."""

    address: SecondaryAddress
    primary: int | None
    frames: list[bytes]
    telegrams: list[Telegram]


@dataclass
class Recording:
    """What :class:`Recorder` found; ``problems`` lists what went wrong, meter by meter."""

    meters: list[MeterRecording] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Recorder:
    """A synchronous M-Bus master on a pyserial ``url`` at ``baud`` bit/s.

    ``echo``: the converter echoes our bytes (they are read and dropped); ``retries``: extra
    attempts for a silent or garbled reply; ``timeout``: first-byte wait (s, default
    :func:`reply_timeout`); ``max_telegrams``: multi-telegram limit per meter.
    """

    def __init__(
        self,
        url: str,
        *,
        baud: int = 2400,
        parity: str = "E",
        echo: bool = False,
        retries: int = 2,
        timeout: float | None = None,
        max_telegrams: int = 16,
        log=None,
    ) -> None:
        try:
            self.port = serial.serial_for_url(url, baudrate=baud, parity=parity, timeout=0.01)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise RecorderError(f"{url}: cannot open: {exc}") from None
        self.url = url
        self.baud = baud
        self.echo = echo
        self.retries = retries
        self.timeout = timeout if timeout is not None else reply_timeout(baud)
        self.max_telegrams = max_telegrams
        self.log = log or (lambda msg: None)

    def close(self) -> None:
        self.port.close()

    # -- one exchange ---------------------------------------------------------------------
    def exchange(self, frame: bytes) -> bytes:
        """Write ``frame``; return the reply bytes (``b""`` if none within the timeout)."""
        self.port.reset_input_buffer()
        self.port.write(frame)
        self.port.flush()
        if self.echo:
            self._read_until(len(frame), time.monotonic() + 1.0)
        # the request takes n character times on the wire before the window opens
        deadline = time.monotonic() + len(frame) * CHAR_BITS / self.baud + self.timeout
        buf = b""
        last = 0.0
        gap = 3 * CHAR_BITS / self.baud + 0.02
        while True:
            limit = deadline if not buf else min(deadline + 5.0, last + gap)
            chunk = self.port.read(max(1, self.port.in_waiting))
            now = time.monotonic()
            if chunk:
                buf += chunk
                last = now
                try:
                    n = frame_length(buf)
                except MBusError:
                    n = None  # garbled: read until silence
                if n is not None and len(buf) >= n:
                    # a complete frame; a collision may still be trailing: drain it
                    buf += self._read_until(0, now + gap)
                    return buf
            elif now > limit:
                return buf

    def _read_until(self, n: int, deadline: float) -> bytes:
        out = b""
        while time.monotonic() < deadline and (n == 0 or len(out) < n):
            out += self.port.read(max(1, self.port.in_waiting))
        return out

    def _pause(self) -> None:
        time.sleep(11 * CHAR_BITS / self.baud)  # a short idle between requests

    # -- procedures -------------------------------------------------------------------------
    def snd_nke(self, address: int) -> bytes:
        reply = self.exchange(ShortFrame(SND_NKE, address).to_bytes())
        self._pause()
        return reply

    def select(self, mask: SecondaryMask) -> str:
        """``"single"`` (one clean E5), ``"collision"`` or ``"none"``."""
        frame = LongFrame(SND_UD, ADDR_NETWORK, 0x52, mask.to_bytes()).to_bytes()
        for _ in range(self.retries + 1):
            reply = self.exchange(frame)
            self._pause()
            if reply == b"\xe5":
                return "single"
            if reply:
                return "collision"
        return "none"

    def read_all(self, address: int) -> tuple[list[bytes], str | None]:
        """Every telegram of the meter at ``address`` (253 = the selected one)."""
        frames: list[bytes] = []
        fcb = True
        while len(frames) < self.max_telegrams:
            request = ShortFrame(REQ_UD2 | (FCB if fcb else 0), address).to_bytes()
            telegram = None
            for _ in range(self.retries + 1):
                reply = self.exchange(request)
                self._pause()
                try:
                    frame = parse_frame(reply)
                    if isinstance(frame, LongFrame):
                        telegram = decode_telegram(frame)
                        break
                except MBusError:
                    continue
            if telegram is None:
                return frames, f"a={address}: no valid RSP_UD after {self.retries + 1} attempts"
            if any(_same_content(reply, f) for f in frames):
                # the meter starts over (or repeats one telegram forever despite DIF 1F)
                return frames, None
            frames.append(reply)
            if not telegram.more_follow:
                return frames, None
            fcb = not fcb
        return frames, None

    def scan_primary(self, addresses: Iterable[int] = range(0, 251)) -> Recording:
        rec = Recording()
        for a in addresses:
            if not any(self.snd_nke(a) for _ in range(self.retries + 1)):
                continue
            self.log(f"primary {a}: answers")
            frames, problem = self.read_all(a)
            self._add(rec, frames, a, problem)
        return rec

    def search_secondary(self, mask: str = "FFFFFFFFFFFFFFFF") -> Recording:
        """Wildcard search by digit descent on collision (libmbus's method, PROTOCOL.md §3.1)."""
        rec = Recording()
        self.snd_nke(ADDR_NETWORK)  # deselect everybody
        self._descend(SecondaryMask.parse(mask), str(SecondaryMask.parse(mask)), 0, rec)
        return rec

    def _descend(self, mask: SecondaryMask, text: str, pos: int, rec: Recording) -> None:
        result = self.select(mask)
        if result == "none":
            return
        problem = None
        if result == "single":
            frames, problem = self.read_all(ADDR_NETWORK)
            if frames:
                self._add(rec, frames, None, problem)
                return
            # One clean E5 but no valid RSP_UD: several meters were selected and their E5s
            # merged or came one by one; their RSP_UDs collide. libmbus's probe treats this
            # as a collision too (PROTOCOL.md §3.1), so descend.
        while pos < 16 and text[pos] != "F":
            pos += 1
        if pos >= 8:  # ID fully given and still colliding: two meters share an ID
            rec.problems.append(problem or f"mask {text}: collision that ID digits cannot resolve")
            return
        for digit in "0123456789":
            probe = text[:pos] + digit + text[pos + 1 :]
            self.log(f"probe {probe}")
            self._descend(SecondaryMask.parse(probe), probe, pos + 1, rec)

    def _add(
        self, rec: Recording, frames: list[bytes], primary: int | None, problem: str | None
    ) -> None:
        if problem:
            rec.problems.append(problem)
        if not frames:
            return
        telegrams = [decode_telegram(f) for f in frames]
        address = telegrams[0].header.address
        if address is None:
            rec.problems.append(f"a={primary}: RSP_UD without a long header, not recorded")
            return
        if any(m.address == address for m in rec.meters):
            return
        rec.meters.append(MeterRecording(address, primary, frames, telegrams))
        self.log(f"recorded {address}: {len(frames)} telegram(s)")


def _same_content(a: bytes, b: bytes) -> bool:
    """Two RSP_UD frames equal but for the access number (byte 15 of a CI 72 long frame)."""
    if len(a) != len(b) or len(a) < 21:
        return a == b
    return a[:15] == b[:15] and a[16:-2] == b[16:-2]


def write_fixtures(rec: Recording, out_dir: str | Path, *, source: str) -> list[Path]:
    """Write each meter's telegrams as fixtures and a replay scenario; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    groups: list[str] = []
    when = datetime.now(UTC).isoformat(timespec="seconds")  # the recorder is not a model
    for m in rec.meters:
        base = f"{m.address.id:08d}_{m.address.manufacturer}"
        names = []
        for i, (frame, telegram) in enumerate(zip(m.frames, m.telegrams, strict=True)):
            name = base if len(m.frames) == 1 else f"{base}_t{i}"
            hex_path = out / f"{name}.hex"
            hex_path.write_text(" ".join(f"{b:02X}" for b in frame) + "\n", encoding="utf-8")
            doc = {
                "source": f"{source}, {when}",
                "checked": "recorded from a bus; decode by meterbench",
                "decode": telegram_json(telegram),
            }
            json_path = out / f"{name}.json"
            json_path.write_text(
                json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
            )
            written += [hex_path, json_path]
            names.append(f"{name}.hex")
        files = ", ".join(f'"{n}"' for n in names)
        group = f'[[slaves]]\nname = "{m.address}"\ntelegram = [{files}]\n'
        if m.primary:
            group += f"primary = {m.primary}\n"
        groups.append(group)
    if not rec.meters:
        return written  # a scenario without slaves would not validate: write none
    scenario = out / "recorded.toml"
    scenario.write_text(
        f"# Recorded by meterbench record ({source}, {when}).\n"
        "# Replays the recorded meters as simulated slaves.\n"
        'kind = "mbus"\nname = "recorded"\nseed = 1\n\n' + "\n".join(groups),
        encoding="utf-8",
    )
    written.append(scenario)
    return written
