"""Many radio meters as columns: a city's 100,000 meters without 100,000 objects up front.

:class:`MeterColumns` is a ``Sequence[RadioMeter]`` whose fields are NumPy arrays (one entry
per meter). The vectorised kernel and the statistics read the arrays; indexing builds the
:class:`~simulator.wmbus.meter.RadioMeter` of that position (kept for the next access), so
the event model and anything else that wants objects still gets them, equal field for field
to meters built one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from simulator.wmbus.meter import FRAGMENT_GAP_S, FULL_EVERY, MODES, RadioMeter


class MeterColumns(Sequence[RadioMeter]):
    """Meters as arrays of equal length ``n``: ``id`` (int), ``x``, ``y`` (m), ``mode``,
    ``manufacturer``, ``profile`` (str), ``indoor`` (bool), ``floor`` (int, 0 outdoors),
    ``security_mode`` (0, 5 or 7), ``ell_encryption`` and ``encrypted`` (bool; ``key(id)``
    gives the 16-byte key of an encrypted meter), ``frame`` (str, ``"full"``/``"compact"``;
    default all full), ``fragment_size`` (int bytes, 0 = whole telegrams; mode-7 S1/T1 meters
    sending AFL fragments; default all 0), and the scalars ``fragment_gap_s`` (s), ``tx_power_dbm`` (dBm), ``interval_s`` (s), ``jitter``
    (fraction), ``full_every`` (telegrams, compact meters) and ``seed`` shared by all.

    Every distinct (mode, profile, security) combination is checked once by building one
    :class:`RadioMeter` of it: raises ``ValueError`` as ``RadioMeter`` does (unknown mode or
    profile, ELL encryption outside C1).
    """

    def __init__(
        self,
        *,
        id: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        mode: np.ndarray,
        manufacturer: np.ndarray,
        profile: np.ndarray,
        indoor: np.ndarray,
        floor: np.ndarray,
        security_mode: np.ndarray,
        ell_encryption: np.ndarray,
        encrypted: np.ndarray,
        key: Callable[[int], bytes],
        tx_power_dbm: float,
        interval_s: float,
        jitter: float,
        seed: int,
        frame: np.ndarray | None = None,
        full_every: int = FULL_EVERY,
        fragment_size: np.ndarray | None = None,
        fragment_gap_s: float = FRAGMENT_GAP_S,
    ) -> None:
        self.id = np.asarray(id, dtype=np.int64)
        self.x = np.asarray(x, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.mode = np.asarray(mode, dtype=str)
        self.manufacturer = np.asarray(manufacturer, dtype=str)
        self.profile = np.asarray(profile, dtype=str)
        self.indoor = np.asarray(indoor, dtype=bool)
        self.floor = np.asarray(floor, dtype=np.int64)
        self.security_mode = np.asarray(security_mode, dtype=np.int64)
        self.ell_encryption = np.asarray(ell_encryption, dtype=bool)
        self.encrypted = np.asarray(encrypted, dtype=bool)
        self.key = key
        self.tx_power_dbm, self.interval_s = float(tx_power_dbm), float(interval_s)
        self.jitter, self.seed = float(jitter), int(seed)
        n = len(self.id)
        self.frame = np.asarray(["full"] * n if frame is None else frame, dtype=str)
        self.full_every = int(full_every)
        self.fragment_gap_s = float(fragment_gap_s)
        self.fragment_size = np.asarray(
            np.zeros(n) if fragment_size is None else fragment_size, dtype=np.int64
        )
        names = ("x", "y", "mode", "manufacturer", "profile", "indoor", "floor", "frame")
        for name in (*names, "fragment_size"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"meter column {name!r} has {len(getattr(self, name))} entries")
        self._built: dict[int, RadioMeter] = {}
        # one code per (mode, profile, security mode, ELL encryption, frame, fragment size):
        # airtime and checks
        kind = np.zeros(n, dtype=np.int64)
        cols = (self.mode, self.profile, self.security_mode, self.ell_encryption, self.frame)
        cols += (self.fragment_size,)
        for col in cols:
            names, code = np.unique(col, return_inverse=True)
            kind = kind * len(names) + code
        kinds, self._kind = np.unique(kind, return_inverse=True)
        self._first = np.zeros(len(kinds), dtype=np.int64)
        self._first[self._kind[::-1]] = np.arange(n)[::-1]  # first meter of each kind
        for i in self._first.tolist():
            self[i]

    def __len__(self) -> int:
        return len(self.id)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        meter = self._built.get(i)
        if meter is None:
            meter_id = int(self.id[i])
            meter = self._built[i] = RadioMeter(
                id=meter_id,
                x=float(self.x[i]),
                y=float(self.y[i]),
                mode=str(self.mode[i]),
                manufacturer=str(self.manufacturer[i]),
                profile=str(self.profile[i]),
                indoor=bool(self.indoor[i]),
                floor=int(self.floor[i]),
                tx_power_dbm=self.tx_power_dbm,
                interval_s=self.interval_s,
                jitter=self.jitter,
                security_mode=int(self.security_mode[i]),
                key=self.key(meter_id) if self.encrypted[i] else None,
                ell_encryption=bool(self.ell_encryption[i]),
                frame=str(self.frame[i]),
                full_every=self.full_every,
                fragment_size=int(self.fragment_size[i]) or None,
                fragment_gap_s=self.fragment_gap_s,
                seed=self.seed,
            )
        return meter

    def mode_index(self) -> np.ndarray:
        """Per meter: its mode's index in :data:`~simulator.wmbus.meter.MODES` (int8)."""
        codes = {m: k for k, m in enumerate(MODES)}
        names, inverse = np.unique(self.mode, return_inverse=True)
        return np.array([codes[str(m)] for m in names], dtype=np.int8)[inverse]

    def airtime_s(self, compact: bool = False) -> np.ndarray:
        """Per meter: time on air (s) of its telegrams (one PHY computation per kind); with
        ``compact``, of a compact meter's compact frames (full-frame meters: their frames)."""
        per_kind = np.array([self[i].airtime_s(compact) for i in self._first.tolist()], dtype=float)
        return per_kind[self._kind] if len(self) else np.zeros(0)
