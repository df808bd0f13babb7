"""Reading a gateway's behaviour off the trace: requests, replies and the idle gaps between them.

Everything here uses only the bus's ``frame`` events (docs/trace.md,
:class:`simulator.core.events.Frame`): ``direction`` ``"m2s"`` (a request, at its first start
bit, with ``end`` and the parsed ``function``/``address``) and ``"s2m"`` (a reception, with
``end``, ``outcome`` and ``senders``); fields only, never the ``summary`` text. They are the same whether the simulated master drove the bus or
the serial bridge did on behalf of a physical gateway, so the conformance suite's checks hold
on every rig.

Idle rules checked by the suite (seed 002 §6.25.2 Table 7, as the master model reads them):

* after a reply: the next request starts >= ``request_idle`` after the reply's last byte;
* after a reply with a detected collision (UART errors): >= ``collision_idle``;
* after a request nobody answered: >= ``response_timeout + request_idle`` after the request;
* after a SND_NKE: >= ``init_idle`` after the SND_NKE.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.core.trace import Trace, TraceEvent
from simulator.mbus.frames import ADDR_BROADCAST


@dataclass
class Exchange:
    """A request and what came back before the next request (``reply`` None: nothing)."""

    request: TraceEvent
    reply: TraceEvent | None

    @property
    def summary(self) -> str:
        """The request's human summary (for messages only; checks use the fields)."""
        return str(self.request.get("summary", ""))

    @property
    def function(self) -> str | None:
        """The request's C-field function (``"SND_NKE"``, ``"REQ_UD2"``...), None if garbled."""
        return self.request.get("function")

    @property
    def address(self) -> int | None:
        """The request's A-field, None if garbled."""
        return self.request.get("address")

    @property
    def answered(self) -> bool:
        return self.reply is not None and self.reply.get("outcome") not in ("timeout", "overload")

    @property
    def collided(self) -> bool:
        """A collision *detected* at the physical level: the master's UART flagged parity or
        framing errors, or its current detector fired. Replies that are merely not one valid
        frame (``e5e5``) are not counted here: Table 7 does not say whether they start the
        collision idle time, so the suite does not demand it of a gateway (the master model,
        simulator.mbus.master, does wait collision idle after them)."""
        r = self.reply
        return bool(
            r is not None
            and self.answered
            and (r.get("uart_errors", 0) or r.get("collision_detected"))
        )

    @property
    def end(self) -> float:
        """End of the exchange as the wire shows it: the reply's end, else the request's."""
        if self.answered:
            return float(self.reply.get("end"))  # type: ignore[union-attr]
        return float(self.request.get("end"))


def exchanges(trace: Trace) -> list[Exchange]:
    """Requests in order, each with the first reception after it (late/ignored ones skipped)."""
    out: list[Exchange] = []
    for ev in trace:
        if ev.kind != "frame":
            continue
        if ev.get("direction") == "m2s":
            out.append(Exchange(ev, None))
        elif ev.get("direction") == "s2m" and out and out[-1].reply is None:
            if ev.get("outcome") != "ignored":
                out[-1].reply = ev
    return out


@dataclass
class Gap:
    """The silence before ``after`` (a request): ``seconds`` since ``since`` ended; ``rule``
    names the idle time that applies (``request_idle``, ``collision_idle``,
    ``timeout+request_idle``, ``init_idle``)."""

    before: Exchange
    after: Exchange
    seconds: float
    rule: str


def idle_gaps(trace: Trace) -> list[Gap]:
    """Every gap between consecutive requests, with the rule it must satisfy (see module doc).

    A SND_NKE gives two gaps: one by the reply rule and one by ``init_idle``.
    """
    ex = exchanges(trace)
    gaps: list[Gap] = []
    for prev, nxt in zip(ex, ex[1:], strict=False):
        start = nxt.request.t
        if prev.answered:
            rule = "collision_idle" if prev.collided else "request_idle"
            gaps.append(Gap(prev, nxt, start - prev.end, rule))
        elif prev.address == ADDR_BROADCAST:
            gaps.append(Gap(prev, nxt, start - prev.end, "request_idle"))
        else:
            gaps.append(Gap(prev, nxt, start - prev.end, "timeout+request_idle"))
        if prev.function == "SND_NKE":
            gaps.append(Gap(prev, nxt, start - float(prev.request.get("end")), "init_idle"))
    return gaps


def requests_to(trace: Trace, function: str, address: int) -> list[TraceEvent]:
    """Request frames of ``function`` (``"REQ_UD2"``, ``"SND_NKE"``...) to primary ``address``."""
    return [e.request for e in exchanges(trace) if (e.function, e.address) == (function, address)]
