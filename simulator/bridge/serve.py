"""Putting a scenario's simulated bus on real ports: the service behind ``meterbench serve``.

:func:`realtime_segment` builds the scenario's bus and slaves (``kind = "mbus"``, the same
builder ``meterbench run`` uses: :func:`simulator.building.runner.build_slaves`) in a real-time
world without the simulated master: the master is whoever connects. :class:`BridgeService`
attaches one :class:`~simulator.bridge.bridge.SerialBridge` per transport (a pty, a pyserial
URL, the transparent TCP service) and runs the world with the
:class:`~simulator.bridge.realtime.RealtimeDriver` in a thread (``start``) or in the caller's
thread (``run``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from simulator.bridge.bridge import SerialBridge
from simulator.bridge.pty import PtyTransport
from simulator.bridge.realtime import RealtimeDriver
from simulator.bridge.tcp_service import TcpServerTransport
from simulator.bridge.transports import SerialTransport, Transport
from simulator.building.scenario_model import MbusScenario, validate
from simulator.core.text import decimal
from simulator.core.trace import Trace
from simulator.core.trace_invariants import check_bridge_bytes
from simulator.core.world import World
from simulator.mbus.bus import Bus
from simulator.mbus.slave import Slave
from simulator.rig import TransportSpec
from simulator.scenario import ScenarioError, load_toml


def open_rig_transport(spec: TransportSpec) -> Transport:
    """The transport a rig's ``[[transports]]`` entry describes (pty, URL or TCP service)."""
    if spec.pty:
        return PtyTransport(link=spec.pty_link)
    if spec.tcp:
        host, port = parse_host_port(spec.tcp)
        return TcpServerTransport(host, port, busy=spec.tcp_busy)
    assert spec.url is not None
    return SerialTransport(spec.url, baud=spec.baud, parity=spec.parity)


def parse_host_port(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` -> (host, port); ``ValueError`` naming the text if malformed."""
    host, sep, port = text.rpartition(":")
    number = decimal(port)
    if not sep or number is None or number > 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", number


@dataclass
class Segment:
    """A scenario's bus in a real-time world (no simulated master)."""

    world: World
    bus: Bus
    slaves: list[Slave]
    scenario: MbusScenario


def realtime_segment(
    path: str | Path, *, seed: int | None = None, trace: Trace | None = None
) -> Segment:
    """Build the bus and slaves of the mbus scenario at ``path`` in a real-time world.

    Raises :class:`~simulator.scenario.ScenarioError` (every problem, with file:line) for a
    bad file or a scenario of another kind.
    """
    from simulator.building.runner import build

    doc = load_toml(path)
    if doc.kind != "mbus":
        raise ScenarioError([doc.issue(("kind",), f'serve needs kind = "mbus", got {doc.kind!r}')])
    sc = validate(doc)
    seg = build(doc, sc, sc.seed if seed is None else seed, trace, realtime=True)
    return Segment(seg.world, seg.bus, seg.slaves, sc)


@dataclass
class BridgeService:
    """A real-time world with one bridge per transport (see module doc)."""

    world: World
    bus: Bus
    driver: RealtimeDriver = field(init=False)
    bridges: list[SerialBridge] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.driver = RealtimeDriver(self.world)

    def attach(self, transport: Transport, **options) -> SerialBridge:
        """Serve the bus on ``transport``; ``options`` go to :class:`SerialBridge`."""
        name = options.pop("name", "bridge" if not self.bridges else f"bridge{len(self.bridges)}")
        bridge = SerialBridge(self.driver, self.bus, transport, name=name, **options)
        self.bridges.append(bridge)
        return bridge

    def start(self) -> BridgeService:
        """Run the world in a background thread (tests, the bench)."""
        self._thread = threading.Thread(target=self.driver.run, name="bridge-world", daemon=True)
        self._thread.start()
        return self

    def run(self, until: float | None = None) -> None:
        """Run the world in this thread until world time ``until`` or :meth:`stop`."""
        self.driver.run(until)

    def stop(self) -> None:
        """Stop the world, flush what is queued for writing, close every transport."""
        for b in self.bridges:
            b.flush(2.0)
        self.driver.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for b in self.bridges:
            b.close()
        # events posted by the threads after the loop ended still belong in the trace
        self.driver.drain_into_world()

    def check(self) -> dict[str, dict[str, int]]:
        """Every byte in = traced, per bridge (after :meth:`stop`): the trace and the bridges'
        counters add up (:func:`~simulator.core.trace_invariants.check_bridge_bytes`); raises
        :class:`~simulator.core.accounting.AccountingError` if not. Returns the tallies."""
        return check_bridge_bytes(self.world.trace, {b.name: b.counters for b in self.bridges})
