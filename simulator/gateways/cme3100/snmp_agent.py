"""The real SNMP side of :mod:`.snmp`: a pysnmp v2c agent and an INFORM sender (real I/O).

Used only when a run asks for real sinks, and by the tests; a virtual-time run never builds
these (models do no I/O). Both run their own asyncio loop in a daemon thread, like the UDP
head-ends in :mod:`simulator.sinks.udp`.

::

    with SnmpAgent(model, host="127.0.0.1", port=0) as agent:   # 0: a free port
        ... agent.port ...      # answers GET / GETNEXT / GETBULK from model.view()

    model = SnmpModel(settings, trap_sink=InformSender())      # traps go out for real

* :class:`SnmpAgent` answers SNMPv2c GET, GETNEXT and GETBULK (so a walk works) for the
  community of ``model.settings.community`` only; a request with another community is
  dropped by pysnmp's community check (RFC 3584 §5.2.1: no response, snmpInBadCommunityNames
  counted), so the manager times out. SET is not served (the lists are read-only). The port
  is ``model.settings.port`` (default 161, needs privileges) unless ``port`` is given.
* :class:`InformSender` sends each :class:`~.snmp.Notification` as an SNMPv2 INFORM
  (``sysUpTime.0``, ``snmpTrapOID.0`` = mbenchStatusChange, ``mbenchStatusReport.0``) and
  waits for the acknowledgement with the model's retries and timeout (see :mod:`.snmp` for why
  INFORM and not an unacknowledged SNMPv2-Trap).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    send_notification,
)
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.smi import instrum

from simulator.gateways.cme3100.snmp import (
    SNMP_TRAP_OID,
    STATUS_REPORT,
    SYS_UPTIME,
    Notification,
    SnmpModel,
    TrapDelivery,
    notification_varbinds,
)

#: Wall-clock bound on starting or stopping a loop thread (s).
START_TIMEOUT_S = 5.0


def _value(v: int | str) -> Any:
    """A model value as an SNMP type: int -> Integer32, text -> OCTET STRING."""
    return rfc1902.Integer32(v) if isinstance(v, int) else rfc1902.OctetString(v.encode())


class _LoopThread:
    """An asyncio loop in a daemon thread; :meth:`run` runs a coroutine on it and waits."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(START_TIMEOUT_S)
        self.loop.close()


class _ModelInstrum(instrum.AbstractMibInstrumController):
    """pysnmp's MIB instrumentation, answered from ``model.view()`` (one immutable snapshot
    per request variable, so a model moving on in another thread never tears a row)."""

    def __init__(self, model: SnmpModel) -> None:
        self.model = model

    def read_variables(self, *var_binds, **context):
        view = dict(self.model.view())
        out = []
        for name, _ in var_binds:
            v = view.get(tuple(name))
            out.append((name, rfc1905.noSuchInstance if v is None else _value(v)))
        return out

    def read_next_variables(self, *var_binds, **context):
        view = self.model.view()
        out = []
        for name, _ in var_binds:
            oid = tuple(name)
            nxt = next(((o, v) for o, v in view if o > oid), None)
            if nxt is None:
                out.append((name, rfc1905.endOfMibView))
            else:
                out.append((rfc1902.ObjectName(nxt[0]), _value(nxt[1])))
        return out


class SnmpAgent:
    """A pysnmp SNMPv2c agent serving ``model`` on UDP ``host``:``port`` (module doc).
    ``port=None`` uses ``model.settings.port``; 0 picks a free port (see :attr:`port`)."""

    def __init__(self, model: SnmpModel, host: str = "127.0.0.1", port: int | None = None):
        self.model = model
        self.host = host
        self._want_port = model.settings.port if port is None else port
        self.port: int | None = None
        self._loop: _LoopThread | None = None
        self._engine: engine.SnmpEngine | None = None

    def start(self) -> SnmpAgent:
        """Bind the port and start answering. Raises OSError if the port cannot be bound."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self._want_port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._loop = _LoopThread(f"snmp-agent-{self.port}")
        try:
            self._loop.run(self._setup(sock), START_TIMEOUT_S)
        except BaseException:
            self._loop.close()
            sock.close()
            raise
        return self

    async def _setup(self, sock: socket.socket) -> None:
        eng = engine.SnmpEngine()
        transport = udp.UdpAsyncioTransport().open_server_mode(sock=sock)
        config.add_transport(eng, udp.DOMAIN_NAME, transport)
        # the only community: a request with any other is dropped unanswered
        config.add_v1_system(eng, "mbench-area", self.model.settings.community)
        ctx = context.SnmpContext(eng)
        ctx.unregister_context_name(b"")
        ctx.register_context_name(b"", _ModelInstrum(self.model))
        for responder in (
            cmdrsp.GetCommandResponder,
            cmdrsp.NextCommandResponder,
            cmdrsp.BulkCommandResponder,
        ):
            responder(eng, ctx)
        self._engine = eng

    def stop(self) -> None:
        """Close the port and the loop thread (idempotent)."""
        if self._loop is None:
            return
        eng, loop = self._engine, self._loop
        self._loop = self._engine = None

        async def close() -> None:
            if eng is not None:
                eng.close_dispatcher()

        try:
            loop.run(close(), START_TIMEOUT_S)
        finally:
            loop.close()

    def __enter__(self) -> SnmpAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class InformSender:
    """A :class:`~.snmp.TrapSink` that sends real INFORMs with pysnmp (module doc).
    ``community`` is the v2c community the notifications carry (the agent's, by default
    ``public``). :meth:`close` stops its loop thread."""

    def __init__(self, community: str = "public") -> None:
        self.community = community
        self._loop = _LoopThread("snmp-inform")
        self._engine = self._loop.run(self._make_engine(), START_TIMEOUT_S)

    @staticmethod
    async def _make_engine() -> SnmpEngine:
        return SnmpEngine()

    def deliver(self, n: Notification, retries: int, timeout_ms: int) -> TrapDelivery:
        """Send ``n`` and wait for the acknowledgement: at most ``retries + 1`` sends,
        ``timeout_ms`` apart. A failure is a TrapDelivery with ``ok = False``."""
        bound = (retries + 1) * timeout_ms / 1000.0 + START_TIMEOUT_S
        try:
            err = self._loop.run(self._inform(n, retries, timeout_ms), bound)
        except Exception as exc:  # resolver errors, a wedged loop: not delivered, say why
            return TrapDelivery(n, False, 0, f"{type(exc).__name__}: {exc}")
        if err:
            return TrapDelivery(n, False, retries + 1, str(err))
        return TrapDelivery(n, True, 0)  # 0: pysnmp does not tell which try was answered

    async def _inform(self, n: Notification, retries: int, timeout_ms: int) -> Any:
        target = await UdpTransportTarget.create(
            (n.recipient.host, n.recipient.port), timeout=timeout_ms / 1000.0, retries=retries
        )
        # sysUpTime.0 from the model (world time since the agent started), then the
        # notification's OID and its one object (RFC 3416 §4.2.6): one source of the values
        vb = notification_varbinds(n)
        status_oid = STATUS_REPORT + (0,)
        err, status, _index, _vbs = await send_notification(
            self._engine,
            CommunityData(self.community, mpModel=1),
            target,
            ContextData(),
            "inform",
            ObjectType(ObjectIdentity(SYS_UPTIME), rfc1902.TimeTicks(vb[SYS_UPTIME])),
            ObjectType(ObjectIdentity(SNMP_TRAP_OID), rfc1902.ObjectIdentifier(vb[SNMP_TRAP_OID])),
            ObjectType(ObjectIdentity(status_oid), rfc1902.Integer32(vb[status_oid])),
        )
        return err or (f"error-status {status}" if status else None)

    def close(self) -> None:
        """Close the engine on its own loop, then the loop thread."""
        eng = self._engine

        async def close() -> None:
            eng.close_dispatcher()

        try:
            self._loop.run(close(), START_TIMEOUT_S)
        finally:
            self._loop.close()
