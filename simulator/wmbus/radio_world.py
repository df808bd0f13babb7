"""The wM-Bus radio world as a discrete-event model (SimPy): one process per meter.

Each meter process sleeps until its next send time, puts its telegram on the air for its time
on air and takes it off again; when a telegram ends, every receiver that could hear it decides
whether it got it, by the reception rule of :mod:`simulator.wmbus.receiver` (sensitivity,
overlap on the same frequency, capture against the strongest interferer or their power sum). Times, link budgets and fading are the counter-based
draws of :mod:`simulator.wmbus.radio_kernel`, so this model and the vectorised kernel give the
same receptions for the same seed (a test checks it); the kernel is the one to use at city
scale, this one when telegram bytes, the Stream Plugin and the trace matter.

Trace events (see docs/wmbus-radio.md):

- ``wmbus_tx`` (source ``meter/<id>``): ``seq``, ``mode``, ``access_no``, ``airtime_ms``;
- ``wmbus_rx`` (source ``receiver/<id>``): ``meter``, ``seq``, ``rssi_dbm``;
- ``wmbus_collision`` (source ``receiver/<id>``): ``meter``, ``seq``, ``rssi_dbm``,
  ``strongest_dbm`` (the strongest overlapping telegram) and, for receivers with
  ``interference="sum"``, ``interference_dbm`` (the power sum of all overlapping telegrams);
- ``duty_cycle`` (source ``meter/<id>``): ``hour``, ``band``, ``airtime_s``, ``limit_s``,
  ``exceeded`` = True, once per meter and hour over the sub-band limit.

AFL fragments. A meter with ``fragment_size`` (security mode 7, S1/T1) sends each message as
its AFL fragments (:meth:`~simulator.wmbus.meter.RadioMeter.frames`), one transmission each:
fragment k starts at :meth:`~simulator.wmbus.meter.RadioMeter.fragment_starts_s` after the
message's send time, with its own time on air, overlap test and fading draw (fragment 0 draws
what the unfragmented telegram would); every fragment counts in :attr:`RadioWorld.sent`, the
duty-cycle account and, lost, in :attr:`RadioWorld.lost`. Their ``wmbus_tx``, ``wmbus_rx`` and
``wmbus_collision`` events carry ``fragment`` (0, 1, ...). ``on_receive`` gets each received
fragment with ``fragment=k`` and the message's send time; :attr:`RadioWorld.received` holds a
message at a receiver only once that receiver got every fragment of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulator.core import events as ev
from simulator.core.world import World
from simulator.wmbus.dutycycle import DutyCycleAccount, sub_band
from simulator.wmbus.meter import MODES
from simulator.wmbus.radio_kernel import (
    RadioSetup,
    access_number,
    interference_dbm,
    iter_send_times,
)


@dataclass
class OnAir:
    """A telegram on the air: when, whose, and its RSSI at each receiver (-inf = silent)."""

    t_start: float
    t_end: float
    meter: int
    seq: int
    rssi: np.ndarray
    #: AFL fragment index (None: a whole telegram) and the message's send time (s)
    fragment: int | None = None
    t_message: float = 0.0


#: ``on_receive(receiver_index, meter_index, seq, t_start, rssi_dbm)``, and for an AFL
#: fragment ``fragment=k`` as keyword (``t_start`` = the message's send time)
ReceiveHandler = Callable[[int, int, int, float, float], None]


class RadioWorld:
    """Meters and receivers of a :class:`RadioSetup` as SimPy processes of ``world``.

    ``on_receive`` is called for every received telegram (after it ends), e.g. to feed a
    Stream Plugin. ``trace_tx=False`` leaves ``wmbus_tx`` out of the trace (big runs).
    """

    def __init__(
        self,
        world: World,
        setup: RadioSetup,
        duration_s: float,
        *,
        on_receive: ReceiveHandler | None = None,
        trace_tx: bool = True,
    ) -> None:
        self.world = world
        self.setup = setup
        self.duration_s = float(duration_s)
        self.on_receive = on_receive
        self.trace_tx = trace_tx
        self.on_air: dict[int, list[OnAir]] = {0: [], 1: []}
        self.longest = float(np.max(setup.airtime)) if len(setup.airtime) else 0.0
        #: fragments of a message each receiver got so far: (meter, seq, receiver) -> count
        self._pieces: dict[tuple[int, int, int], int] = {}
        #: (meter, seq, receiver, rssi dBm, send time s) per reception, in order
        self.received: list[tuple[int, int, int, float, float]] = []
        self.sent = 0
        self.lost: list[tuple[int, int, int]] = []
        #: AFL fragments put on the air, and lost at a receiver (receivers x fragments)
        self.sent_fragments = 0
        self.lost_fragments = 0
        self.duty = [DutyCycleAccount(sub_band(m.mode)) for m in setup.meters]
        self._floors = np.array([r.noise_floor_dbm for r in setup.receivers])
        self._all_rx = np.arange(len(setup.receivers))
        for i in range(len(setup.meters)):
            meter = setup.meters[i]
            if getattr(meter, "fragment_size", None) is not None:
                self.longest = max(self.longest, *meter.fragment_airtimes_s())
                world.process(self._fragmenting_meter(i))
            else:
                world.process(self._meter(i))

    def _meter(self, i: int):
        setup = self.setup
        air = full_air = float(setup.airtime[i])
        compact = setup.compact_airtime is not None
        if compact:  # RadioSetup.airtime_of for this one meter, without 1-element arrays
            compact_air, every = float(setup.compact_airtime[i]), int(setup.full_every[i])
        for seq, t in enumerate(iter_send_times(setup, i, self.duration_s)):
            yield self.world.timeout(t - self.world.now)
            if compact:  # a compact frame is shorter than the full one
                air = full_air if seq % every == 0 else compact_air
            tel = self._start(i, seq, t, air)
            self._sent(tel, air)
            yield self.world.timeout(tel.t_end - self.world.now)
            self._end(tel)

    def _fragmenting_meter(self, i: int):
        """A meter sending each message as consecutive AFL fragments (module docstring)."""
        meter = self.setup.meters[i]
        airs, starts = meter.fragment_airtimes_s(), meter.fragment_starts_s()
        for seq, t in enumerate(iter_send_times(self.setup, i, self.duration_s)):
            for k, (air, start) in enumerate(zip(airs, starts, strict=True)):
                yield self.world.timeout(t + start - self.world.now)
                tel = self._start(i, seq, t + start, air, fragment=k, t_message=t)
                self._sent(tel, air)
                yield self.world.timeout(tel.t_end - self.world.now)
                self._end(tel, last=k == len(airs) - 1)

    def _sent(self, tel: OnAir, air: float) -> None:
        """Count, trace and duty-cycle-account one transmission that just started."""
        i, seq, t = tel.meter, tel.seq, tel.t_start
        meter = self.setup.meters[i]
        self.sent += 1
        self.sent_fragments += tel.fragment is not None
        if self.trace_tx:
            self.world.emit(
                ev.WmbusTx(
                    source=f"meter/{meter.id:08d}",
                    seq=seq,
                    mode=meter.mode,
                    access_no=access_number(meter.id, seq),
                    airtime_ms=round(air * 1000.0, 3),
                    fragment=ev.UNSET if tel.fragment is None else tel.fragment,
                )
            )
        if self.duty[i].add(t, air):
            hour = int(t // 3600)
            self.world.emit(
                ev.DutyCycle(
                    source=f"meter/{meter.id:08d}",
                    hour=hour,
                    band=self.duty[i].band.name,
                    exceeded=True,
                    airtime_s=round(self.duty[i].airtime_s[hour], 6),
                    limit_s=self.duty[i].band.airtime_limit_s,
                )
            )

    def _start(
        self,
        i: int,
        seq: int,
        t: float,
        air: float,
        fragment: int | None = None,
        t_message: float | None = None,
    ) -> OnAir:
        mean = self.setup.mean_rssi[i]
        rssi = np.full(len(self.setup.receivers), -np.inf)
        live = np.isfinite(mean)
        if live.any():
            r = self._all_rx[live]
            m, s = np.full(r.size, i), np.full(r.size, seq)
            p = mean[live] + self.setup.fading_db(m, s, r, fragment=fragment or 0)
            rssi[r] = np.where(p >= self._floors[r], p, -np.inf)
        tel = OnAir(t, t + air, i, seq, rssi, fragment, t if t_message is None else t_message)
        self.on_air[int(self.setup.freq[i])].append(tel)
        return tel

    def _end(self, tel: OnAir, last: bool = True) -> None:
        f = int(self.setup.freq[tel.meter])
        # forget telegrams that ended too long ago to overlap anything still on the air
        horizon = tel.t_end - self.longest
        self.on_air[f] = [o for o in self.on_air[f] if o.t_end > horizon]
        others = [
            o
            for o in self.on_air[f]
            if o is not tel and o.t_start < tel.t_end and o.t_end > tel.t_start
        ]
        mode = MODES[int(self.setup.mode[tel.meter])]
        meter_id = f"{self.setup.meters[tel.meter].id:08d}"
        for r, rcv in enumerate(self.setup.receivers):
            p = float(tel.rssi[r])
            if not (rcv.hears(mode) and p >= rcv.sensitivity_dbm[mode]):
                continue
            powers = [float(o.rssi[r]) for o in others if np.isfinite(o.rssi[r])]
            strongest = max(powers, default=-np.inf)
            summed = rcv.interference == "sum"
            if summed:
                # the kernel's arithmetic: numpy 10**(p/10) per telegram, summed in mW
                total = float(np.sum(np.power(10.0, np.array(powers, dtype=float) / 10.0)))
                interference = float(interference_dbm(np.array(total)))
            if rcv.capture_db is None:
                clear = not powers
            elif summed:
                clear = p - interference >= rcv.capture_db
            else:
                clear = p - strongest >= rcv.capture_db
            frag = ev.UNSET if tel.fragment is None else tel.fragment
            if clear:
                self.world.emit(
                    ev.WmbusRx(
                        source=f"receiver/{rcv.id}",
                        meter=meter_id,
                        seq=tel.seq,
                        rssi_dbm=round(p, 1),
                        fragment=frag,
                    )
                )
                if tel.fragment is None:
                    self.received.append((tel.meter, tel.seq, r, p, tel.t_start))
                    if self.on_receive is not None:
                        self.on_receive(r, tel.meter, tel.seq, tel.t_start, p)
                    continue
                key = (tel.meter, tel.seq, r)
                got = self._pieces[key] = self._pieces.get(key, 0) + 1
                if last and got == tel.fragment + 1:  # every fragment of the message
                    self.received.append((tel.meter, tel.seq, r, p, tel.t_message))
                if self.on_receive is not None:
                    self.on_receive(r, tel.meter, tel.seq, tel.t_message, p, fragment=tel.fragment)
            else:
                self.lost.append((tel.meter, tel.seq, r))
                self.lost_fragments += tel.fragment is not None
                self.world.emit(
                    ev.WmbusCollision(
                        source=f"receiver/{rcv.id}",
                        meter=meter_id,
                        seq=tel.seq,
                        rssi_dbm=round(p, 1),
                        strongest_dbm=round(strongest, 1),
                        interference_dbm=round(interference, 1) if summed else ev.UNSET,
                        fragment=frag,
                    )
                )
        if tel.fragment is not None and last:  # the message is over: forget its count
            for r in range(len(self.setup.receivers)):
                self._pieces.pop((tel.meter, tel.seq, r), None)
