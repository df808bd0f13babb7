"""A small SNMP v2c manager for the suites: read what a gateway's agent serves, as a lab's
NMS would (pysnmp, one fresh engine and event loop per call, bounded by ``timeout`` s).

Used by the CMe3100 push suite to read the Status Report and the Meter Status List from the
agent (the model's :class:`~simulator.gateways.cme3100.snmp_agent.SnmpAgent` on a sim rig, the
physical unit's agent in a lab).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
    walk_cmd,
)

Oid = tuple[int, ...]


class SnmpQueryError(RuntimeError):
    """The agent did not answer (timeout, wrong community) or answered an error."""


def _plain(value: Any) -> int | str:
    return value.prettyPrint() if hasattr(value, "asOctets") else int(value)


def run_manager(coro_fn, *args):
    """Run ``coro_fn(engine, *args)`` on a fresh pysnmp engine and event loop, closing the
    engine's dispatcher afterwards (what every manager call here does)."""

    async def run():
        eng = SnmpEngine()
        try:
            return await coro_fn(eng, *args)
        finally:
            eng.close_dispatcher()

    return asyncio.run(run())


async def _get(eng, host, port, oid, community, timeout):
    target = await UdpTransportTarget.create((host, port), timeout=timeout, retries=0)
    err, status, _, vbs = await get_cmd(
        eng, CommunityData(community), target, ContextData(), ObjectType(ObjectIdentity(oid))
    )
    if err or status:
        raise SnmpQueryError(f"GET {oid} from {host}:{port}: {err or status.prettyPrint()}")
    return _plain(vbs[0][1])


async def _walk(eng, host, port, prefix, community, timeout, limit):
    target = await UdpTransportTarget.create((host, port), timeout=timeout, retries=0)
    start = ObjectType(ObjectIdentity(prefix))
    out: list[tuple[Oid, int | str]] = []
    gen = walk_cmd(
        eng, CommunityData(community), target, ContextData(), start, lexicographicMode=False
    )
    async for err, status, _, vbs in gen:
        if err or status:
            raise SnmpQueryError(f"walk {prefix} at {host}:{port}: {err or status.prettyPrint()}")
        out.extend((tuple(o), _plain(v)) for o, v in vbs)
        if len(out) > limit:
            raise SnmpQueryError(f"walk {prefix} at {host}:{port} does not end")
    return out


def snmp_get(
    host: str, port: int, oid: Oid, community: str = "public", timeout: float = 2.0
) -> int | str:
    """One GET; :class:`SnmpQueryError` when nothing or an error comes back."""
    return run_manager(_get, host, port, oid, community, timeout)


def snmp_walk(
    host: str,
    port: int,
    prefix: Oid,
    community: str = "public",
    timeout: float = 2.0,
    limit: int = 10_000,
) -> list[tuple[Oid, int | str]]:
    """GETNEXT from ``prefix`` while inside it -> ``[(oid, value)]``."""
    return run_manager(_walk, host, port, prefix, community, timeout, limit)
