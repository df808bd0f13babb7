"""The bench's receivers for a session: every server the rig's ``[receivers]`` table names.

::

    with Receivers.for_rig(rig) as rx:         # starts HTTP, FTP, SMTP, SNMP traps as named
        rx.http.url(rig.receivers.http.path)   # what the gateway is set up to push to
        rx.ftp.new_session("test_x")           # a fresh FTP root for one test
        rx.all()["smtp"].received              # Received records (simulator.sinks.receiver)

A receiver that cannot bind is a fault of the bench, not of the device under test: the
context manager stops what it already started and raises :class:`ReceiverUnavailable` (a
:class:`~simulator.testing.bench.BenchError`) naming the rig table, the receiver, the address
and the OS reason. Everything started is stopped (threads joined) on exit.

It lives in :mod:`simulator.testing`, not :mod:`simulator.sinks`, because it raises the
bench's error: the sinks stay free of the testing package (tests/test_import_graph.py).
"""

from __future__ import annotations

from pathlib import Path

from simulator.rig import ReceiversSpec, Rig
from simulator.sinks.ftp import FtpSink
from simulator.sinks.http import HttpSink
from simulator.sinks.receiver import HANG_S, BindError, Receiver
from simulator.sinks.smtp import SmtpSink
from simulator.sinks.snmp_traps import TrapReceiver
from simulator.testing.bench import BenchError


class ReceiverUnavailable(BenchError):
    """A receiver the rig names cannot listen: ``table`` (``receivers.ftp``), ``receiver``,
    ``address`` (``host:port``) and the OS ``reason``."""

    def __init__(self, rig: str, table: str, exc: BindError) -> None:
        self.table, self.receiver, self.reason = table, exc.receiver, exc.reason
        self.address = f"{exc.host}:{exc.port}"
        super().__init__(f"rig {rig!r} [{table}]: {exc}")


class Receivers:
    """The receivers of ``spec`` (see the module doc). ``base_dir``: where a relative FTP
    ``root`` is (the rig file's folder); ``hang_s``: the bound of a hang (s)."""

    def __init__(
        self,
        spec: ReceiversSpec | None,
        *,
        rig_name: str = "",
        base_dir: Path | None = None,
        hang_s: float = HANG_S,
    ) -> None:
        self.spec = spec or ReceiversSpec()
        self.rig_name = rig_name
        self.base_dir = base_dir or Path.cwd()
        self.hang_s = hang_s
        self.http: HttpSink | None = None
        self.ftp: FtpSink | None = None
        self.smtp: SmtpSink | None = None
        self.snmp_traps: TrapReceiver | None = None

    @classmethod
    def for_rig(cls, rig: Rig, **kw) -> Receivers:
        """The receivers of ``rig``'s ``[receivers]`` table (none if it has no table)."""
        base = Path(rig.path).parent if rig.path else None
        return cls(rig.receivers, rig_name=rig.name, base_dir=base, **kw)

    def _build(self, name: str) -> Receiver:
        s = getattr(self.spec, name)
        common = {"hang_s": self.hang_s}
        if name == "http":
            return HttpSink(s.host, s.port, user=s.user, password=s.password, **common)
        if name == "ftp":
            root = (self.base_dir / s.root) if s.root else None
            return FtpSink(s.host, s.port, user=s.user, password=s.password, root=root, **common)
        if name == "smtp":
            return SmtpSink(s.host, s.port, user=s.user, password=s.password, **common)
        return TrapReceiver(s.host, s.port, community=s.community, **common)

    def all(self) -> dict[str, Receiver]:
        """The running receivers, ``{table name: receiver}``."""
        named = ("http", "ftp", "smtp", "snmp_traps")
        return {n: r for n in named if (r := getattr(self, n)) is not None}

    def start(self) -> Receivers:
        """Start every receiver the spec names; raises :class:`ReceiverUnavailable`."""
        for name in self.spec.named():
            receiver = self._build(name)
            try:
                receiver.start()
            except BindError as exc:
                self.stop()
                raise ReceiverUnavailable(self.rig_name, f"receivers.{name}", exc) from exc
            setattr(self, name, receiver)
        return self

    def stop(self) -> None:
        """Stop every running receiver, last started first (idempotent)."""
        for name, receiver in reversed(list(self.all().items())):
            receiver.stop()
            setattr(self, name, None)

    def __enter__(self) -> Receivers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
