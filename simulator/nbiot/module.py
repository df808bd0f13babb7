"""The CMi6140 NB-IoT meter connectivity module as a SimPy process (seed 001 §7.3-7.4).

Behaviour:

* **Readout** (stored locally) on the readout-interval grid of the meter's local standard time
  (:func:`.schedule.next_slot`); **transmission** (a set of unsent readouts sent to an LwM2M or
  MQTT-SN server) planned on full hours of the transmit interval and sent after a random delay
  in [T_offset, T_offset + T_delay] (seed 001 §7.3.3).
* **Time**: the meter keeps local standard time = world clock + clock error (the world clock
  is read as the site's local standard time); readouts are stamped in meter time and only the
  reported timestamps have the UTC offset subtracted before transmission (§7.3.1). A time
  synchronisation (:meth:`Cmi6140.sync_time`) reschedules and always makes an extra readout and
  transmission (§7.3.2, the 23:58 -> 00:02 case).
* **Retransmission** (§7.3.4): unsent readouts stay stored; each transmission drops those older
  than the maximum age, orders the rest FIFO or LIFO and sends at most
  ``max_uploads_per_transmission`` telegrams of ``readouts_per_telegram`` readouts (SenML CBOR;
  JSON carries one readout per telegram). A failed telegram is retried
  ``communication_retry_count`` times, then the transmission stops and keeps the rest.
* **Protocols**: DTLS 1.2 PSK (full handshake first, resumption when the NAT binding expired,
  none with a Connection ID), LwM2M Register / Update / Send over CoAP CON, or MQTT-SN
  CONNECT / REGISTER / PUBLISH with QoS -1, 0 or 1.
* **LwM2M bootstrap** (``lwm2m_bootstrap``; :mod:`.bootstrap`): factory-provisioned, or a
  Client Initiated Bootstrap before the first Register (DTLS with the Bootstrap-Server,
  Bootstrap-Request, the server's Delete / Writes, Bootstrap-Finish), and again after
  ``lwm2m_registration_attempts`` failed registration attempts in a row (OMA LwM2M 1.1 Core
  §6.2.1.1 "Bootstrap on Registration Failure").

Trace kinds (source ``cmi6140/<id>``): ``nbiot.readout``, ``nbiot.transmission``,
``nbiot.telegram``, ``nbiot.time_sync``, ``nbiot.bootstrap_op``, ``nbiot.bootstrap``; with ``detail = "datagram"`` also ``nbiot.coap_tx``,
``nbiot.mqttsn_tx``, ``nbiot.dtls_tx``, ``nbiot.dtls_failed``, ``nbiot.rrc_connected``,
``nbiot.ra_failed``, ``nbiot.ra_collision``, ``nbiot.paged``,
``nbiot.downlink_unreachable``. The server records ``nbiot.uplink``.
"""

from __future__ import annotations

import copy
import dataclasses
from array import array
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import simpy

from simulator.core import events as ev
from simulator.core.world import World
from simulator.nbiot import bootstrap, coap, dtls, mqttsn, payload, schedule
from simulator.nbiot.bootstrap import BootstrapServer
from simulator.nbiot.channel import DataChannel
from simulator.nbiot.config import ConfigStore, ModuleConfig
from simulator.nbiot.energy import PowerModel
from simulator.nbiot.network import SERVER, NetworkParams, Radio, RadioFailure, Timeline
from simulator.nbiot.nprach import NprachCell
from simulator.nbiot.paging import PagingSchedule
from simulator.nbiot.radio_lock import RadioLock
from simulator.nbiot.seqset import SeqSet
from simulator.nbiot.server import NbiotServer

_MICROSECOND = timedelta(microseconds=1)
#: How far ahead a statistics-only module checks that its registers still fit their records.
_PROBE_S = 30 * 86400.0

#: Module events traced at every detail level except "off" (the rest only with "datagram").
MESSAGE_KINDS = frozenset({"nbiot.mt_delivered", "nbiot.bootstrap_op", "nbiot.bootstrap"})


def _send_times(t: float, timeouts: list[float]) -> tuple[list[float], float]:
    """When a request retransmitted on ``timeouts`` (s) from ``t`` is sent, and when the
    sender gives up: the last timeout after the last send (RFC 7252 §4.2, RFC 6347 §4.2.4)."""
    sends = [t]
    for timeout in timeouts[:-1]:
        sends.append(sends[-1] + timeout)
    return sends, sends[-1] + timeouts[-1]


@dataclass
class _Held:
    """A mobile-terminated request waiting for the module (queued at world time s)."""

    op: str
    nbytes: int
    response_b: int
    queued_at: float
    done: Any = None  # SimPy event, set when served


@dataclass(frozen=True)
class MeterProfile:
    """What the heat meter behind the module measures (constant load; registers grow).

    ``cooling_w`` is the cooling load of a combined heat/cooling meter (Combined format);
    ``pulse_a_per_h`` / ``pulse_b_per_h`` are the counts per hour on the pulse inputs In A /
    In B (0.01 m3 or kWh, as the module's ``pulse_inputs`` say; Pulse format).
    """

    energy0_kwh: int = 12000
    volume0_dl: int = 30000
    power_w: int = 5000
    flow_lph: int = 200
    forward_dc: int = 700
    return_dc: int = 450
    cooling_w: int = 0
    pulse_a_per_h: int = 0
    pulse_b_per_h: int = 0


class _LazyReadout:
    """A scheduled readout of a statistics-only run: its ``seq``, meter time ``local_time``
    and world time ``t`` (s). The registers are a function of ``t``, computed when read
    (as :class:`.payload.Readout` attributes), so a fleet stores no registers it never sends."""

    __slots__ = ("seq", "local_time", "t", "_module")

    def __init__(self, seq: int, local_time: datetime, t: float, module: Cmi6140) -> None:
        self.seq, self.local_time, self.t, self._module = seq, local_time, t, module

    def readout(self) -> payload.Readout:
        """The full readout, as the readout loop would have stored it."""
        m = self._module
        return payload.Readout(m.meter_id, self.local_time, *m._meter_registers(self.t), self.seq)

    def __getattr__(self, name: str) -> Any:  # registers and meter_id, as payload.Readout
        return getattr(self.readout(), name)


class _Run:
    """Consecutive scheduled readouts of a statistics-only run on a grid that divides the day
    (:meth:`Cmi6140._catch_up_grid`), held as one item instead of ``n`` readouts: sequence
    numbers ``seq + k``, meter times ``slot + k * step`` and world times
    ``(us + k * step_us) / 10**6`` s for ``k`` in ``0 .. n - 1``."""

    __slots__ = ("seq", "n", "slot", "us", "step", "step_us")

    def __init__(
        self, seq: int, n: int, slot: datetime, us: int, step: timedelta, step_us: int
    ) -> None:
        self.seq, self.n, self.slot, self.us, self.step, self.step_us = (
            seq,
            n,
            slot,
            us,
            step,
            step_us,
        )

    def part(self, k: int, m: int) -> _Run:
        """Readouts ``k .. m - 1`` of this run."""
        if k == 0 and m == self.n:
            return self
        return _Run(
            self.seq + k, m - k, self.slot + k * self.step, self.us + k * self.step_us,
            self.step, self.step_us,
        )  # fmt: skip

    def item(self, k: int, module: Cmi6140) -> _LazyReadout:
        """Readout ``k`` as the per-readout path stores it."""
        return _LazyReadout(
            self.seq + k, self.slot + k * self.step, (self.us + k * self.step_us) / 1_000_000,
            module,
        )  # fmt: skip

    def first_at_or_after(self, oldest: datetime) -> int:
        """The first ``k`` (0..n) whose meter time is at or after ``oldest``."""
        late = oldest - self.slot
        if late <= timedelta(0):
            return 0
        return min(self.n, -(-late // self.step))


def _count(items: list) -> int:
    """Readouts in a list of readouts and runs."""
    return sum(r.n if type(r) is _Run else 1 for r in items)


def _seq_runs(batch: list) -> tuple[tuple[int, int], ...]:
    """The sequence numbers of a batch as ascending runs ``(lo, hi)``, touching ones merged."""
    if len(batch) == 1:  # the usual telegram: one run or one readout
        r = batch[0]
        return ((r.seq, r.seq + (r.n if type(r) is _Run else 1)),)
    out: list[list[int]] = []
    for r in sorted(batch, key=_seq_of):
        lo = r.seq
        hi = lo + (r.n if type(r) is _Run else 1)
        if out and out[-1][1] == lo:
            out[-1][1] = hi
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _seq_of(r: Any) -> int:
    return r.seq


class Cmi6140:
    """One module in a :class:`~simulator.core.world.World`.

    ``coupling_loss_db`` sets the CE level; ``clock_error_s`` is how far the meter's clock is
    ahead of true local time (negative: behind); ``security`` False sends plain CoAP / MQTT-SN
    (DTLS is optional on the product). ``bootstrap_server`` is the LwM2M Bootstrap-Server a
    ``client_initiated`` module talks to (default: one that always answers). Raises :class:`~simulator.nbiot.config.ConfigError` via
    the configuration it is given.
    """

    def __init__(
        self,
        world: World,
        module_id: int,
        server: NbiotServer,
        *,
        config: ModuleConfig | None = None,
        coupling_loss_db: float = 140.0,
        network: NetworkParams | None = None,
        power: PowerModel | None = None,
        clock_error_s: float = 0.0,
        pak: str | None = None,
        security: bool = True,
        detail: str = "message",
        meter: MeterProfile | None = None,
        start: bool = True,
        cell: NprachCell | None = None,
        channels: tuple[DataChannel, DataChannel] | None = None,
        bootstrap_server: BootstrapServer | None = None,
    ) -> None:
        self.world = world
        self.module_id = module_id
        self.meter_id = module_id
        self.name = f"cmi6140/{module_id:08d}"
        self.server = server
        self.store = ConfigStore(config or ModuleConfig(), pak=pak)
        self.network = network or NetworkParams()
        self.power = power or PowerModel()
        self.meter = meter or MeterProfile()
        self.clock_error_s = clock_error_s
        self._error_td = (0.0, timedelta(0))  # see _error
        # A UTC world start: the meter clock is naive arithmetic on it (local_at, world_time_of)
        self._start_utc = (
            world.start.replace(tzinfo=None) if world.start.utcoffset() == timedelta(0) else None
        )
        self.security = security
        self.detail = detail
        cfg = self.store.config
        mode = cfg.power_saving_mode
        self.imsi = 240990000000000 + module_id
        self.radio = Radio(
            coupling_loss_db,
            self.network,
            world.rng(f"{self.name}/radio"),
            psm="psm" in mode,
            edrx="edrx" in mode,
            t3324_s=cfg.t3324_s,
            t3412_s=cfg.t3412_s,
            edrx_cycle_s=cfg.edrx_cycle_s,
            paging=PagingSchedule(
                self.imsi,
                cfg.edrx_cycle_s if "edrx" in mode else None,
                cfg.paging_time_window_s,
            ),
            cell=cell,
            channels=channels,
        )
        self.link = self.radio
        self._rng_tx = world.rng(f"{self.name}/tx_delay")
        self._rng_coap = world.rng(f"{self.name}/coap")
        # stored readouts in sequence order; a statistics-only run holds runs of them (_Run)
        self._unsent: list[payload.Readout | _LazyReadout | _Run] = []
        self.produced = 0
        self.sent = 0
        self.expired = 0  # dropped by max age (the module's own count, §7.3.4)
        # Ground truth for the accounting: readouts (seq) whose telegram reached the server and
        # readouts the module dropped; a reading whose ACK was lost is in both.
        # A statistics-only module hands deliveries over when read (_replay): at_server is
        # complete after catch_up / accounting / summary, as the server's counters are.
        self.at_server = SeqSet()  # a set held as runs: a year's readouts take a few ints
        self.dropped = SeqSet()
        self._in_flight: tuple[tuple[int, int], ...] = ()  # seq runs of the telegram sent
        self.transmissions = 0
        self.failed_telegrams = 0
        self.dtls_retransmissions = 0  # handshake flights resent (spurious when nothing lost)
        self.coap_retransmissions = 0
        self._seq = 0
        self._dtls_session = False
        self._last_datagram = -1e18
        self._registered = False
        self._reg_until = 0.0  # world time the LwM2M registration lapses
        self.registration_lapses = 0
        self.lifetime_updates = 0  # standalone Registration Updates (no transmission due)
        # Factory Bootstrap: the LwM2M Server Account is there from the start (OMA §6.1.3.1).
        self.bootstrap_server = bootstrap_server or BootstrapServer()
        self._bootstrapped = cfg.lwm2m_bootstrap == "factory"
        self._bs_reason = "first_start"
        self._reg_failures = 0  # failed registration attempts in a row
        self.bootstraps = 0
        self.bootstraps_failed = 0
        self._mqtt_connected = False
        self._mqtt_topic = False
        self._telegram_start = 0.0
        self.tx_window_s = array("d")  # send time minus planned time (s), per transmission
        self._sync = world.event()
        self._radio_lock = RadioLock(world)
        self._held: list[_Held] = []  # MT requests the network holds while the module sleeps
        self._paging: list[_Held] | None = None  # requests waiting for the pending page
        self.mt_waits: list[tuple[str, float]] = []  # (via, s) per delivered MT request
        self.serial = f"CMI{module_id:010d}"
        self.firmware = "1.2.0-sim"
        self.cell_id = 0x1A2B
        self.meter_comm_status = 0
        self.last_error_flags = 0
        # Statistics-only runs (detail "off") take readouts lazily when they are needed (a
        # transmission, a sync, the summary) instead of waking every readout interval; the
        # readouts, their times and values are the same (tests/test_nbiot_fast_path.py).
        self._lazy = detail == "off"
        self._lazy_slot = schedule.next_slot(self.local_now(), self.config.readout_interval_min)
        self._lazy_t = world.now  # SimPy time of the last (virtual) readout wake-up
        self._lazy_grid: int | None = None  # interval whose grid _lazy_slot is known to be on
        self._lazy_us: tuple = (None, 0.0, 0)  # see _catch_up_grid
        self._fits: dict[tuple, list] = {}  # see _senml_size
        self._coap_timing: tuple[Any, Any] = (None, None)  # (config, its coap.CoapTiming)
        # Statistics-only runs with a statistics-only server also hand their deliveries to
        # the server (and their own ledger) when they are read, not at each arrival: the
        # replay of a telegram is then one sleep (_replay).
        self._defer = self._lazy and server.detail == "off"
        self._deferred: list[tuple[float, tuple[tuple[int, int], ...] | None, dict]] = []
        if start:
            if not self._lazy:
                world.process(self._readout_loop())
            world.process(self._transmit_loop())
            if self.config.protocol == "lwm2m":
                world.process(self._lifetime_loop())

    @property
    def unsent(self) -> list[payload.Readout | _LazyReadout]:
        """The stored readouts not yet sent, oldest first (runs of a statistics-only run are
        listed readout by readout)."""
        out: list[payload.Readout | _LazyReadout] = []
        for r in self._unsent:
            if type(r) is _Run:
                out += [r.item(k, self) for k in range(r.n)]
            else:
                out.append(r)
        return out

    # -- clock --------------------------------------------------------------------------------
    @property
    def config(self) -> ModuleConfig:
        return self.store.config

    def local_now(self) -> datetime:
        """The meter's local standard time now (naive)."""
        return self.local_at(self.world.now)

    def local_at(self, t: float) -> datetime:
        """The meter's clock at world time ``t``: the world clock (the site's local standard
        time) plus the clock error. The UTC offset is not in it: it only shifts the timestamps
        the module reports (seed 001 §7.3.1), so a readout on the hour stays on the hour."""
        if self._start_utc is not None:  # the same microseconds, without time zones
            return self._start_utc + timedelta(seconds=t) + self._error()
        return (self.world.clock(t) + self._error()).replace(tzinfo=None)

    def _error(self) -> timedelta:
        """``timedelta(seconds=clock_error_s)``, built again only when the error changed."""
        known = self._error_td
        if known[0] != self.clock_error_s:
            known = self._error_td = (self.clock_error_s, timedelta(seconds=self.clock_error_s))
        return known[1]

    def world_time_of(self, local: datetime) -> float:
        """World seconds at which the meter's clock shows ``local``."""
        if self._start_utc is not None:
            return (local - self._error() - self._start_utc).total_seconds()
        at = (local - self._error()).replace(tzinfo=UTC)
        return (at - self.world.start).total_seconds()

    def utc_now(self) -> datetime:
        """UTC as the module reports it: meter time minus the UTC offset (§7.3.1)."""
        shift = timedelta(minutes=self.config.utc_offset_min)
        return (self.local_now() - shift).replace(tzinfo=UTC)

    def sync_time(self, clock_error_s: float = 0.0) -> None:
        """Synchronise the meter clock now (OTC App, time server or network time; §7.3.2)."""
        before = self.local_now()
        self.catch_up(self.world.now)
        self.clock_error_s = clock_error_s
        if self._lazy:  # the readout loop restarts its grid from the new meter time
            self._lazy_slot = schedule.next_slot(self.local_now(), self.config.readout_interval_min)
            self._lazy_t = self.world.now
            self._lazy_grid = None
        self.world.emit(
            ev.NbiotTimeSync(
                source=self.name, before=before.isoformat(), after=self.local_now().isoformat()
            )
        )
        event, self._sync = self._sync, self.world.event()
        event.succeed()
        self.world.process(self._sync_actions())

    def adjust_time(self, seconds: int) -> None:
        """LwM2M /33906/0/6 "Adjust time": shift the meter clock by ``seconds``."""
        self.sync_time(self.clock_error_s + seconds)

    def battery_level_pct(self) -> int:
        """LwM2M /3/0/9: remaining battery (%) by the power model; reading changes nothing."""
        probe = copy.copy(self.radio)
        probe.times = dataclasses.replace(self.radio.times)
        probe.finish(self.world.now)
        used = self.power.energy_j(probe.times, edrx=self.radio.edrx)
        return max(0, round(100 - 100 * used / (self.power.battery_wh * 3600)))

    # -- readouts -----------------------------------------------------------------------------
    def _meter_registers(self, t: float) -> tuple[int, ...]:
        """The registers at world time ``t`` (s) in :class:`.payload.Readout` field order,
        ``energy_kwh`` to ``pulse_b`` (tariffs and missing time are 0 here)."""
        m = self.meter
        hours = t / 3600.0
        return (
            m.energy0_kwh + int(m.power_w * hours / 1000),
            m.volume0_dl + int(m.flow_lph * hours / 100),
            m.power_w,
            m.flow_lph,
            m.forward_dc,
            m.return_dc,
            0,  # error_flags
            0,  # tariff2_wh
            0,  # tariff3_wh
            0,  # missing_time_h
            int(m.cooling_w * hours / 1000),
            int(m.pulse_a_per_h * hours),
            int(m.pulse_b_per_h * hours),
        )

    def _readout(self, local: datetime, reason: str) -> payload.Readout:
        t = self.world.now
        # positional: a keyword call costs a third more, and a fleet takes millions of these
        r = payload.Readout(self.meter_id, local, *self._meter_registers(t), self._seq)
        self._seq += 1
        self.produced += 1
        self._unsent.append(r)
        if not self._lazy:  # a statistics-only run records no trace
            self.world.emit(
                ev.NbiotReadout(
                    source=self.name, local_time=local.isoformat(), reason=reason, seq=r.seq
                )
            )
        return r

    def catch_up(self, until: float, *, inclusive: bool = False) -> None:
        """Lazy readouts: take every scheduled readout due before world time ``until`` (s)
        (``inclusive``: at it too: a readout due at the same instant as a transmission runs
        first on the event path), with the values the readout loop would have read."""
        if not self._lazy:
            return
        if self._deferred:
            self.flush_deliveries(until, inclusive)
        interval = self.config.readout_interval_min
        if 1440 % interval == 0 and (
            self._lazy_grid == interval or _on_grid(self._lazy_slot, interval)
        ):
            self._lazy_grid = interval  # the grid catch-up adds the interval: it stays on it
            self._catch_up_grid(until, inclusive, interval)
            return
        while True:
            slot_t = self.world_time_of(self._lazy_slot)
            t = self._lazy_t + max(0.0, slot_t - self._lazy_t)  # as SimPy schedules it
            if t > until or (t == until and not inclusive):
                return
            self._lazy_readout(self._lazy_slot, t)
            self._lazy_t = t
            self._lazy_slot = schedule.next_slot(self._lazy_slot, interval)

    def _catch_up_grid(self, until: float, inclusive: bool, interval: int) -> None:
        """:meth:`catch_up` for an interval that divides the day: every slot is the previous
        one plus the interval (``schedule.next_slot`` of a slot on that grid), so its world
        time is counted in integer microseconds, exactly what :meth:`world_time_of` gives
        (timedelta arithmetic, ``total_seconds`` = microseconds / 10**6), without datetimes."""
        step = timedelta(minutes=interval)
        step_us = interval * 60_000_000
        slot = self._lazy_slot
        known = self._lazy_us  # (slot, clock error, its world µs) where the last one stopped
        if known[0] is slot and known[1] == self.clock_error_s:
            us = known[2]
        else:
            us = self._world_us(slot)
        lazy_t = self._lazy_t
        seq = self._seq
        unsent = self._unsent
        try:
            while True:
                slot_t = us / 1_000_000
                t = lazy_t + max(0.0, slot_t - lazy_t)  # as SimPy schedules it
                if t > until or (t == until and not inclusive):
                    return
                if t != slot_t or us < step_us:
                    unsent.append(_LazyReadout(seq, slot, t, self))
                    seq += 1
                    lazy_t = t
                    slot += step
                    us += step_us
                    continue
                # The rest in one step. From here each wake-up is the slot time itself: the
                # last one was (t == slot_t) and every later slot is at most twice the one
                # before (us >= step_us), so ``slot_t - lazy_t`` is exact (Sterbenz) and
                # ``lazy_t + (slot_t - lazy_t)`` is ``slot_t``.
                n = self._slots_before(us, step_us, until, inclusive)
                last = unsent[-1] if unsent else None
                if (
                    type(last) is _Run
                    and last.seq + last.n == seq
                    and last.us + last.n * step_us == us
                    and last.step_us == step_us
                    and last.slot + last.n * step == slot
                ):
                    unsent[-1] = _Run(last.seq, last.n + n, last.slot, last.us, step, step_us)
                else:
                    unsent.append(_Run(seq, n, slot, us, step, step_us))
                seq += n
                us += n * step_us
                lazy_t = (us - step_us) / 1_000_000
                slot += n * step
                return
        finally:
            self.produced += seq - self._seq
            self._seq = seq
            self._lazy_t, self._lazy_slot = lazy_t, slot
            self._lazy_us = (slot, self.clock_error_s, us)

    @staticmethod
    def _slots_before(us: int, step_us: int, until: float, inclusive: bool) -> int:
        """How many slots ``us + k * step_us`` (k >= 0; the first is due) fall before world
        time ``until`` (s; at it too when ``inclusive``), compared as the loop compares them."""

        k = max(0, int((until * 1_000_000 - us) // step_us))  # a guess, then exact
        while k > 0:  # slot k not due: one back
            t = (us + k * step_us) / 1_000_000
            if t < until or (inclusive and t == until):
                break
            k -= 1
        while True:  # slot k + 1 due: one on
            t = (us + (k + 1) * step_us) / 1_000_000
            if not (t < until or (inclusive and t == until)):
                return k + 1
            k += 1

    def _lazy_readout(self, local: datetime, t: float) -> None:
        """A scheduled readout of a statistics-only run (no trace event), registers deferred."""
        self._unsent.append(_LazyReadout(self._seq, local, t, self))
        self._seq += 1
        self.produced += 1

    def _world_us(self, local: datetime) -> int:
        """:meth:`world_time_of` in integer microseconds."""
        at = (local - self._error()).replace(tzinfo=UTC)
        return (at - self.world.start) // _MICROSECOND

    def _readout_loop(self) -> Generator:
        slot = schedule.next_slot(self.local_now(), self.config.readout_interval_min)
        while True:
            sync = self._sync
            # (sleep_or marks its wake-ups own_sleep: this loop never calls World.sleep)
            yield from self.world.sleep_or(self.world_time_of(slot) - self.world.now, sync)
            if sync.triggered:
                slot = schedule.next_slot(self.local_now(), self.config.readout_interval_min)
                continue
            self._readout(slot, "schedule")
            slot = schedule.next_slot(slot, self.config.readout_interval_min)

    def _sync_actions(self) -> Generator:
        # Seed 001 §7.3.2: always a readout and a transmission of a new value on time sync.
        self._readout(self.local_now().replace(microsecond=0), "time_sync")
        yield from self._transmission("time_sync", None)

    # -- transmissions ------------------------------------------------------------------------
    def _transmit_loop(self) -> Generator:
        planned = schedule.next_slot(self.local_now(), self.config.transmit_interval_min)
        while True:
            cfg = self.config
            send_local = schedule.transmission_time(
                planned, cfg.transmit_offset_min, cfg.transmit_delay_min, self._rng_tx
            )
            sync = self._sync
            yield from self.world.sleep_or(self.world_time_of(send_local) - self.world.now, sync)
            if sync.triggered:
                planned = schedule.next_slot(self.local_now(), cfg.transmit_interval_min)
                continue
            yield from self._transmission("schedule", planned)
            planned = schedule.next_slot(max(planned, self.local_now()), cfg.transmit_interval_min)

    def _select(self) -> list[list[payload.Readout]]:
        """Unsent readouts to send now, in telegrams (seed 001 §7.3.4 rules)."""
        cfg = self.config
        # now - local_time <= max_age, in exact datetime arithmetic
        oldest = self.local_now() - timedelta(hours=cfg.upload_max_age_h)
        keep: list = []
        for r in self._unsent:
            if type(r) is _Run:
                k = r.first_at_or_after(oldest)
                if k:
                    self.expired += k
                    self.dropped.add_run(r.seq, r.seq + k)
                if k < r.n:
                    keep.append(r.part(k, r.n))
            elif r.local_time >= oldest:
                keep.append(r)
            else:
                self.expired += 1
                self.dropped.add(r.seq)
        self._unsent = keep
        per = cfg.readouts_per_telegram if cfg.message_encoding == "senml_cbor" else 1
        n = cfg.max_uploads_per_transmission * per
        if cfg.upload_order == "lifo":
            ordered = sorted(self.unsent, key=_seq_of, reverse=True)
            chosen = ordered[:n]
            return [chosen[i : i + per] for i in range(0, len(chosen), per)]
        # FIFO: the first n readouts in sequence order, runs cut at the telegram edges
        batches: list[list] = []
        batch: list = []
        room = per  # readouts the current telegram still takes
        left = n
        for r in sorted(keep, key=_seq_of):
            if not left:
                break
            size = r.n if type(r) is _Run else 1
            k = 0
            while k < size and left:
                take = min(size - k, room, left)
                batch.append(r.part(k, k + take) if type(r) is _Run else r)
                k += take
                room -= take
                left -= take
                if not room:
                    batches.append(batch)
                    batch, room = [], per
        if batch:
            batches.append(batch)
        return batches

    def _encode(self, batch: list[payload.Readout | _LazyReadout]) -> bytes | _Unencoded:
        cfg = self.config
        kw = dict(
            utc_offset_min=cfg.utc_offset_min, fmt=cfg.message_format, pulse_inputs=cfg.pulse_inputs
        )
        if cfg.message_encoding == "senml_cbor":
            if self._defer:  # statistics only, here and at the server
                sized = self._senml_size(batch, kw)
                if sized is not None:
                    return sized
            return payload.encode_senml_cbor(self._full(batch), **kw)
        if cfg.message_encoding == "mbus":
            return payload.encode_mbus_message(self._full(batch)[0], **kw)
        return payload.encode_json(self._full(batch)[0], **kw)

    def _senml_size(self, batch: list, kw: dict) -> _Unencoded | None:
        """A statistics-only run's pack, sized and not built (nobody decodes it). The records
        of the first and the last readout are encoded for real, which gives the records' size
        and any out-of-range error: the registers are monotonic in time, so every readout
        between two that encode does too, and the world times already covered are kept
        (``_fits``) so that a day's pack usually encodes nothing. ``None``: encode it."""
        layout = (kw["fmt"], kw["pulse_inputs"])
        fits = self._fits.get(layout)  # [earliest, latest world time that encode, size]
        first, last = batch[0], batch[-1]
        try:
            for r, k in ((first, 0), (last, -1)):
                if type(r) is _Run:
                    k = k % r.n
                    t = (r.us + k * r.step_us) / 1_000_000  # as _Run.item
                    if fits is not None and fits[0] <= t <= fits[1]:
                        continue  # the usual day: no readout built
                    r = r.item(k, self)
                lazy = isinstance(r, _LazyReadout)
                if lazy and fits is not None and fits[0] <= r.t <= fits[1]:
                    continue
                size = len(payload.encode_mbus_records(self._full([r])[0], **_records_kw(kw)))
                if not lazy:
                    continue  # a time-sync readout: not on the time line kept here
                if fits is None:
                    fits = self._fits[layout] = [r.t, r.t, size]
                else:
                    fits[0], fits[1] = min(fits[0], r.t), max(fits[1], r.t)
                if r.t == fits[1]:  # time moves on: vouch for the next 30 days in one probe
                    probe = r.t + _PROBE_S
                    regs = payload.Readout(
                        self.meter_id, r.local_time, *self._meter_registers(probe)
                    )
                    try:
                        payload.encode_mbus_records(regs, **_records_kw(kw))
                        fits[1] = probe
                    except payload.PayloadError:
                        pass  # a register leaves its range before then: check each pack
            if fits is None:  # no scheduled readout yet: size the records of the first
                size = len(payload.encode_mbus_records(self._full(batch[:1])[0], **_records_kw(kw)))
            else:
                size = fits[2]
            origin = payload.utc_origin(kw["utc_offset_min"])
            times: list[int] | range = []
            if len(batch) == 1 and type(batch[0]) is _Run:
                times = self._run_utc(batch[0], origin)  # a range: sized by step
            for r in batch if not times else ():
                if type(r) is _Run:
                    times += self._run_utc(r, origin)
                else:
                    times.append(payload.utc_unix(r, origin))
            return _Unencoded(payload.senml_cbor_size(self.meter_id, times, size, size))
        except payload.PayloadError:
            return None  # the encoder raises the same error, for the readout it names

    def _run_utc(self, r: _Run, origin: datetime) -> list[int] | range:
        """:func:`.payload.utc_unix` of each readout of ``r``: whole seconds a whole number
        of steps apart (the step is whole minutes), checked at both ends."""
        first = int((r.slot - origin).total_seconds())
        if r.n == 1:
            return [first]
        step_s, rem = divmod(r.step_us, 1_000_000)
        last = int((r.slot + (r.n - 1) * r.step - origin).total_seconds())
        if rem == 0 and first >= 0 and last == first + (r.n - 1) * step_s:
            return range(first, last + 1, step_s)
        return [payload.utc_unix(r.item(k, self), origin) for k in range(r.n)]

    def _timeline(self) -> Timeline:
        # only "datagram" detail replays the radio's and protocols' own events: the others
        # need not build them (Timeline.verbose)
        return Timeline(self.name, verbose=self.detail == "datagram")

    def _full(self, batch: list) -> list[payload.Readout]:
        """The batch's readouts with their registers (runs listed readout by readout)."""
        out = []
        for r in batch:
            if type(r) is _Run:
                out += [r.item(k, self).readout() for k in range(r.n)]
            else:
                out.append(r.readout() if isinstance(r, _LazyReadout) else r)
        return out

    def _transmission(self, reason: str, planned: datetime | None) -> Generator:
        with self._radio_lock.request() as use:
            yield from use.acquire()
            self.transmissions += 1
            self.catch_up(self.world.now, inclusive=True)
            telegrams = self._select()
            tx = ev.NbiotTransmission(
                source=self.name,
                reason=reason,
                unsent=_count(self._unsent),
                telegrams=len(telegrams),
            )
            if planned is not None:
                cfg = self.config
                tx.planned = planned.isoformat()
                tx.window_s = round((self.local_now() - planned).total_seconds(), 6)
                self.tx_window_s.append(tx.window_s)
                tx.window = [
                    cfg.transmit_offset_min * 60,
                    (cfg.transmit_offset_min + cfg.transmit_delay_min) * 60,
                ]
            self.world.emit(tx)
            for batch in telegrams:
                data = self._encode(batch)
                self._in_flight = _seq_runs(batch)
                ok = False
                attempts = 0
                for _ in range(self.config.communication_retry_count + 1):
                    attempts += 1
                    tl = self._timeline()
                    ok, t_end = self._telegram(self.world.now, data, tl)
                    yield from self._replay(tl, t_end)
                    if ok:
                        break
                self.world.emit(
                    ev.NbiotTelegram(
                        source=self.name,
                        ok=ok,
                        attempts=attempts,
                        readouts=_count(batch),
                        bytes=len(data),
                        first_seq=batch[0].seq,
                    )
                )
                if not ok:
                    self.failed_telegrams += 1
                    break
                self._drop_sent(self._in_flight)
                self.sent += _count(batch)
            if self._held and self.radio.connected:
                # LwM2M queue mode: the server sends what it holds once the module is heard
                yield from self._serve_held("mo", self.world.now)
            self.radio.release_if_done()

    def _drop_sent(self, runs: tuple[tuple[int, int], ...]) -> None:
        """Take the readouts with sequence numbers in ``runs`` out of the stored ones."""
        unsent = self._unsent
        if len(runs) == 1 and unsent and type(unsent[0]) is _Run:
            lo, hi = runs[0]
            first = unsent[0]
            if first.seq == lo and hi <= first.seq + first.n:  # FIFO: the oldest were sent
                rest = [first.part(hi - lo, first.n)] if hi < first.seq + first.n else []
                self._unsent = rest + unsent[1:]
                return
        keep: list = []
        for r in self._unsent:
            if type(r) is not _Run:
                if not any(lo <= r.seq < hi for lo, hi in runs):
                    keep.append(r)
                continue
            pieces = [(r.seq, r.seq + r.n)]
            for lo, hi in runs:
                pieces = [
                    p for a, b in pieces for p in ((a, min(b, lo)), (max(a, hi), b)) if p[0] < p[1]
                ]
            keep += [r.part(a - r.seq, b - r.seq) for a, b in pieces]
        self._unsent = keep

    def _mark_at_server(self, runs: tuple[tuple[int, int], ...]) -> None:
        for lo, hi in runs:
            self.at_server.add_run(lo, hi)

    def _replay(self, tl: Timeline, t_end: float) -> Generator:
        if self._defer:
            end = self._defer_deliveries(tl, t_end)
            if end is not None:
                if end > self.world.now:
                    yield from self.world.sleep(end - self.world.now)
                return
            self.flush_deliveries(self.world.now, inclusive=True)  # keep the server's order
        verbose = self.detail == "datagram"
        for t, kind, item in tl.sorted():
            if kind != SERVER and not verbose and kind not in MESSAGE_KINDS:
                continue
            if t > self.world.now:  # World.sleep: no SimPy event when nothing else comes first
                yield from self.world.sleep(t - self.world.now)
            if kind == SERVER:
                if item.get("data") is not None:
                    self._mark_at_server(self._in_flight)
                self.server.receive(self.name, **item)
            else:
                self.world.emit(item)
        if t_end > self.world.now:
            yield from self.world.sleep(t_end - self.world.now)

    def _defer_deliveries(self, tl: Timeline, t_end: float) -> float | None:
        """A statistics-only replay: keep the timeline's deliveries (:meth:`flush_deliveries`
        hands them over) and return the time the replay would end, or ``None`` when the line
        has a trace event to emit on time or the one sleep would not reach exactly that time.

        The step-by-step replay sleeps ``t - now`` to each arrival: while ``now >= t / 2``
        every such difference is exact (Sterbenz), so it reaches each ``t`` itself and ends at
        the latest of them, which one sleep reaches too."""
        now = self.world.now
        end = max(now, t_end)
        server = []
        for item in tl.events:
            kind = item[1]
            if kind == SERVER:
                server.append(item)
                if item[0] > end:
                    end = item[0]
            elif kind in MESSAGE_KINDS:
                return None
        if end > 2 * now:
            return None
        server.sort(key=_first)  # stable, as Timeline.sorted
        if not self._deferred:
            self.server.late[id(self)] = self  # its readers take them (NbiotServer._settle)
        keep = self._deferred.append
        for t, _, item in server:
            keep((t, self._in_flight if item.get("data") is not None else None, item))
        return end

    def flush_deliveries(self, until: float, inclusive: bool = False) -> None:
        """Hand the kept deliveries that arrived before world time ``until`` (s; at it too
        when ``inclusive``) to the server and the ledger: the ones the step-by-step replay has
        made by then."""
        deferred = self._deferred
        if not deferred:  # a replay that delivered nothing still registered with the server
            self.server.late.pop(id(self), None)
            return
        last = deferred[-1][0]  # they are kept in arrival order
        if last < until or (inclusive and last == until):  # the usual: all of them
            due, self._deferred = deferred, []
        else:
            n = 0
            for t, _, _ in deferred:
                if t > until or (t == until and not inclusive):
                    break
                n += 1
            due = deferred[:n]
            del deferred[:n]
        add_run = self.at_server.add_run
        for _, seqs, _ in due:
            if seqs is not None:
                for lo, hi in seqs:
                    add_run(lo, hi)
        if due:  # receive(name, at=t, **item) of each on the server's "off" detail
            self.server.tally(self.name, due)
        if not self._deferred:
            self.server.late.pop(id(self), None)

    # -- mobile-terminated requests (RADIO-NBIOT §8 anchor 4) ---------------------------------
    def mobile_terminated(
        self, op: str = "read", nbytes: int = 40, response_b: int = 60
    ) -> simpy.events.Process:
        """A server-initiated LwM2M request (``nbytes`` CoAP bytes, answered with
        ``response_b``) sent now. The network delivers it when the module can hear it:

        * RRC connected: at once;
        * idle (DRX / eDRX, T3324 running): at the module's next paging occasion, if that
          comes before T3324 puts it into PSM (:mod:`.paging`; mean wait about half the eDRX
          cycle for a short PTW);
        * in PSM: held (TS 23.682 extended buffering / LwM2M queue mode) until the module's
          next uplink or its next periodic TAU, whichever comes first.

        Each delivery emits ``nbiot.mt_delivered`` (``via``, ``wait_s``) and is kept in
        :attr:`mt_waits`; the response reaches the server as ``op + "_response"``.
        """
        return self.world.process(self._mt(_Held(op, nbytes, response_b, self.world.now)))

    def _mt(self, held: _Held) -> Generator:
        held.done = self.world.event()
        radio = self.radio
        if self._paging is not None:  # a page for this module is pending: same occasion
            self._paging.append(held)
            yield held.done
            return
        with self._radio_lock.request() as use:
            yield from use.acquire()
            now = self.world.now
            radio._settle(now)
            if radio.connected:
                yield from self._serve([held], "connected", now)
                return
            po = radio.paging.next_occasion(now + self.network.core_delay_s)
            pageable = not radio.psm or po < radio.released_at + radio.t3324_s
            if not radio.in_psm(now) and pageable:
                self._paging = batch = [held]
                try:
                    yield self.world.timeout(max(0.0, po - self.network.core_delay_s - now))
                finally:
                    self._paging = None
                yield from self._serve(batch, "paging", po)
                return
        self._held.append(held)
        while not held.done.triggered:
            tau = radio.next_tau(self.world.now)
            if tau is None:  # the module is awake for an uplink: it will serve the request
                yield held.done
                return
            yield held.done | self.world.timeout(tau - self.world.now)
            if held.done.triggered:
                return
            with self._radio_lock.request() as use:
                yield from use.acquire()
                if held.done.triggered or self.world.now > tau:
                    continue  # an uplink came first and served it, or the TAU moved
                tl = self._timeline()
                try:
                    t = radio.tau_wake(tau, tl)
                except RadioFailure:
                    yield from self._replay(tl, self.world.now)
                    continue
                yield from self._replay(tl, t)
                yield from self._serve_held("tau", tau)
                radio.release_if_done()

    def _serve_held(self, via: str, woke: float) -> Generator:
        """Deliver every held request on the module's current connection; ``woke`` is when
        the module became reachable (TAU due, or the uplink heard)."""
        held, self._held = self._held, []
        yield from self._serve([h for h in held if not h.done.triggered], via, woke)

    def _serve(self, batch: list[_Held], via: str, woke: float) -> Generator:
        """The requests' downlinks (the first pages the module when it is idle) and the
        module's responses, from ``woke`` (when the module became reachable)."""
        tl = self._timeline()
        ovh = dtls.RECORD_OVERHEAD_B if self.security else 0
        t = end = self.world.now
        for held in batch:
            wait = woke - held.queued_at
            self.mt_waits.append((via, wait))
            mt = ev.NbiotMtDelivered(source=self.name, op=held.op, via=via, wait_s=round(wait, 6))
            tl.add(max(woke, t), mt)
            back = self.radio.downlink(t, held.nbytes + ovh, tl)
            if back is None:
                continue
            try:
                sent, arrival = self.radio.uplink(back, held.response_b + ovh, tl)
            except RadioFailure:
                continue
            t = end = sent
            if arrival is not None:
                op = f"{held.op}_response"
                tl.deliver(arrival, op=op, protocol="coap", nbytes=held.response_b)
        yield from self._replay(tl, end)
        self.radio.release_if_done()
        for held in batch:
            held.done.succeed()

    # -- protocol timelines (pure arithmetic on the radio; replayed by _replay) ----------------
    def _exchange(
        self,
        t: float,
        up: int,
        down: int | None,
        timeouts: list[float],
        op: str,
        proto: str,
        tl: Timeline,
        data: bytes | None = None,
        peer: BootstrapServer | None = None,
    ) -> tuple[bool, float]:
        """A request retransmitted on ``timeouts`` until its response arrives.

        ``down`` None: no response is expected (CoAP NON, MQTT-SN QoS -1/0): one send.
        ``peer``: the request goes to that Bootstrap-Server (not recorded by the LwM2M server;
        unanswered while it is out). Returns (acknowledged, time the exchange ended).
        RFC 7252 §4.2 / MQTT-SN §6.13.
        """
        sends, give_up = _send_times(t, timeouts)
        done: float | None = None
        delivered = False
        enc = self.config.message_encoding
        started = self._telegram_start
        uplink = self.radio.uplink
        is_coap = proto == "coap"
        for k, s in enumerate(sends):
            if done is not None and s >= done:
                break
            if tl.verbose:
                tx_event = ev.NbiotCoapTx if is_coap else ev.NbiotMqttsnTx
                tl.add(s, tx_event(source=self.name, op=op, attempt=k, bytes=up))
            if is_coap and k:
                self.coap_retransmissions += 1
            try:
                sent, arrival = uplink(s, up, tl)
            except RadioFailure:
                continue
            self._last_datagram = sent
            if arrival is None:
                if down is None:
                    return True, sent
                continue
            if peer is not None:
                if not peer.answers(arrival):
                    continue
                back = self.radio.downlink(arrival, down, tl) if down is not None else arrival
                if back is not None and back <= give_up:
                    done = back if done is None else min(done, back)
                continue
            if not self.server.answers(arrival):
                continue  # the server is out: dropped unrecorded, no answer
            tl.deliver(
                arrival,
                op=op,
                protocol=proto,
                nbytes=up,
                data=data,
                encoding=enc,
                started=started,
                duplicate=delivered,
            )
            delivered = True
            if down is None:
                return True, sent
            back = self.radio.downlink(arrival, down, tl)
            if back is not None and back <= give_up:
                self._last_datagram = back
                done = back if done is None else min(done, back)
        if done is None:
            return False, give_up
        return True, done

    def _coap(
        self,
        t: float,
        up: int,
        down: int,
        op: str,
        tl: Timeline,
        data: bytes | None = None,
        peer: BootstrapServer | None = None,
    ) -> tuple[bool, float]:
        ovh = dtls.RECORD_OVERHEAD_B if self.security else 0
        timeouts = self._timing().timeouts(self._rng_coap)
        return self._exchange(t, up + ovh, down + ovh, timeouts, op, "coap", tl, data, peer)

    def _timing(self) -> coap.CoapTiming:
        """The RFC 7252 timers of the current configuration (built once per configuration)."""
        cfg = self.config
        if self._coap_timing[0] is not cfg:
            timing = coap.CoapTiming(
                cfg.coap_ack_timeout_s, cfg.coap_ack_random_factor, cfg.coap_max_retransmit
            )
            self._coap_timing = (cfg, timing)
        return self._coap_timing[1]

    def _handshake(
        self, t: float, kind: str, tl: Timeline, peer: BootstrapServer | None = None
    ) -> tuple[bool, float]:
        """A DTLS handshake from ``t``: returns (established, end time). ``peer``: with that
        Bootstrap-Server, which sends no flight while it is out.

        Each flight is resent on the timer of ``dtls_timer_profile`` (:class:`.dtls.DtlsTiming`)
        until the peer's next flight arrives. The answer to ANY copy of a flight ends the wait
        (RFC 6347 §4.2.4: WAITING moves on when the next flight is received), so a copy sent
        before a late answer arrives is a spurious retransmission: it costs air time and
        energy, not a second round trip. The handshake fails when the last timeout expires.
        """
        cfg = self.config
        timing = dtls.DtlsTiming.for_profile(
            cfg.dtls_timer_profile, cfg.dtls_max_timeout_s, cfg.dtls_min_timeout_s
        )
        timeouts = timing.timeouts()
        for number, pair in enumerate(dtls.flights(kind)):
            (_, up), *answer = pair
            sends, give_up = _send_times(t, timeouts)
            done: float | None = None
            for attempt, s in enumerate(sends):
                if done is not None and s >= done:
                    break
                self.dtls_retransmissions += attempt > 0
                if tl.verbose:
                    tl.add(
                        s,
                        ev.NbiotDtlsTx(
                            source=self.name,
                            handshake=kind,
                            flight=2 * number + 1,
                            attempt=attempt,
                            bytes=up,
                        ),
                    )
                try:
                    sent, arrival = self.radio.uplink(s, up, tl)
                except RadioFailure:
                    continue
                if arrival is None:
                    continue
                if not answer:  # the client's last flight: nothing comes back
                    done = sent
                    break
                if not (peer or self.server).answers(arrival):
                    continue  # the server is out: no answer
                back = self.radio.downlink(arrival, answer[0][1], tl)
                if back is not None and back <= give_up:
                    done = back if done is None else min(done, back)
            if done is None:
                failed = ev.NbiotDtlsFailed(source=self.name, handshake=kind, flight=2 * number + 1)
                if tl.verbose:
                    tl.add(give_up, failed)
                return False, give_up
            t = done
        self._last_datagram = t
        return True, t

    def _telegram(self, t: float, data: bytes, tl: Timeline) -> tuple[bool, float]:
        """Everything needed to deliver one telegram from time ``t``: returns (ok, end)."""
        cfg = self.config
        self._telegram_start = t
        new_session = False
        lwm2m = cfg.protocol == "lwm2m"
        if lwm2m and not self._bootstrapped:
            ok, t = self._bootstrap(t, tl)
            if not ok:
                return False, t
        if self.security:
            stale = t - self._last_datagram > self.network.nat_timeout_s
            if not self._dtls_session or (stale and not cfg.dtls_connection_id):
                kind = "resume" if self._dtls_session else "full"
                ok, t = self._handshake(t, kind, tl)
                if not ok:
                    self._dtls_session = False
                    if lwm2m and not self._registered:
                        self._registration_failed()
                    return False, t
                self._dtls_session = True
                new_session = True
        if lwm2m:
            lapsed = self._registered and t >= self._reg_until
            if lapsed:
                self.registration_lapses += 1  # the server dropped it: Register again
            if not self._registered or lapsed:
                ok, t = self._coap(t, coap.register_size(), coap.created_ack_size(), "register", tl)
                if not ok:
                    self._registration_failed()
                    return False, t
                self._registered = True
                self._reg_failures = 0
                self._reg_until = t + cfg.lwm2m_lifetime_s
            elif new_session or self._update_due(t):
                # LwM2M 1.1 queue mode: a new DTLS session / address is announced by an
                # Update; so is a registration that would lapse before the next transmission.
                ok, t = self._coap(t, coap.update_size(), coap.changed_ack_size(), "update", tl)
                if not ok:
                    return False, t
                self._reg_until = t + cfg.lwm2m_lifetime_s
            cf = payload.CONTENT_FORMATS[cfg.message_encoding]
            return self._coap(
                t, coap.send_size(len(data), cf), coap.changed_ack_size(), "send", tl, data
            )
        return self._mqttsn(t, data, new_session, tl)

    def _registration_failed(self) -> None:
        """One registration attempt failed (the DTLS handshake or the Register). After
        ``lwm2m_registration_attempts`` in a row the registration has failed; with "Bootstrap
        on Registration Failure" (OMA LwM2M 1.1 Core §6.2.1.1, /1/x/16) and a Bootstrap-Server
        account (client_initiated) the next attempt starts with a new bootstrap."""
        cfg = self.config
        self._reg_failures += 1
        if self._reg_failures < cfg.lwm2m_registration_attempts:
            return
        self._reg_failures = 0
        if (
            cfg.lwm2m_bootstrap == "client_initiated"
            and cfg.lwm2m_bootstrap_on_registration_failure
        ):
            self._bootstrapped = False
            self._bs_reason = "registration_failure"

    def _bootstrap(self, t: float, tl: Timeline) -> tuple[bool, float]:
        """A Client Initiated Bootstrap from ``t`` (OMA LwM2M 1.1 Core §6.1.3.3; messages in
        :mod:`.bootstrap`): returns (done, end time s).

        A full DTLS handshake with the Bootstrap-Server (its own PSK, so never a resumption of
        the LwM2M server's session), the Bootstrap-Request as a CoAP CON (RFC 7252 timers),
        then each of the server's requests (Delete, Writes, Bootstrap-Finish) as a CON the
        server resends on the same timers until the module's ACK reaches it. It fails when a
        step gets no answer, or when the Finish has not come EXCHANGE_LIFETIME (247 s) after
        the Bootstrap-Request (§6.1.3.3). Done: the new credentials need a new DTLS session
        and a Register with the LwM2M server.
        """
        cfg = self.config
        peer = self.bootstrap_server
        start = t
        ovh = dtls.RECORD_OVERHEAD_B if self.security else 0

        def end(failed_at: str | None) -> tuple[bool, float]:
            outcome = ev.NbiotBootstrap(
                source=self.name,
                outcome="failed" if failed_at else "done",
                reason=self._bs_reason,
                duration_s=round(t - start, 6),
            )
            if failed_at:
                outcome.failed_at = failed_at
                self.bootstraps_failed += 1
            else:
                self.bootstraps += 1
                self._bootstrapped = True
                self._dtls_session = False  # new credentials: new session, then Register
                self._registered = False
            tl.add(t, outcome)
            return not failed_at, t

        if self.security:
            ok, t = self._handshake(t, "full", tl, peer=peer)
            if not ok:
                return end("dtls")
        size = bootstrap.request_size()
        tl.add(
            t,
            ev.NbiotBootstrapOp(
                source=self.name, op="bootstrap_request", path="/bs", attempt=0, bytes=size
            ),
        )
        ok, t = self._coap(t, size, coap.changed_ack_size(), "bootstrap_request", tl, peer=peer)
        if not ok:
            return end("bootstrap_request")
        peer.requests += 1
        deadline = t + bootstrap.EXCHANGE_LIFETIME_S
        for op in bootstrap.operations(lifetime_s=cfg.lwm2m_lifetime_s):
            ok, t = self._server_request(t, op, op.down_b + ovh, op.up_b + ovh, tl, peer)
            if not ok or t > deadline:
                # nothing tells the module the server gave up: its EXCHANGE_LIFETIME runs out
                t = max(t, deadline)
                return end(f"{op.op} {op.path}")
        peer.finished += 1
        return end(None)

    def _server_request(
        self,
        t: float,
        op: bootstrap.BootstrapOp,
        down: int,
        up: int,
        tl: Timeline,
        peer: BootstrapServer,
    ) -> tuple[bool, float]:
        """A Bootstrap-Server request sent at ``t`` as a CoAP CON, resent on the RFC 7252
        timers until the module's piggy-backed response reaches the server. Returns
        (acknowledged, time the server has the response or gave up)."""
        rng = self.world.rng(f"{self.name}/bootstrap_server")
        timeouts = self._timing().timeouts(rng)
        sends, give_up = _send_times(t, timeouts)
        for k, s in enumerate(sends):
            if not peer.answers(s):
                continue  # the server is out: nothing sent
            got = self.radio.downlink(s, down, tl)
            if got is None:
                continue
            tl.add(
                got,
                ev.NbiotBootstrapOp(
                    source=self.name, op=op.op, path=op.path, attempt=k, bytes=op.down_b
                ),
            )
            try:
                _, arrival = self.radio.uplink(got, up, tl)
            except RadioFailure:
                continue
            if arrival is not None and peer.answers(arrival):
                self._last_datagram = arrival
                return True, arrival
        return False, give_up

    def _update_due(self, t: float) -> bool:
        """True when the registration lapses before the earliest next transmission (one
        interval less the randomisation window, seed 001 §7.3.3): refreshing it now saves a
        standalone Update. Later transmissions may still need one (:meth:`_lifetime_loop`)."""
        cfg = self.config
        gap = (cfg.transmit_interval_min - cfg.transmit_delay_min) * 60
        return t + gap >= self._reg_until - cfg.lwm2m_update_margin_s

    def _lifetime_loop(self) -> Generator:
        """A standalone Registration Update when no transmission comes before the lifetime
        ends (lifetime shorter than the transmit interval; OMA LwM2M 1.1 Core §6.x Update)."""
        while True:
            due = self._reg_until - self.config.lwm2m_update_margin_s
            if not self._registered or due <= self.world.now:
                yield from self.world.sleep(self.config.lwm2m_lifetime_s / 4)
                if not self._registered or self._reg_until - self.world.now > (
                    self.config.lwm2m_update_margin_s
                ):
                    continue
            else:
                yield from self.world.sleep(due - self.world.now)
                if self._reg_until - self.config.lwm2m_update_margin_s > self.world.now:
                    continue  # a transmission refreshed it meanwhile
            with self._radio_lock.request() as use:
                yield from use.acquire()
                if self._reg_until - self.config.lwm2m_update_margin_s > self.world.now:
                    continue
                tl = self._timeline()
                ok, t = self._coap(
                    self.world.now, coap.update_size(), coap.changed_ack_size(), "update", tl
                )
                if ok:
                    self._reg_until = t + self.config.lwm2m_lifetime_s
                self.lifetime_updates += 1
                yield from self._replay(tl, t)
                self.radio.release_if_done()

    def _mqttsn(self, t: float, data: bytes, new_session: bool, tl: Timeline) -> tuple[bool, float]:
        cfg = self.config
        ovh = dtls.RECORD_OVERHEAD_B if self.security else 0
        retries = [cfg.mqttsn_t_retry_s] * (cfg.mqttsn_n_retry + 1)
        qos = cfg.mqttsn_qos
        if qos >= 0:
            if new_session or not self._mqtt_connected:
                ok, t = self._exchange(
                    t,
                    len(mqttsn.connect(self.name)) + ovh,
                    len(mqttsn.connack()) + ovh,
                    retries,
                    "connect",
                    "mqttsn",
                    tl,
                )
                if not ok:
                    return False, t
                self._mqtt_connected = True
            if not self._mqtt_topic:
                ok, t = self._exchange(
                    t,
                    len(mqttsn.register("meters/data", 1)) + ovh,
                    len(mqttsn.regack(1, 1)) + ovh,
                    retries,
                    "register",
                    "mqttsn",
                    tl,
                )
                if not ok:
                    return False, t
                self._mqtt_topic = True
        up = mqttsn.publish_size(len(data)) + ovh
        down = len(mqttsn.puback(1, 1)) + ovh if qos == 1 else None
        return self._exchange(t, up, down, retries, "publish", "mqttsn", tl, data)

    # -- results ------------------------------------------------------------------------------
    def accounting(self) -> dict[str, int]:
        """Each readout taken in exactly one state: ``delivered`` (its telegram reached the
        server, acknowledged or not), ``pending`` (stored, not at the server) or
        ``expired`` (dropped by max age before any copy reached the server)."""
        self.catch_up(self.world.now)
        at = self.at_server
        pending = sum(
            r.n - at.count_in(r.seq, r.seq + r.n) if type(r) is _Run else r.seq not in at
            for r in self._unsent
        )
        return {
            "delivered": len(self.at_server),
            "pending": pending,
            "expired": self.dropped.count_not_in(self.at_server),
        }

    def summary(self, t_end: float) -> dict[str, Any]:
        """Counters, state times and energy up to world time ``t_end``."""
        self.catch_up(t_end)
        self.radio.finish(t_end)
        energy = self.power.energy_j(self.radio.times, edrx=self.radio.edrx)
        return {
            "module": self.name,
            "coupling_loss_db": self.radio.coupling_loss_db,
            "ce_level": self.radio.ce_level,
            "produced": self.produced,
            "sent": self.sent,
            "dropped_by_age": self.expired,
            "unsent": _count(self._unsent),
            **self.accounting(),
            "failed_telegrams": self.failed_telegrams,
            "ra_collisions": self.radio.times.ra_collisions,
            "dtls_retransmissions": self.dtls_retransmissions,
            "coap_retransmissions": self.coap_retransmissions,
            "bootstraps": self.bootstraps,
            "bootstraps_failed": self.bootstraps_failed,
            "energy_j": energy,
        }


@dataclass(frozen=True)
class _Unencoded:
    """A data message of a statistics-only run: only its size (bytes) is known and needed."""

    size: int

    def __len__(self) -> int:
        return self.size


def _on_grid(local: datetime, interval_min: int) -> bool:
    """``local`` is a multiple of the interval from its midnight (not so after the interval
    was reconfigured: the next slot then snaps to the new grid, :func:`.schedule.next_slot`)."""
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return (local - midnight) % timedelta(minutes=interval_min) == timedelta(0)


def _first(item: tuple) -> Any:
    return item[0]


def _records_kw(kw: dict) -> dict:
    return {"fmt": kw["fmt"], "pulse_inputs": kw["pulse_inputs"]}
