"""The bench a conformance test talks to: simulated meters, a device under test, one trace.

A test describes the meters it needs (:class:`MeterSpec`), asks the bench for a fresh setup
(:meth:`Bench.setup`) and tells the device under test what to do (``run.dut.read(...)``);
then it asserts on ``run.trace``. Which device that is depends on the rig
(:mod:`simulator.rig`):

* ``mode = "sim"`` (:class:`~simulator.mbus.sim_dut.SimDut`, found through the device
  registry by the rig's ``[dut] kind``): meterbench's model of a gateway's M-Bus master
  (:class:`simulator.mbus.master.Master`) configured from ``[dut.mbus]``, run in virtual
  time; procedures return their results (found addresses, the :class:`Readout`).
* ``mode = "lab"`` (:class:`LabDut`): a physical gateway reaches the simulated meters through
  the serial bridge in a real-time world; a procedure is started by the rig's ``trigger``
  command (or by the operator) and is over after ``quiet_s`` of bus silence; it returns
  ``None`` because the bench can only observe the wire. **Not yet exercised against a real
  gateway** (see docs/rigs.md).

A lab bench fails fast (:class:`BenchError`) when its serial port cannot be opened at setup
or stays gone for :data:`PORT_GONE_LIMIT_S` while a procedure waits, naming the rig, the
port and the OS reason, instead of waiting for a gateway that cannot reach it.

Because the trace has the same ``frame`` events in both cases (the bus records them, whoever
drives it), a test that asserts on the trace serves both rigs.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from simulator.core.trace import Trace
from simulator.core.world import World
from simulator.devices import registry
from simulator.mbus.address import SecondaryAddress, manufacturer_code
from simulator.mbus.bus import Bus
from simulator.mbus.faults import Fault
from simulator.mbus.master import MasterSettings
from simulator.mbus.slave import ResponseDelay, Slave
from simulator.meters.wired import TEMPLATES
from simulator.rig import Rig, TransportSpec
from simulator.testing.errors import BenchError

__all__ = ["Bench", "BenchError", "BenchRun", "LabDut", "MeterSpec", "master_settings"]

#: How long (s) a lab bench's serial port may stay gone while a procedure waits before the
#: bench gives up (an adapter re-enumerating after a USB glitch is back well within this).
PORT_GONE_LIMIT_S = 5.0

#: A procedure fails with ``TimeoutError`` when the gateway sent no request for
#: ``max(NO_REQUEST_MIN_S, 4 * quiet_s)`` s after its trigger.
NO_REQUEST_MIN_S = 60.0


@dataclass(frozen=True)
class MeterSpec:
    """A simulated meter for a test: secondary address parts, primary address, baud rate
    (bit/s), number of telegrams (multi-telegram when > 1), reply delay and faults.

    ``medium``: a key of :data:`simulator.meters.wired.TEMPLATES` (``heat``, ``water``...).
    """

    id: int
    manufacturer: str = "ELV"
    version: int = 1
    medium: str = "heat"
    primary: int = 0
    baud: int = 2400
    telegrams: int = 1
    delay: ResponseDelay | None = None
    faults: tuple[Fault, ...] = ()

    @property
    def address(self) -> SecondaryAddress:
        manufacturer_code(self.manufacturer)  # AddressError early for a bad code
        return SecondaryAddress(
            self.id, self.manufacturer, self.version, TEMPLATES[self.medium].medium
        )

    def build(self, world: World) -> Slave:
        template = TEMPLATES[self.medium]
        rng = world.rng(f"bench/meter/{self.id}/records")
        return Slave(
            world,
            self.address,
            primary=self.primary,
            bauds=(300, 2400, 9600),
            baud=self.baud,
            records=template.build(rng, self.telegrams),
            telegrams=self.telegrams,
            delay=self.delay,
            faults=self.faults,
        )


def master_settings(
    rig: Rig, *, multi_telegram: bool = True, behaviour: bool = False
) -> MasterSettings:
    """The DUT's configured settings as the master model's :class:`MasterSettings` (s).

    ``behaviour=True``: with the rig's ``[dut.sim]`` deviations applied (what the simulated
    master actually does; the suite's limits always come from ``[dut.mbus]``).
    """
    m = rig.dut.mbus
    if behaviour:
        m = m.model_copy(update=rig.dut.sim.model_dump(exclude_none=True))
    return MasterSettings.from_timing(
        m, multi_telegram=multi_telegram, max_telegrams=m.multi_telegram_limit
    )


@dataclass
class BenchRun:
    """One test's setup: its world, bus, slaves (by meter id), device under test and trace."""

    world: World
    bus: Bus
    slaves: dict[int, Slave]
    dut: Any
    meters: list[MeterSpec] = field(default_factory=list)

    @property
    def trace(self) -> Trace:
        return self.world.trace

    def close(self) -> None:
        close = getattr(self.dut, "close", None)
        if close is not None:
            close()


class LabDut:
    """A physical gateway behind the serial bridge (see module doc).

    ``trigger``: shell command template with ``{procedure}``, ``{target}`` and ``{baud}``; empty =
    ask the ``operator`` (:class:`simulator.testing.operator.Operator`; the plugin's ``operator``
    fixture gets past pytest's capture and times out). ``quiet_s``: bus silence that ends a
    procedure.

    Raises :class:`BenchError` when the rig's ``dut`` transport cannot be opened (e.g. no
    ``/dev/ttyUSB0``); a pty or TCP service waiting for its master program is not an error.
    """

    def __init__(self, rig: Rig, world: World, bus: Bus, operator: Any = None) -> None:
        from simulator.bridge.bridge import SerialBridge
        from simulator.bridge.realtime import RealtimeDriver
        from simulator.bridge.serve import open_rig_transport
        from simulator.bridge.transports import SerialTransport, os_reason

        self.rig = rig
        self.world = world
        self.bus = bus
        self.operator = operator
        spec = rig.transport("dut")
        assert spec is not None  # load_rig guarantees it for lab rigs
        self.spec = spec
        self.driver = RealtimeDriver(world)
        try:
            self.transport = open_rig_transport(spec)
        except OSError as exc:  # e.g. the TCP service's port is in use
            raise BenchError(self._port_problem("cannot be opened", os_reason(exc))) from None
        # A serial port (device path, socket:// URL) that is gone means the gateway cannot
        # reach the bench; a pty or TCP service without a peer is only waiting for one.
        self._port_must_stay = isinstance(self.transport, SerialTransport)
        error = getattr(self.transport, "open_error", None)
        if error is not None:
            self.transport.close()
            raise BenchError(self._port_problem("cannot be opened", error))
        self.bridge = SerialBridge(
            self.driver,
            bus,
            self.transport,
            baud=spec.baud,
            echo=spec.echo,
            reply_timeout=rig.timing.reply_timeout_s,
        )
        self._thread = threading.Thread(target=self.driver.run, name="bench-world", daemon=True)
        self._thread.start()

    def _procedure(self, name: str, target: str = "", baud: int | None = None) -> None:
        cmd = self.rig.dut.trigger
        before = self.bridge.counters["requests"]
        if cmd:
            subprocess.run(
                shlex.split(cmd.format(procedure=name, target=target, baud=baud or "")),
                check=True,
                timeout=60,
            )
        else:
            if self.operator is None:
                from simulator.testing.operator import Operator

                self.operator = Operator()
            self.operator.confirm(f"make the gateway run: {name} {target}".rstrip())
        quiet = self.rig.dut.quiet_s
        reader = self.bridge.reader
        started = last_change = time.monotonic()  # after the operator's answer
        last_count = before
        while True:
            time.sleep(min(0.2, quiet / 4))
            count = self.bridge.counters["requests"]
            gone_since = reader.gone_since
            if (
                self._port_must_stay
                and gone_since is not None
                and time.monotonic() - gone_since > PORT_GONE_LIMIT_S
            ):
                raise BenchError(
                    self._port_problem(
                        f"gone for over {PORT_GONE_LIMIT_S:g} s during {name} {target}".rstrip(),
                        reader.last_gone_reason,
                    )
                )
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif count > before and time.monotonic() - last_change >= quiet:
                return
            elif count == before and time.monotonic() - started > max(NO_REQUEST_MIN_S, 4 * quiet):
                port = ""
                if reader.last_gone_reason:
                    state = "gone" if reader.gone_since is not None else "was gone"
                    port = f"; bridge_port {state}: {reader.last_gone_reason}"
                raise TimeoutError(
                    f"the gateway sent no request for {name} {target} within "
                    f"{max(NO_REQUEST_MIN_S, 4 * quiet):g} s (trigger: {cmd or 'operator'}){port}"
                )

    def _port_problem(self, what: str, reason: str) -> str:
        return f"rig {self.rig.name}: transport {_describe_port(self.spec)} {what}: {reason}"

    def scan_primary(self, addresses: Iterable[int] = range(0, 251)) -> None:
        self._procedure("scan_primary")

    def search_secondary(self, mask: str = "FFFFFFFFFFFFFFFF") -> None:
        self._procedure("search_secondary", mask)

    def read(self, target: int | SecondaryAddress, *, baud: int | None = None) -> None:
        self._procedure("read", str(target), baud)

    def idle(self, seconds: float) -> None:
        time.sleep(seconds)

    def close(self) -> None:
        """Stop the bridge, then check that every byte in was traced (issue 14): a mismatch
        is a bench fault (:class:`BenchError`), the device is not to blame."""
        from simulator.core.accounting import AccountingError
        from simulator.core.trace_invariants import check_bridge_bytes

        self.driver.stop_event.set()
        self._thread.join(timeout=5)
        self.bridge.close()
        self.driver.drain_into_world()  # what the threads reported after the loop ended
        try:
            check_bridge_bytes(self.world.trace, {self.bridge.name: self.bridge.counters})
        except AccountingError as exc:
            raise BenchError(f"bridge accounting: {exc}") from None


def _describe_port(spec: TransportSpec) -> str:
    """``"dut /dev/ttyUSB0"``: the transport's name and where it points."""
    where = spec.url or (f"tcp {spec.tcp}" if spec.tcp else f"pty {spec.pty_link or ''}")
    return f"{spec.name} {where.strip()}"


class Bench:
    """The session's bench for ``rig``; :meth:`setup` builds a fresh run per test."""

    def __init__(self, rig: Rig, operator: Any = None) -> None:
        self.rig = rig
        self.operator = operator  # asked by a lab DUT without a trigger (None: a terminal)
        self.current: BenchRun | None = None
        self._runs = 0

    @property
    def settings(self) -> MasterSettings:
        return master_settings(self.rig)

    def setup(
        self,
        meters: Sequence[MeterSpec],
        *,
        baud: int | None = None,
        settings: Callable[[MasterSettings], MasterSettings] | None = None,
    ) -> BenchRun:
        """A fresh world and bus with ``meters`` attached and the device under test on it.

        ``baud``: the bus (master) rate, default the DUT's configured baud; ``settings``: a
        function adjusting the sim DUT's settings (ignored in a lab: the gateway has its own).
        """
        self.teardown()
        self._runs += 1
        lab = self.rig.mode == "lab"
        world = World(self.rig.seed + self._runs - 1, realtime=lab)
        bus = Bus(world, baud=baud or self.rig.dut.mbus.baud)
        slaves = {}
        for spec in meters:
            slave = spec.build(world)
            bus.attach(slave)
            slaves[spec.id] = slave
        if lab:
            dut: Any = LabDut(self.rig, world, bus, self.operator)
        else:
            s = master_settings(self.rig, behaviour=True)
            # the simulated DUT is the registered kind's model (rig [dut] kind)
            dut = registry.get(self.rig.dut.kind).sim_dut(
                world, bus, settings(s) if settings else s
            )
        self.current = BenchRun(world, bus, slaves, dut, list(meters))
        return self.current

    def teardown(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None
