"""The CMe3100 Stream Plugin (seed 003): filters, last telegram per meter, HTTP push.

Receivers (CMeX50) hand every telegram they decode to the plugin (:meth:`StreamPlugin.receive`)
with its RSSI. The plugin

1. checks the frame (CRCs; a bad frame is counted and traced, never fatal);
2. counts it in the :class:`~.analyzer.Analyzer` and applies the filters (seed 003 §5.2/§6.1:
   manufacturer, device type, allow list, radio mode; an empty filter accepts everything);
3. keeps only the **last** accepted telegram per meter (per whole address: manufacturer, ID,
   version, device type) until the next push (§3.2: "If a
   meter is sending more frequently than scheduled push interval, the CMe3100 will only push
   the last received meter telegram");
4. at each ``receiving.server.push.cron`` firing hands the report for ``receiving.server.url``
   to its sink (:mod:`simulator.sinks.base`: the in-world :class:`~simulator.sinks.base.
   WorldSink` by default; :class:`~simulator.sinks.http_client.HttpPost` posts it for real,
   HTTP POST with chunked transfer encoding, §9.3.1, one chunk per line), one line per meter
   in the stream report format (§9.3.2)::

       <product serial>;<device identification>;<YYYY-MM-DD hh:mm:ss>;<value data count>;<telegram>

   product serial 8 digits, device identification the meter's 8-digit ID (hex digits for
   a non-BCD ID, as decoders print it), date the reception
   time (UTC), value data count ``00``, telegram the wired container
   (:mod:`.container`, hex, upper case);
5. clears the memory after a successful push (any HTTP 2xx, e.g. 204 No Content); a failed push (an HTTP error status,
   or the server down) keeps everything and is retried every ``retry_s`` (s) until it goes
   through (the next scheduled push also retries). The manual gives no retry interval; 60 s
   is the bench's choice. Nothing is lost: a newer telegram of the same meter replaces the
   older one, as between any two pushes.

Trace events (source ``plugin/<serial>``): ``stream_rx`` (meter, receiver, rssi_dbm,
accepted), ``stream_bad_telegram`` (offset, reason), ``stream_push`` (meters, ok, status,
attempt, bytes), ``analyzer_reset``.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.core import events as ev
from simulator.core.accounting import check_balance
from simulator.core.world import World
from simulator.gateways.cme3100.analyzer import RESET_PERIOD_S, Analyzer
from simulator.gateways.cme3100.container import wired_container
from simulator.gateways.cme3100.settings import StreamSettings
from simulator.sinks.base import Report, Sink, WorldSink
from simulator.wmbus.frame import LinkHeader, WMBusError, decode_frame
from simulator.wmbus.receiver import RADIO_MODES

#: Default retry interval after a failed push (s); a bench choice (see the module doc).
RETRY_S = 60.0
#: Content type of a stream report (the bench's choice; sinks accept any text/plain).
REPORT_CONTENT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class ProductIdentity:
    """What the product says about itself in ``User-Agent`` (seed 003 §9.1)."""

    serial: int = 161
    imei: str = "356000000000000"
    model: str = "CMe3100"
    hardware: str = "R1A"
    firmware: str = "1.9.4"
    software: str = "1.8.12"

    def user_agent(self) -> str:
        """``TC65i/<imei> Profile/IMP-NG Configuration/CLDC-1.1 Model/<model> Hardware/<hw>
        Firmware/<fw> Application/<sw> Serial/<serial>`` (serial: 10 digits)."""
        return (
            f"TC65i/{self.imei} Profile/IMP-NG Configuration/CLDC-1.1 Model/{self.model} "
            f"Hardware/{self.hardware} Firmware/{self.firmware} "
            f"Application/{self.software} Serial/{self.serial:010d}"
        )


@dataclass
class Pending:
    """The last accepted telegram of one meter since the last push."""

    meter_id: str  # 8 digits (hex digits for a non-BCD ID)
    t: float
    wired: bytes


class StreamPlugin:
    """The plugin of one CMe3100 in ``world``; call :meth:`start` to run its schedules."""

    def __init__(
        self,
        world: World,
        settings: StreamSettings | None = None,
        *,
        identity: ProductIdentity | None = None,
        a: int = 0,
        retry_s: float = RETRY_S,
        sink: Sink | None = None,
    ) -> None:
        self.world = world
        self.settings = settings or StreamSettings()
        self.identity = identity or ProductIdentity()
        self.a = a
        self.retry_s = retry_s
        #: where reports go (:mod:`simulator.sinks.base`); default: an in-world sink
        self.sink: Sink = sink if sink is not None else WorldSink()
        self.source = f"plugin/{self.identity.serial:08d}"
        self.analyzer = Analyzer(world.now)
        #: last telegram per whole address (:attr:`LinkHeader.address_key`)
        self.memory: dict[tuple, Pending] = {}
        self.pushed_meters = 0
        self.failed_pushes = 0
        # accounting (issue 14): telegrams = bad + filtered + accepted, and
        # accepted = pushed + replaced (a newer one of the same meter came first) + pending
        self.telegrams = self.bad = self.filtered = self.accepted = self.replaced = 0
        self._attempt = 0
        self._wake = None

    # -- receiving ------------------------------------------------------------------------
    def accepts(self, link: LinkHeader, mode: str | None) -> bool:
        """The filters of seed 003 §5.2/§6.1 (an empty filter accepts everything)."""
        s = self.settings
        if s.filter_manufacturer and link.manufacturer not in s.filter_manufacturer:
            return False
        if s.filter_device_type and link.device_type not in s.filter_device_type:
            return False
        if s.allow_list and link.id not in s.allow_list:
            return False
        return mode is None or mode in RADIO_MODES[s.radio_mode]

    def receive(
        self,
        raw: bytes,
        *,
        rssi_dbm: float,
        mode: str | None = None,
        receiver_serial: int | None = None,
        fmt: str | None = None,
        receiver: str = "",
    ) -> bool:
        """Take one telegram (on-air bytes, L to last CRC) heard at ``rssi_dbm`` (dBm).

        Returns True if it was accepted into the push memory. A frame that fails its CRC or
        length checks is traced as ``stream_bad_telegram`` and dropped.
        """
        if not self.settings.service_enabled:
            return False
        self.telegrams += 1
        try:
            _fmt, payload = decode_frame(raw, fmt, crc=True)
            link = LinkHeader.from_payload(payload)
            wired = wired_container(
                bytes([len(payload)]) + payload,
                rssi_dbm=round(rssi_dbm),
                a=self.a,
                fabrication_no=receiver_serial,
            )
        except (WMBusError, ValueError) as exc:
            self.bad += 1
            self.world.emit(
                ev.StreamBadTelegram(
                    source=self.source,
                    receiver=receiver,
                    offset=getattr(exc, "offset", None),
                    reason=getattr(exc, "reason", str(exc)),
                )
            )
            return False
        ok = self.accepts(link, mode)
        self.analyzer.update(
            link.id_text, link.manufacturer, link.device_type, rssi_dbm, ok, link.address_key
        )
        self.world.emit(
            ev.StreamRx(
                source=self.source,
                meter=link.id_text,
                receiver=receiver,
                rssi_dbm=round(float(rssi_dbm), 1),
                accepted=ok,
            )
        )
        if ok:
            self.accepted += 1
            self.replaced += link.address_key in self.memory
            self.memory[link.address_key] = Pending(link.id_text, self.world.now, wired)
        else:
            self.filtered += 1
        return ok

    def check_accounting(self) -> None:
        """Raise :class:`~simulator.core.accounting.AccountingError` unless every telegram
        handed in is bad, filtered or accepted, and every accepted one was pushed, replaced by
        a newer one of the same meter, or is still pending (issue 14)."""
        check_balance(
            self.source, "telegrams", self.telegrams,
            bad=self.bad, filtered=self.filtered, accepted=self.accepted,
        )  # fmt: skip
        check_balance(
            self.source, "accepted", self.accepted,
            pushed=self.pushed_meters, replaced=self.replaced, pending=len(self.memory),
        )  # fmt: skip

    def analyzer_csv(self) -> str:
        """The analyzer's CSV export as the UI shows it: only the meters the filters accepted
        when ``show.only.filtered`` is true (seed 003 §6.1, :mod:`.analyzer`)."""
        return self.analyzer.to_csv(show_only_filtered=self.settings.show_only_filtered)

    # -- pushing --------------------------------------------------------------------------
    def report_lines(self, pending: list[Pending]) -> list[bytes]:
        """Stream report lines (seed 003 §9.3.2), one per meter, sorted by meter ID."""
        out = []
        for p in sorted(pending, key=lambda p: (p.meter_id, p.wired)):
            date = self.world.clock(p.t).strftime("%Y-%m-%d %H:%M:%S")
            out.append(
                f"{self.identity.serial:08d};{p.meter_id};{date};00;"
                f"{p.wired.hex().upper()}\n".encode()
            )
        return out

    def push(self) -> bool:
        """Push the memory now; True on success (or nothing to push / no server set)."""
        url = self.settings.receiving_server_url
        if not self.memory or url is None or not self.settings.service_enabled:
            return True
        snapshot = dict(self.memory)
        lines = self.report_lines(list(snapshot.values()))
        self._attempt += 1
        report = Report(
            url, tuple(lines), REPORT_CONTENT_TYPE, (("User-Agent", self.identity.user_agent()),)
        )
        delivery = self.sink.deliver(report)
        ok = delivery.ok and delivery.status is not None and 200 <= delivery.status < 300
        received = [p.t for p in snapshot.values()]
        self.world.emit(
            ev.StreamPush(
                source=self.source,
                meters=len(snapshot),
                ok=ok,
                status=delivery.status if delivery.status is not None else delivery.reason,
                attempt=self._attempt,
                bytes=sum(len(line) for line in lines),
                window=[round(min(received), 6), round(max(received), 6)],
            )
        )
        if not ok:
            self.failed_pushes += 1
            return False
        for meter_id, p in snapshot.items():
            if self.memory.get(meter_id) is p:  # not replaced by a newer telegram meanwhile
                del self.memory[meter_id]
        self.pushed_meters += len(snapshot)
        self._attempt = 0
        return True

    def _push_loop(self):
        failed = False
        while True:
            now = self.world.now
            nxt = self.settings.push_cron.next_after(self.world.clock()) - self.world.start
            wait = nxt.total_seconds() - now
            if failed:
                wait = min(wait, self.retry_s)
            yield self.world.timeout(wait)
            failed = not self.push()

    def _analyzer_loop(self):
        while True:
            yield self.world.timeout(RESET_PERIOD_S)
            self.analyzer.reset(self.world.now)
            self.world.emit(ev.AnalyzerReset(source=self.source))

    def start(self) -> StreamPlugin:
        """Start the push schedule and the daily analyzer reset as SimPy processes."""
        self.world.process(self._push_loop())
        self.world.process(self._analyzer_loop())
        return self
