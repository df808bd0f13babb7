"""Rig files: what a test bench consists of (``rigs/*.toml``), validated with file:line errors.

A rig names the device under test (model, firmware and its configured M-Bus settings, seed
002 §6.25 Table 7 with the defaults of seed 004), the transports that reach it, the timing
budgets of the lab's hardware and the features the bench offers. The pytest plugin
(:mod:`simulator.testing.plugin`) loads one rig per session; tests ask the rig for a feature
(``@pytest.mark.requires_feature("unit_load_emulation")``) instead of a concrete setup, so
one suite runs unchanged on the simulated rig and on a lab rig.

``mode = "sim"``: everything is simulated; the device under test is meterbench's own M-Bus
master model (:class:`simulator.mbus.master.Master`) in virtual time.
``mode = "lab"``: the device under test is a physical gateway; the bench emulates the slaves
behind the serial bridge on the transport named ``dut``.

Errors: :func:`load_rig` raises :class:`~simulator.scenario.ScenarioError` listing every
problem (unknown keys, bad values, cross-field problems) with file, line and dotted key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field

from simulator.mbus.settings import DutMbusSettings
from simulator.scenario import Issue, ScenarioError, StrictModel, load_toml
from simulator.sinks.outages import OutageModel

#: Features a rig may declare; a test that needs one is skipped (with the reason) elsewhere.
KNOWN_FEATURES: dict[str, str] = {
    "virtual_time": "the bench can run timing tests in virtual time (simulated DUT only)",
    "collision_emulation": "the emulated slaves can answer at once and collide on the wire",
    "baud_300": "the bench and the DUT can run 300 bit/s meters",
    "mixed_baud": "meters at 300 and 2400 bit/s on the same segment",
    "multi_telegram": "the DUT reads multi-telegram meters (FCB toggling, DIF 1F)",
    "unit_load_emulation": "hardware that draws a configurable number of unit loads",
    "late_reply_emulation": "the bench can answer after a configurable delay",
    "push_reports": "the DUT pushes reports to the bench's head-ends (CMe3100 push suite)",
    "push_http": "the DUT pushes HTTP reports",
    "push_ftp": "the DUT pushes FTP reports",
    "push_mail": "the DUT pushes e-mail reports",
    "event_reports": "the DUT sends event reports (x005)",
}

#: The default rig shipped in the package (used when the working directory has no rigs/).
PACKAGED_SIM_RIG = Path(__file__).parent / "testing" / "rigs" / "sim.toml"


#: ``[dut.mbus]``: the DUT's configured M-Bus settings (simulator/mbus/settings.py, the one
#: declaration of their defaults, ranges and sources; times in ms as the web UI shows them).
MBusSettings = DutMbusSettings


class SimBehaviour(StrictModel):
    """Sim rigs only: how the simulated master really behaves where it differs from its
    configured settings (a non-conforming firmware), to show that the suite catches it."""

    response_timeout_ms: float | None = Field(None, gt=0)
    readout_retries: int | None = Field(None, ge=0)
    selection_retries: int | None = Field(None, ge=0)
    init_idle_ms: float | None = Field(None, ge=0)
    collision_idle_ms: float | None = Field(None, ge=0)
    request_idle_ms: float | None = Field(None, ge=0)


class DeviceUnderTest(StrictModel):
    """The gateway being tested: ``model``/``firmware`` for the test record, its settings."""

    #: the device kind (registry name) whose model stands in for the DUT on a sim rig
    kind: str = "mbus"
    model: str = "CMe3100"
    firmware: str = "unknown"
    serial: str = ""
    mbus: MBusSettings = Field(default_factory=MBusSettings)
    sim: SimBehaviour = Field(default_factory=SimBehaviour)
    #: lab only: shell command that makes the gateway start the procedure named by
    #: ``{procedure}`` (e.g. via its console); empty = ask the operator on the terminal.
    trigger: str = ""
    #: lab only: the procedure is over after this much bus silence (s).
    quiet_s: float = Field(15.0, gt=0)
    #: shell command printing a JSON object with any of ``model``, ``serial``, ``firmware``
    #: read from the device (e.g. over its console); empty = the values above are the record's
    identify: str = ""
    #: lab only: the unit's SNMP agent, ``host`` or ``host:port`` (default port 161), that
    #: the push suite reads as an NMS does (CME3100.md §6, SNMPv2c); empty: none to read
    snmp: str = ""
    snmp_community: str = "public"

    def snmp_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of :attr:`snmp`, None when it is empty."""
        if not self.snmp:
            return None
        host, _, port = self.snmp.rpartition(":") if ":" in self.snmp else (self.snmp, "", "")
        return (host, int(port)) if port else (self.snmp, 161)


class TransportSpec(StrictModel):
    """How the bench reaches a physical master: a pyserial URL or a fresh pty."""

    name: str
    url: str | None = None
    pty: bool = False
    pty_link: str | None = None
    tcp: str | None = None  # HOST:PORT of a transparent M-Bus TCP service to offer
    #: a second TCP client while one is served: refused, or queued until the first leaves
    tcp_busy: Literal["refuse", "queue"] = "refuse"
    baud: Literal[300, 600, 1200, 2400, 4800, 9600] = 2400
    parity: Literal["N", "E"] = "N"
    echo: bool = False


class Timing(StrictModel):
    """Timing budgets of the lab hardware (ms) that widen the limits the suite checks.

    ``adapter_latency_ms`` (L): a request reaches the bench up to L after it was on the wire
    and a reply reaches the wire up to L after the bench sent it; each check relaxes its
    lower limit by as much as its span can look shorter (0, L or 2L) plus ``tolerance_ms``
    (:mod:`simulator.testing.budgets`, docs/rigs.md "Timing budgets").
    """

    adapter_latency_ms: float = Field(0.0, ge=0, le=1000)
    tolerance_ms: float = Field(1.0, ge=0, le=1000)
    #: how long (s) the bridge listens for a reply; default: the EN 13757-2 window + 20 ms
    reply_timeout_s: float | None = Field(None, gt=0, le=60)


class PushBench(StrictModel):
    """The CMe3100 push suite's bench (docs/cme3100-suite.md): the scenario whose meters the
    bench emulates, whose meter list and settings the gateway gets, and whose outages the
    head-ends play; ``hours`` how long the suite runs it (virtual time on a sim rig)."""

    scenario: str
    hours: float | None = Field(None, gt=0, le=24 * 31)
    #: Lab only: the head-end outages the receivers play, h after the pass starts (the
    #: scenario's own outages are timed for its virtual days); None: the scenario's.
    outages: list[OutageModel] | None = None
    #: Lab only: the bench's address on the gateway's network, put in the unit's settings
    #: when a receiver binds a wildcard (0.0.0.0); None: each receiver's own host.
    bench_host: str | None = None


Port = Field(0, ge=0, le=65535)  # 0: an ephemeral port (tests; read back after start)


class HttpReceiverSpec(StrictModel):
    """``[receivers.http]``: where the bench takes HTTP push reports (CME3100.md §5.1
    "HTTP page"); ``user`` set: Basic auth with ``user``/``password`` is required."""

    host: str = "127.0.0.1"
    port: int = Port
    path: str = Field("/", pattern=r"^/")
    user: str | None = None
    password: str = ""


class FtpReceiverSpec(StrictModel):
    """``[receivers.ftp]``: the bench's FTP server (CME3100.md §5.1 "FTP page"): one account,
    per-test directories under ``root`` (relative to the rig file; empty: a temporary
    directory removed at the end of the session)."""

    host: str = "127.0.0.1"
    port: int = Port
    user: str = "meterbench"
    password: str = "meterbench"
    root: str = ""


class SmtpReceiverSpec(StrictModel):
    """``[receivers.smtp]``: the bench's mail server (CME3100.md §5.1 "SMTP page");
    ``user`` set: AUTH with ``user``/``password`` is required."""

    host: str = "127.0.0.1"
    port: int = Port
    user: str | None = None
    password: str = ""


class TrapReceiverSpec(StrictModel):
    """``[receivers.snmp_traps]``: the bench's SNMP v2c trap/INFORM receiver (UDP;
    CME3100.md §7)."""

    host: str = "127.0.0.1"
    port: int = Port
    community: str = Field("public", min_length=1)


class ReceiversSpec(StrictModel):
    """``[receivers]``: the servers the bench starts for a session to receive what the
    gateway pushes (:class:`simulator.testing.receivers.Receivers`); a missing table: none."""

    http: HttpReceiverSpec | None = None
    ftp: FtpReceiverSpec | None = None
    smtp: SmtpReceiverSpec | None = None
    snmp_traps: TrapReceiverSpec | None = None

    def named(self) -> dict[str, HttpReceiverSpec | FtpReceiverSpec | SmtpReceiverSpec
                            | TrapReceiverSpec]:  # fmt: skip
        """The receivers the rig names, ``{table name: spec}``."""
        return {k: v for k in type(self).model_fields if (v := getattr(self, k)) is not None}


class Rig(StrictModel):
    """One bench (see module doc). ``path`` is filled in by :func:`load_rig`."""

    name: str
    description: str = ""
    mode: Literal["sim", "lab"] = "sim"
    seed: int = 1
    dut: DeviceUnderTest = Field(default_factory=DeviceUnderTest)
    transports: list[TransportSpec] = Field(default_factory=list)
    timing: Timing = Field(default_factory=Timing)
    features: list[str] = Field(default_factory=list)
    push: PushBench | None = None
    receivers: ReceiversSpec | None = None
    path: str = ""

    def resolve(self, relative: str) -> Path:
        """A path written in the rig file, relative to the rig file's folder."""
        p = Path(relative)
        return p if p.is_absolute() else Path(self.path).parent / p

    def has(self, feature: str) -> bool:
        return feature in self.features

    def transport(self, name: str) -> TransportSpec | None:
        return next((t for t in self.transports if t.name == name), None)


def _cross_check(rig: Rig) -> list[tuple[tuple, str]]:
    """Problems no single field shows: ``[(key path, message)]``."""
    out: list[tuple[tuple, str]] = []
    for i, feat in enumerate(rig.features):
        if feat not in KNOWN_FEATURES:
            out.append(
                (("features", i), f"unknown feature {feat!r}; known: {sorted(KNOWN_FEATURES)}")
            )
    if "virtual_time" in rig.features and rig.mode != "sim":
        out.append((("features",), "'virtual_time' needs mode = \"sim\""))
    names = [t.name for t in rig.transports]
    for i, t in enumerate(rig.transports):
        if names.count(t.name) > 1 and names.index(t.name) != i:
            out.append((("transports", i, "name"), f"duplicate transport name {t.name!r}"))
        ways = sum(x is not None and x is not False for x in (t.url, t.pty or None, t.tcp))
        if ways != 1:
            out.append((("transports", i), "give exactly one of url, pty = true, tcp"))
        if t.pty_link and not t.pty:
            out.append((("transports", i, "pty_link"), "pty_link needs pty = true"))
    if rig.mode == "lab" and rig.dut.sim.model_dump(exclude_none=True):
        out.append((("dut", "sim"), '[dut.sim] only applies to mode = "sim"'))
    if rig.dut.snmp and not re.fullmatch(r"[^:\s]+(:\d{1,5})?", rig.dut.snmp):
        out.append((("dut", "snmp"), f"{rig.dut.snmp!r} is not host or host:port"))
    if rig.mode == "lab" and rig.transport("dut") is None:
        out.append((("transports",), 'a lab rig needs a transport named "dut"'))
    if rig.mode == "sim" and rig.push is not None and rig.push.outages is not None:
        out.append(
            (
                ("push", "outages"),
                "only a lab rig plays [[push.outages]]; a sim rig plays the scenario's [[outages]]",
            )
        )
    if rig.push is not None and rig.push.outages:
        needs = {o.protocol: i for i, o in enumerate(rig.push.outages)}
        table = {"http": "http", "ftp": "ftp", "mail": "smtp"}
        for protocol, i in needs.items():
            if rig.receivers is None or getattr(rig.receivers, table[protocol]) is None:
                out.append(
                    (
                        ("push", "outages", i),
                        f"a {protocol} outage needs [receivers.{table[protocol]}]",
                    )
                )
    out += _kind_problems(rig)
    out += _receiver_problems(rig)
    return out


#: Addresses a physical gateway cannot reach on the bench host.
_LOOPBACK = ("127.", "localhost", "::1")
#: Hosts that bind every address (so share ports with every other host).
_WILDCARD = {"0.0.0.0", "::", ""}


def _receiver_problems(rig: Rig) -> list[tuple[tuple, str]]:
    if rig.receivers is None:
        return []
    out: list[tuple[tuple, str]] = []
    tcp: list[tuple[str, str, int]] = []
    for name, spec in rig.receivers.named().items():
        if rig.mode == "lab" and spec.host.startswith(_LOOPBACK):
            out.append(
                (
                    ("receivers", name, "host"),
                    f"{spec.host} is this host's loopback: a physical gateway cannot reach it; "
                    "give the bench's address on the gateway's network (or 0.0.0.0 with "
                    "[push] bench_host)",
                )
            )
        bench_host = rig.push.bench_host if rig.push is not None else None
        if rig.mode == "lab" and spec.host in _WILDCARD and not bench_host:
            out.append(
                (
                    ("receivers", name, "host"),
                    f"{spec.host!r} binds every address: the gateway's settings need the "
                    "bench's address on its network, give [push] bench_host",
                )
            )
        if name == "snmp_traps" or not spec.port:  # UDP may share a number with TCP
            continue
        for other, host, port in tcp:
            if port == spec.port and (host == spec.host or _WILDCARD & {host, spec.host}):
                msg = f"port {spec.port} is also the {other} receiver's ({host})"
                out.append((("receivers", name, "port"), msg))
        tcp.append((name, spec.host, spec.port))
    return out


def _kind_problems(rig: Rig) -> list[tuple[tuple, str]]:
    from simulator.devices import registry  # rigs are loaded before any device is built

    kind = rig.dut.kind
    if kind not in registry.names():
        return [(("dut", "kind"), f"unknown device kind {kind!r}; one of {registry.names()}")]
    if rig.mode == "sim" and registry.get(kind).sim_dut is None:
        return [(("dut", "kind"), f"kind {kind!r} has no simulated device under test")]
    return []


def load_rig(path: str | Path) -> Rig:
    """Load and validate a rig file; :class:`ScenarioError` lists every problem at once."""
    doc = load_toml(path)
    issues: list[Issue] = []
    try:
        rig = doc.validate(Rig)
    except ScenarioError as exc:
        raise ScenarioError(exc.issues) from None
    issues.extend(doc.issue(key, msg) for key, msg in _cross_check(rig))
    if issues:
        raise ScenarioError(issues)
    rig.path = str(Path(path))
    return rig


def default_rig_path(cwd: str | Path | None = None) -> Path:
    """``rigs/sim.toml`` under ``cwd`` if it exists, else the copy shipped in the package."""
    local = Path(cwd or Path.cwd()) / "rigs" / "sim.toml"
    return local if local.is_file() else PACKAGED_SIM_RIG
