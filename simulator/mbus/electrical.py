"""Electrics of a wired M-Bus segment: the master port, unit loads, the cable, voltages, max baud.

Sources (PROTOCOL.md §1):

* 1 unit load (UL) = a constant mark current of at most 1.5 mA [S6]. The CMe3100 integrated
  master drives 32 UL = 48 mA at 28 V nominal (seed 002, technical data: "Nominal voltage 28
  VDC", "Maximum unit loads 32/48 T/mA"); over that its short-circuit protection trips.
* The master signals a space by lowering its output by 12 V below mark [S1, S3]; in the space
  state the voltage must never fall below 12 V anywhere on the segment [S7].
* A slave sends a space by sinking an extra 11-20 mA [S1, S3, S6].
* Cable JYStY N x 2 x 0.8 mm: 350 m <-> at most 29 Ohm, total <= 1000 m so the capacitance stays
  <= 180 nF [S7]. We read the 29 Ohm as the loop resistance (both conductors: 0.8 mm copper is
  about 35 mOhm/m per conductor, 24 Ohm for a 350 m loop, so 29 Ohm is the limit with margin),
  which gives the default 29/350 = 0.0829 Ohm/m loop resistance and 0.18 nF/m.
* The highest baud rate a segment carries comes from the installation table "EN 13757-2
  appendix E" as quoted by Siemens WTV531 and Johnson Controls [S8]: rows of (max distance
  master->slave, total cable, slaves, baud). :func:`max_baud` returns the highest baud of any row
  the segment fits; the RC time constant is reported alongside for information only.

Topology model: one trunk from the master; every slave hangs off it at ``distance_m`` from the
master. Slave ``i`` draws ``I_i`` through the trunk from 0 to ``x_i``, so the voltage at
position ``x`` is ``V0 - r * sum_i(I_i * min(x, x_i))`` with ``r`` the loop resistance per m.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Mark current of one unit load, mA [S6].
UNIT_LOAD_MA = 1.5
#: Lowest bus voltage allowed in the space state anywhere on the segment, V [S7].
MIN_SPACE_VOLTAGE = 12.0
#: Default loop resistance per metre of JYStY 0.8 mm, Ohm/m (29 Ohm per 350 m) [S7].
JYSTY_OHM_PER_M = 29.0 / 350.0
#: Default capacitance per metre, nF/m (180 nF per 1000 m) [S7].
JYSTY_NF_PER_M = 0.18


@dataclass
class MasterPort:
    """The master's M-Bus output stage.

    ``max_unit_loads``: UL the port drives before its short-circuit protection trips (CMe3100
    integrated master: 32 UL = 48 mA; an external level converter may allow 250+).
    ``mark_voltage``: V at the port in the mark state (CMe3100: 28 V); space is
    ``mark_voltage - space_drop`` (12 V lower).
    ``collision_detector``: the master flags a collision when the summed space current of
    the senders exceeds ``collision_threshold_ma`` (vendor thresholds 7 mA communication, 25 mA
    collision, Kamstrup 250L [S9]). Off by default: then two perfectly aligned identical
    replies decode as one clean reply.
    ``listen_delay_bits``: bit times after the end of its own frame before the master's
    receiver is enabled (line settling, echo suppression); a reply that starts earlier (an
    "early" fault) loses its first bits. A modelling choice, not a standard value.
    """

    max_unit_loads: int = 32
    mark_voltage: float = 28.0
    space_drop: float = 12.0
    collision_detector: bool = False
    comm_threshold_ma: float = 7.0
    collision_threshold_ma: float = 25.0
    listen_delay_bits: float = 11.0

    @property
    def max_current_ma(self) -> float:
        return self.max_unit_loads * UNIT_LOAD_MA

    @property
    def space_voltage(self) -> float:
        return self.mark_voltage - self.space_drop


@dataclass
class Cable:
    """The segment's cable: total length (m), loop resistance (Ohm/m), capacitance (nF/m).

    ``overspeed_ber``: probability that a bit of a slave's reply is inverted when the bus runs
    above :func:`max_baud` (a modelling knob, not a standard figure).
    """

    length_m: float = 100.0
    ohm_per_m: float = JYSTY_OHM_PER_M
    nf_per_m: float = JYSTY_NF_PER_M
    overspeed_ber: float = 0.01

    @property
    def capacitance_nf(self) -> float:
        return self.length_m * self.nf_per_m


@dataclass(frozen=True)
class InstallationRow:
    """One row of the EN 13757-2 appendix E installation table [S8]."""

    plant: str
    max_distance_m: float
    total_cable_m: float
    max_slaves: int
    baud: int


#: EN 13757-2 appendix E as quoted by Siemens WTV531 / Johnson Controls (PROTOCOL.md §1) [S8].
INSTALLATION_TABLE: tuple[InstallationRow, ...] = (
    InstallationRow("small residential", 350, 1000, 250, 9600),
    InstallationRow("large residential", 350, 4000, 64, 9600),
    InstallationRow("large residential", 350, 4000, 250, 2400),
    InstallationRow("small developments", 1000, 4000, 64, 2400),
    InstallationRow("large developments", 3000, 5000, 64, 2400),
    InstallationRow("direct vicinity", 5000, 7000, 16, 300),
    InstallationRow("point-to-point", 10000, 10000, 1, 300),
)


def max_baud(total_cable_m: float, max_distance_m: float, slaves: int) -> int | None:
    """Highest baud rate (bit/s) of any installation-table row the segment fits.

    ``None`` when the segment fits no row (outside EN 13757-2 appendix E): every baud rate
    then gets bit errors. Source: PROTOCOL.md §1 installation table [S8].
    """
    fitting = [
        r.baud
        for r in INSTALLATION_TABLE
        if total_cable_m <= r.total_cable_m
        and max_distance_m <= r.max_distance_m
        and slaves <= r.max_slaves
    ]
    return max(fitting) if fitting else None


def rc_time_constant(cable: Cable, distance_m: float | None = None) -> float:
    """Loop resistance x capacitance of the cable (s); information only (bit time >> RC)."""
    d = cable.length_m if distance_m is None else distance_m
    return d * cable.ohm_per_m * cable.capacitance_nf * 1e-9


def voltages_at(v0: float, cable: Cable, loads: Sequence[tuple[float, float]]) -> list[float]:
    """Voltage (V) at each load on a trunk fed with ``v0`` volts at the master.

    ``loads`` are ``(distance_m, current_mA)`` pairs; the result is in the same order.
    The drop at ``x`` is ``R' * sum(I_j * min(x, x_j))``: the loads nearer than ``x`` count
    with their own distance, the others with ``x``; sorted by distance with running sums
    that is O(n log n) (a bus of n meters is built in one pass, not n passes of n).
    """
    order = sorted(range(len(loads)), key=lambda k: loads[k][0])
    far_ma = sum(i for _, i in loads)  # current of the loads at or beyond x
    near_ma_m = 0.0  # sum of I_j * x_j of the loads before x
    out = [0.0] * len(loads)
    for k in order:
        x, i_ma = loads[k]
        out[k] = v0 - cable.ohm_per_m * (near_ma_m + x * far_ma) / 1000.0
        near_ma_m += i_ma * x
        far_ma -= i_ma
    return out


def unit_load_current_ma(unit_loads: int) -> float:
    """Mark current (mA) of ``unit_loads`` UL: ``1.5 mA x UL``."""
    return unit_loads * UNIT_LOAD_MA
