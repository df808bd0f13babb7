"""Radio meters: where they are, how they transmit, and the telegrams they send.

A :class:`RadioMeter` is a wM-Bus meter-to-other transmitter (SND_NR, C = 0x44) with a
position (x, y in m, indoor/outdoor, floor), a mode (S1, T1, C1A = C1 frame format A,
C1B = C1 frame format B), a transmit power (dBm) and a nominal interval (s) with jitter.

Jitter: real meters randomise the interval so that two meters started together do not
collide forever (RADIO-NBIOT.md §8 anchor 7: "strictly periodic meters without jitter cause
persistent collisions"). The ista ultego III smart+ manual (p. 20, wM-Bus technical data)
gives a mobile sending interval of "20-34 sec", i.e. 27 s +/- 26 %; stationary intervals
(15 min) are also randomised by meters. The bench draws each interval uniformly in
``interval_s * [1 - jitter, 1 + jitter]`` (``jitter`` a fraction, default 0.1) and the first
transmission uniformly in ``[0, interval_s)``.

Telegram contents come from the meter's type file (:mod:`simulator.meters`: the ``[wireless]``
records and their value profiles, the same files the wired slaves are built from; parameters
drawn from the stream ``meter/<id>/profile`` of the meter's ``seed``) and are encoded by the wM-Bus codec
(:func:`simulator.wmbus.telegram.build_telegram`) with records built by the wired codec
(:meth:`simulator.mbus.records.DataRecord.from_value`), optionally encrypted (OMS security
mode 5 or 7 with the meter's key).

Extended link layer. C1 meters (C1A, C1B) carry an ELL after the link header, as OMS C-mode
meters do (PROTOCOL.md §5.3): ELL I (CI 8C: CC, ACC) in front of the TPL (CI 7A, optionally
security mode 5/7); or, with ``ell_encryption`` (Kamstrup style, PROTOCOL.md §5.6), ELL II
(CI 8D: CC, ACC, SN with ELL security mode 1, AES-128-CTR over payload CRC + TPL CI 78 + APL).
S1 and T1 meters send CI 7A without an ELL. The ELL bytes count in the on-air length and so in
the time on air.

Compact frames. With ``frame = "compact"`` a meter sends its full frame (CI 7A, or CI 78 after
an ELL II) only every ``full_every``-th telegram (``seq`` 0, N, 2N ...) and between them compact
frames (CI 79: format signature, data CRC, the records' data without DIF/VIF;
:mod:`simulator.wmbus.compact`), as Kamstrup meters do: a multical21/kamheat log in
wmbusmeters issue #1242 shows one full frame (L 2E, CI 78) at ELL access numbers 49, 51, C9,
D1, D9 (every 8th) and compact frames (L 25, CI 79) between them, and the maintainer's answer
in #1241 is that a decoder "has to receive the full length first before it can decode the
compressed one". CI 79 carries no TPL header, so a compact meter is unencrypted or encrypted in
the ELL (``ell_encryption``), never TPL mode 5/7.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

from simulator.core.rng import stream
from simulator.core.world import EPOCH
from simulator.meters.types import TypeView

MODES = ("S1", "T1", "C1A", "C1B")
#: Frame format per mode: C1B sends frame format B, every other mode frame format A.
FRAME_FORMAT = {"S1": "A", "T1": "A", "C1A": "A", "C1B": "B"}
#: Mode name as the PHY layer knows it (``simulator.wmbus.phy.time_on_air``).
PHY_MODE = {"S1": "S1", "T1": "T1", "C1A": "C1", "C1B": "C1"}
SND_NR = 0x44
#: Modes whose telegrams carry an ELL (OMS C-mode meters).
ELL_MODES = frozenset({"C1A", "C1B"})
#: CC field sent in the ELL: no bits set (unidirectional, not synchronous, not relayed).
ELL_CC = 0x00
#: What a meter sends: its full frame every time, or compact frames between full ones.
FRAMES = ("full", "compact")
#: Default full-frame period of a compact meter (telegrams): Kamstrup, wmbusmeters issue #1242.
FULL_EVERY = 8
#: Silence (s) between the end of one AFL fragment and the start of the next. The bench's
#: choice: neither EN 13757-4 nor EN 13757-7 / OMS Vol.2 as read here gives a value for a
#: meter's unsolicited fragments (EN 13757-4's response delays are for bidirectional
#: replies), so a fragment follows after a short radio turnaround.
FRAGMENT_GAP_S = 0.01


#: The shipped meter types that have a ``[wireless]`` identity, by name (the scenario's
#: ``meters.profiles`` keys). The data lives in ``simulator/meters/data/*.toml``.
PROFILES = TypeView("wireless")


@dataclass
class RadioMeter:
    """A wM-Bus meter transmitting SND_NR telegrams.

    ``id`` is the 8-digit meter identification (BCD in the A-field), ``manufacturer`` three
    letters, ``interval_s`` the nominal transmit interval (s), ``jitter`` the relative jitter
    (fraction), ``tx_power_dbm`` the conducted power (dBm), ``security_mode`` 0, 5 or 7 with
    ``key`` (16 bytes) when encrypted. ``ell_encryption`` (C1 modes only, with ``key`` and
    ``security_mode`` 0): encrypt in the ELL (CI 8D, AES-128-CTR) instead of the TPL.
    ``profile`` names a shipped meter type with a ``[wireless]`` identity, or ``meter_type``
    gives one (:class:`~simulator.meters.types.MeterType`, e.g. from a file of one's own);
    ``seed`` roots the meter's profile stream. ``frame`` (:data:`FRAMES`): ``"compact"`` sends
    a full frame every ``full_every`` telegrams and compact frames (CI 79) between them (module
    docstring). ``fragment_size`` (bytes, mode 7 without ELL): :meth:`frames` cuts a message
    longer than that into AFL fragments, sent ``fragment_gap_s`` (s) apart
    (:data:`FRAGMENT_GAP_S`). Raises ``ValueError`` for an unknown mode, profile or
    frame, a missing/unusable key, compact frames with TPL security (mode 5/7), or fragments
    outside mode 7 without ELL.
    """

    id: int
    x: float
    y: float
    mode: str = "T1"
    manufacturer: str = "ELV"
    version: int = 1
    profile: str = "water"
    indoor: bool = True
    floor: int = 0
    tx_power_dbm: float = 10.0
    interval_s: float = 900.0
    jitter: float = 0.1
    security_mode: int = 0
    key: bytes | None = None
    ell_encryption: bool = False
    frame: str = "full"
    full_every: int = FULL_EVERY
    fragment_size: int | None = None
    fragment_gap_s: float = FRAGMENT_GAP_S
    meter_type: Any = field(default=None, repr=False)
    seed: int = 0
    _access_no: int = field(default=0, repr=False)
    _specs: list | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"meter {self.id}: unknown mode {self.mode!r}; one of {MODES}")
        if self.meter_type is None:
            if self.profile not in PROFILES:
                raise ValueError(
                    f"meter {self.id}: unknown profile {self.profile!r}; one of {list(PROFILES)}"
                )
            self.meter_type = PROFILES[self.profile]
        if self.security_mode and (self.key is None or len(self.key) != 16):
            raise ValueError(
                f"meter {self.id}: security mode {self.security_mode} needs a 16-byte key"
            )
        if self.ell_encryption:
            if self.mode not in ELL_MODES:
                raise ValueError(
                    f"meter {self.id}: ELL encryption needs a C1 mode, not {self.mode}"
                )
            if self.security_mode or self.key is None or len(self.key) != 16:
                raise ValueError(
                    f"meter {self.id}: ELL encryption needs a 16-byte key and security_mode 0"
                )
        if self.frame not in FRAMES:
            raise ValueError(f"meter {self.id}: unknown frame {self.frame!r}; one of {FRAMES}")
        if self.frame == "compact":
            if self.security_mode:
                raise ValueError(
                    f"meter {self.id}: compact frames (CI 79) have no TPL header for security "
                    f"mode {self.security_mode}; encrypt in the ELL (ell_encryption) instead"
                )
            if self.full_every < 1:
                raise ValueError(f"meter {self.id}: full_every must be >= 1, got {self.full_every}")
        if self.fragment_size is not None:
            if self.security_mode != 7 or self.has_ell or self.fragment_size < 1:
                raise ValueError(
                    f"meter {self.id}: AFL fragments (fragment_size {self.fragment_size}) are "
                    "sent by security mode 7 meters without an ELL (S1, T1), at least 1 byte each"
                )
            if self.fragment_gap_s < 0:
                raise ValueError(
                    f"meter {self.id}: fragment_gap_s must be >= 0, got {self.fragment_gap_s}"
                )

    @property
    def device_type(self) -> int:
        """EN 13757-3 device type (the meter type's medium, PROTOCOL.md §4.6)."""
        return self.meter_type.medium

    @property
    def profile_stream(self) -> str:
        """Name of the random stream (of ``seed``) the profile parameters are drawn from."""
        return f"meter/{self.id}/profile"

    @property
    def frame_format(self) -> str:
        return FRAME_FORMAT[self.mode]

    @property
    def has_ell(self) -> bool:
        """Whether this meter's telegrams carry an ELL (C1 modes)."""
        return self.mode in ELL_MODES

    def ell(self, t_s: float, access_no: int) -> dict | None:
        """The ELL fields for :func:`~simulator.wmbus.telegram.build_telegram` (None without
        ELL). With ELL encryption, SN = security mode 1 (bits 29-31), time = whole minutes of
        world time (bits 4-28), session = access number mod 16 (bits 0-3): the AES-CTR counter
        block holds SN (PROTOCOL.md §5.6), so it differs between telegrams of one meter unless
        the meter sends more than 16 in one minute."""
        if not self.has_ell:
            return None
        if not self.ell_encryption:
            return {"ci": 0x8C, "cc": ELL_CC, "acc": access_no & 0xFF}
        minutes = int(t_s // 60) & 0x1FFFFFF
        sn = (1 << 29) | (minutes << 4) | (access_no & 0x0F)
        return {"ci": 0x8D, "cc": ELL_CC, "acc": access_no & 0xFF, "sn": sn}

    def records(self, t_s: float) -> list:
        """The data records (``DataRecord``) this meter sends at world time ``t_s`` (s)."""
        if self._specs is None:
            rng = stream(self.seed, self.profile_stream)
            self._specs = self.meter_type.wireless_records(rng)
        clock = EPOCH + timedelta(seconds=t_s)
        noise = random.Random(hash((self.seed, self.id, t_s)))  # same t, same telegram
        return [spec.build(t_s, clock, noise) for spec in self._specs]

    def sends_full(self, seq: int) -> bool:
        """Whether transmission ``seq`` (0, 1, 2 ...) is a full frame (always, unless compact:
        then every ``full_every``-th, starting with the first)."""
        return self.frame == "full" or seq % self.full_every == 0

    def _telegram_fields(self, t_s: float, access_no: int, seq: int) -> dict:
        """:func:`~simulator.wmbus.telegram.build_telegram` arguments of transmission ``seq``."""
        full_ci = 0x78 if self.ell_encryption else 0x7A  # Kamstrup: ELL II, then no TPL header
        return dict(
            manufacturer=self.manufacturer,
            id=self.id,
            version=self.version,
            device_type=self.device_type,
            records=self.records(t_s),
            access_no=access_no & 0xFF,
            c=SND_NR,
            ci=full_ci if self.sends_full(seq) else 0x79,
            security_mode=self.security_mode,
            key=self.key,
            ell=self.ell(t_s, access_no),
            fmt=self.frame_format,
        )

    def telegram(self, t_s: float, access_no: int, seq: int = 0) -> bytes:
        """The on-air telegram (L-field to last CRC) of transmission ``seq`` sent at world
        time ``t_s`` (s): a compact frame (CI 79) where :meth:`sends_full` says not full."""
        from simulator.wmbus.telegram import build_telegram

        return build_telegram(**self._telegram_fields(t_s, access_no, seq))

    def frames(self, t_s: float, access_no: int, seq: int = 0) -> list[bytes]:
        """The on-air frames of transmission ``seq``: ``[telegram]``, or with
        ``fragment_size`` the AFL fragments of its mode-7 message (CI 90, at most
        ``fragment_size`` message bytes each; the first carries MCL, MCR, ML and the AES-CMAC
        over the whole message, :func:`~simulator.wmbus.telegram.build_fragments`)."""
        if self.fragment_size is None:
            return [self.telegram(t_s, access_no, seq)]
        from simulator.wmbus.telegram import build_fragments

        kw = self._telegram_fields(t_s, access_no, seq)
        del kw["ell"]  # no ELL on S1/T1 (checked in __post_init__)
        return build_fragments(fragment_size=self.fragment_size, **kw)

    def airtime_s(self, compact: bool = False) -> float:
        """Time on air (s) of this meter's full frames (constant: the records have fixed
        sizes); with ``compact``, of its compact frames (a full-frame meter: its frames)."""
        compact = compact and self.frame == "compact"
        return airtime_s(self.mode, self.profile, self.security_mode, self.ell_encryption, compact)

    def fragment_airtimes_s(self) -> tuple[float, ...]:
        """Time on air (s) of each AFL fragment of one message (constant, like
        :meth:`airtime_s`); ``()`` for a meter without ``fragment_size``."""
        if self.fragment_size is None:
            return ()
        return fragment_airtimes_s(self.mode, self.profile, self.fragment_size)

    def fragment_starts_s(self) -> tuple[float, ...]:
        """Start of each fragment (s) after the message's send time: fragment k starts after
        the k fragments before it and k gaps of ``fragment_gap_s``; ``()`` unfragmented."""
        starts, t = [], 0.0
        for air in self.fragment_airtimes_s():
            starts.append(t)
            t += air + self.fragment_gap_s
        return tuple(starts)


@lru_cache(maxsize=64)
def fragment_airtimes_s(mode: str, profile: str, fragment_size: int) -> tuple[float, ...]:
    """Time on air (s) of each AFL fragment of a mode-7 telegram of ``profile`` in ``mode``
    (S1, T1) cut at ``fragment_size`` message bytes (PHY model, as :func:`airtime_s`)."""
    sample = _sample(mode, profile, security_mode=7, key=bytes(16), fragment_size=fragment_size)
    return tuple(_time_on_air(mode, raw) for raw in sample.frames(0.0, 0, 0))


@lru_cache(maxsize=64)
def airtime_s(
    mode: str,
    profile: str,
    security_mode: int = 0,
    ell_encryption: bool = False,
    compact: bool = False,
) -> float:
    """Time on air (s) of a telegram of ``profile`` in ``mode`` (with the ELL of C1 modes; a
    compact frame with ``compact``), from the PHY model (:func:`simulator.wmbus.phy.
    time_on_air`: chip rate, coding, preamble, sync, postamble)."""
    sample = _sample(
        mode,
        profile,
        security_mode=security_mode,
        key=bytes(16) if security_mode or ell_encryption else None,
        ell_encryption=ell_encryption,
        frame="compact" if compact else "full",
    )
    return _time_on_air(mode, sample.telegram(0.0, 0, seq=1 if compact else 0))


def _sample(mode: str, profile: str, **settings) -> RadioMeter:
    """A meter of ``mode`` and ``profile`` at the origin, for measuring its frames."""
    return RadioMeter(id=12345678, x=0.0, y=0.0, mode=mode, profile=profile, **settings)


def _time_on_air(mode: str, raw: bytes) -> float:
    from simulator.wmbus.phy import time_on_air

    return float(time_on_air(PHY_MODE[mode], len(raw), FRAME_FORMAT[mode]))
