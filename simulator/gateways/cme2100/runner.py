"""``meterbench run`` for ``kind = "cme2100"``: a CMe2100 commissioned by SMS on a wired bus.

The run: validate the scenario (every problem at once), build the wired segment exactly as
``kind = "mbus"`` does (:func:`simulator.building.runner.build`: bus, cable, slaves, master), put a
:class:`~simulator.gateways.cme2100.gateway.Cme2100` on its master, and let the bench's
head-end (:class:`HeadEnd`, a :class:`~simulator.gateways.cme2100.sender.CommandSender`) send
the scenario's SMS script: encrypted commands at their world times, bad SMS where the script
says so. Each SMS reaches the other side after the scenario's SMS latency. The head-end
decrypts every response and switches to the new password when the gateway confirms it
(``OK communication password set``), as a real head-end would. After ``install`` the gateway
reads its meters every full hour at 2400 bit/s and sends a Push Report at 00:00 (seed 000).
The run covers world time 0 up to and including ``hours`` h, so a 48 h run from midnight
delivers both 00:00 reports.

Files in ``options.out_dir``:

* ``trace.jsonl``: every observable event (byte-identical for the same scenario and seed);
  the bench's own SMS events have source ``bench`` (see docs/cme2100-sms-protocol.md §9).
* ``sms.csv``: one row per SMS in either direction (:data:`SMS_COLUMNS`), with the outcome
  the receiver gave it (``accepted``/``rejected`` by the gateway with its ``reason``,
  ``decrypted``/``rejected`` by the bench, ``in_flight`` at the end of the run).
* ``push-NN-YYYYMMDD.eml``: every Push Report the gateway built, as RFC 5322 bytes (also
  when delivery to the optional ``[smtp]`` server failed; the gateway then keeps the rows for
  the next report, so the next file repeats them).

The summary (``summary.json``) has ``sms_sent``, ``sms_accepted``, ``sms_rejected``,
``sms_rejected_reasons``, ``responses``, ``meters_expected``, ``meters_found``,
``readouts_ok``, ``readouts_failed``, ``push_reports``, ``push_failed``, ``rows_per_report``
and more.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pydantic

from simulator.building.runner import build_segment
from simulator.building.scenario_model import MbusScenario
from simulator.core import events
from simulator.core.accounting import check_balance
from simulator.core.trace import TraceEvent
from simulator.core.trace_invariants import PushWindowOnce
from simulator.core.world import World
from simulator.devices.registry import BuildContext, DeviceKind, Outcome
from simulator.gateways.cme2100.gateway import Cme2100
from simulator.gateways.cme2100.network import SmsNetwork
from simulator.gateways.cme2100.pdu import encode_deliver
from simulator.gateways.cme2100.protocol import Direction, SmsProtocolError, encrypt, sms_body
from simulator.gateways.cme2100.scenario_model import (
    DEFAULT_WRONG_KEY,
    Cme2100Scenario,
    SmsModel,
    validate,
)
from simulator.gateways.cme2100.sender import PASSWORD_KEY, CommandSender
from simulator.sinks.base import Delivery, Report, Sink, WorldSink
from simulator.sinks.smtp_client import SmtpSend

SMS_COLUMNS = (
    "sent_at",  # ISO 8601 UTC world time the SMS left its sender
    "sent_s",  # the same in world seconds
    "received_s",  # world seconds it reached the receiver ("" while in flight)
    "direction",  # to_gateway | from_gateway
    "fault",  # the script's fault for a bad SMS, else ""
    "plain",  # plaintext command or response (password masked)
    "counter",  # message counter of the frame, when it has one
    "outcome",  # accepted | rejected (gateway); decrypted | rejected (bench); in_flight; lost
    "reason",  # rejection reason code (protocol.REASONS), else ""
    "text",  # the SMS text on the air
)
BENCH = "bench"  # trace source of the head-end
BENCH_NUMBER = "+46700000000"  # the head-end's phone number in the PDUs it sends (TP-OA)
#: What the ``non_gsm`` fault inserts: a typographic apostrophe, as a phone keyboard or
#: autocorrect adds it; the phone must then send the whole SMS UCS-2 coded.
NON_GSM_CHAR = "\u2019"
#: Counters of ``factory_key`` SMS: far above the factory key's commissioning counters.
FACTORY_FAULT_COUNTER = 2**31
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def mask(plain: str) -> str:
    """The plaintext with a password value replaced by ``*`` (as the gateway's trace does)."""
    if plain.startswith(PASSWORD_KEY + "="):
        return PASSWORD_KEY + "=" + "*" * len(plain.split("=", 1)[1])
    return plain


def tamper(text: str) -> str:
    """``text`` with its middle character changed (stays canonical Base64URL: the last
    character, whose unused bits must be zero, is never the middle one of a v1 frame)."""
    i = len(text) // 2
    replacement = _B64[(_B64.index(text[i]) + 1) % 64] if text[i] in _B64 else "A"
    return text[:i] + replacement + text[i + 1 :]


@dataclass
class SmsRecord:
    """One SMS on its way, becoming one row of sms.csv when its receiver has judged it."""

    sent_s: float
    direction: str
    text: str
    plain: str = ""
    fault: str = ""
    counter: int | None = None
    received_s: float | None = None
    outcome: str = "in_flight"
    reason: str = ""

    def row(self, world: World) -> list[Any]:
        return [
            world.clock(self.sent_s).isoformat(),
            round(self.sent_s, 6),
            "" if self.received_s is None else round(self.received_s, 6),
            self.direction,
            self.fault,
            self.plain,
            "" if self.counter is None else self.counter,
            self.outcome,
            self.reason,
            self.text,
        ]


class HeadEnd:
    """The bench's side of the SMS channel: sends the script, reads and judges the responses.

    Holds a :class:`CommandSender` (starting with the factory key), draws each SMS's network
    latency (s) from the stream ``sms/latency``, and writes finished :class:`SmsRecord` rows
    to ``writer`` (a ``csv.writer``) as they complete.
    """

    def __init__(self, world: World, gateway: Cme2100, sc: Cme2100Scenario, writer: Any) -> None:
        self.world, self.gateway, self.sc, self.writer = world, gateway, sc, writer
        self.sender = CommandSender(sc.gateway.factory_key)
        self.network = SmsNetwork(world, sc.gateway.latency_range(), sc.sms_network)
        self._concat_ref = 0  # reference of the UCS-2 SMS the bench sends (8-bit, TS 23.040)
        self._pending_password: str | None = None
        self._last_text: str | None = None
        self._last_plain = ""
        self._to_gateway: dict[str, deque[SmsRecord]] = defaultdict(deque)
        self._in_flight: list[SmsRecord] = []
        self.sent = 0
        self.responses: Counter[str] = Counter()
        world.trace.subscribe(self._on_trace)
        gateway.on_sms.append(self._on_response)
        for i, sms in enumerate(sc.script()):
            world.process(self._send_at(i, sms))

    # -- bench -> gateway -----------------------------------------------------------------
    def _compose(self, i: int, sms: SmsModel) -> tuple[str, str, int | None]:
        """(SMS text, plaintext, counter) for a script entry, at its send time."""
        if sms.fault == "replay":
            assert self._last_text is not None  # validated: an earlier SMS exists
            return self._last_text, self._last_plain, None
        assert sms.text is not None
        plain = self.sc.fill(sms.text)
        if sms.fault == "plaintext":
            return plain, plain, None
        if sms.fault == "non_gsm":  # pasted into a phone that added a typographic apostrophe
            counter = self.sender.next_counter
            text = self.sender.encrypt_command(plain)
            i = len(text) // 2
            return text[:i] + NON_GSM_CHAR + text[i:], plain, counter
        if sms.fault == "wrong_key":
            counter = self.sender.next_counter
            key = sms.key or DEFAULT_WRONG_KEY
            return encrypt(key, plain, counter=counter, direction=Direction.COMMAND), plain, counter
        if sms.fault == "factory_key":
            counter = FACTORY_FAULT_COUNTER + i
            text = encrypt(
                self.sc.gateway.factory_key, plain, counter=counter, direction=Direction.COMMAND
            )
            return text, plain, counter
        counter = self.sender.next_counter
        text = self.sender.encrypt_command(plain)
        if sms.fault == "tampered":
            return tamper(text), plain, counter
        if plain.startswith(PASSWORD_KEY + "="):
            self._pending_password = plain.split("=", 1)[1]
        return text, plain, counter

    def _send_at(self, i: int, sms: SmsModel):
        yield self.world.timeout(sms.seconds - self.world.now)
        text, plain, counter = self._compose(i, sms)
        self._last_text, self._last_plain = text, plain
        rec = SmsRecord(self.world.now, "to_gateway", text, mask(plain), sms.fault or "", counter)
        self.sent += 1
        self._in_flight.append(rec)
        self.world.emit(
            events.Sms(
                source=BENCH,
                direction="out",
                text=text,
                plain=rec.plain,
                fault=rec.fault,
                counter=counter,
            )
        )
        delays = self.network.route("to_gateway", text)
        if not delays:
            self._lost(rec)
            return
        for later in delays[1:]:  # a second copy (the SMS centre delivered again)
            copy = SmsRecord(rec.sent_s, rec.direction, text, rec.plain, rec.fault, counter)
            self._in_flight.append(copy)
            self.world.process(self._deliver_later(copy, sms, later))
        yield self.world.timeout(delays[0])
        self._deliver(rec, sms)

    def _deliver_later(self, rec: SmsRecord, sms: SmsModel, delay: float):
        yield self.world.timeout(delay)
        self._deliver(rec, sms)

    def _deliver(self, rec: SmsRecord, sms: SmsModel) -> None:
        """Hand one copy to the gateway: as text (GSM 7-bit), or as the SMS-DELIVER PDUs a
        phone sends when ``coding = "ucs2"``."""
        self._to_gateway[sms_body(rec.text)].append(rec)
        if sms.coding != "ucs2" and sms.fault != "non_gsm":
            self.gateway.receive(rec.text)
            return
        self._concat_ref = (self._concat_ref + 1) % 256
        when = self.world.clock()
        for pdu in encode_deliver(
            BENCH_NUMBER, rec.text, timestamp=when, reference=self._concat_ref, ucs2=True
        ):
            self.gateway.receive_pdu(pdu)

    def _lost(self, rec: SmsRecord) -> None:
        rec.outcome = "lost"
        self._finish(rec)

    def _on_trace(self, ev: TraceEvent) -> None:
        """The gateway's verdict on an SMS it received completes that SMS's row."""
        if ev.kind != "sms" or ev.source != self.gateway.name or ev.get("direction") != "in":
            return
        queue = self._to_gateway.get(ev["text"])
        if not queue:
            return
        rec = queue.popleft()
        rec.received_s, rec.outcome, rec.reason = ev.t, ev["outcome"], ev.get("reason") or ""
        if rec.counter is None:
            rec.counter = ev.get("counter")
        self._finish(rec)

    # -- gateway -> bench -----------------------------------------------------------------
    def _on_response(self, text: str) -> None:
        rec = SmsRecord(self.world.now, "from_gateway", text)
        self._in_flight.append(rec)
        self.world.process(self._receive_later(rec))

    def _receive_later(self, rec: SmsRecord):
        delays = self.network.route("from_gateway", rec.text)
        if not delays:
            self._lost(rec)
            return
        for later in delays[1:]:
            copy = SmsRecord(rec.sent_s, rec.direction, rec.text)
            self._in_flight.append(copy)
            self.world.process(self._judge_later(copy, later))
        yield self.world.timeout(delays[0])
        self._judge(rec)

    def _judge_later(self, rec: SmsRecord, delay: float):
        yield self.world.timeout(delay)
        self._judge(rec)

    def _judge(self, rec: SmsRecord) -> None:
        """The bench reads one response copy: decrypts it or rejects it (e.g. ``replay``)."""
        rec.received_s = self.world.now
        try:
            plain = self._decrypt(rec.text)
        except SmsProtocolError as err:
            rec.outcome, rec.reason = "rejected", err.reason
        else:
            rec.outcome, rec.plain = "decrypted", plain
            if plain == "OK communication password set" and self._pending_password:
                self.sender.switch_key(self._pending_password)
                self._pending_password = None
            elif plain.startswith(f"ERROR {PASSWORD_KEY}") or plain.startswith(
                "ERROR the new password"
            ):
                self._pending_password = None
        self.responses[rec.outcome] += 1
        self.world.emit(
            events.Sms(
                source=BENCH,
                direction="in",
                text=rec.text,
                outcome=rec.outcome,
                reason=rec.reason,
                plain=rec.plain,
            )
        )
        self._finish(rec)

    def _decrypt(self, text: str) -> str:
        """Plaintext of a response under the current key, else under any other key the
        head-end knows (a confirmation may still come under the previous key)."""
        keys = [self.sender.key, self.sc.gateway.factory_key, self.sc.gateway.password]
        first: SmsProtocolError | None = None
        for key in dict.fromkeys(keys):
            try:
                return self.sender.decrypt_response(text, key=key)
            except SmsProtocolError as err:
                first = first or err
                if err.reason != "bad_tag":
                    raise
        assert first is not None
        raise first

    # -- rows ---------------------------------------------------------------------------------
    def _finish(self, rec: SmsRecord) -> None:
        self._in_flight.remove(rec)
        self.writer.writerow(rec.row(self.world))

    def flush(self) -> tuple[int, int]:
        """Write the rows of SMS still in flight at the end of the run; return their count
        and how many of them were on their way to the gateway."""
        left = list(self._in_flight)
        for rec in left:
            self._finish(rec)
        return len(left), sum(1 for r in left if r.direction == "to_gateway")


class ReportFiles:
    """Push Report sink of a run: writes each report's bytes as ``push-NN-YYYYMMDD.eml`` into
    ``out``, then hands it to ``forward`` (the in-world sink, or :class:`SmtpSend` when the
    scenario has ``[smtp]``: real I/O on request); a failed forward is the gateway's failed
    push, which keeps the rows."""

    def __init__(self, out: Path, forward: Sink | None = None) -> None:
        self.out = out
        self.forward: Sink = forward if forward is not None else WorldSink(status=250)
        self.files: list[Path] = []

    def deliver(self, report: Report) -> Delivery:
        date = BytesHeaderParser().parsebytes(report.body)["Date"]
        day = parsedate_to_datetime(str(date)).strftime("%Y%m%d")
        path = self.out / f"push-{len(self.files) + 1:02d}-{day}.eml"
        path.write_bytes(report.body)
        self.files.append(path)
        return self.forward.deliver(report)


@dataclass
class Tally:
    """Counts taken from the trace as the run goes."""

    readout_cycles: int = 0
    readouts_ok: int = 0
    readouts_failed: int = 0
    meters_found: int | None = None
    installed: tuple[str, ...] = ()
    sms_accepted: int = 0
    sms_rejected: int = 0

    def __post_init__(self) -> None:
        self.reasons: Counter[str] = Counter()
        self.pushes: list[dict[str, Any]] = []
        #: for the pictures: (end s, ok, failed) per readout cycle, (t s, accepted) per SMS
        self.cycles: list[tuple[float, int, int]] = []
        self.sms: list[tuple[float, bool]] = []

    def listener(self, gateway: str):
        def on_event(ev: TraceEvent) -> None:
            if ev.source != gateway:
                return
            if ev.kind == "readout_cycle":
                self.readout_cycles += 1
                self.readouts_ok += ev["ok"]
                self.readouts_failed += ev["failed"]
                self.cycles.append((ev.t, ev["ok"], ev["failed"]))
            elif ev.kind == "install" and ev.get("phase") == "completed":
                self.meters_found = ev["found"]
                self.installed = tuple(ev["addresses"])
            elif ev.kind == "sms" and ev.get("direction") == "in":
                self.sms.append((ev.t, ev["outcome"] == "accepted"))
                if ev["outcome"] == "accepted":
                    self.sms_accepted += 1
                else:
                    self.sms_rejected += 1
                    self.reasons[ev["reason"]] += 1
            elif ev.kind == "push":
                self.pushes.append(dict(ev.fields, t=ev.t))

        return on_event


def _segment_scenario(sc: Cme2100Scenario, hours: float) -> MbusScenario:
    """The wired part as an ``mbus`` scenario, for :func:`simulator.building.runner.build`."""
    return MbusScenario(
        kind="mbus", seed=sc.seed, start=sc.start, hours=hours, bus=sc.bus, slaves=sc.slaves
    )


class Cme2100Run:
    """The wired segment, the gateway on its master, and the head-end's SMS script."""

    def __init__(self, ctx: BuildContext) -> None:
        sc: Cme2100Scenario = ctx.scenario
        self.ctx, self.sc = ctx, sc
        for old in ctx.out.glob("push-*.eml"):  # a rerun into the same folder: no stale reports
            old.unlink()
        smtp = (
            None
            if sc.smtp is None
            else SmtpSend(sc.smtp.host, sc.smtp.port, timeout=sc.smtp.timeout_s)
        )
        self.reports = ReportFiles(ctx.out, smtp)
        self.tally = Tally()
        g = sc.gateway
        writer = ctx.csv("sms.csv", SMS_COLUMNS)
        self.seg = build_segment(ctx.world, ctx.doc, _segment_scenario(sc, ctx.hours))
        ctx.world.trace.subscribe(self.tally.listener(g.name))
        # each value row delivered at most once (a failed report keeps its rows for the next)
        self.once = PushWindowOnce()
        ctx.world.trace.subscribe(self.once)
        self.gateway = Cme2100(
            ctx.world,
            factory_key=g.factory_key,
            master=self.seg.master,
            sink=self.reports,
            name=g.name,
            mail_from=g.mail_from,
        )
        self.head_end = HeadEnd(ctx.world, self.gateway, sc, writer)

    def advance(self, until: float, last: bool) -> None:
        world = self.ctx.world
        world.run(until=until)
        if last:
            # The end instant belongs to the run: a 48 h run from midnight ends with the 00:00
            # Push Report of the third day rather than just before it.
            while world.env.peek() == until:
                world.env.step()

    def status(self) -> str:
        t = self.tally
        if not t.readout_cycles:
            return "commissioning by SMS"
        return f"readout {t.readout_cycles}: {t.readouts_ok} ok, {t.readouts_failed} failed"

    def finish(self) -> Outcome:
        sc, g, hours = self.sc, self.sc.gateway, self.ctx.hours
        tally, gateway, head_end, reports = self.tally, self.gateway, self.head_end, self.reports
        seg = self.seg
        in_flight, to_gateway = head_end.flush()
        self.once.check()
        net = head_end.network.counts
        # every SMS copy the network delivers to the gateway was accepted, rejected or is
        # still on its way; every SMS sent was delivered or lost (issue 14, issue 17)
        check_balance(
            g.name, "SMS sent + second copies", head_end.sent + net["to_gateway"]["duplicated"],
            accepted=tally.sms_accepted, rejected=tally.sms_rejected, in_flight=to_gateway,
            lost=net["to_gateway"]["lost"],
        )  # fmt: skip
        delivered = [p for p in tally.pushes if p["outcome"] == "delivered"]
        failed = [p for p in tally.pushes if p["outcome"] == "failed"]
        summary: dict[str, Any] = {
            "slaves": len(seg.slaves),
            "security_state": gateway.state,
            "recipient": gateway.recipient,
            "sms_sent": head_end.sent,
            "sms_accepted": tally.sms_accepted,
            "sms_rejected": tally.sms_rejected,
            "sms_rejected_reasons": dict(sorted(tally.reasons.items())),
            "sms_in_flight": in_flight,
            "responses": sum(head_end.responses.values()),
            "responses_decrypted": head_end.responses["decrypted"],
            "meters_expected": g.expected_meters,
            "meters_found": tally.meters_found,
            "installed": list(tally.installed),
            "readout_cycles": tally.readout_cycles,
            "readouts_ok": tally.readouts_ok,
            "readouts_failed": tally.readouts_failed,
            "push_reports": len(delivered),
            "push_failed": len(failed),
            "push_skipped": sum(1 for p in tally.pushes if p["outcome"] == "skipped"),
            "rows_per_report": [p["rows"] for p in delivered],
            "report_files": [f.name for f in reports.files],
            "smtp": None if sc.smtp is None else f"{sc.smtp.host}:{sc.smtp.port}",
        }
        if sc.sms_network.active:  # only then: summaries of runs without it stay as they were
            summary["sms_network"] = net
        rejected = ", ".join(f"{k} {v}" for k, v in summary["sms_rejected_reasons"].items())
        table = [
            ("gateway", f"{g.name} ({gateway.state}), reports to {gateway.recipient or '-'}"),
            (
                "SMS sent / accepted / rejected",
                f"{head_end.sent} / {tally.sms_accepted} / {tally.sms_rejected}"
                + (f" ({rejected})" if rejected else ""),
            ),
            ("responses decrypted", f"{head_end.responses['decrypted']} of {summary['responses']}"),
            (
                "meters found / expected",
                f"{'-' if tally.meters_found is None else tally.meters_found} / {g.expected_meters}",
            ),
            ("readouts ok / failed", f"{tally.readouts_ok} / {tally.readouts_failed}"),
            (
                "push reports delivered",
                f"{len(delivered)} (rows {summary['rows_per_report']}"
                + (f", {len(failed)} failed" if failed else "")
                + ")",
            ),
            ("sim time", f"{hours:g} h"),
        ]
        return Outcome(summary, table, list(reports.files))

    def plots(self, out: Path) -> list[Path]:
        """readout_rounds.png and sms_and_push.png (:mod:`simulator.report.figures`)."""
        from simulator.report import figures as fg

        run = fg.RunLabel(self.ctx.name, self.ctx.seed)
        start, t = self.ctx.world.start, self.tally
        rounds = [fg.Round(at, ok, failed, ok + failed) for at, ok, failed in t.cycles]
        marks = [fg.Mark("SMS command", at, ok) for at, ok in t.sms]
        marks += [
            fg.Mark("Push Report", p["t"], p["outcome"] == "delivered")
            for p in t.pushes
            if p["outcome"] != "skipped"
        ]
        return [
            fg.rounds_plot(rounds, start, self.ctx.end, out / "readout_rounds.png", run),
            fg.timeline_plot(
                marks,
                start,
                self.ctx.end,
                out / "sms_and_push.png",
                run,
                "SMS commands and Push Reports",
                labels=("accepted / delivered", "rejected / failed"),
                lane_name="channel (name)",
            ),
        ]


class Cme2100Summary(pydantic.BaseModel):
    """Figures of a ``cme2100`` run (docs/cme2100-sms-protocol.md)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    slaves: int = pydantic.Field(description="slaves on the wired bus")
    security_state: str = pydantic.Field(description="factory | password_set at the end")
    recipient: str | None = pydantic.Field(description="Push Report e-mail recipient")
    sms_sent: int = pydantic.Field(description="SMS the head-end sent")
    sms_accepted: int
    sms_rejected: int
    sms_rejected_reasons: dict[str, int] = pydantic.Field(description="reason code -> count")
    sms_in_flight: int = pydantic.Field(description="SMS not yet delivered at the end")
    responses: int
    responses_decrypted: int
    meters_expected: int
    meters_found: int | None = pydantic.Field(description="None until install completed")
    installed: list[str] = pydantic.Field(description="secondary addresses installed")
    readout_cycles: int
    readouts_ok: int
    readouts_failed: int
    push_reports: int = pydantic.Field(description="Push Reports delivered")
    push_failed: int
    push_skipped: int
    rows_per_report: list[int]
    report_files: list[str]
    smtp: str | None = pydantic.Field(description="host:port of the real SMTP server, if any")
    sms_network: dict[str, dict[str, int]] | None = pydantic.Field(
        None,
        description="with [sms_network]: to_gateway / from_gateway -> lost, late, duplicated",
    )


DEVICE = DeviceKind(
    name="cme2100",
    title="a CMe2100 commissioned by SMS on a wired M-Bus",
    scenario=Cme2100Scenario,
    validate=validate,
    build=Cme2100Run,
    summary=Cme2100Summary,
    plots=True,
)
