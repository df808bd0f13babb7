"""The NB-IoT radio link of one module: CE level, random access, RRC, uplink time, losses.

One :class:`Radio` per module computes, in world time, when each datagram leaves the module and
reaches the server (or is lost), and keeps the module's RRC / PSM state between calls. It does
not yield to SimPy itself: the module asks "send these datagrams from time t" and replays the
returned :class:`Timeline` (this keeps a 10,000-module fleet fast and the arithmetic testable).

Model and sources (RADIO-NBIOT.md; [V] verified, [R] recalled, bench = our choice):

* **CE level from coupling loss**: CE0 up to MCL 144 dB, CE1 up to 154 dB, CE2 up to 164 dB
  (OAI ``rrc_NB.h`` target-SNR anchors, §1.2 [V]); beyond ``max_coupling_loss_db`` (164) the
  module finds no service and random access fails.
* **Random access** per level (LENA-NB Vodafone-derived SIB2-NB, §1.3 [V]): NPRACH period
  0.32 / 0.64 / 2.56 s, preamble repetitions 1 / 8 / 32 at 5.6 ms each ([C] format 0), NPDCCH
  Rmax 8 / 64 / 512 subframes (1 ms) for the RAR and Msg4, up to 10 preamble attempts; the
  wait for the next NPRACH occasion is uniform in one period. Per-attempt failure probability
  (missed RAR / Msg4) is a bench value. In a fleet the modules share the cell's NPRACH
  (:class:`.nprach.NprachCell`): preambles go at the opportunities of a common grid on a random
  subcarrier, and a module that picks a subcarrier already taken at that opportunity loses
  contention resolution and backs off (``ra_backoff_s``) before its next attempt.
* **RRC**: set-up (Msg3 RRCConnectionRequest 11 B, Msg4 Setup) from idle, or resume; after PSM
  the module first re-synchronises (NPSS/NSSS, MIB/SIB; per-level times are [R]/bench).
  The connection is released after the RRC inactivity timer (20 s, u-blox note via Robinson
  [V]) unless Release Assistance is used.
* **Uplink / downlink time**: bits / (peak rate / repetitions) plus an NPDCCH grant; peak
  12.5 kbit/s up, 20 kbit/s down with NPUSCH/NPDSCH repetitions 1 / 8 / 32 [R, bench]. This
  gives about 2 kbit/s at CE1 (Robinson's central UL throughput [V]) and about 0.4 kbit/s at
  CE2 (u-blox ECL2 bad SNR: 200 B in 5.5 s [V]; LwM2M App. M "around 300 bit/s" [V]). A
  log-normal factor (sigma 0.25, bench) spreads each transfer.
* **Losses**: each datagram is lost with the level's residual loss (bench 0.1 / 0.5 / 2 %)
  plus the scenario's ``extra_loss``; 1.0 makes every datagram vanish (RFC band tests).
* **Paging**: a downlink arriving after RRC release waits for the module's next paging
  occasion (:mod:`.paging`: DRX POs every 2.56 s, or with eDRX the POs inside the paging time
  window at the UE's phase of each eDRX cycle, TS 36.304 §7.1/§7.3), then the module answers
  with random access. It is lost while the module is in PSM, and when the next PO comes after
  the active timer T3324 has put the module into PSM.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from math import exp as _exp
from math import log as _log
from random import NV_MAGICCONST
from typing import Any

from simulator.core import events as ev
from simulator.core.settings import setting
from simulator.nbiot.channel import DataChannel
from simulator.nbiot.nprach import NprachCell
from simulator.nbiot.paging import PagingSchedule
from simulator.scenario import StrictModel

#: eNB reference signal power per resource element: 43 dBm over 12 subcarriers (bench, for
#: turning a coupling loss into the RSRP that LwM2M /4/0/2 reports).
RS_POWER_DBM = 43.0 - 10 * math.log10(12)
PREAMBLE_REP_S = 0.0056  # NPRACH format 0: 4 symbol groups x 1.4 ms (RADIO §1.3 [C])


class NetworkParams(StrictModel):
    """Network parameters; every default has its source in the module docstring."""

    ce_mcl_db: tuple[float, float, float] = (144.0, 154.0, 164.0)
    max_coupling_loss_db: float = 164.0
    nprach_period_s: tuple[float, float, float] = (0.32, 0.64, 2.56)
    nprach_repetitions: tuple[int, int, int] = (1, 8, 32)
    npdcch_rmax: tuple[int, int, int] = (8, 64, 512)
    max_preamble_attempts: int = 10
    nprach_collisions: bool = True  # modules of one scenario share the NPRACH (.nprach)
    nprach_subcarriers: tuple[int, int, int] = (24, 12, 12)  # of {12, 24, 36, 48}; bench
    ra_backoff_s: float = 0.512  # backoff after a lost contention (bench, from 0..524 s)
    preamble_failure_prob: float = 0.05
    sync_after_psm_s: tuple[float, float, float] = (0.05, 0.3, 1.0)
    data_repetitions: tuple[int, int, int] = (1, 8, 32)
    ul_peak_bps: float = 12500.0
    dl_peak_bps: float = 20000.0
    residual_loss: tuple[float, float, float] = (0.001, 0.005, 0.02)
    extra_loss: float = 0.0
    transfer_sigma: float = 0.25
    core_delay_s: float = 0.05
    rrc_inactivity_s: float = 20.0
    release_assistance: bool = setting(
        True,
        source="3GPP Rel-14 RAI (TS 24.301 release assistance indication); OMA LwM2M 1.1 "
        "App. M; u-blox: -93 % energy for 200 B at ECL1 (RADIO §2.1-2.2)",
        doc="the module signals its last exchange and is released at once, not after "
        "rrc_inactivity_s",
    )
    cdrx_cycle_s: float = setting(
        2.048,
        source="Vodafone Barcelona C-DRX 2.048 s (Martinez 2019 via Robinson, RADIO §2.1); "
        "NB-IoT range 0.256-9.216 s",
        unit="s",
        ge=0,
        le=9.216,
        doc="connected-mode DRX cycle while RRC connected and inactive; 0 = no C-DRX "
        "(the module listens all the time, connected current)",
    )
    cdrx_on_duration_s: float = setting(
        0.064,
        source="bench (onDurationTimer-NB counts NPDCCH periods; not in RADIO)",
        unit="s",
        gt=0,
        doc="NPDCCH monitoring time per C-DRX cycle (at the RX current)",
    )
    cdrx_inactivity_s: float = setting(
        0.5,
        source="bench (drx-InactivityTimer-NB; not in RADIO)",
        unit="s",
        ge=0,
        doc="after the last datagram the module monitors NPDCCH continuously this long, "
        "then enters C-DRX",
    )
    tau_up_b: int = setting(
        60,
        source="bench: NAS TRACKING AREA UPDATE REQUEST with security header (TS 24.301 §8.2.29)",
        unit="B",
        ge=1,
        doc="uplink bytes of a periodic TAU",
    )
    tau_down_b: int = setting(
        30,
        source="bench: NAS TRACKING AREA UPDATE ACCEPT (TS 24.301 §8.2.26)",
        unit="B",
        ge=1,
        doc="downlink bytes of a periodic TAU; the network then releases the connection "
        "(no active flag)",
    )
    nat_timeout_s: float = 60.0
    ip_udp_overhead_b: int = 28  # IPv4 20 + UDP 8 (no header compression)
    ul_carrier_share: tuple[float, float, float] = setting(
        (1.0, 0.25, 1 / 12),
        source="bench: 12 / 3 / 1 of the 12 NPUSCH subcarriers per CE level (TS 36.211 "
        "§10.1.2.3 allows 1, 3, 6, 12 [R])",
        doc="share of the uplink carrier a datagram occupies during its air time",
    )
    shared_data_channels: bool = setting(
        True,
        source="bench (TR 45.820 evaluates capacity per cell; .channel docstring)",
        doc="the fleet shares one NPUSCH and one NPDSCH: a datagram waits while the channel "
        "carries another module's (queueing delay, saturation)",
    )


def ce_level(coupling_loss_db: float, params: NetworkParams) -> int:
    """0, 1, 2 for CE0/1/2 by the MCL anchors; 3 when beyond ``max_coupling_loss_db``."""
    if coupling_loss_db > params.max_coupling_loss_db:
        return 3
    for level, mcl in enumerate(params.ce_mcl_db):
        if coupling_loss_db <= mcl:
            return level
    return 2


#: Timeline kind of a datagram reaching the server (not a trace event).
SERVER = "server"


@dataclass
class Timeline:
    """What one call produced, to replay in world time: ``events`` as (world time s, kind,
    typed trace event of ``source``) or (s, :data:`SERVER`, the server's receive arguments)."""

    source: str = ""
    events: list[tuple[float, str, Any]] = field(default_factory=list)
    #: False: the caller replays only deliveries and message events, so the radio's and the
    #: protocols' datagram events (rrc_connected, coap_tx, ...) are not built at all
    verbose: bool = True

    def add(self, t: float, event: ev.TraceEvent) -> None:
        """A trace event at world time ``t`` (s); emitted when the module replays the line."""
        self.events.append((t, event.kind, event))

    def deliver(self, t: float, **receive: Any) -> None:
        """A datagram reaching the server at ``t`` (s): ``Server.receive`` arguments."""
        self.events.append((t, SERVER, receive))

    def sorted(self) -> list[tuple[float, str, Any]]:
        return sorted(self.events, key=lambda e: e[0])


@dataclass
class StateTimes:
    """Seconds spent per power state and procedure counts (for :mod:`.energy`)."""

    tx_s: float = 0.0
    rx_s: float = 0.0
    connected_s: float = 0.0
    idle_s: float = 0.0
    psm_s: float = 0.0
    connections: int = 0
    tau: int = 0
    cdrx_s: float = 0.0  # connected, inactive, in C-DRX (part of connected_s)
    cdrx_on_s: float = 0.0  # the on-durations inside cdrx_s (monitoring NPDCCH)
    ra_collisions: int = 0
    datagrams_up: int = 0
    datagrams_down: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


class RadioFailure(Exception):
    """Random access failed (no coverage, or every preamble attempt failed)."""

    def __init__(self, t: float, reason: str) -> None:
        self.t = t
        self.reason = reason
        super().__init__(reason)


class Radio:
    """RRC / PSM state and datagram timing of one module.

    ``psm`` / ``edrx`` follow the module's power saving mode; ``t3324_s`` is the active timer
    (idle, pageable) after release; ``t3412_s`` the periodic TAU timer while in PSM.
    """

    def __init__(
        self,
        coupling_loss_db: float,
        params: NetworkParams,
        rng: random.Random,
        *,
        psm: bool = True,
        edrx: bool = True,
        t3324_s: float = 10.0,
        t3412_s: float = 43200.0,
        edrx_cycle_s: float = 81.92,
        paging: PagingSchedule | None = None,
        cell: NprachCell | None = None,
        channels: tuple[DataChannel, DataChannel] | None = None,
    ) -> None:
        self.channels = channels  # (uplink, downlink) shared with the fleet, or None
        self.coupling_loss_db = coupling_loss_db
        self.params = params
        self.rng = rng
        self.ce_level = ce_level(coupling_loss_db, params)
        self.level = min(self.ce_level, 2)  # index of the per-CE-level parameters
        self.rsrp_dbm = RS_POWER_DBM - coupling_loss_db
        self.psm, self.edrx = psm, edrx
        self.t3324_s, self.t3412_s, self.edrx_cycle_s = t3324_s, t3412_s, edrx_cycle_s
        self.paging = paging or PagingSchedule(0, edrx_cycle_s if edrx else None)
        self.cell = cell  # None: this module has the NPRACH to itself
        self.times = StateTimes()
        self.connected = False
        self.connected_since = 0.0
        self.last_activity = 0.0  # last datagram in or out while connected
        self.released_at = 0.0  # when the last RRC connection ended (0: boot, idle)
        self.busy_until = 0.0  # the radio sends one thing at a time
        self.last_tau = 0.0
        self._drx_mark = 0.0  # C-DRX time is counted up to here
        # The per-CE-level values every datagram uses, read once: each is the same float the
        # per-call expression gave. ``extra_loss`` is read per datagram (a test heals a lossy
        # link mid-run); any other change to ``params`` after construction is not seen.
        p, lvl = params, self.level
        self._ul_rate = p.ul_peak_bps / p.data_repetitions[lvl]  # bit/s
        self._dl_rate = p.dl_peak_bps / p.data_repetitions[lvl]  # bit/s
        self._rmax_s = p.npdcch_rmax[lvl] / 1000.0  # NPDCCH grant / RAR window (s)
        self._preamble_s = p.nprach_repetitions[lvl] * PREAMBLE_REP_S
        self._ul_share = p.ul_carrier_share[lvl]
        self._residual_loss = p.residual_loss[lvl]
        self._overhead_b = p.ip_udp_overhead_b
        self._core_s = p.core_delay_s
        self._rrc_inactivity_s = p.rrc_inactivity_s
        self._cdrx = p.cdrx_cycle_s > 0
        self._cdrx_inactivity_s = p.cdrx_inactivity_s
        self._cdrx_on = min(1.0, p.cdrx_on_duration_s / p.cdrx_cycle_s) if p.cdrx_cycle_s else 0.0
        self._sigma = s = p.transfer_sigma
        self._mu = -s * s / 2  # of the log-normal factor with mean 1
        self._random = rng.random
        self._tau = self._tau_times()  # one periodic TAU's (tx, rx, connected) s

    # -- state --------------------------------------------------------------------------------
    def _settle(self, t: float) -> None:
        """Bring the state up to time ``t``: release the RRC connection if it timed out."""
        # With Release Assistance the module releases itself at the end of its exchange
        # (release_if_done); while responses are still due the connection is held as usual.
        if self.connected and self.last_activity + self._rrc_inactivity_s <= t:
            end = self.last_activity + self._rrc_inactivity_s
            self._inactive(end)
            self.times.connected_s += end - self.connected_since
            self.connected = False
            self.released_at = end

    def in_psm(self, t: float) -> bool:
        self._settle(t)
        return not self.connected and self.psm and t >= self.released_at + self.t3324_s

    def _account_gap(self, until: float) -> None:
        """Idle / PSM seconds and periodic TAUs between the last release and ``until``."""
        released = self.released_at
        gap = until - released
        if gap <= 0.0:  # max(0.0, gap)
            gap = 0.0
        idle = gap if not self.psm or gap <= self.t3324_s else self.t3324_s
        times = self.times
        times.idle_s += idle
        psm = gap - idle
        times.psm_s += psm
        if psm > 0 and self.t3412_s:
            # Periodic TAU on T3412 expiry while asleep. T3412 restarts when the UE enters idle
            # (TS 24.301 §5.3.5), so a module that sends more often than T3412 never does one.
            base = self.last_tau
            if released > base:  # max(last_tau, released_at)
                base = released
            n = int((until - base) // self.t3412_s)
            if n > 0:
                times.tau += n
                self.last_tau = base + n * self.t3412_s
                self._tau_air(n)

    def next_tau(self, t: float) -> float | None:
        """When the module, asleep in PSM at ``t``, next wakes for a periodic TAU (T3412
        restarted when it entered idle); ``None`` when it is not in PSM at ``t``."""
        if not self.in_psm(t) or not self.t3412_s:
            return None
        base = max(self.last_tau, self.released_at)
        return base + max(1, math.ceil((t - base) / self.t3412_s - 1e-9)) * self.t3412_s

    def tau_wake(self, t: float, tl: Timeline) -> float:
        """The periodic TAU due at ``t`` (:meth:`next_tau`) as a real connection, because the
        network holds mobile-terminated data for the module and delivers it now (TS 23.682
        extended buffering). Returns when connected; raises :class:`RadioFailure`."""
        due = t
        t = self._connect(t, tl)
        if abs(self.last_tau - due) < 1e-6:
            # the PSM gap counted this TAU with its mean air time; the real connection above
            # replaces that estimate (the count stays)
            self._tau_air(-1)
        else:
            self.times.tau += 1
            self.last_tau = due
        return t

    def _tau_air(self, n: int) -> None:
        """State times of ``n`` periodic TAUs at this CE level (mean values, no draws, so the
        module's random streams are untouched): re-sync, random access at the mean NPRACH
        wait, RRC set-up, TAU Request up and Accept down, then release by the network."""
        tx, rx, connected = self._tau
        times = self.times
        times.tx_s += n * tx
        times.rx_s += n * rx
        times.connected_s += n * connected

    def _tau_times(self) -> tuple[float, float, float]:
        """One periodic TAU's transmit, receive and connected seconds (:meth:`_tau_air`),
        read from ``params`` once, as the other per-CE-level values."""
        p, lvl = self.params, self.level
        rmax = p.npdcch_rmax[lvl] / 1000.0
        ul = p.ul_peak_bps / p.data_repetitions[lvl]
        dl = p.dl_peak_bps / p.data_repetitions[lvl]
        tx = p.nprach_repetitions[lvl] * PREAMBLE_REP_S + (11 + p.tau_up_b) * 8 / ul
        rx = p.sync_after_psm_s[lvl] + 4 * rmax + (20 + p.tau_down_b) * 8 / dl
        wait = p.nprach_period_s[lvl] / 2 + p.core_delay_s  # NPRACH occasion; MME round trip
        return tx, rx, tx + rx + wait

    def _inactive(self, until: float) -> None:
        """Connected with nothing to send from the last datagram to ``until``: after the DRX
        inactivity timer the module is in C-DRX (listening only in its on-durations)."""
        # max() spelt out (the same value; a datagram comes through here once or twice)
        start = self.last_activity + self._cdrx_inactivity_s
        mark = self._drx_mark
        if mark > start:
            start = mark
        if until > mark:
            self._drx_mark = until
        if self._cdrx and until > start:
            self.times.cdrx_s += until - start
            self.times.cdrx_on_s += (until - start) * self._cdrx_on

    def finish(self, t_end: float) -> None:
        """Close the books at the end of the run (for the energy model)."""
        self._settle(t_end)
        if self.connected:
            self._inactive(t_end)
            self.times.connected_s += t_end - self.connected_since
            self.connected_since = t_end
        else:
            self._account_gap(t_end)
            self.released_at = t_end

    # -- procedures ---------------------------------------------------------------------------
    def _jitter(self) -> float:
        """The transfer's log-normal factor (mean 1, sigma ``transfer_sigma``)."""
        s = self._sigma
        if not s > 0:
            return 1.0
        # random.lognormvariate(mu, s) is exp(normalvariate(mu, s)); normalvariate's own loop
        # (CPython 3.11's Kinderman-Monahan loop) inline: the same draws and floats, without
        # two calls (tests/test_nbiot_network.py compares it with the library's).
        random = self._random
        while True:
            u1 = random()
            u2 = 1.0 - random()
            z = NV_MAGICCONST * (u1 - 0.5) / u2
            if z * z / 4.0 <= -_log(u2):
                return _exp(self._mu + z * s)

    def _connect(self, t: float, tl: Timeline) -> float:
        """Random access + RRC set-up starting at ``t``; returns when connected."""
        p, lvl = self.params, self.level
        self._settle(t)
        woke_from_psm = not self.connected and self.psm and t >= self.released_at + self.t3324_s
        self._account_gap(t)
        self.times.connections += 1
        start = t
        if woke_from_psm:
            sync = p.sync_after_psm_s[lvl]
            self.times.rx_s += sync
            t += sync
        rmax_s = self._rmax_s
        preamble = self._preamble_s
        times = self.times
        cell = self.cell if self.ce_level <= 2 else None
        for attempt in range(p.max_preamble_attempts):
            won = True
            if cell is None:
                t += self.rng.uniform(0.0, p.nprach_period_s[lvl])  # next NPRACH occasion
            else:  # the next opportunity, on a subcarrier drawn from this module's stream
                t, won = cell.preamble(lvl, t, self.rng)
            times.tx_s += preamble
            t += preamble
            times.rx_s += rmax_s  # RAR window on NPDCCH
            t += rmax_s
            if not won:
                # Lost contention resolution to a module on the same subcarrier: back off.
                self.times.ra_collisions += 1
                if tl.verbose:
                    tl.add(
                        t,
                        ev.NbiotRaCollision(
                            source=tl.source, ce_level=self.ce_level, attempt=attempt
                        ),
                    )
                t += self.rng.uniform(0.0, p.ra_backoff_s)
                continue
            if self.ce_level <= 2 and self._random() >= p.preamble_failure_prob:
                break
        else:
            self.connected_since = start
            self.times.connected_s += t - start
            self.released_at = t
            if tl.verbose:
                tl.add(
                    t,
                    ev.NbiotRaFailed(
                        source=tl.source, ce_level=self.ce_level, attempts=p.max_preamble_attempts
                    ),
                )
            raise RadioFailure(t, "no coverage" if self.ce_level > 2 else "random access failed")
        msg3 = self._ul_seconds(11)
        msg4 = rmax_s + self._dl_seconds(20)
        self.times.tx_s += msg3
        self.times.rx_s += msg4
        t += msg3 + msg4
        self.connected = True
        self.connected_since = start
        self.last_activity = t
        if tl.verbose:
            tl.add(
                t,
                ev.NbiotRrcConnected(
                    source=tl.source,
                    ce_level=self.ce_level,
                    setup_s=round(t - start, 6),
                    from_psm=woke_from_psm,
                ),
            )
        return t

    def _ul_seconds(self, nbytes: int) -> float:
        return nbytes * 8 / self._ul_rate * self._jitter()

    def _dl_seconds(self, nbytes: int) -> float:
        return nbytes * 8 / self._dl_rate * self._jitter()

    def uplink(self, t: float, nbytes: int, tl: Timeline) -> tuple[float, float | None]:
        """Send ``nbytes`` (UDP payload) from time ``t``.

        Returns (time the module finished sending, arrival time at the server or ``None`` if
        lost). Raises :class:`RadioFailure` when no connection could be made.
        """
        if self.busy_until > t:
            t = self.busy_until
        if self.connected and self.last_activity + self._rrc_inactivity_s <= t:
            self._settle(t)  # (its own test, spelt out: most datagrams find nothing to settle)
        if not self.connected:
            t = self._connect(t, tl)
        else:
            self._inactive(t)
        size = nbytes + self._overhead_b
        grant = self._rmax_s
        air = size * 8 / self._ul_rate * self._jitter()  # _ul_seconds(size)
        times = self.times
        times.rx_s += grant
        times.tx_s += air
        times.datagrams_up += 1
        times.bytes_up += size
        start = t + grant
        if self.channels is not None:  # waits while NPUSCH is full
            start = self.channels[0].book(start, air * self._ul_share)
        done = start + air
        self.busy_until = done
        self.last_activity = done
        loss = self._residual_loss + self.params.extra_loss
        if loss >= 1.0 or self._random() < loss:  # residual loss (extra_loss may change)
            return done, None
        return done, done + self._core_s

    def downlink(self, t_server: float, nbytes: int, tl: Timeline) -> float | None:
        """A datagram the server sends at ``t_server``; when the module has it, or ``None``."""
        t = t_server + self._core_s
        if self.connected and self.last_activity + self._rrc_inactivity_s <= t:
            self._settle(t)
        if not self.connected:
            if self.in_psm(t):
                if tl.verbose:
                    tl.add(t, ev.NbiotDownlinkUnreachable(source=tl.source, reason="PSM"))
                return None
            po = self.paging.next_occasion(t)
            if self.psm and po >= self.released_at + self.t3324_s:
                # T3324 expires first: the module is in PSM before it would listen again.
                reason = "PSM before paging occasion"
                if tl.verbose:
                    tl.add(t, ev.NbiotDownlinkUnreachable(source=tl.source, reason=reason))
                return None
            if tl.verbose:
                tl.add(po, ev.NbiotPaged(source=tl.source, wait_s=round(po - t, 6)))
            t = po
            try:
                t = self._connect(t, tl)
            except RadioFailure:
                return None
        if self.busy_until > t:
            t = self.busy_until
        self._inactive(t)
        size = nbytes + self._overhead_b
        rmax = self._rmax_s
        air = size * 8 / self._dl_rate * self._jitter()  # _dl_seconds(size)
        times = self.times
        times.rx_s += rmax + air
        times.datagrams_down += 1
        times.bytes_down += size
        t += rmax
        if self.channels is not None:
            t = self.channels[1].book(t, air)  # waits while NPDSCH carries others
        t += air
        self.busy_until = t
        self.last_activity = t
        loss = self._residual_loss + self.params.extra_loss
        if loss >= 1.0 or self._random() < loss:  # residual loss (extra_loss may change)
            return None
        return t

    def release_if_done(self) -> None:
        """With Release Assistance (RAI), release right after the last exchange.

        LwM2M App. M / 3GPP RAI: the module tells the network no more data is expected, so it
        does not sit out the RRC inactivity timer (u-blox: 93 % less energy, RADIO §2.1).
        """
        if self.params.release_assistance and self.connected:
            end = max(self.last_activity, self.busy_until)
            self.times.connected_s += end - self.connected_since
            self.connected = False
            self.released_at = end


def exception_report_latency(
    params: NetworkParams,
    coupling_loss_db: float,
    rng: random.Random,
    *,
    samples: int = 1000,
    app_payload_b: int = 20,
) -> list[float]:
    """Sorted latencies (s) of a mobile-originated exception report woken from PSM.

    The 3GPP design point (TR 45.820 / TR 38.913; RADIO-NBIOT.md §1.1 and §8 anchor 5): a
    20-byte report at 164 dB coupling loss should arrive within 10 s. The datagram is the
    application payload in CoAP NON (4 B header) over DTLS with a Connection ID (29 B record),
    so no handshake; latency = wake-up sync + random access + RRC set-up + uplink + core delay.
    Each sample uses a fresh :class:`Radio` that has been asleep for a day (in PSM).
    """
    out = []
    for _ in range(samples):
        radio = Radio(coupling_loss_db, params, rng, psm=True)
        t0 = 86400.0
        tl = Timeline()
        try:
            _, arrival = radio.uplink(t0, app_payload_b + 4 + 29, tl)
        except RadioFailure:
            out.append(float("inf"))
            continue
        out.append(float("inf") if arrival is None else arrival - t0)
    return sorted(out)
