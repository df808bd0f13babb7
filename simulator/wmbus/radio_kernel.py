"""Vectorised (NumPy) radio kernel: schedules, link budgets and receptions for whole cities.

The kernel computes exactly what the event model (:mod:`simulator.wmbus.radio_world`) computes,
without one Python step per telegram: every transmission time, every RSSI and every
collision decision is an array operation. ``tests/test_wmbus_radio_kernel.py`` runs both on the
same small scenario and seed and checks that they give the same receptions.

Random numbers are counter-based draws (:mod:`simulator.wmbus.radio_draws`), so both models
draw the same numbers in a different order. Streams:

=================  =================================  ================================
stream name        drawn for                          distribution
=================  =================================  ================================
``radio/offset``   meter                              first send, U[0, interval)
``radio/jitter``   meter, transmission number         interval * (1 + jitter U[-1, 1])
``radio/shadow``   meter, receiver                    N(0, sigma) dB, fixed per link
``radio/fading``   meter, transmission no., receiver  N(0, fading sigma) dB per packet
=================  =================================  ================================

Links whose median RSSI is more than :data:`CUTOFF_SIGMAS` fading deviations below the
receiver's noise floor are treated as silent (neither received nor interfering) by both models;
that is what lets the kernel skip most of the 100,000 x 25 links of a city.

How :func:`run_kernel` runs (memory bounded by a time chunk, not by the run):

1. the send-time recurrence advances all meters chunk by chunk (about
   :data:`CHUNK_TRANSMISSIONS` telegrams per chunk, cut to whole mean send intervals), one
   sort by start time per chunk (packed integer keys);
2. each telegram is expanded to its audible links (meter-major CSR of the link table): a
   step of the recurrence that holds most meters (each at most once) in one pass over the
   whole table, the rest telegram by telegram. Per block of packets, in the CPU cache: the
   fading radius is hashed for every packet, the angle only where the packet can reach the
   receiver's noise floor, the RSSI only where it can still reach it (a link whose median is
   below the floor needs a positive fading), and packets below the floor are dropped
   (:class:`~simulator.wmbus.radio_draws.FadingDraws`);
3. the rest are grouped by (receiver, frequency) with one sort of packed keys, and the
   overlap scan runs over all groups at once;
4. a telegram is decided once every telegram that can overlap it is in the chunk buffer
   (start less than the longest time on air away); the rest waits for the next chunk.

None of these shortcuts changes a number: ``tests/test_wmbus_radio_kernel.py`` compares the
kernel with the event model bit for bit, and the shipped city runs give byte-identical files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.core.numeric import floor_index
from simulator.wmbus.channel import Channel
from simulator.wmbus.dutycycle import MODE_FREQUENCY_MHZ, OBSERVATION_S, sub_band
from simulator.wmbus.meter import MODES, RadioMeter
from simulator.wmbus.meter_columns import MeterColumns
from simulator.wmbus.radio_draws import (
    MAX_RECEIVERS,
    FadingDraws,
    counter_inner,
    counter_normal,
    counter_uniform,
    stream_key,
    uniform_from_inner,
)
from simulator.wmbus.receiver import Receiver

#: Links more than this many fading sigmas below the noise floor are silent.
CUTOFF_SIGMAS = 5.0
#: Telegrams per time chunk :func:`run_kernel` aims for (bounds its working memory).
CHUNK_TRANSMISSIONS = 1 << 17

__all__ = [
    "CHUNK_TRANSMISSIONS",
    "CUTOFF_SIGMAS",
    "MAX_RECEIVERS",
    "KernelRun",
    "RadioSetup",
    "Receptions",
    "Transmissions",
    "access_number",
    "counter_normal",
    "counter_uniform",
    "duty_cycle_violations",
    "interference_dbm",
    "iter_send_times",
    "run_kernel",
    "schedule",
    "stream_key",
]


#: Meters per block when :meth:`RadioSetup.build` computes the link budgets.
_SETUP_BLOCK = 4096
#: Counter offset of an AFL fragment's fading draw per fragment index (RadioSetup.fading_db)
FRAGMENT_SEQ_STRIDE = 1 << 40


class FragmentingMetersError(ValueError):
    """The vectorised kernel was given meters that send AFL fragments (``fragment_size``):
    it models one transmission per telegram; fragments run in the event model only."""


@dataclass
class RadioSetup:
    """Meters and receivers as arrays (index = position in the input lists)."""

    meters: Sequence[RadioMeter]  # a list, or MeterColumns (a city)
    receivers: list[Receiver]
    channel: Channel
    seed: int
    x: np.ndarray
    y: np.ndarray
    indoor: np.ndarray
    floor: np.ndarray
    tx_power: np.ndarray
    mode: np.ndarray  # index into MODES
    freq: np.ndarray  # channel index: 0 = 868.30 MHz, 1 = 868.95 MHz
    interval: np.ndarray
    jitter: np.ndarray
    airtime: np.ndarray  # s
    mean_rssi: np.ndarray  # (n_meters, n_receivers) dBm, without fading; -inf = silent link
    distance: np.ndarray  # (n_meters, n_receivers) m
    #: compact-frame meters (None: every meter sends full frames): per meter the time on air
    #: (s) of a compact frame and the full-frame period (1 for full-frame meters)
    compact_airtime: np.ndarray | None = None
    full_every: np.ndarray | None = None

    def airtime_of(self, meter: np.ndarray, seq: np.ndarray) -> np.ndarray:
        """Time on air (s) of transmission ``seq`` of ``meter`` (arrays): the full frame's,
        or the compact frame's between a compact meter's full frames."""
        if self.compact_airtime is None:
            return self.airtime[meter]
        full = np.asarray(seq) % self.full_every[meter] == 0
        return np.where(full, self.airtime[meter], self.compact_airtime[meter])

    @classmethod
    def build(
        cls,
        meters: Sequence[RadioMeter],
        receivers: Sequence[Receiver],
        channel: Channel,
        seed: int,
        airtime: np.ndarray | None = None,
    ) -> RadioSetup:
        """Arrays and link budgets for ``meters`` and ``receivers`` under ``seed``.

        ``airtime`` (s per meter) defaults to each meter's :meth:`RadioMeter.airtime_s`
        (full frames); compact-frame meters add :attr:`compact_airtime` and :attr:`full_every`.
        ``meters`` may be a list or a :class:`~simulator.wmbus.meter_columns.MeterColumns`
        (its arrays are used as they are: same setup as from the same meters in a list).
        """
        if len(receivers) > MAX_RECEIVERS:
            raise ValueError(f"at most {MAX_RECEIVERS} receivers (got {len(receivers)})")
        receivers = list(receivers)
        if isinstance(meters, MeterColumns):  # a city: the columns as they are
            n = len(meters)
            x, y, indoor = meters.x, meters.y, meters.indoor
            floor = meters.floor.astype(float)
            tx_power = np.full(n, meters.tx_power_dbm)
            mode = meters.mode_index()
            interval, jitter = np.full(n, meters.interval_s), np.full(n, meters.jitter)
            if airtime is None:
                airtime = meters.airtime_s()
            compact = meters.frame == "compact"
            compact_air = meters.airtime_s(compact=True) if compact.any() else None
            full_every = np.where(compact, meters.full_every, 1)
        else:
            meters = list(meters)
            mode_index = {m: i for i, m in enumerate(MODES)}
            x = np.array([m.x for m in meters], dtype=float)
            y = np.array([m.y for m in meters], dtype=float)
            indoor = np.array([m.indoor for m in meters], dtype=bool)
            floor = np.array([m.floor for m in meters], dtype=float)
            tx_power = np.array([m.tx_power_dbm for m in meters], dtype=float)
            mode = np.array([mode_index[m.mode] for m in meters], dtype=np.int8)
            interval = np.array([m.interval_s for m in meters], dtype=float)
            jitter = np.array([m.jitter for m in meters], dtype=float)
            if airtime is None:
                airtime = np.array([m.airtime_s() for m in meters], dtype=float)
            compact = np.array([m.frame == "compact" for m in meters], dtype=bool)
            compact_air = (
                np.array([m.airtime_s(compact=True) for m in meters], dtype=float)
                if compact.any()
                else None
            )
            full_every = np.array([m.full_every if m.frame == "compact" else 1 for m in meters])
        freq = np.array([0 if MODE_FREQUENCY_MHZ[m] < 868.6 else 1 for m in MODES], np.int8)[mode]
        rx = np.array([r.x for r in receivers], dtype=float)
        ry = np.array([r.y for r in receivers], dtype=float)
        n_m, n_r = len(x), len(receivers)
        distance = np.empty((n_m, n_r))
        mean = np.empty((n_m, n_r))
        shadow_key = stream_key(seed, "radio/shadow")
        idx_r = np.arange(n_r, dtype=np.uint64)[None, :]
        floors = np.array([r.noise_floor_dbm for r in receivers], dtype=float)[None, :]
        cutoff = floors - CUTOFF_SIGMAS * channel.fading_sigma_db
        # in blocks of meters: element-wise the same numbers, temporaries stay small
        for a in range(0, n_m, _SETUP_BLOCK):
            b = min(n_m, a + _SETUP_BLOCK)
            d = distance[a:b]
            np.hypot(x[a:b, None] - rx[None, :], y[a:b, None] - ry[None, :], out=d)
            idx_m = np.arange(a, b, dtype=np.uint64)[:, None]
            shadow = channel.model.sigma_db * counter_normal(shadow_key, idx_m, idx_r)
            block = channel.mean_rssi_dbm(
                tx_power[a:b, None], d, indoor[a:b, None], floor[a:b, None], shadow
            )
            mean[a:b] = np.where(block >= cutoff, block, -np.inf)
        return cls(
            meters,
            receivers,
            channel,
            int(seed),
            x,
            y,
            indoor,
            floor,
            tx_power,
            mode,
            freq,
            interval,
            jitter,
            np.asarray(airtime, dtype=float),
            mean,
            distance,
            compact_air,
            None if compact_air is None else np.asarray(full_every, dtype=np.int64),
        )

    def fading_db(
        self, meter: np.ndarray, seq: np.ndarray, receiver: np.ndarray, fragment: int = 0
    ) -> np.ndarray:
        """Per-packet fading (dB) of transmission ``seq`` of ``meter`` at ``receiver``; AFL
        fragment ``fragment`` > 0 of it (event model) draws its own number (counter
        ``seq + fragment * 2**40``: no real seq reaches it), fragment 0 the telegram's."""
        key = stream_key(self.seed, "radio/fading")
        seq = np.asarray(seq, dtype=np.uint64)
        if fragment:
            seq = seq + np.uint64(fragment) * np.uint64(FRAGMENT_SEQ_STRIDE)
        b = seq * np.uint64(MAX_RECEIVERS) + np.asarray(receiver, dtype=np.uint64)
        return self.channel.fading_sigma_db * counter_normal(key, meter, b)


def iter_send_times(setup: RadioSetup, meter: int, duration_s: float) -> Iterator[float]:
    """Send times (s) of one meter in ``[0, duration_s)``, one at a time (event-model order).

    The recurrence is the kernel's: ``t0 = U * interval``, ``t[k+1] = t[k] + d[k]``.
    """
    off_key = stream_key(setup.seed, "radio/offset")
    jit_key = stream_key(setup.seed, "radio/jitter")
    interval = float(setup.interval[meter])
    jitter = float(setup.jitter[meter])
    t = float(counter_uniform(off_key, meter, 0)) * interval
    k = 0
    while t < duration_s:
        yield t
        u = float(counter_uniform(jit_key, meter, k))
        t = t + interval * (1.0 + jitter * (2.0 * u - 1.0))
        k += 1


def access_number(meter_id: int, seq: int) -> int:
    """Access number (0-255) of transmission ``seq``: counts up from a per-meter start."""
    return (meter_id + seq) & 0xFF


@dataclass
class Transmissions:
    """Transmissions sorted by start time (s); ties (measure zero) by meter index."""

    t_start: np.ndarray  # float64, s
    t_end: np.ndarray  # float64, s
    meter: np.ndarray  # int64 meter index
    seq: np.ndarray  # int64 transmission number of that meter (0, 1, 2 ...)

    def __len__(self) -> int:
        return len(self.t_start)


class _Sender:
    """The send-time recurrence of every meter, advanced chunk by chunk in time.

    Each meter's times are the ones :func:`iter_send_times` gives (same draws, same float
    operations in the same order). With ``hours``, the telegrams per meter and hour are
    counted in :attr:`sent` (``(hours, meters)``; a chunk's telegrams are sorted by start, so
    each hour is one slice of them and one ``bincount``); :meth:`air_s` turns the counts into
    airtime sums. :attr:`last_step`: per telegram of the last :meth:`until`, the step of the
    recurrence that made it (0 = each meter's first telegram in it; a step's meters are
    distinct)."""

    def __init__(self, setup: RadioSetup, duration_s: float, hours: int = 0) -> None:
        n = len(setup.meters)
        shortest = setup.interval * (1.0 - setup.jitter)
        if n and np.any(shortest <= 0):
            raise ValueError("every meter needs interval_s > 0 and jitter < 1")
        self.setup, self.duration_s = setup, float(duration_s)
        # the meter half of each jitter draw's hash, once per meter
        self.jit_inner = counter_inner(stream_key(setup.seed, "radio/jitter"), np.arange(n))
        off_key = stream_key(setup.seed, "radio/offset")
        self.next_t = counter_uniform(off_key, np.arange(n, dtype=np.uint64), 0) * setup.interval
        self.next_k = np.zeros(n, dtype=np.int64)
        # one interval and jitter for all (a city): scalars, the same float operations
        same = n > 0 and bool(np.all(setup.interval == setup.interval[0]))
        same = same and bool(np.all(setup.jitter == setup.jitter[0]))
        self.scalar = (float(setup.interval[0]), float(setup.jitter[0])) if same else None
        self.hours = int(hours)
        self.sent = np.zeros((self.hours, n), dtype=np.int32)
        # compact-frame meters' telegrams differ in time on air: summed one by one (a meter
        # sends at most once per step, so the indexed add is exact and in start order)
        compact = self.hours and setup.compact_airtime is not None
        self.air = np.zeros(n * self.hours) if compact else None

    def air_s(self) -> np.ndarray:
        """Airtime (s) per meter and hour, ``(meters, hours)``: each meter-hour's times on air
        added one by one from 0.0, as a one-shot ``np.bincount`` with weights over the sorted
        schedule adds them (a meter's telegrams all have its airtime: the same sums). Setups with
        compact-frame meters sum each telegram's own time on air as it is sent."""
        if self.air is not None:
            return np.ascontiguousarray(self.air.reshape(self.hours, -1).T)
        airtime = self.setup.airtime
        sent = self.sent.T  # (meters, hours) view
        top = int(sent.max(initial=0))
        values, kind = np.unique(airtime, return_inverse=True)
        if values.size * (top + 1) <= sent.size:  # few airtimes: a table of the sums
            table = np.zeros((values.size, top + 1))
            for k in range(1, top + 1):
                table[:, k] = table[:, k - 1] + values
            return table[kind[:, None], sent]
        air = np.zeros(sent.shape)
        for k in range(1, top + 1):
            np.add(air, airtime[:, None], out=air, where=sent >= k)
        return air

    def until(self, end_s: float) -> Transmissions:
        """Every transmission not given yet that starts before ``min(end_s, duration)``."""
        end_s = min(float(end_s), self.duration_s)
        s = self.setup
        t_parts, m_parts, k_parts, s_parts = [], [], [], []
        idx = np.nonzero(self.next_t < end_s)[0]
        while idx.size:
            t, k = self.next_t[idx], self.next_k[idx]
            t_parts.append(t)
            m_parts.append(idx)
            k_parts.append(k)
            s_parts.append(np.full(idx.size, len(s_parts), dtype=np.int64))
            if self.air is not None:  # compact meters: each telegram's own time on air
                hour = np.minimum(floor_index(t, OBSERVATION_S), self.hours - 1)
                self.air[hour * len(s.airtime) + idx] += s.airtime_of(idx, k)
            u = uniform_from_inner(self.jit_inner[idx], k)
            interval, jitter = self.scalar or (s.interval[idx], s.jitter[idx])
            t = t + interval * (1.0 + jitter * (2.0 * u - 1.0))
            self.next_t[idx] = t
            self.next_k[idx] = k + 1
            idx = idx[t < end_s]  # only meters that just sent can still send before the end
        if not t_parts:
            self.last_step = np.zeros(0, dtype=np.int64)
            return _no_transmissions()
        t = np.concatenate(t_parts)
        m = np.concatenate(m_parts).astype(np.int64)
        k = np.concatenate(k_parts)
        order = _time_order(t)
        if order is None:  # a tie (or nearly): time, then meter index decides
            order = np.lexsort((m, t))
        ts = t[order]
        m, k = m[order], k[order]
        self.last_step = np.concatenate(s_parts)[order]
        if self.hours and self.air is None:
            self._count(ts, m)
        return Transmissions(ts, ts + s.airtime_of(m, k), m, k)

    def _count(self, ts: np.ndarray, m: np.ndarray) -> None:
        """Add telegrams (start times ``ts`` ascending, meters ``m``) to :attr:`sent`, each in
        the hour it starts in (the last hour takes any later start)."""
        n = self.sent.shape[1]
        first = min(self.hours - 1, int(ts[0] // OBSERVATION_S))
        last = min(self.hours - 1, int(ts[-1] // OBSERVATION_S))
        # hour h starts at the exact float h * OBSERVATION_S: a comparison is the floor
        cuts = np.searchsorted(ts, np.arange(first + 1, last + 1) * OBSERVATION_S, side="left")
        bounds = [0, *cuts.tolist(), len(ts)]
        for h, a, b in zip(range(first, last + 1), bounds[:-1], bounds[1:], strict=True):
            if b > a:
                self.sent[h] += np.bincount(m[a:b], minlength=n)


def _time_order(t: np.ndarray) -> np.ndarray | None:
    """``np.argsort(t)`` of non-negative float64 times with no two equal, by one sort of
    packed uint64 keys (a non-negative double's bit pattern orders like its value; the key
    keeps as many high bits of the pattern as fit beside the position). ``None`` when two
    keys coincide: a tie, or two times too close for the key (the caller sorts exactly)."""
    n = len(t)
    pos_bits = max(1, (n - 1).bit_length())
    bits = np.ascontiguousarray(t, dtype=np.float64).view(np.uint64)
    lo = int(bits.min())
    shift = max(0, (int(bits.max()) - lo).bit_length() + pos_bits - 64)
    key = bits - np.uint64(lo)
    if shift:
        key >>= np.uint64(shift)
    key <<= np.uint64(pos_bits)
    key |= np.arange(n, dtype=np.uint64)
    key.sort()
    coarse = key >> np.uint64(pos_bits)
    if n > 1 and np.any(coarse[1:] == coarse[:-1]):
        return None
    key &= np.uint64((1 << pos_bits) - 1)
    return key.view(np.int64)


def _no_transmissions() -> Transmissions:
    empty = np.zeros(0)
    return Transmissions(empty, empty, empty.astype(np.int64), empty.astype(np.int64))


def _chunk_s(setup: RadioSetup, duration_s: float, transmissions: int) -> float:
    """Chunk length (s) with about ``transmissions`` telegrams, cut down to a whole number of
    mean send intervals when it spans one or more: then nearly every meter sends the same
    number of telegrams in a chunk, and :func:`_decide` expands them in whole-table passes."""
    rate = float(np.sum(1.0 / setup.interval)) if len(setup.interval) else 0.0
    if rate == 0:
        return duration_s
    chunk = transmissions / rate
    interval = len(setup.interval) / rate  # a meter's mean time between telegrams
    if chunk >= interval:
        chunk = math.floor(chunk / interval) * interval
    return max(chunk, 1e-3)


def schedule(setup: RadioSetup, duration_s: float) -> Transmissions:
    """All transmissions in ``[0, duration_s)`` in one array set (small runs and tests;
    :func:`run_kernel` never holds the whole schedule)."""
    return _Sender(setup, duration_s).until(duration_s)


_TX_FIELDS = ("t_start", "t_end", "meter", "seq")


@dataclass
class Receptions:
    """Received telegrams and collision losses, each in (start time, receiver) order.

    One entry per reception: ``meter`` (index), ``seq`` (its transmission number),
    ``t_start`` (s), ``receiver`` (index), ``rssi_dbm``. ``lost_*``: telegrams that cleared
    the sensitivity of a receiver listening to their mode but were destroyed by an
    overlapping telegram.
    """

    meter: np.ndarray
    seq: np.ndarray
    t_start: np.ndarray
    receiver: np.ndarray
    rssi_dbm: np.ndarray
    lost_meter: np.ndarray
    lost_seq: np.ndarray
    lost_receiver: np.ndarray

    def __len__(self) -> int:
        return len(self.meter)


@dataclass
class KernelRun:
    """Outcome of :func:`run_kernel`: telegrams sent, receptions, and the duty cycle
    (fraction) per meter and hour as an ``(n_meters, hours)`` array."""

    transmissions: int
    receptions: Receptions
    duty_cycle: np.ndarray


def interference_dbm(total_mw: np.ndarray) -> np.ndarray:
    """Power sum (mW) as dBm; -inf for no interference."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(total_mw)


def _overlaps(
    g: np.ndarray, s: np.ndarray, e: np.ndarray, p: np.ndarray, want_sum: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Packets sorted by group ``g`` (receiver, frequency), then start ``s`` (ends ``e``,
    powers ``p`` in dBm): whether each overlaps another of its group, the strongest
    overlapping power (dBm, -inf when none) and, with ``want_sum``, the power sum of all
    overlapping packets (mW, 0 when none; forward partners first, then backward ones, each
    nearest first: the summation order is part of the result)."""
    n = len(s)
    strongest = np.full(n, -np.inf)
    total_mw = np.zeros(n)
    overlapped = np.zeros(n, dtype=bool)
    if n < 2:
        return overlapped, strongest, total_mw
    p_mw = np.power(10.0, p / 10.0) if want_sum else None
    same = g[1:] == g[:-1]  # neighbours in one group (the first round of both scans)

    def mark(a: np.ndarray, b: np.ndarray) -> None:
        # packets ``a`` overlap partners ``b``; indices in ``a`` are distinct within a
        # round, so a plain fancy-index update is exact
        overlapped[a] = True
        strongest[a] = np.maximum(strongest[a], p[b])
        if want_sum:
            total_mw[a] += p_mw[b]

    # forward: later starts of the group overlap while they begin before this one ends
    alive = np.nonzero(same & (s[1:] < e[:-1]))[0]  # round k = 1 on slices, no gathers
    j = alive + 1
    overlapped[alive] = True
    strongest[alive] = p[j]
    if want_sum:
        total_mw[alive] = p_mw[j]
    k = 2
    while alive.size:
        alive = alive[alive + k < n]
        j = alive + k
        hit = (g[j] == g[alive]) & (s[j] < e[alive])
        alive, j = alive[hit], j[hit]
        mark(alive, j)
        k += 1
    # backward: earlier starts can only overlap if they began less than the longest airtime ago
    longest = float(np.max(e - s))
    alive = np.nonzero(same & (s[:-1] > s[1:] - longest))[0] + 1  # round k = 1 on slices
    j = alive - 1
    hit = e[j] > s[alive]
    mark(alive[hit], j[hit])
    k = 2
    while alive.size:
        alive = alive[alive >= k]
        j = alive - k
        near = (g[j] == g[alive]) & (s[j] > s[alive] - longest)
        alive, j = alive[near], j[near]
        hit = e[j] > s[alive]
        mark(alive[hit], j[hit])
        k += 1
    return overlapped, strongest, total_mw


class _Links:
    """The audible (finite mean RSSI) links, meter-major (CSR), with receiver tables."""

    def __init__(self, setup: RadioSetup) -> None:
        rcv = setup.receivers
        meter, receiver = np.nonzero(np.isfinite(setup.mean_rssi))  # meter-major, r ascending
        self.count = np.bincount(meter, minlength=len(setup.meters)).astype(np.int64)
        self.first = np.concatenate([[0], np.cumsum(self.count)[:-1]]).astype(np.int64)
        self.receiver = receiver.astype(np.int64)
        self.meter = meter.astype(np.int64)
        self.mean = setup.mean_rssi[meter, receiver]
        # per link: its (receiver, frequency) group, receiver * 2 + frequency channel
        self.group = self.receiver * 2 + setup.freq[self.meter]
        noise = np.array([r.noise_floor_dbm for r in rcv], dtype=float)
        self.draws = FadingDraws(setup.seed, len(setup.meters), setup.channel.fading_sigma_db)
        self.noise_link = noise[receiver]  # per link: its receiver's noise floor (dBm)
        self.min_bits = self.draws.radius_bits_below(self.noise_link - self.mean)
        self.receiver_term = FadingDraws.receiver_term(self.receiver)
        self.h_link = self.draws.h_meter[meter]  # the per-meter half of the hash, per link
        # per link: median below the floor, so a packet with a negative fading stays below
        self.below = self.mean < self.noise_link
        n_modes = len(MODES)
        self.sens = np.array([[r.sensitivity_dbm[m] for m in MODES] for r in rcv]).reshape(-1)
        self.hears = np.array([[r.hears(m) for m in MODES] for r in rcv], bool).reshape(-1)
        self.n_modes = n_modes
        self.capture = np.array([np.nan if r.capture_db is None else r.capture_db for r in rcv])
        self.summed = np.array([r.interference == "sum" for r in rcv], dtype=bool)
        self.any_sum = bool(np.any(self.summed & ~np.isnan(self.capture)))


#: Telegrams per block of the packet expansion (keeps its arrays in the CPU cache).
_BLOCK = 8192


def _sorted_keys(key: np.ndarray, key_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative ints ``key`` (< ``key_max``) sorted, and the stable order that sorts them:
    key and position packed in one uint64 and sorted by value (much faster than an argsort
    of the same length); an argsort where the two do not fit in 64 bits."""
    n = len(key)
    pos_bits = max(1, (n - 1).bit_length())
    if max(1, int(key_max)).bit_length() + pos_bits > 64:
        order = np.argsort(key, kind="stable")
        return np.asarray(key, dtype=np.int64)[order], order
    packed = np.asarray(key, dtype=np.uint64) << np.uint64(pos_bits)
    packed |= np.arange(n, dtype=np.uint64)
    packed.sort()
    order = (packed & np.uint64((1 << pos_bits) - 1)).view(np.int64)
    packed >>= np.uint64(pos_bits)
    return packed.view(np.int64), order


def _stable_order(key: np.ndarray, key_max: int) -> np.ndarray:
    """Stable argsort of non-negative ints ``key`` (< ``key_max``), by :func:`_sorted_keys`."""
    return _sorted_keys(key, key_max)[1]


def _live(
    links: _Links,
    pos: np.ndarray,
    link: np.ndarray,
    bits: np.ndarray,
    h_meter: np.ndarray,
    term: np.ndarray,
    out: list,
    shift: int,
) -> None:
    """Of packets (telegram position ``pos``, ``link``, radius ``bits``, per-meter hash half
    ``h_meter`` and ``seq_term + receiver_term``, overwritten) those whose RSSI reaches their
    receiver's noise floor: appends ``(group << shift | telegram position, RSSI dBm)`` with
    the link's (receiver, frequency) group. One block at a time, so its temporaries stay in
    the CPU cache."""
    draws = links.draws
    angle = draws.angle_bits(h_meter, term)
    # below the floor on average and a negative fading: below the floor, no RSSI needed
    need = np.nonzero(~(links.below[link] & draws.cosine_negative(angle)))[0]
    link = link[need]
    p = links.mean[link] + draws.fading_from_bits(bits[need], angle[need])
    live = np.nonzero(p >= links.noise_link[link])[0]
    key = links.group[link[live]] << shift
    key |= pos[need[live]]
    out.append((key, p[live]))


def _packets(links: _Links, tx: Transmissions, pos: np.ndarray, out: list, shift: int) -> None:
    """Packets (telegram, audible link) of the telegrams at ``pos`` that reach the noise
    floor: appends ``(group << shift | telegram position, RSSI dBm)`` (:func:`_live`)."""
    m = tx.meter[pos]
    cnt = links.count[m]
    n_e = int(cnt.sum())
    if n_e == 0:
        return
    offsets = np.cumsum(cnt) - cnt
    link = np.repeat(links.first[m] - offsets, cnt)
    link += np.arange(n_e)
    draws = links.draws
    h = np.repeat(draws.h_meter[m], cnt)
    seq = np.repeat(FadingDraws.seq_term(tx.seq[pos]), cnt)
    term = links.receiver_term[link]
    term += seq
    bits = draws.radius_bits_of(h, term, out=seq)
    maybe = np.nonzero(bits >= links.min_bits[link])[0]
    at = np.repeat(pos, cnt)[maybe]
    _live(links, at, link[maybe], bits[maybe], h[maybe], term[maybe], out, shift)


#: Links per block of the all-links pass (keeps its arrays in the CPU cache).
_LINK_BLOCK = 1 << 15


def _packets_all_links(
    links: _Links, tx: Transmissions, pos: np.ndarray, out: list, shift: int
) -> None:
    """:func:`_packets` for telegrams of distinct meters covering most meters: one pass over
    the whole link table (contiguous, no expansion), meters without a telegram dropped."""
    n_m = len(links.count)
    pos_of = np.full(n_m, -1, dtype=np.int64)
    pos_of[tx.meter[pos]] = pos
    seq_term = np.zeros(n_m, dtype=np.uint64)
    seq_term[tx.meter[pos]] = FadingDraws.seq_term(tx.seq[pos])
    everyone = len(pos) == n_m
    draws = links.draws
    for a in range(0, len(links.meter), _LINK_BLOCK):
        b = a + _LINK_BLOCK
        seq = seq_term[links.meter[a:b]]
        term = seq + links.receiver_term[a:b]
        bits = draws.radius_bits_of(links.h_link[a:b], term, out=seq)
        maybe = np.nonzero(bits >= links.min_bits[a:b])[0]
        at = pos_of[links.meter[a:b][maybe]]
        if not everyone:  # a meter without a telegram here: its links carry no packet
            sent = at >= 0
            maybe, at = maybe[sent], at[sent]
        h = links.h_link[a:b][maybe]
        _live(links, at, maybe + a, bits[maybe], h, term[maybe], out, shift)


def _decide(
    setup: RadioSetup,
    links: _Links,
    tx: Transmissions,
    step: np.ndarray,
    i0: int,
    i1: int,
    out: dict,
) -> None:
    """Receptions and losses of the telegrams ``tx[i0:i1]``; ``tx`` (sorted by start) holds
    every telegram that can overlap them, ``step`` the :attr:`_Sender.last_step` of each
    (-1: from an earlier call). Appends arrays to the lists in ``out``."""
    n = len(tx)
    n_m = len(setup.meters)
    parts: list = []
    tx_bits = max(1, n.bit_length())  # packet keys: group << tx_bits | telegram position
    k = 0
    while True:  # one step's telegrams (distinct meters), while that is most of the city
        sel = np.nonzero(step == k)[0]
        if 2 * sel.size < n_m or sel.size == 0:
            break
        _packets_all_links(links, tx, sel, parts, tx_bits)
        k += 1
    rest = np.nonzero((step >= k) | (step < 0))[0] if k else np.arange(n)
    # expand in meter order: the link tables are then read front to back
    rest = rest[_stable_order(tx.meter[rest], n_m)]
    for a in range(0, len(rest), _BLOCK):
        _packets(links, tx, rest[a : a + _BLOCK], parts, tx_bits)
    if not parts:
        return
    # (receiver, frequency) groups, start order inside each: one sort of packed keys, which
    # are unique (one packet per telegram and receiver) and give group and telegram back
    key, p = (np.concatenate(x) for x in zip(*parts, strict=True))
    key, order = _sorted_keys(key, 2 * len(setup.receivers) << tx_bits)
    group, pkt_tx, p = key >> tx_bits, key & ((1 << tx_bits) - 1), p[order]
    r = group >> 1
    pm = tx.meter[pkt_tx]
    overlapped, strongest, total = _overlaps(
        group, tx.t_start[pkt_tx], tx.t_end[pkt_tx], p, links.any_sum
    )
    mode_at = r * links.n_modes + setup.mode[pm]
    audible = links.hears[mode_at] & (p >= links.sens[mode_at])
    cap = links.capture[r]
    with np.errstate(invalid="ignore"):
        clear = np.where(np.isnan(cap), ~overlapped, p - strongest >= cap)
        if links.any_sum:
            summed = links.summed[r] & ~np.isnan(cap)
            clear[summed] = p[summed] - interference_dbm(total[summed]) >= cap[summed]
    mine = (pkt_tx >= i0) & (pkt_tx < i1) & audible
    n_r = len(setup.receivers)
    for prefix, keep in (("", mine & clear), ("lost_", mine & ~clear)):
        sel = np.nonzero(keep)[0]
        sel = sel[_stable_order(pkt_tx[sel] * n_r + r[sel], n * n_r)]  # (start, receiver)
        t_i = pkt_tx[sel]
        out[prefix + "meter"].append(tx.meter[t_i])
        out[prefix + "seq"].append(tx.seq[t_i])
        out[prefix + "receiver"].append(r[sel])
        if not prefix:
            out["t_start"].append(tx.t_start[t_i])
            out["rssi_dbm"].append(p[sel])


def _slice(tx: Transmissions, a: int, b: int) -> Transmissions:
    return Transmissions(tx.t_start[a:b], tx.t_end[a:b], tx.meter[a:b], tx.seq[a:b])


def _join(a: Transmissions, b: Transmissions) -> Transmissions:
    return Transmissions(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in _TX_FIELDS))


def sends_fragments(meters: Sequence[RadioMeter]) -> bool:
    """Whether any of ``meters`` (a list or :class:`MeterColumns`) sends AFL fragments."""
    if isinstance(meters, MeterColumns):
        return bool(np.any(meters.fragment_size > 0))
    return any(getattr(m, "fragment_size", None) is not None for m in meters)


def run_kernel(
    setup: RadioSetup, duration_s: float, *, chunk_transmissions: int = CHUNK_TRANSMISSIONS
) -> KernelRun:
    """Every transmission in ``[0, duration_s)`` and its reception at every receiver, by the
    reception rule of :mod:`simulator.wmbus.receiver` (each receiver's ``capture_db`` and
    ``interference`` rule), in time chunks of about ``chunk_transmissions`` telegrams (see
    the module docstring; the chunk size changes memory and speed, never the result).

    Raises :class:`FragmentingMetersError` for meters with ``fragment_size`` (AFL fragments
    are separate transmissions only in the event model, :mod:`simulator.wmbus.radio_world`)."""
    if sends_fragments(setup.meters):
        raise FragmentingMetersError(
            "the radio kernel sends one transmission per telegram; meters with fragment_size "
            '(AFL fragments) need the event model (engine = "event")'
        )
    duration_s = float(duration_s)
    n_m = len(setup.meters)
    hours = max(1, int(math.ceil(duration_s / OBSERVATION_S)))
    links = _Links(setup)
    sender = _Sender(setup, duration_s, hours)
    # a telegram's partners start less than the longest time on air away (slack: rounding)
    longest = float(np.max(setup.airtime)) if n_m else 0.0
    margin = 1.001 * longest + 1e-6
    chunk = _chunk_s(setup, duration_s, chunk_transmissions)
    fields = ("meter", "seq", "t_start", "receiver", "rssi_dbm")
    out: dict[str, list] = {f: [] for f in fields}
    out.update({f"lost_{f}": [] for f in ("meter", "seq", "receiver")})
    sent = 0
    buf = _no_transmissions()
    step = np.zeros(0, dtype=np.int64)  # per buffered telegram: its until() step, -1 = older
    decided_to = -math.inf  # telegrams starting before this are decided
    end = 0.0
    while end < duration_s:
        end = min(duration_s, end + chunk)
        new = sender.until(end)
        sent += len(new)
        step = np.concatenate([np.full(len(buf), -1), sender.last_step])
        buf = _join(buf, new)
        upto = math.inf if end >= duration_s else end - margin
        if upto <= decided_to:
            continue
        i0, i1 = np.searchsorted(buf.t_start, [decided_to, upto], side="left")
        c1 = int(np.searchsorted(buf.t_start, upto + margin, side="left"))
        _decide(setup, links, _slice(buf, 0, c1), step[:c1], int(i0), int(i1), out)
        decided_to = upto
        cut = int(np.searchsorted(buf.t_start, upto - margin, side="left"))
        buf, step = _slice(buf, cut, len(buf)), step[cut:]

    def cat(name: str, dtype) -> np.ndarray:
        parts = out[name]
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    rec = Receptions(
        cat("meter", np.int64),
        cat("seq", np.int64),
        cat("t_start", float),
        cat("receiver", np.int64),
        cat("rssi_dbm", float),
        cat("lost_meter", np.int64),
        cat("lost_seq", np.int64),
        cat("lost_receiver", np.int64),
    )
    duty = sender.air_s()
    duty /= OBSERVATION_S
    return KernelRun(sent, rec, duty)


def duty_cycle_violations(setup: RadioSetup, duty_cycle: np.ndarray) -> dict:
    """Meter-hours over the sub-band duty-cycle limit, from an ``(n_meters, hours)`` duty
    cycle array (:attr:`KernelRun.duty_cycle`, or ``dutycycle.hourly_duty_cycle`` of a
    :func:`schedule`):
    ``{"meter_hours": n, "meters": [idx], "worst": fraction}``."""
    limits = np.array([sub_band(m).duty_cycle for m in MODES])[setup.mode]
    over = duty_cycle > limits[:, None]
    return {
        "meter_hours": int(over.sum()),
        "meters": np.nonzero(over.any(axis=1))[0].tolist(),
        "worst": float(duty_cycle.max()) if duty_cycle.size else 0.0,
    }
