"""The exact fast path of a readout: when nothing can differ, read a meter without SimPy events.

A readout by secondary address (select with CI 52, E5, then REQ_UD2 and RSP_UD, more
telegrams after DIF 1F) normally goes through the bus's generators and :meth:`World.sleep`,
one step at a time. :func:`clean_readout` decides *before the readout begins* whether every
exchange of it is certain to be one clean reply from one slave, with nothing else in the
world acting meanwhile. Then :meth:`Master.drive <simulator.mbus.master.Master.drive>` runs
the same master procedure with ``now=True``: :meth:`Bus.transmit_now`,
:meth:`Bus.receive_now` and :meth:`World.advance` do the very same work as the event path
(the same frame bytes, trace events, random draws, float time arithmetic and counters) but
move the clock directly. Anything not provably safe goes through the event path.

The conditions are stricter than exactness needs (the shared code would give the same bytes
for a faulty slave too); what makes the path exact is the last one, that nothing else is due
before the readout ends. :meth:`World.advance` re-checks it at every step and raises rather
than jump over an event (something scheduled one during the readout: a programming error).

The conditions (all must hold; tests/test_fast_path.py runs random buses both ways):

* the world runs in virtual time with the fast path on (``--event-path`` turns it off) and
  the calling process was woken by its own sleep (:meth:`World.sleep`, condition a);
* the port is not overloaded, no reply is on the line and no talkover is pending, and every
  attached listener is indexed (:mod:`.dispatch`);
* the target is a secondary address or mask that selects exactly one slave (no twin; the
  slaves selected before are deselected without a word), or a primary address (0..250) that
  exactly one slave has: a :class:`~simulator.mbus.slave.Slave` listening at the bus's
  baud, powered, with no fault that applies to the readout's commands (SND_UD, REQ_UD2,
  SND_NKE);
* its reply delay (:class:`~simulator.mbus.slave.ResponseDelay`) can neither fall into the
  master's deaf time after its own frame (``listen_delay_bits``) nor reach the response
  timeout, the cable carries the baud rate without bit errors and the current detector,
  if any, cannot fire for one sender;
* the earliest event in the calendar lies beyond an upper bound of the readout's end
  (every selection and REQ_UD2 retry, the longest frames, the idle times), so no other
  process, and not the end of ``world.run(until=...)``, can act in between (condition b).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.frames import REQ_UD2, ShortFrame
from simulator.mbus.procedures.machine import select_frame
from simulator.mbus.slave import ResponseDelay, Slave
from simulator.mbus.wire import char_time, frame_time, response_window

if TYPE_CHECKING:
    from simulator.mbus.bus import Bus
    from simulator.mbus.master import Master
    from simulator.mbus.procedures.settings import MasterSettings

#: Longest wired M-Bus frame (bytes): a long frame with 252 user data bytes + 9.
MAX_FRAME = 261
#: Margin (s) kept from every timing edge: well above the float rounding of a year of
#: world time (ulp(3.2e7 s) ~ 4e-9 s).
MARGIN = 1e-6


def _delay_range(delay: ResponseDelay, baud: int) -> tuple[float, float]:
    """Smallest and largest reply delay (s) :meth:`ResponseDelay.draw` can give."""
    a, b = sorted((delay.low, delay.high))
    if delay.unit == "s":
        return a, b
    lo, hi = response_window(baud)
    return lo + (hi - lo) * a, lo + (hi - lo) * b


def _addressed(bus: Bus, target: int | SecondaryAddress | SecondaryMask) -> Slave | None:
    """The one slave a readout of ``target`` talks to, or None if it is not exactly one
    plain :class:`Slave` (a twin, another kind of listener, a broadcast address)."""
    index = bus._index
    if isinstance(target, SecondaryAddress | SecondaryMask):
        # the selection concerns the slaves its mask matches and those selected before,
        # which it deselects without a word (no reply, no draw, no event)
        hits = list(index.matching(select_frame(target)[7:15]).values())  # 68 L L 68 C A CI
        others = index.selected()
    elif isinstance(target, int) and 0 <= target <= 250:
        hits = index.candidates(ShortFrame(REQ_UD2, target).to_bytes())
        others = ()
    else:
        return None
    if len(hits) != 1 or type(hits[0]) is not Slave or any(type(c) is not Slave for c in others):
        return None
    return hits[0]


def clean_readout(
    master: Master, target: int | SecondaryAddress | SecondaryMask, s: MasterSettings
) -> bool:
    """True when reading ``target`` with ``s`` now can be done on the exact fast path
    (module doc); False sends it through the event path. No side effects."""
    world, bus = master.world, master.bus
    if not world.fast_path or world.realtime:
        return False
    env = world.env
    proc = env.active_process
    if proc is None or not getattr(proc._target, "own_sleep", False):
        return False
    if bus._pending or bus._talked_over or bus._index._unindexed or bus.overloaded:
        return False
    baud = bus.baud
    slave = _addressed(bus, target)
    if slave is None:
        return False
    if slave.baud != baud or not bus.powered(slave) or type(slave.delay) is not ResponseDelay:
        return False
    commands = ("SND_NKE" if s.send_nke else "", "SND_UD", "REQ_UD2")
    if any(f.applies(c) for f in slave.faults for c in commands if c):
        return False
    if bus.overspeed(baud) and bus.cable.overspeed_ber > 0:
        return False
    port = bus.port
    if port.collision_detector and 0.0 + slave.space_current_ma > port.collision_threshold_ma:
        return False
    dmin, dmax = _delay_range(slave.delay, baud)
    if dmin <= port.listen_delay_bits / baud + MARGIN or dmax >= s.response_timeout - MARGIN:
        return False
    # condition b: an upper bound of the readout's end before the next calendar event
    secondary = isinstance(target, SecondaryAddress | SecondaryMask)
    reset = secondary or s.send_nke  # the slave starts over at its first telegram
    limit = s.telegram_limit
    telegrams = min(limit, slave.telegrams) if reset and not slave.golden else limit
    exchanges = s.selection_retries + 1 + telegrams * (s.readout_retries + 1)
    idle = max(s.request_idle, s.collision_idle, s.init_idle)
    each = 2 * frame_time(MAX_FRAME, baud) + s.response_timeout + 3 * char_time(baud) + idle
    bound = max(0.0, master.machine.next_free - env._now) + exchanges * each + 1.0
    queue = env._queue
    return not queue or queue[0][0] > env._now + bound
