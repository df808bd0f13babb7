"""Addressed dispatch: which attached slaves a master frame can concern (EN 13757-2 §5,
PROTOCOL.md §2-3), so the bus offers a request to those few instead of every slave.

A slave reacts to a frame only when (see :class:`~simulator.mbus.slave.Slave`):

=======================================  ==================================================
frame                                    slaves it can concern
=======================================  ==================================================
not a valid calling frame                none (every slave stays silent, nothing changes)
A = 254/255 (broadcast)                  all
A = 253, SND_UD CI 52 (selection)        those the mask matches, and the selected ones (a
                                         selection deselects every slave it does not match)
A = 253, anything else (CI 56 too)       the selected ones
A = 0..252                               those with that primary address
=======================================  ==================================================

Every other slave would return ``None`` without any state change, random draw or trace
event, so leaving it out is exact. The index is kept per slave: secondary address (static,
sorted by its 16-hex text so a mask's fixed leading digits are one bisected range), primary
address and selection state (both refreshed after the slave heard a frame: only hearing
changes them). A listener without ``address``/``primary``/``selected`` is offered every
frame. Candidates come back in attach order, the order the bus always used.
"""

from __future__ import annotations

import bisect
from functools import lru_cache
from typing import Any

from simulator.mbus.errors import MBusError
from simulator.mbus.frames import (
    ADDR_BROADCAST_REPLY,
    ADDR_NETWORK,
    SND_UD,
    ControlFrame,
    LongFrame,
    ShortFrame,
    parse_frame,
)

CI_SELECT = 0x52


@lru_cache(maxsize=256)
def parse_request(data: bytes) -> Any:
    """The parsed frame, or ``None`` when it does not parse (frames are immutable)."""
    try:
        return parse_frame(data)
    except MBusError:
        return None


_NONE, _ALL, _PRIMARY, _SELECTED, _SELECT = range(5)


@lru_cache(maxsize=1024)
def _route(data: bytes) -> tuple[int, Any]:
    """Which index a frame is looked up in (module table): ``(kind, key)``."""
    frame = parse_request(data)
    if (
        frame is None
        or not isinstance(frame, ShortFrame | ControlFrame | LongFrame)
        or not frame.calling
    ):
        return _NONE, None
    if frame.a >= ADDR_BROADCAST_REPLY:
        return _ALL, None
    if frame.a != ADDR_NETWORK:
        return _PRIMARY, frame.a
    if frame.function == SND_UD and getattr(frame, "ci", None) == CI_SELECT:
        return _SELECT, bytes(getattr(frame, "data", b""))
    return _SELECTED, None


def _text(wire: bytes) -> str:
    # The libmbus 16-hex order of SecondaryMask.__str__, so masks and addresses sort alike.
    return (wire[:4][::-1].hex() + wire[4:].hex()).upper()


class AddressIndex:
    """Attached listeners indexed by primary address, secondary address and selection."""

    def __init__(self) -> None:
        self._order: dict[int, int] = {}  # id(listener) -> attach sequence number
        self._seq = 0
        self._all: dict[int, Any] = {}
        self._unindexed: dict[int, Any] = {}
        self._by_primary: dict[int, dict[int, Any]] = {}
        self._primary: dict[int, int] = {}
        self._selected: dict[int, Any] = {}
        self._texts: list[tuple[str, int]] = []  # sorted (address text, id)
        self._wire: dict[int, bytes] = {}
        self._masks: dict[bytes, dict[int, Any]] = {}  # CI 52 mask -> matching slaves

    def add(self, s: Any) -> None:
        k = id(s)
        self._order[k] = self._seq
        self._seq += 1
        self._all[k] = s
        self._masks.clear()
        wire = getattr(s, "_address_bytes", None)
        if wire is None or not hasattr(s, "primary") or not hasattr(s, "selected"):
            self._unindexed[k] = s
            return
        self._wire[k] = wire
        bisect.insort(self._texts, (_text(wire), k))
        self._primary[k] = s.primary
        self._by_primary.setdefault(s.primary, {})[k] = s
        if s.selected:
            self._selected[k] = s

    def remove(self, s: Any) -> None:
        k = id(s)
        self._all.pop(k, None)
        self._order.pop(k, None)
        self._masks.clear()
        if self._unindexed.pop(k, None) is not None:
            return
        self._texts.remove((_text(self._wire.pop(k)), k))
        self._by_primary[self._primary.pop(k)].pop(k, None)
        self._selected.pop(k, None)

    def refresh(self, s: Any) -> None:
        """Re-read the primary address and selection of ``s`` (after it heard a frame)."""
        k = id(s)
        if k in self._unindexed:
            return
        old = self._primary[k]
        if s.primary != old:
            self._by_primary[old].pop(k, None)
            self._by_primary.setdefault(s.primary, {})[k] = s
            self._primary[k] = s.primary
        if s.selected:
            self._selected[k] = s
        else:
            self._selected.pop(k, None)

    def candidates(self, data: bytes) -> list[Any]:
        """The listeners ``data`` can concern (module table), in attach order."""
        kind, key = _route(data)
        if kind == _ALL:
            return list(self._all.values())
        if kind == _PRIMARY:
            found = self._by_primary.get(key, {})
        elif kind == _SELECTED:
            found = self._selected
        elif kind == _SELECT:
            found = {**self._selected, **self.matching(key)}
        else:
            found = {}
        if self._unindexed:
            found = {**found, **self._unindexed}
        if len(found) <= 1:
            return list(found.values())
        order = self._order
        return [found[k] for k in sorted(found, key=order.__getitem__)]

    def selected(self) -> list[Any]:
        """The listeners selected now (by secondary address), in no particular order."""
        return list(self._selected.values())

    def matching(self, mask: bytes) -> dict[int, Any]:
        """Slaves a CI 52 mask selects (nibble F = any, in every field), by id; the secondary
        addresses never change while attached, so each mask is looked up once."""
        hit = self._masks.get(mask)
        if hit is None:
            hit = self._masks[mask] = self._match(mask)
        return hit

    def _match(self, mask: bytes) -> dict[int, Any]:
        if len(mask) != 8 or any(9 < n < 0xF for b in mask[:4] for n in (b >> 4, b & 0xF)):
            return {}  # not a mask (SecondaryMask refuses it): the slaves' parse fails too
        text = _text(mask)
        prefix = text[: len(text) - len(text.lstrip("0123456789ABCDE"))]
        lo = bisect.bisect_left(self._texts, (prefix,))
        out: dict[int, Any] = {}
        for t, k in self._texts[lo:]:
            if not t.startswith(prefix):
                break
            if _matches(mask, self._wire[k]):
                out[k] = self._all[k]
        return out


def _matches(mask: bytes, wire: bytes) -> bool:
    # SecondaryMask.matches_bytes without building a mask (an invalid one selects nobody:
    # the slave's own parse of it fails the same way).
    for i, m in enumerate(mask):
        a = wire[i]
        if m >> 4 != 0xF and m >> 4 != a >> 4:
            return False
        if m & 0xF != 0xF and m & 0xF != a & 0xF:
            return False
    return True
