"""Receivers (CMeX50-like wM-Bus collectors): position, modes, sensitivity and capture.

Reception rule (applied identically by the event model, :mod:`simulator.wmbus.radio_world`,
and the vectorised kernel, :mod:`simulator.wmbus.radio_kernel`): a telegram is received
by a receiver when

1. the receiver listens to the telegram's mode (``modes``, from the plugin's ``radio.mode``);
2. its RSSI (dBm) is at or above the receiver's sensitivity for that mode; and
3. no other telegram on the same frequency that overlaps it in time and arrives above the
   noise floor (``noise_floor_dbm``) is too strong: with capture on and
   ``interference="pairwise"`` (the default), every such interferer must be at least
   ``capture_db`` (dB) weaker; with ``interference="sum"`` the power sum (in mW) of all such
   interferers must be at least ``capture_db`` weaker (a signal-to-interference ratio; noise
   is left out, it is the sensitivity's business); with capture off (``capture_db=None``) any
   such overlap destroys it (pure ALOHA), under either rule.

The pairwise capture test is the one LoRaSim uses (Bor et al., MSWiM 2016); it lets several
interferers that are each just below the threshold pass together, which ``"sum"`` does not:
three interferers 8 dB below the wanted signal sum to 3.2 dB below it. Default sensitivities are the published model values S1 -108, T1 -103, C1 -108 dBm
(lkrzak/ijet2023, "based on STM32WLE5C datasheet", RADIO-NBIOT.md §6.3). The default capture
threshold of 6 dB is the usual co-channel rejection of FSK receivers, a bench choice. The
default noise floor of -115 dBm is thermal noise in about 200 kHz of receiver bandwidth
(-174 dBm/Hz + 53 dB) plus a 6 dB noise figure; it is also where an interferer stops
mattering to the weakest decodable telegram (-108 dBm sensitivity - 6 dB capture = -114 dBm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Sensitivity (dBm) per mode, RADIO-NBIOT.md §6.3.
DEFAULT_SENSITIVITY_DBM = {"S1": -108.0, "T1": -103.0, "C1A": -108.0, "C1B": -108.0}

#: Interference rules (see the module docstring).
INTERFERENCE_RULES = ("pairwise", "sum")

#: The plugin's ``radio.mode`` values (seed 003 §6.1) and the meter modes each one hears.
#: ``*_WIDE`` variants widen the receiver bandwidth; the bench treats them as their base set.
RADIO_MODES: dict[str, frozenset[str]] = {
    "S1": frozenset({"S1"}),
    "T1": frozenset({"T1"}),
    "T1_C1A": frozenset({"T1", "C1A"}),
    "T1_C1B": frozenset({"T1", "C1B"}),
    "T1_C1A_C1B": frozenset({"T1", "C1A", "C1B"}),
    "C1A": frozenset({"C1A"}),
    "C1B": frozenset({"C1B"}),
    "C1A_C1B": frozenset({"C1A", "C1B"}),
    "C1A_WIDE": frozenset({"C1A"}),
    "C1B_WIDE": frozenset({"C1B"}),
    "C1A_C1B_WIDE": frozenset({"C1A", "C1B"}),
}


@dataclass
class Receiver:
    """A wM-Bus receiver at (x, y) (m), ``height_m`` above ground (informational).

    ``serial`` is the receiver's 8-digit serial (it appears as fabrication number in the
    wired container, seed 003 §9.4); ``radio_mode`` one of :data:`RADIO_MODES`;
    ``interference`` one of :data:`INTERFERENCE_RULES` (raises ``ValueError`` otherwise).
    """

    id: str
    x: float
    y: float
    serial: int = 0
    radio_mode: str = "T1_C1A_C1B"
    sensitivity_dbm: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SENSITIVITY_DBM))
    capture_db: float | None = 6.0
    noise_floor_dbm: float = -115.0
    height_m: float = 10.0
    interference: str = "pairwise"

    def __post_init__(self) -> None:
        if self.radio_mode not in RADIO_MODES:
            raise ValueError(
                f"receiver {self.id}: unknown radio.mode {self.radio_mode!r}; "
                f"one of {sorted(RADIO_MODES)}"
            )
        if self.interference not in INTERFERENCE_RULES:
            raise ValueError(
                f"receiver {self.id}: unknown interference rule {self.interference!r}; "
                f"one of {INTERFERENCE_RULES}"
            )

    @property
    def modes(self) -> frozenset[str]:
        return RADIO_MODES[self.radio_mode]

    def hears(self, mode: str) -> bool:
        return mode in self.modes
