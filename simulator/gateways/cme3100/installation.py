"""The CMe3100's installed meters: install order, licence, active and passive meters.

Facts (``../shared/CME3100.md`` §1): without a licence the gateway reads 8 meters; licence
files raise that to 32, 64, 128, 256 or 512 (seed 002 §4.5.1, Table 11; §4.5.1 also prints
255, accepted here as a licence of 255 meters); meters beyond the licence are *passive*, the
latest installed first (002 §6.5, §6.16.2); passive meters are skipped by readouts; each
meter's state can be switched between active and passive (002 §6.16.2).

Where the manual is silent, the bench decides (docs/cme3100.md, "Installation"):

- a meter switched passive by hand stays passive when the licence grows; a meter made
  passive by the licence becomes active again, in install order, when room appears; a
  lower licence turns the latest installed active meters passive, hand-set ones included;
- switching a meter active when the licence is full is refused (:class:`LicenceError`);
  nothing else changes;
- installing a meter that is already installed (same Position, or same address and mode)
  updates nothing and is reported as a duplicate, not installed twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from simulator.mbus.meterlist import MeterListEntry

#: Meters read without a licence (002 §4.5.1; 004 §6.20.1 "CMe3100 Core ... up to 8 devices").
NO_LICENCE = 8
#: Licence sizes a licence file can give (002 §4.5.1 and Table 11; 255 as §4.5.1 prints it).
LICENCE_STEPS = (8, 32, 64, 128, 255, 256, 512)

State = Literal["active", "passive"]


class LicenceError(ValueError):
    """A licence value that is not a licence step, or an activation the licence forbids."""


@dataclass
class InstalledMeter:
    """One installed meter. ``order`` counts installations (1 = first); ``state`` is what the
    readout sees; ``by_hand`` marks a state set by the operator rather than by the licence."""

    entry: MeterListEntry
    order: int
    state: State = "active"
    by_hand: bool = False

    @property
    def position(self) -> str:
        return self.entry.position

    @property
    def key(self) -> tuple[str, str, int | None]:
        """What makes two installations the same meter: mode, secondary address, primary."""
        return (self.entry.mode, self.entry.secondary.upper(), self.entry.primary)


@dataclass
class InstallResult:
    """What one installation did: meters ``installed``, ``duplicates`` skipped, and the meters
    that are ``passive`` because of the licence after it."""

    installed: list[InstalledMeter] = field(default_factory=list)
    duplicates: list[MeterListEntry] = field(default_factory=list)
    passive: list[InstalledMeter] = field(default_factory=list)


class Installation:
    """The installed meters of one gateway under a licence of ``licence`` meters."""

    def __init__(self, licence: int = NO_LICENCE) -> None:
        self.meters: list[InstalledMeter] = []
        self._order = 0
        self.licence = check_licence(licence)

    # -- installing --------------------------------------------------------------------------
    def install(self, entries: list[MeterListEntry]) -> InstallResult:
        """Install ``entries`` after the meters already installed (a meter list upload or the
        result of a search), then apply the licence."""
        result = InstallResult()
        known = {m.key for m in self.meters} | {m.position for m in self.meters}
        for e in entries:
            probe = InstalledMeter(e, 0)
            if probe.key in known or e.position in known:
                result.duplicates.append(e)
                continue
            self._order += 1
            meter = InstalledMeter(e, self._order)
            self.meters.append(meter)
            known |= {meter.key, meter.position}
            result.installed.append(meter)
        self._apply_licence()
        result.passive = [m for m in self.meters if m.state == "passive" and not m.by_hand]
        return result

    def clear(self) -> None:
        """Remove every installed meter (advanced search's "clear list first", 002 §6.21)."""
        self.meters.clear()

    # -- licence and states ------------------------------------------------------------------
    def set_licence(self, licence: int) -> None:
        """Load a licence file of ``licence`` meters; :class:`LicenceError` if not a step."""
        self.licence = check_licence(licence)
        self._apply_licence()

    def set_state(self, position: str, state: State) -> None:
        """Switch one meter by hand; :class:`LicenceError` when activating beyond the licence,
        ``KeyError`` for an unknown position."""
        meter = self.meter(position)
        if state == "active" and meter.state == "passive" and len(self.active()) >= self.licence:
            raise LicenceError(
                f"meter {position!r}: the licence allows {self.licence} active meters and "
                f"{len(self.active())} are active"
            )
        meter.state, meter.by_hand = state, True
        self._apply_licence()

    def _apply_licence(self) -> None:
        # a meter passive by hand stays so; every other one is active unless the licence is
        # full, and then the latest installed turn passive first (002 §6.5)
        for m in self.meters:
            if not (m.by_hand and m.state == "passive"):
                m.state = "active"
        active = sorted(self.active(), key=lambda m: m.order)
        for m in active[self.licence :]:
            m.state, m.by_hand = "passive", False

    # -- queries -----------------------------------------------------------------------------
    def meter(self, position: str) -> InstalledMeter:
        for m in self.meters:
            if m.position == position:
                return m
        raise KeyError(position)

    def active(self) -> list[InstalledMeter]:
        """Meters a readout reads, in install order."""
        return [m for m in self.meters if m.state == "active"]

    def passive(self) -> list[InstalledMeter]:
        return [m for m in self.meters if m.state == "passive"]

    @property
    def exceeded(self) -> bool:
        """More meters installed than the licence allows (the "licence exceeded" event)."""
        return len(self.meters) > self.licence


def check_licence(licence: int) -> int:
    """``licence`` if it is one of :data:`LICENCE_STEPS`, else :class:`LicenceError`."""
    if isinstance(licence, bool) or licence not in LICENCE_STEPS:
        raise LicenceError(f"licence {licence!r} is not one of {LICENCE_STEPS}")
    return int(licence)
