"""The exact fast path of a readout: when nothing can differ, read a meter without SimPy events.

A readout by secondary address (select with CI 52, E5, then REQ_UD2 and RSP_UD, more
telegrams after DIF 1F) normally goes through the bus's generators and :meth:`World.sleep`,
one step at a time. :func:`clean_readout` decides *before the readout begins* whether every
exchange of it is certain to be one clean reply from one slave, with nothing else in the
world acting meanwhile. Then :func:`read_now` computes the readout at once: the master
procedure of :mod:`~simulator.mbus.procedures.readout` for that clean case, with the bus's
exchange inlined. It does the very same work as the event path (the same frame bytes, trace
events, slave calls and so random draws, float time arithmetic and counters) but moves the
clock directly, and does not build ``frame`` and ``readout`` events nobody wants
(``--trace-level summary``: they are counted). Anything not provably safe goes through the
event path.

The conditions are stricter than exactness needs (the shared code would give the same bytes
for a faulty slave too); what makes the path exact is the last one, that nothing else is due
before the readout ends. :func:`read_now` moves the clock with :meth:`World.advance`, which
re-checks it at every step and raises rather than jump over an event (a programming error);
it raises as well for a second reply or none.

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

from functools import lru_cache
from typing import TYPE_CHECKING

from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.bus import _facts, _m2s_outcome
from simulator.mbus.frames import ADDR_NETWORK, FCB, REQ_UD2, SND_NKE, ShortFrame
from simulator.mbus.procedures.commands import Heard
from simulator.mbus.procedures.machine import E5, select_frame
from simulator.mbus.procedures.readout import Readout, readout_event, same_content, telegram_of
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


@lru_cache(maxsize=256)
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
    if isinstance(target, _SECONDARY):
        # the selection concerns the slaves its mask matches and those selected before,
        # which it deselects without a word (no reply, no draw, no event)
        hits = index.matching(_select_mask(target))
        if len(hits) != 1 or any(type(c) is not Slave for c in index.selected()):
            return None
        (slave,) = hits.values()
    elif isinstance(target, int) and 0 <= target <= 250:
        found = index.candidates(_req_ud2(False, target))
        if len(found) != 1:
            return None
        slave = found[0]
    else:
        return None
    return slave if type(slave) is Slave else None


_SECONDARY = (SecondaryAddress, SecondaryMask)


@lru_cache(maxsize=4096)
def _select_mask(target: SecondaryAddress | SecondaryMask) -> bytes:
    return select_frame(target)[7:15]  # 68 L L 68 C A CI | the 8 mask bytes


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
    secondary = isinstance(target, _SECONDARY)
    reset = secondary or s.send_nke  # the slave starts over at its first telegram
    limit = s.telegram_limit
    telegrams = min(limit, slave.telegrams) if reset and not slave.golden else limit
    exchanges = s.selection_retries + 1 + telegrams * (s.readout_retries + 1)
    idle = max(s.request_idle, s.collision_idle, s.init_idle)
    each = 2 * frame_time(MAX_FRAME, baud) + s.response_timeout + 3 * char_time(baud) + idle
    bound = max(0.0, master.machine.next_free - env._now) + exchanges * each + 1.0
    queue = env._queue
    return not queue or queue[0][0] > env._now + bound


@lru_cache(maxsize=512)
def _req_ud2(fcb: bool, address: int) -> bytes:
    return ShortFrame(REQ_UD2 | (FCB if fcb else 0), address).to_bytes()


def read_now(
    master: Master, target: int | SecondaryAddress | SecondaryMask, s: MasterSettings
) -> Readout:
    """The :class:`Readout` that ``master.read(target)`` gives on the event path, computed in
    straight-line code for a readout :func:`clean_readout` admitted (call it right after).

    It carries out :func:`procedures.readout.read <simulator.mbus.procedures.readout.read>`
    with the exchanges of :meth:`MasterMachine.request` on :class:`Bus` inlined: the same
    frame bytes and ``frame``/``readout`` events, the same slave calls (:meth:`Slave.hear`,
    so the same random draws), the same float time arithmetic, bus counters and request
    paths, and the clock moved by :meth:`World.advance`. ``frame`` and
    ``readout`` events nobody wants (:meth:`Trace.wants`, e.g. ``--trace-level summary``)
    are counted, not built.

    Raises RuntimeError if the readout turns out not to be clean after all (a second reply,
    none, or an event due before its end): the proof of :func:`clean_readout` did not hold.
    """
    world, bus, m = master.world, master.bus, master.machine
    env, trace, name = world.env, world.trace, master.name
    baud = bus.baud
    m.sync(world.now, baud)
    frames = trace.wants("frame")
    sleeps, counters, paths, advance = world.sleeps, bus.counters, bus._paths, world.advance
    index, powered = bus._index, bus._powered
    ct = char_time(baud)
    gap = 2.0 * ct  # Bus.receive: 2 idle characters
    deaf = bus.port.listen_delay_bits / baud
    lo, hi = response_window(baud)

    def exchange(frame: bytes, init: bool) -> Heard:
        """MasterMachine.request(frame, settings=s, init=init) with one clean reply."""
        # MasterMachine.send: the idle time first (a Wait, World.advance)
        if m.next_free > m.now:
            m.now = advance(m.next_free - m.now)
        # Bus.transmit -> Bus._send
        duration = frame_time(len(frame), baud)
        if bus._open_request is not None:  # Bus._close_request
            paths["direct" if sleeps["event"] == bus._open_request else "event"] += 1
        bus._open_request = sleeps["event"]
        start = float(env._now)
        counters["requests"] += 1
        counters["bus_seconds"] += duration
        end = start + duration
        if frames:
            facts = _facts(frame)
            bus._frame(name, "m2s", frame, _m2s_outcome(facts), baud, end, facts, at=start)
        else:
            trace.skip()
        now = float(env._now)
        last = end if end < now else advance(end - now)
        bus._last_m2s_end = last
        # Bus._deliver: every slave the frame concerns hears it; exactly one answers
        reply, sender = None, None
        for slave in index.candidates(frame):
            if slave.baud != baud or id(slave) not in powered:
                continue
            r = slave.hear(frame, baud)
            index.refresh(slave)
            if r is not None and r.data:
                if reply is not None:
                    raise RuntimeError(f"read_now: a second reply to {frame.hex()}")
                reply, sender = r, slave
        if reply is None:
            raise RuntimeError(f"read_now: no reply to {frame.hex()}")
        data = reply.data
        tx_start = last + reply.delay
        # MasterMachine.listen -> Bus.receive -> Bus._gather (one clean sender)
        m.now = float(env._now)
        m.last_tx_end = tx_end = m.now
        now = m.now
        listen_from = max(now, last + deaf)
        if tx_start < listen_from or tx_start >= now + s.response_timeout:
            raise RuntimeError(f"read_now: the reply at {tx_start!r} s is not clean")
        t_last = tx_start + (len(data) - 1) * ct
        rx_end = t_last + char_time(baud)
        counters["replies"] += 1
        counters["bus_seconds"] += rx_end - tx_start
        advance(tx_start - now)
        if frames:  # Bus._reply_frame; bus.classify of one clean sender
            facts = _facts(data)
            outcome = "ok" if facts.error is None else _m2s_outcome(facts)
            delay = tx_start - last
            bus._frame(
                name, "s2m", data, outcome, baud, rx_end, facts,
                senders=[sender.name], uart_errors=0, bit_errors=0, delay=delay,
                in_window=bool(lo <= delay <= hi), collision_detected=False,
            )  # fmt: skip
        else:
            trace.skip()
        heard = Heard(data, rx_end, advance(rx_end + gap - env._now))
        m.now = heard.now
        m.overloaded = False
        m.next_free = rx_end + s.request_idle
        if init:
            m.next_free = max(m.next_free, tx_end + s.init_idle)
        return heard

    # procedures.readout.read, clean: the first selection attempt and REQ_UD2 are answered
    out = Readout(target, ok=False, started=m.now)
    done = False
    if isinstance(target, _SECONDARY):
        rx = exchange(select_frame(target), False)
        if rx.data != E5:  # MasterMachine.select: "collision"
            m.collision_idle(rx)
            out.error = "selection collision"
            done = True
        address = ADDR_NETWORK
    else:
        address = int(target)
        if s.send_nke:
            exchange(ShortFrame(SND_NKE, address).to_bytes(), True)
    fcb, limit = True, s.telegram_limit
    while not done:
        telegram, error = None, "no reply"
        for _ in range(s.readout_retries + 1):
            out.attempts += 1
            rx = exchange(_req_ud2(fcb, address), False)
            telegram, error = telegram_of(rx)
            if telegram is not None:
                break
        if telegram is None:
            out.error = error
            break
        if s.stop_on_repeat and any(same_content(rx.data, f) for f in out.frames):
            out.ok = True
            break
        out.telegrams.append(telegram)
        out.frames.append(rx.data)
        if not telegram.more_follow:
            out.ok = True
            break
        if len(out.telegrams) >= limit:
            out.more_pending = out.ok = True
            break
        fcb = not fcb
    out.finished = m.now
    if trace.wants("readout"):
        world.emit(readout_event(out, name))
    else:
        trace.skip()
    return out
