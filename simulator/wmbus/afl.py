"""AFL fragmentation (CI 90): a long message sent as several link-layer frames, reassembled.

EN 13757-7 / OMS Vol.2 (security profile B) let a meter cut one message (TPL onwards) into
fragments, each its own frame ``L C M A [ELL] AFL <piece>``. AFL.FCL bits 7-0 are the
fragment ID (FID), bit 14 "more fragments" (MF). Our reading, which the bench builds and
parses (no published fragmented telegram was found to check it against):

* the **first** fragment carries the message fields MCL, [KI], MCR, MAC and ML; ML is the
  length of the whole message (TPL CI .. end), so a receiver knows when it has everything;
  the MAC covers the whole message (``MCL | MCR | ML | message``, :func:`.security.mode7_mac`);
* **later** fragments carry FCL only; their FIDs follow the first one's (mod 256); the bench
  numbers from 0, the FID of an unfragmented AFL (the published OMS mode-7 example);
* every fragment but the last has MF set.

:class:`Reassembler` keeps one partial message per sender (M + A of the link layer).
A gap in the FIDs, a later fragment with no first fragment before it, a new first fragment
while one is open, or a length that differs from ML raise :class:`FragmentError` (a
:class:`~simulator.wmbus.frame.LayerError`, with the offset in the frame) and drop the
partial message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.wmbus.frame import LayerError
from simulator.wmbus.layers import AFL, FCL_MORE_FRAGMENTS

FID_MASK = 0x00FF


class FragmentError(LayerError):
    """A fragment that does not continue its message: missing, out of order, or a length
    that does not add up to AFL.ML."""


def fragment_id(afl: AFL) -> int:
    """FCL bits 7-0."""
    return afl.fcl & FID_MASK


def more_fragments(afl: AFL) -> bool:
    """FCL bit 14 (MF)."""
    return bool(afl.fcl & FCL_MORE_FRAGMENTS)


@dataclass
class _Partial:
    first: AFL
    next_fid: int
    pieces: list[bytes] = field(default_factory=list)


class Reassembler:
    """Partial fragmented messages, one per sender (the 8 bytes M + A).

    :meth:`add` returns ``None`` while fragments are missing, else ``(first AFL, whole
    message, number of fragments)``; an unfragmented AFL (MF clear, nothing open for its sender) comes back at once.
    """

    def __init__(self) -> None:
        self._open: dict[bytes, _Partial] = {}

    @property
    def pending(self) -> dict[bytes, int]:
        """Open messages: sender -> number of fragments received so far."""
        return {k: len(p.pieces) for k, p in self._open.items()}

    def add(self, sender: bytes, afl: AFL, piece: bytes, offset: int | None = None):
        """Add one fragment (``piece`` = the bytes after its AFL); see the class docstring.

        Raises :class:`FragmentError`.
        """
        fid = fragment_id(afl)
        partial = self._open.get(sender)
        if afl.ml is not None:  # a first fragment (or a whole message with ML)
            if partial is not None:
                del self._open[sender]
                if more_fragments(afl):
                    self._open[sender] = _Partial(afl, (fid + 1) & FID_MASK, [piece])
                raise FragmentError(
                    f"AFL fragment {partial.next_fid} and later missing: a new message "
                    f"(FID {fid}) started after {len(partial.pieces)} fragment(s)",
                    offset,
                )
            if not more_fragments(afl):
                return self._complete(afl, [piece], offset)
            self._open[sender] = _Partial(afl, (fid + 1) & FID_MASK, [piece])
            return None
        if partial is None:
            if more_fragments(afl) or (afl.mcl is None and fid != 0):
                raise FragmentError(
                    f"AFL fragment {fid} arrived without its first fragment (the one with AFL.ML)",
                    offset,
                )
            return afl, piece, 1  # not fragmented
        if fid != partial.next_fid:
            del self._open[sender]
            raise FragmentError(
                f"AFL fragment {partial.next_fid} missing: got fragment {fid} after "
                f"{len(partial.pieces)} fragment(s)",
                offset,
            )
        partial.pieces.append(piece)
        if more_fragments(afl):
            partial.next_fid = (fid + 1) & FID_MASK
            return None
        del self._open[sender]
        return self._complete(partial.first, partial.pieces, offset)

    @staticmethod
    def _complete(first: AFL, pieces: list[bytes], offset: int | None):
        whole = b"".join(pieces)
        if first.ml is not None and first.ml != len(whole):
            raise FragmentError(
                f"AFL.ML says {first.ml} bytes, {len(pieces)} fragment(s) carry {len(whole)}",
                offset,
            )
        return first, whole, len(pieces)


def split_message(first: AFL, message: bytes, size: int, first_fid: int = 0) -> list[bytes]:
    """The AFL + piece bytes of each fragment of ``message`` (TPL onwards), at most ``size``
    message bytes a fragment. ``first`` carries MCL/MCR/MAC/ML; FIDs count from
    ``first_fid``. Raises :class:`LayerError` for ``size`` < 1."""
    if size < 1:
        raise LayerError(f"fragment size must be at least 1 byte, got {size}")
    pieces = [message[i : i + size] for i in range(0, len(message), size)] or [b""]
    out = []
    for n, piece in enumerate(pieces):
        fid = (first_fid + n) & FID_MASK
        mf = FCL_MORE_FRAGMENTS if n < len(pieces) - 1 else 0
        if n == 0:
            head = AFL(
                fcl=fid | mf, mcl=first.mcl, ki=first.ki, mcr=first.mcr, mac=first.mac, ml=first.ml
            )
        else:
            head = AFL(fcl=fid | mf)
        out.append(head.to_bytes() + piece)
    return out
