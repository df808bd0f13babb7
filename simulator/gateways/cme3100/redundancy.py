"""Redundancy and reception ratio per meter (seed 003 §3.3-3.4).

§3.3: every meter should have a *redundancy factor* of at least 2, i.e. be within the
"effective range" of at least two receivers, where effective range means more than X %
reception of meter values at the selected resolution. §3.4: the effective range shrinks as the
resolution gets finer (>98 % every 15 min is harder than >98 % every 24 h).

All functions take one array entry per reception: ``meter`` (index), ``t`` (the telegram's
send time, s) and, where needed, ``receiver`` (index); the kernel's and the event model's
receptions both give them. A *window* is ``[k * window_s, (k + 1) * window_s)`` of world time;
only whole windows inside the run count.

- :func:`receivers_per_window`: distinct receivers that heard each meter in each window
  (:func:`receivers_per_window_hist`: the "how many receivers heard it per push window"
  histogram of it);
- :func:`reception_ratio`: fraction of windows in which at least one receiver (or each
  receiver separately) got a telegram of the meter;
- :func:`redundancy_factor`: per meter, the number of receivers whose own reception ratio at
  ``window_s`` is above ``threshold`` (§3.3's definition).
"""

from __future__ import annotations

import numpy as np

from simulator.core.numeric import floor_index


def distinct(keys) -> np.ndarray:
    """The distinct values of an int array, ascending (``np.unique`` without its hash table:
    a sort and a neighbour compare, several times faster on a city's million receptions)."""
    k = np.sort(np.asarray(keys, dtype=np.int64))
    if k.size < 2:
        return k
    first = np.empty(k.size, dtype=bool)
    first[0] = True
    np.not_equal(k[1:], k[:-1], out=first[1:])
    return k[first]


def _windows(duration_s: float, window_s: float) -> int:
    n = int(duration_s // window_s)
    if n < 1:
        raise ValueError(f"the run ({duration_s} s) is shorter than one window ({window_s} s)")
    return n


def _rx_windows(t, window_s, n_w):
    w = floor_index(np.asarray(t, dtype=float), window_s)  # = (t // window_s) as int
    return w, w < n_w


def receivers_per_window(
    meter, t, receiver, n_meters: int, n_receivers: int, window_s: float, duration_s: float
) -> np.ndarray:
    """``(n_meters, n_windows)`` int array: distinct receivers hearing the meter per window."""
    n_w = _windows(duration_s, window_s)
    w, ok = _rx_windows(t, window_s, n_w)
    m = np.asarray(meter, dtype=np.int64)[ok]
    r = np.asarray(receiver, dtype=np.int64)[ok]
    triples = distinct((m * n_w + w[ok]) * n_receivers + r)
    counts = np.bincount(triples // n_receivers, minlength=n_meters * n_w)
    return counts.reshape(n_meters, n_w)


def receivers_per_window_hist(
    meter, t, receiver, n_meters: int, n_receivers: int, window_s: float, duration_s: float
) -> np.ndarray:
    """``np.bincount(receivers_per_window(...).ravel())`` without the dense
    ``(n_meters, n_windows)`` array: meter-windows per number of receivers (index)."""
    n_w = _windows(duration_s, window_s)
    w, ok = _rx_windows(t, window_s, n_w)
    m = np.asarray(meter, dtype=np.int64)[ok]
    r = np.asarray(receiver, dtype=np.int64)[ok]
    pairs = distinct((m * n_w + w[ok]) * n_receivers + r) // n_receivers  # sorted
    starts = (
        np.flatnonzero(np.concatenate([[True], pairs[1:] != pairs[:-1]])) if pairs.size else pairs
    )
    hist = np.bincount(np.diff(np.append(starts, pairs.size)), minlength=1)
    hist[0] = n_meters * n_w - starts.size  # meter-windows nobody heard
    return hist


def reception_ratio(meter, t, n_meters: int, window_s: float, duration_s: float) -> np.ndarray:
    """Per meter: fraction of whole windows with at least one reception by any receiver."""
    n_w = _windows(duration_s, window_s)
    w, ok = _rx_windows(t, window_s, n_w)
    m = np.asarray(meter, dtype=np.int64)[ok]
    pairs = distinct(m * n_w + w[ok])
    return np.bincount(pairs // n_w, minlength=n_meters) / n_w


def per_receiver_ratio(
    meter, t, receiver, n_meters: int, n_receivers: int, window_s: float, duration_s: float
) -> np.ndarray:
    """``(n_meters, n_receivers)``: fraction of windows in which that receiver heard the meter."""
    n_w = _windows(duration_s, window_s)
    w, ok = _rx_windows(t, window_s, n_w)
    m = np.asarray(meter, dtype=np.int64)[ok]
    r = np.asarray(receiver, dtype=np.int64)[ok]
    triples = distinct((m * n_receivers + r) * n_w + w[ok])
    counts = np.bincount(triples // n_w, minlength=n_meters * n_receivers)
    return counts.reshape(n_meters, n_receivers) / n_w


def redundancy_factor(
    meter,
    t,
    receiver,
    n_meters: int,
    n_receivers: int,
    window_s: float,
    duration_s: float,
    threshold: float = 0.98,
) -> np.ndarray:
    """Per meter: receivers whose reception ratio at ``window_s`` exceeds ``threshold``
    (``(per_receiver_ratio(...) > threshold).sum(axis=1)``, from the heard (meter, receiver)
    pairs only: a city's pairs are mostly never heard)."""
    if threshold < 0:  # every pair counts, heard or not
        ratio = per_receiver_ratio(meter, t, receiver, n_meters, n_receivers, window_s, duration_s)
        return (ratio > threshold).sum(axis=1)
    n_w = _windows(duration_s, window_s)
    w, ok = _rx_windows(t, window_s, n_w)
    m = np.asarray(meter, dtype=np.int64)[ok]
    r = np.asarray(receiver, dtype=np.int64)[ok]
    pairs = distinct((m * n_receivers + r) * n_w + w[ok]) // n_w  # sorted (meter, receiver)
    if not pairs.size:
        return np.zeros(n_meters, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], pairs[1:] != pairs[:-1]]))
    windows = np.diff(np.append(starts, pairs.size))  # windows heard per (meter, receiver)
    good = pairs[starts][windows / n_w > threshold]
    return np.bincount(good // n_receivers, minlength=n_meters)


def ratio_by_distance(
    distance_m: np.ndarray, ratio: np.ndarray, bin_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean ``ratio`` of meters binned by ``distance_m`` (m): ``(bin_start_m, mean, count)``;
    empty bins are left out."""
    b = (np.asarray(distance_m) // bin_m).astype(np.int64)
    n = np.bincount(b)
    s = np.bincount(b, weights=np.asarray(ratio, dtype=float))
    keep = n > 0
    return np.nonzero(keep)[0] * bin_m, s[keep] / n[keep], n[keep]
