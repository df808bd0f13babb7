"""Vectorised (NumPy) radio kernel: schedules, link budgets and receptions for whole cities.

The kernel computes exactly what the event model (:mod:`simulator.wmbus.radio_world`) computes,
without one Python step per telegram: every transmission time, every RSSI and every
collision decision is an array operation. ``tests/test_wmbus_radio_kernel.py`` runs both on the
same small scenario and seed and checks that they give the same receptions.

Random numbers. The two models must draw the same numbers even though they draw them in a
different order (the kernel all at once, the event model one telegram at a time). So every
random quantity is a *counter-based* draw: a SplitMix64 hash of a stream key (derived from the
world seed and a stream name, as :meth:`World.rng` derives its streams) and the indices of the
thing drawn for (meter, transmission number, receiver). Streams:

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
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.wmbus.channel import Channel
from simulator.wmbus.dutycycle import MODE_FREQUENCY_MHZ, hourly_duty_cycle, sub_band
from simulator.wmbus.meter import MODES, RadioMeter
from simulator.wmbus.receiver import Receiver

#: Links more than this many fading sigmas below the noise floor are silent.
CUTOFF_SIGMAS = 5.0
#: Receivers per scenario the fading counter can address (receiver index < this).
MAX_RECEIVERS = 1024

_MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO53 = float(2**53)


def stream_key(seed: int, name: str) -> int:
    """64-bit key of the counter stream ``name`` under ``seed`` (SHA-256, like World.rng)."""
    return int.from_bytes(hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()[:8], "big")


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrap-around arithmetic intended)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def counter_uniform(key: int, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """U[0, 1) draws, one per element of broadcast ``(a, b)`` (non-negative ints < 2**32)."""
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = _mix(_mix(np.uint64(key) ^ a) ^ (b * _M2 + np.uint64(0x632BE59BD9B4E019)))
    return (h >> np.uint64(11)).astype(np.float64) / _TWO53


def counter_normal(key: int, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """N(0, 1) draws (Box-Muller on two counter uniforms); ``b`` must be < 2**31."""
    b = np.asarray(b, dtype=np.uint64) * np.uint64(2)
    u1 = counter_uniform(key, a, b)
    u2 = counter_uniform(key, a, b + np.uint64(1))
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2)


@dataclass
class RadioSetup:
    """Meters and receivers as arrays (index = position in the input lists)."""

    meters: list[RadioMeter]
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

        ``airtime`` (s per meter) defaults to each meter's :meth:`RadioMeter.airtime_s`.
        """
        if len(receivers) > MAX_RECEIVERS:
            raise ValueError(f"at most {MAX_RECEIVERS} receivers (got {len(receivers)})")
        meters = list(meters)
        receivers = list(receivers)
        mode_index = {m: i for i, m in enumerate(MODES)}
        x = np.array([m.x for m in meters], dtype=float)
        y = np.array([m.y for m in meters], dtype=float)
        indoor = np.array([m.indoor for m in meters], dtype=bool)
        floor = np.array([m.floor for m in meters], dtype=float)
        tx_power = np.array([m.tx_power_dbm for m in meters], dtype=float)
        mode = np.array([mode_index[m.mode] for m in meters], dtype=np.int8)
        freq = np.array([0 if MODE_FREQUENCY_MHZ[m.mode] < 868.6 else 1 for m in meters], np.int8)
        if airtime is None:
            airtime = np.array([m.airtime_s() for m in meters], dtype=float)
        rx = np.array([r.x for r in receivers], dtype=float)
        ry = np.array([r.y for r in receivers], dtype=float)
        distance = np.hypot(x[:, None] - rx[None, :], y[:, None] - ry[None, :])
        shadow_key = stream_key(seed, "radio/shadow")
        idx_m = np.arange(len(meters), dtype=np.uint64)[:, None]
        idx_r = np.arange(len(receivers), dtype=np.uint64)[None, :]
        shadow = channel.model.sigma_db * counter_normal(shadow_key, idx_m, idx_r)
        mean = channel.mean_rssi_dbm(
            tx_power[:, None], distance, indoor[:, None], floor[:, None], shadow
        )
        floors = np.array([r.noise_floor_dbm for r in receivers], dtype=float)[None, :]
        mean = np.where(mean >= floors - CUTOFF_SIGMAS * channel.fading_sigma_db, mean, -np.inf)
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
            np.array([m.interval_s for m in meters], dtype=float),
            np.array([m.jitter for m in meters], dtype=float),
            np.asarray(airtime, dtype=float),
            mean,
            distance,
        )

    def fading_db(self, meter: np.ndarray, seq: np.ndarray, receiver: np.ndarray) -> np.ndarray:
        """Per-packet fading (dB) of transmission ``seq`` of ``meter`` at ``receiver``."""
        key = stream_key(self.seed, "radio/fading")
        b = np.asarray(seq, dtype=np.uint64) * np.uint64(MAX_RECEIVERS) + np.asarray(
            receiver, dtype=np.uint64
        )
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
    """Every transmission of a run, sorted by start time (s)."""

    t_start: np.ndarray  # float64, s
    t_end: np.ndarray  # float64, s
    meter: np.ndarray  # int64 meter index
    seq: np.ndarray  # int64 transmission number of that meter (0, 1, 2 ...)

    def __len__(self) -> int:
        return len(self.t_start)


def schedule(setup: RadioSetup, duration_s: float) -> Transmissions:
    """All transmissions in ``[0, duration_s)``, vectorised (same numbers as :func:`send_times`)."""
    n = len(setup.meters)
    off_key = stream_key(setup.seed, "radio/offset")
    jit_key = stream_key(setup.seed, "radio/jitter")
    shortest = setup.interval * (1.0 - setup.jitter)
    if n and np.any(shortest <= 0):
        raise ValueError("every meter needs interval_s > 0 and jitter < 1")
    counts = np.ceil(duration_s / np.maximum(shortest, 1e-9)).astype(np.int64) + 1
    starts, meters, seqs = [], [], []
    for k_max in np.unique(counts):
        group = np.nonzero(counts == k_max)[0]
        g = group.astype(np.uint64)[:, None]
        t0 = counter_uniform(off_key, g[:, 0], 0) * setup.interval[group]
        k = np.arange(k_max - 1, dtype=np.uint64)[None, :]
        u = counter_uniform(jit_key, g, k)
        d = setup.interval[group][:, None] * (1.0 + setup.jitter[group][:, None] * (2.0 * u - 1.0))
        t = np.cumsum(np.concatenate([t0[:, None], d], axis=1), axis=1)
        keep = t < duration_s
        rows, cols = np.nonzero(keep)
        starts.append(t[rows, cols])
        meters.append(group[rows])
        seqs.append(cols)
    if not starts:
        empty = np.zeros(0)
        return Transmissions(empty, empty, empty.astype(np.int64), empty.astype(np.int64))
    t_start = np.concatenate(starts)
    meter = np.concatenate(meters).astype(np.int64)
    seq = np.concatenate(seqs).astype(np.int64)
    order = np.argsort(t_start, kind="stable")  # ties (measure zero) keep a fixed order
    t_start, meter, seq = t_start[order], meter[order], seq[order]
    return Transmissions(t_start, t_start + setup.airtime[meter], meter, seq)


@dataclass
class Receptions:
    """Outcome of a run: received telegrams and collision losses.

    ``tx`` indexes :class:`Transmissions`; ``rssi_dbm`` is the RSSI of each reception.
    ``lost_tx``/``lost_receiver`` are telegrams that cleared the sensitivity of a receiver
    listening to their mode but were destroyed by an overlapping telegram.
    """

    tx: np.ndarray
    receiver: np.ndarray
    rssi_dbm: np.ndarray
    lost_tx: np.ndarray
    lost_receiver: np.ndarray

    def __len__(self) -> int:
        return len(self.tx)


def _overlap_max(
    s: np.ndarray, e: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For telegrams sorted by start ``s`` (ends ``e``, powers ``p`` in dBm): whether each
    overlaps another, the strongest overlapping power (dBm, -inf when none) and the power sum
    of all overlapping telegrams (mW, 0 when none)."""
    n = len(s)
    strongest = np.full(n, -np.inf)
    total_mw = np.zeros(n)
    overlapped = np.zeros(n, dtype=bool)
    if n < 2:
        return overlapped, strongest, total_mw
    p_mw = np.power(10.0, p / 10.0)
    # forward: later starts overlap while they begin before this one ends (monotone in k)
    alive = np.arange(n - 1)
    k = 1
    while alive.size:
        j = alive + k
        ok = j < n
        alive, j = alive[ok], j[ok]
        hit = s[j] < e[alive]
        alive, j = alive[hit], j[hit]
        overlapped[alive] = True
        # indices in ``alive`` are distinct, so a plain fancy-index update is exact here
        strongest[alive] = np.maximum(strongest[alive], p[j])
        total_mw[alive] += p_mw[j]
        k += 1
    # backward: earlier starts can only overlap if they began less than the longest airtime ago
    longest = float(np.max(e - s))
    alive = np.arange(1, n)
    k = 1
    while alive.size:
        j = alive - k
        ok = j >= 0
        alive, j = alive[ok], j[ok]
        near = s[j] > s[alive] - longest
        alive, j = alive[near], j[near]
        hit = e[j] > s[alive]
        overlapped[alive[hit]] = True
        strongest[alive[hit]] = np.maximum(strongest[alive[hit]], p[j[hit]])
        total_mw[alive[hit]] += p_mw[j[hit]]
        k += 1
    return overlapped, strongest, total_mw


def interference_dbm(total_mw: np.ndarray) -> np.ndarray:
    """Power sum (mW) as dBm; -inf for no interference."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(total_mw)


def receive(setup: RadioSetup, tx: Transmissions) -> Receptions:
    """Apply the reception rule (:mod:`simulator.wmbus.receiver`, each receiver's
    ``capture_db`` and ``interference`` rule) to every transmission at every receiver;
    vectorised per receiver and frequency."""
    out_tx, out_rx, out_p, lost_tx, lost_rx = [], [], [], [], []
    # transmissions grouped by meter (CSR), so each receiver gathers only its audible meters'
    by_meter = np.argsort(tx.meter, kind="stable")
    first = np.searchsorted(tx.meter[by_meter], np.arange(len(setup.meters) + 1))
    for r, rcv in enumerate(setup.receivers):
        mean_r = setup.mean_rssi[:, r]
        audible_meters = np.nonzero(np.isfinite(mean_r))[0]
        counts = first[audible_meters + 1] - first[audible_meters]
        if counts.sum() == 0:
            continue
        starts = np.repeat(first[audible_meters] - np.cumsum(counts) + counts, counts)
        cand = np.sort(by_meter[starts + np.arange(counts.sum())])  # index order = time order
        m = tx.meter[cand]
        p = mean_r[m] + setup.fading_db(m, tx.seq[cand], np.full(cand.size, r))
        active = p >= rcv.noise_floor_dbm
        cand, m, p = cand[active], m[active], p[active]
        sens = np.array([rcv.sensitivity_dbm[md] for md in MODES])
        hears = np.array([rcv.hears(md) for md in MODES])
        for f in (0, 1):
            sel = setup.freq[m] == f
            if not np.any(sel):
                continue
            c, mm, pp = cand[sel], m[sel], p[sel]
            overlapped, strongest, total_mw = _overlap_max(tx.t_start[c], tx.t_end[c], pp)
            md = setup.mode[mm]
            audible = hears[md] & (pp >= sens[md])
            if rcv.capture_db is None:
                clear = ~overlapped
            elif rcv.interference == "sum":
                clear = pp - interference_dbm(total_mw) >= rcv.capture_db
            else:
                clear = pp - strongest >= rcv.capture_db
            got = audible & clear
            out_tx.append(c[got])
            out_rx.append(np.full(int(got.sum()), r, dtype=np.int64))
            out_p.append(pp[got])
            lost = audible & ~clear
            lost_tx.append(c[lost])
            lost_rx.append(np.full(int(lost.sum()), r, dtype=np.int64))

    def cat(parts: list[np.ndarray], dtype) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    t, rr, pp = cat(out_tx, np.int64), cat(out_rx, np.int64), cat(out_p, float)
    order = np.lexsort((rr, t))
    lt, lr = cat(lost_tx, np.int64), cat(lost_rx, np.int64)
    lorder = np.lexsort((lr, lt))
    return Receptions(t[order], rr[order], pp[order], lt[lorder], lr[lorder])


def duty_cycle_violations(setup: RadioSetup, tx: Transmissions, duration_s: float) -> dict:
    """Meter-hours over the sub-band duty-cycle limit: ``{"meter_hours": n, "meters": [idx]}``
    and the worst duty cycle (fraction) seen."""
    hours = max(1, int(math.ceil(duration_s / 3600.0)))
    dc = hourly_duty_cycle(tx.meter, tx.t_start, setup.airtime[tx.meter], len(setup.meters), hours)
    limits = np.array([sub_band(m).duty_cycle for m in MODES])[setup.mode]
    over = dc > limits[:, None]
    return {
        "meter_hours": int(over.sum()),
        "meters": np.nonzero(over.any(axis=1))[0].tolist(),
        "worst": float(dc.max()) if dc.size else 0.0,
    }


def run_kernel(setup: RadioSetup, duration_s: float) -> tuple[Transmissions, Receptions]:
    """Schedule and receive in one call: ``(transmissions, receptions)``."""
    tx = schedule(setup, duration_s)
    return tx, receive(setup, tx)
