"""Finding meters: primary scan and secondary search by digit descent (PROTOCOL.md §3.1).

Twins (two slaves with one address) are never merged into one meter: a primary address two
slaves answer is *found* by the scan (someone is there) and its readout then fails with a
collision; a secondary address two slaves share cannot be selected alone, so the search
reports its mask as ``unresolved``/``ambiguous`` (trace ``search``) and does not list it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from simulator.core import events as ev
from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.errors import MBusError
from simulator.mbus.frames import ADDR_NETWORK, FCB, REQ_UD2, SND_NKE, ShortFrame
from simulator.mbus.procedures.readout import telegram_of

if TYPE_CHECKING:
    from simulator.mbus.procedures.machine import MasterMachine, Proc


def scan_primary(m: MasterMachine, addresses: Iterable[int]) -> Proc[list[int]]:
    """Primary scan: SND_NKE to each address (selection retries when silent); trace ``scan``.

    Returns the addresses that answered (a garbled answer counts: someone is there).
    """
    found: list[int] = []
    for a in addresses:
        for _ in range(m.settings.selection_retries + 1):
            rx = yield from m.request(ShortFrame(SND_NKE, a).to_bytes(), init=True)
            if not rx.empty:
                found.append(a)
                break
    yield from m.note(ev.Scan(source="", found=found))
    return found


def search_secondary(m: MasterMachine, mask: str) -> Proc[list[SecondaryAddress]]:
    """Secondary wildcard search by digit descent on collision.

    Probes the mask; on a collision, replaces the first wildcard position by each value
    (ID digits 0-9; manufacturer/version/medium nibbles 0-E when ``hex_search``, 0-9
    like libmbus otherwise) and recurses into the colliding ones (PROTOCOL.md §3.1).
    A single clean E5 is confirmed by REQ_UD2 to 253 and a purge of the line; extra
    bytes mean a collision. Returns the addresses found, in discovery order.
    Raises :class:`~simulator.mbus.errors.AddressError` for a malformed ``mask``.
    """
    found: dict[str, SecondaryAddress] = {}
    crowded: list[str] = []  # fully descended masks that still collide (twins)
    parsed = SecondaryMask.parse(mask)
    yield from _descend(m, str(parsed), 0, found, crowded, probe_first=True)
    yield from m.note(
        ev.Search(
            source="", result="done", mask=str(parsed), found=[str(a) for a in found.values()]
        )
    )
    return list(found.values())


def _descend(
    m: MasterMachine,
    mask: str,
    pos: int,
    found: dict[str, SecondaryAddress],
    crowded: list[str],
    *,
    probe_first: bool = False,
    continuation: bool = False,
    head: bool = False,
    proven: frozenset[int] = frozenset(),
) -> Proc[None]:
    """Descend below the colliding ``mask`` from position ``pos``.

    ``continuation``: this subtree looks for meters with nibble F at a position the
    caller kept as F (they answer no probe 0-E there); ``head``: ``pos`` is the first
    position of such a continuation; ``proven``: the kept-F positions where an F meter
    surely answered (the collision was unexplained), the only ones a leaf may infer.
    """
    if probe_first:
        result = yield from _probe(m, mask, found)
        if result != "collision":
            return
    while pos < 16 and mask[pos] != "F":
        pos += 1
    if pos >= 16:
        yield from _leaf(m, mask, found, crowded, proven)
        return
    hex_pos = pos >= 8 and m.settings.hex_search
    values = "0123456789ABCDE" if hex_pos else "0123456789"
    for v in values:
        probe = mask[:pos] + v + mask[pos + 1 :]
        result = yield from _probe(m, probe, found)
        if result == "collision":
            yield from _descend(
                m, probe, pos + 1, found, crowded, continuation=continuation, proven=proven
            )
    mode = m.settings.f_nibble_search
    if not hex_pos or mode == "off":
        return
    # Meters with F here matched the parent but none of 0-E. The parent collided (>= 2
    # answers); if fewer than two found meters with a non-F nibble here match it, at
    # least one answer came from an F meter: keep F ("any") here and descend further.
    # A crowded leaf below (twins that no probe splits) stands for two such answers.
    parent = SecondaryMask.parse(mask)
    answers = sum(1 for k, a in found.items() if k[pos] != "F" and parent.matches(a))
    answers += 2 * sum(1 for c in crowded if c[pos] != "F" and _under(c, mask))
    explained = answers >= 2
    # "always" also continues at explained nodes of the plain descent and, for runs of F
    # (version FF), at the first position of a continuation; those Fs are not proven.
    if not explained or (mode == "always" and (head or not continuation)):
        yield from _descend(
            m,
            mask,
            pos + 1,
            found,
            crowded,
            continuation=True,
            head=True,
            proven=proven if explained else proven | {pos},
        )


def _under(mask: str, parent: str) -> bool:
    """Every address ``mask`` selects is selected by ``parent`` (F = any nibble)."""
    return all(p == "F" or p == c for c, p in zip(mask, parent, strict=True))


def _leaf(
    m: MasterMachine,
    mask: str,
    found: dict[str, SecondaryAddress],
    crowded: list[str],
    proven: frozenset[int],
) -> Proc[None]:
    """A fully descended mask still collides: infer an F meter, or give up."""
    known = [a for a in found.values() if SecondaryMask.parse(mask).matches(a)]
    kept = {i for i in range(8, 16) if mask[i] == "F"}
    if kept and kept <= proven and len(known) <= 1:
        # Every nibble but the kept Fs is fixed, each kept F is proven (an F meter had to
        # answer there) and at most one found meter answers: the other answer is a meter
        # whose address is the mask itself (F nibbles and all). It can never be selected
        # alone (any mask that selects it selects the found one too): named, not read.
        try:
            addr = SecondaryAddress.parse(mask)
        except MBusError:
            addr = None
        if addr is not None:
            found.setdefault(str(addr), addr)
            yield from m.note(
                ev.Search(
                    source="",
                    result="inferred",
                    mask=mask,
                    address=str(addr),
                    alongside=[str(a) for a in known],
                )
            )
            return
    # Twins: two meters answer a fully given address; they cannot be told apart.
    result = "ambiguous" if len(known) >= 2 else "unresolved"
    if result == "unresolved":
        crowded.append(mask)
    yield from m.note(ev.Search(source="", result=result, mask=mask))


def _probe(m: MasterMachine, mask: str, found: dict[str, SecondaryAddress]) -> Proc[str]:
    sel = yield from m.select(mask)
    if sel == "single":
        rx = yield from m.request(ShortFrame(REQ_UD2 | FCB, ADDR_NETWORK).to_bytes())
        telegram, _ = telegram_of(rx)
        extra = yield from m.purge()
        if telegram is None or telegram.header.address is None or extra:
            sel = "collision"
            if not rx.empty:
                m.collision_idle(rx)
        else:
            addr = telegram.header.address
            found.setdefault(str(addr), addr)
            yield from m.note(ev.Search(source="", result="found", mask=mask, address=str(addr)))
            return "single"
    yield from m.note(ev.Search(source="", result=sel, mask=mask))
    return sel
