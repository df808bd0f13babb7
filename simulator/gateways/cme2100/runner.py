"""``meterbench run`` for ``kind = "cme2100"``: a CMe2100 commissioned by SMS on a wired bus.

The run: validate the scenario (every problem at once), build the wired segment exactly as
``kind = "mbus"`` does (:func:`simulator.mbus.runner.build`: bus, cable, slaves, master), put a
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

import csv
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from simulator.core import events
from simulator.core.trace import Trace, TraceEvent
from simulator.core.world import World
from simulator.gateways.cme2100.gateway import Cme2100
from simulator.gateways.cme2100.protocol import Direction, SmsProtocolError, encrypt
from simulator.gateways.cme2100.report import SmtpDelivery
from simulator.gateways.cme2100.scenario_model import (
    DEFAULT_WRONG_KEY,
    Cme2100Scenario,
    SmsModel,
    validate,
)
from simulator.gateways.cme2100.sender import PASSWORD_KEY, CommandSender
from simulator.mbus.runner import build as build_segment
from simulator.mbus.scenario_model import MbusScenario
from simulator.scenario import RunOptions, RunResult, ScenarioDoc

SMS_COLUMNS = (
    "sent_at",  # ISO 8601 UTC world time the SMS left its sender
    "sent_s",  # the same in world seconds
    "received_s",  # world seconds it reached the receiver ("" while in flight)
    "direction",  # to_gateway | from_gateway
    "fault",  # the script's fault for a bad SMS, else ""
    "plain",  # plaintext command or response (password masked)
    "counter",  # message counter of the frame, when it has one
    "outcome",  # accepted | rejected (gateway); decrypted | rejected (bench); in_flight
    "reason",  # rejection reason code (protocol.REASONS), else ""
    "text",  # the SMS text on the air
)
BENCH = "bench"  # trace source of the head-end
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
        self.latency = sc.gateway.latency_range()
        self._rng = world.rng("sms/latency")
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
    def _delay(self) -> float:
        lo, hi = self.latency
        return lo if lo == hi else self._rng.uniform(lo, hi)

    def _compose(self, i: int, sms: SmsModel) -> tuple[str, str, int | None]:
        """(SMS text, plaintext, counter) for a script entry, at its send time."""
        if sms.fault == "replay":
            assert self._last_text is not None  # validated: an earlier SMS exists
            return self._last_text, self._last_plain, None
        assert sms.text is not None
        plain = self.sc.fill(sms.text)
        if sms.fault == "plaintext":
            return plain, plain, None
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
        yield self.world.timeout(self._delay())
        self._to_gateway[text.strip()].append(rec)
        self.gateway.receive(text)

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
        yield self.world.timeout(self._delay())
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

    def flush(self) -> int:
        """Write the rows of SMS still in flight at the end of the run; return their count."""
        left = list(self._in_flight)
        for rec in left:
            self._finish(rec)
        return len(left)


class ReportFiles:
    """Push Report delivery adapter: writes each report as ``push-NN-YYYYMMDD.eml`` into
    ``out``, then sends it with ``smtp`` (a :class:`SmtpDelivery`) if given; an SMTP failure
    propagates, so the gateway records ``push failed`` and keeps the rows."""

    def __init__(self, out: Path, smtp: SmtpDelivery | None = None) -> None:
        self.out, self.smtp = out, smtp
        self.files: list[Path] = []

    def __call__(self, msg: EmailMessage) -> None:
        day = parsedate_to_datetime(str(msg["Date"])).strftime("%Y%m%d")
        path = self.out / f"push-{len(self.files) + 1:02d}-{day}.eml"
        path.write_bytes(msg.as_bytes())
        self.files.append(path)
        if self.smtp is not None:
            self.smtp(msg)


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

    def listener(self, gateway: str, progress: Any, end: float):
        def on_event(ev: TraceEvent) -> None:
            if ev.source != gateway:
                return
            if ev.kind == "readout_cycle":
                self.readout_cycles += 1
                self.readouts_ok += ev["ok"]
                self.readouts_failed += ev["failed"]
                progress(
                    min(ev.t / end, 1.0),
                    f"readout {self.readout_cycles}: {self.readouts_ok} ok, "
                    f"{self.readouts_failed} failed",
                )
            elif ev.kind == "install" and ev.get("phase") == "completed":
                self.meters_found = ev["found"]
                self.installed = tuple(ev["addresses"])
            elif ev.kind == "sms" and ev.get("direction") == "in":
                if ev["outcome"] == "accepted":
                    self.sms_accepted += 1
                else:
                    self.sms_rejected += 1
                    self.reasons[ev["reason"]] += 1
            elif ev.kind == "push":
                self.pushes.append(dict(ev.fields, t=ev.t))

        return on_event


def _segment_scenario(sc: Cme2100Scenario, hours: float) -> MbusScenario:
    """The wired part as an ``mbus`` scenario, for :func:`simulator.mbus.runner.build`."""
    return MbusScenario(
        kind="mbus", seed=sc.seed, start=sc.start, hours=hours, bus=sc.bus, slaves=sc.slaves
    )


def run(doc: ScenarioDoc, options: RunOptions) -> RunResult:
    """Run a ``cme2100`` scenario (see the module doc); :class:`ScenarioError` if invalid."""
    sc = validate(doc)
    seed, hours = options.resolve(sc.seed, sc.hours)
    end = hours * 3600.0
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("push-*.eml"):  # a rerun into the same folder: no stale reports
        old.unlink()
    trace_path, sms_path = out / "trace.jsonl", out / "sms.csv"
    progress = options.report
    smtp = (
        None
        if sc.smtp is None
        else SmtpDelivery(sc.smtp.host, sc.smtp.port, timeout=sc.smtp.timeout_s)
    )
    reports = ReportFiles(out, smtp)
    tally = Tally()
    g = sc.gateway
    with (
        trace_path.open("w", encoding="utf-8", newline="\n") as sink,
        sms_path.open("w", encoding="utf-8", newline="") as fcsv,
    ):
        writer = csv.writer(fcsv, lineterminator="\n")
        writer.writerow(SMS_COLUMNS)
        seg = build_segment(doc, _segment_scenario(sc, hours), seed, Trace(keep=False, sink=sink))
        world = seg.world
        world.trace.subscribe(tally.listener(g.name, progress, end))
        gateway = Cme2100(
            world,
            factory_key=g.factory_key,
            master=seg.master,
            mailer=reports,
            name=g.name,
            mail_from=g.mail_from,
        )
        head_end = HeadEnd(world, gateway, sc, writer)
        progress(0.0, "commissioning by SMS")
        world.run(until=end)
        # The end instant belongs to the run: a 48 h run from midnight ends with the 00:00
        # Push Report of the third day rather than just before it.
        while world.env.peek() == end:
            world.env.step()
        in_flight = head_end.flush()
        events = world.trace.count
    progress(1.0, "done")
    delivered = [p for p in tally.pushes if p["outcome"] == "delivered"]
    failed = [p for p in tally.pushes if p["outcome"] == "failed"]
    summary: dict[str, Any] = {
        "scenario": sc.name or doc.path.stem,
        "seed": seed,
        "sim_seconds": end,
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
        "trace_events": events,
    }
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
        ("trace events", str(events)),
    ]
    return RunResult(summary=summary, table=table, files=[trace_path, sms_path, *reports.files])
