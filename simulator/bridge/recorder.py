"""Master mode: record a real M-Bus into golden telegram fixtures (``meterbench record``).

The bench acts as the M-Bus master through a master level converter (or any pyserial URL,
e.g. the bridge's own TCP service in the tests): it finds the meters by primary scan or by
secondary wildcard search, reads every telegram of each (REQ_UD2 with FCB toggling while the
meter signals more records with DIF 1F), and writes them in the ``fixtures/telegrams``
format: ``<name>.hex`` (the RSP_UD frame as hex) and ``<name>.json`` (where it came from and
its decode, :func:`simulator.mbus.telegram.telegram_json`), plus ``recorded.toml``, an mbus
scenario whose ``[[slaves]]`` replay the recordings (``telegram = [...]``).

The procedures are the simulated gateway's own (:mod:`simulator.mbus.procedures`), driven in
real time on the port by :class:`~simulator.bridge.serial_master.SerialMaster`; only the
timing is libmbus's (PROTOCOL.md §2.5): a reply must start within ``(330 + 11) bit times +
150 ms`` of the end of the request (about 0.3 s at 2400 bit/s, the extra 100 ms covers USB
adapters), and the master idles 11 character times between requests.

Twins (two meters with one secondary address) follow the master's rule
(:mod:`simulator.mbus.procedures.search`): never merged. A primary scan records each address
that answers as its own meter (two with one secondary address get distinct fixture names, and
a problem line says so); a secondary address that several meters answer cannot be selected
alone, so it is reported as a problem and not recorded.

Errors: :class:`RecorderError` for a port that cannot be opened; silent meters, collisions
and bad frames are retried (``retries``) and reported in :attr:`Recording.problems`, never
raised.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import serial

from simulator.bridge.serial_master import SerialMaster
from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.frames import ADDR_NETWORK
from simulator.mbus.procedures import Heard, MasterSettings, target_str
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
    attempts for a silent or garbled reply (selection and readout retries); ``timeout``:
    first-byte wait (s, default :func:`reply_timeout`); ``max_telegrams``: multi-telegram
    limit per meter. Raises :class:`RecorderError` if the port cannot be opened.
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
        self.master = SerialMaster(self.port, recorder_settings(self), echo=echo)

    def close(self) -> None:
        self.port.close()

    # -- single exchanges (the machine's) ---------------------------------------------------
    def exchange(self, frame: bytes) -> bytes:
        """Write ``frame``; return the reply bytes (``b""`` if none within the timeout)."""
        rx: Heard = self.master.drive(self.master.machine.request(frame))
        return rx.data

    def snd_nke(self, address: int) -> bool:
        """SND_NKE to ``address``; True on a clean E5."""
        return self.master.snd_nke(address)

    def select(self, mask: SecondaryMask) -> str:
        """``"single"`` (one clean E5), ``"collision"`` or ``"none"``."""
        return self.master.select(mask)

    def read_all(self, address: int | SecondaryAddress) -> tuple[list[bytes], str | None]:
        """Every telegram of the meter at ``address`` and the problem, if any."""
        ro = self.master.read(address)
        problem = None if ro.ok else f"{target_str(address)}: {ro.error} ({ro.attempts} REQ_UD2)"
        return ro.frames, problem

    # -- procedures -------------------------------------------------------------------------
    def scan_primary(self, addresses: Iterable[int] = range(0, 251)) -> Recording:
        """Primary scan, then every telegram of each address that answered."""
        rec = Recording()
        for a in self.master.scan_primary(addresses):
            self.log(f"primary {a}: answers")
            frames, problem = self.read_all(a)
            self._add(rec, frames, a, problem)
        return rec

    def search_secondary(self, mask: str = "FFFFFFFFFFFFFFFF") -> Recording:
        """Wildcard search by digit descent (PROTOCOL.md §3.1), then read each meter found."""
        rec = Recording()
        self.snd_nke(ADDR_NETWORK)  # deselect everybody
        seen = len(self.master.notes)
        found = self.master.search_secondary(mask)
        inferred = set()
        for note in self.master.notes[seen:]:
            f = note.fields
            if note.kind != "search":
                continue
            if f["result"] in ("unresolved", "ambiguous"):
                rec.problems.append(
                    f"mask {f['mask']}: several meters answer it and no probe tells them "
                    "apart (twins with one secondary address?): not recorded"
                )
            elif f["result"] == "inferred":
                inferred.add(f["address"])
                rec.problems.append(
                    f"{f['address']}: inferred from a collision, can never be selected alone: "
                    "not recorded"
                )
        for address in found:
            if str(address) in inferred:
                continue
            frames, problem = self.read_all(address)
            self._add(rec, frames, None, problem)
        return rec

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
        twins = [m for m in rec.meters if m.address == address]
        if twins:  # twins are two meters: recorded apart, never merged
            where = ", ".join(f"primary {m.primary}" for m in twins)
            rec.problems.append(
                f"twins: {address} answers at primary {primary} and at {where}: "
                "recorded as separate meters"
            )
        rec.meters.append(MeterRecording(address, primary, frames, telegrams))
        self.log(f"recorded {address}: {len(frames)} telegram(s)")


def recorder_settings(rec: Recorder) -> MasterSettings:
    """The master settings of a recorder: libmbus timing, ``retries`` for both retry knobs."""
    pause = 11 * CHAR_BITS / rec.baud  # a short idle between requests
    return MasterSettings(
        response_timeout=rec.timeout,
        readout_retries=rec.retries,
        selection_retries=rec.retries,
        init_idle=pause,
        collision_idle=pause,
        request_idle=pause,
        multi_telegram=True,
        max_telegrams=rec.max_telegrams,
        stop_on_repeat=True,
    )


def fixture_names(meters: list[MeterRecording]) -> list[str]:
    """One base file name per meter, ``<ID>_<MAN>``; twins get ``_v<VER><MED>`` and, if still
    alike, ``_p<primary>`` (or their position) so no recording overwrites another."""
    names = [f"{m.address.id:08d}_{m.address.manufacturer}" for m in meters]
    counts = Counter(names)
    names = [
        n if counts[n] == 1 else f"{n}_v{m.address.version:02X}{m.address.medium:02X}"
        for n, m in zip(names, meters, strict=True)
    ]
    counts = Counter(names)
    return [
        n if counts[n] == 1 else f"{n}_p{m.primary}" if m.primary is not None else f"{n}_{i}"
        for i, (n, m) in enumerate(zip(names, meters, strict=True))
    ]


def write_fixtures(rec: Recording, out_dir: str | Path, *, source: str) -> list[Path]:
    """Write each meter's telegrams as fixtures and a replay scenario; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    groups: list[str] = []
    when = datetime.now(UTC).isoformat(timespec="seconds")  # the recorder is not a model
    for m, base in zip(rec.meters, fixture_names(rec.meters), strict=True):
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
