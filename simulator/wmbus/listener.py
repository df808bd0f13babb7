"""One receiver's decoding memory: the compact-frame formats and open AFL messages it has seen.

A wM-Bus collector that decodes (a CMeX50 behind a CMe3100, wmbusmeters on a stick) keeps, per
receiver, the format of every full frame it decoded, keyed by format signature, and the AFL
fragments of messages not yet complete (:mod:`.compact`, :mod:`.afl`). A compact frame (CI 79)
decodes only after the receiver has itself heard the full frame that defines it: "it has to
receive the full length first before it can decode the compressed one" (wmbusmeters
maintainer, issue #1241). :meth:`Listener.hear` parses one telegram against that memory and
says what came of it (:data:`OUTCOMES`), never raising for a telegram it cannot decode.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from simulator.wmbus.afl import FragmentError, Reassembler
from simulator.wmbus.compact import CI_COMPACT, FormatStore
from simulator.wmbus.frame import WMBusError
from simulator.wmbus.telegram import WMBusTelegram, parse_telegram

#: What hearing one telegram gives: a full frame decoded (its format learned), a compact frame
#: expanded and decoded, a compact frame whose signature no full frame heard here defined,
#: a compact frame that does not fit its format (data CRC, length), an AFL fragment held for
#: the rest of its message, an AFL fragment that does not continue its message (one went
#: missing; the partial message is dropped), and anything else not decoded (no key, a wrong
#: key or AFL MAC, a bad frame).
OUTCOMES = (
    "full",
    "compact",
    "unknown_format",
    "compact_error",
    "fragment_held",
    "fragment_error",
    "undecoded",
)


@dataclass(frozen=True)
class Heard:
    """One telegram as the listener decoded it: ``outcome`` (:data:`OUTCOMES`), the parsed
    telegram (``None`` for a frame that did not parse) and the format signature (CRC-16 of
    the DIF/VIF block, EN 13757-3): the one a compact frame names, or the one a decoded full
    frame defines."""

    outcome: str
    telegram: WMBusTelegram | None
    signature: int | None = None


class Listener:
    """A receiver's memory (formats by signature, open AFL messages) and outcome counts."""

    def __init__(self) -> None:
        self.formats = FormatStore()
        self.fragments = Reassembler()
        #: outcome -> telegrams, over everything heard
        self.counts: Counter[str] = Counter()

    def parse(self, raw: bytes, keys=None) -> WMBusTelegram:
        """:func:`~simulator.wmbus.telegram.parse_telegram` with this memory; raises its
        :class:`~simulator.wmbus.frame.WMBusError` subclasses."""
        return parse_telegram(raw, keys=keys, formats=self.formats, fragments=self.fragments)

    def hear(self, raw: bytes, keys=None) -> Heard:
        """Parse ``raw`` (on-air bytes, L-field first) with ``keys`` (one 16-byte key, a
        :class:`~simulator.wmbus.keys.KeyStore` or ``None``) and count its outcome."""
        try:
            t = self.parse(raw, keys)
        except FragmentError:
            return self._count(Heard("fragment_error", None))
        except WMBusError:
            return self._count(Heard("undecoded", None))
        if t.tpl_ci == CI_COMPACT:
            sig = t.format_signature
            if t.records_error is None:
                return self._count(Heard("compact", t, sig))
            known = sig is not None and sig in self.formats
            return self._count(Heard("compact_error" if known else "unknown_format", t, sig))
        if t.afl is not None and "fragments" not in t.afl:  # parse_telegram: held, not whole
            return self._count(Heard("fragment_held", t))
        if t.records_error or not t.records:
            return self._count(Heard("undecoded", t))
        # parse_telegram taught self.formats this frame's format (every decoded full frame has
        # a TPL, CI 78 included) and handed its signature over: no second CRC of the format
        sig = t.learned_signature
        assert sig is not None, "a decoded full frame taught no format"
        return self._count(Heard("full", t, sig))

    def _count(self, heard: Heard) -> Heard:
        self.counts[heard.outcome] += 1
        return heard
