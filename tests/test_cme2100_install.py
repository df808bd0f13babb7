"""``install`` on a simulated wired bus, hourly readouts, and the 00:00 Push Report by SMTP."""

from __future__ import annotations

import pytest

from simulator.core.world import World
from simulator.gateways.cme2100.gateway import READOUT_BAUD, Cme2100
from simulator.gateways.cme2100.report import read_report_rows
from simulator.gateways.cme2100.sender import CommandSender
from simulator.mbus import bus as mbus_bus
from simulator.mbus import master as mbus_master
from simulator.mbus import slave as mbus_slave
from simulator.mbus.address import SecondaryAddress
from simulator.meters.wired import TEMPLATES
from simulator.sinks.base import WorldSink
from simulator.sinks.smtp import SmtpSink
from simulator.sinks.smtp_client import SmtpSend

FACTORY_KEY = "Fk7#qZ2m!Lw9Rt4x"
PASSWORD = "Pa55-word_2026!x"
HOUR = 3600.0
DAY = 86400.0

#: The installation: (id, manufacturer, medium template).
METERS = [(12345678, "ELV", "heat"), (20250001, "KAM", "water"), (31000042, "ABB", "electricity")]


def build(world: World, meters=METERS, sink=None, primaries=None):
    bus = mbus_bus.Bus(world, baud=READOUT_BAUD)
    for n, (ident, manufacturer, medium) in enumerate(meters):
        template = TEMPLATES[medium]
        address = SecondaryAddress(ident, manufacturer, 1, template.medium)
        records = template.build(world.rng(f"records/{ident}"), 1)
        primary = 0 if primaries is None else primaries[n]
        bus.attach(mbus_slave.Slave(world, address, records=records, primary=primary))
    master = mbus_master.Master(bus)
    return Cme2100(world, factory_key=FACTORY_KEY, master=master, sink=sink)


class Phone:
    """The bench's sender, handing SMS to the gateway and decrypting what comes back."""

    def __init__(self, world: World, gateway: Cme2100) -> None:
        self.world, self.gateway = world, gateway
        self.sender = CommandSender(FACTORY_KEY)
        self.replies: list[tuple[float, str]] = []
        gateway.on_sms.append(
            lambda t: self.replies.append((world.now, self.sender.decrypt_response(t)))
        )

    def send(self, command: str) -> None:
        self.gateway.receive(self.sender.encrypt_command(command))
        self.world.run(self.world.now + 1)

    def commission(self, email: str, expected: int) -> None:
        self.send(self.sender.password_command(PASSWORD))
        self.sender.switch_key(PASSWORD)
        self.send(f"qset email {email}")
        self.send(f"install {expected}")


def test_install_finds_the_meters_and_reports_found_vs_expected():
    world = World(seed=11)
    gateway = build(world)
    phone = Phone(world, gateway)
    phone.commission("ops@example.com", 4)
    world.run(world.now + HOUR - 60)
    texts = [t for _, t in phone.replies]
    assert texts[-2:] == [
        "installation started, expecting 4 meters",
        "installation completed: found 3 of 4 expected meters MISMATCH",
    ]
    done = world.trace.select("install", phase="completed")[0]
    expected = sorted(str(SecondaryAddress(i, m, 1, TEMPLATES[k].medium)) for i, m, k in METERS)
    assert sorted(done["addresses"]) == expected
    # the completion SMS comes after the search's bus traffic, in world time
    started = world.trace.select("install", phase="started")[0].t
    assert done.t > started
    assert world.trace.select("frame", direction="m2s")


def test_hourly_readout_at_2400_and_daily_push_reaches_smtp_with_every_meter():
    with SmtpSink() as sink:
        world = World(seed=5)
        gateway = build(world, sink=SmtpSend("127.0.0.1", sink.port))
        phone = Phone(world, gateway)
        phone.commission("ops@example.com", 3)
        world.run(DAY + 10 * 60)  # past 00:00 of day 2
        cycles = world.trace.select("readout_cycle")
        assert [c["started"] for c in cycles] == pytest.approx([h * HOUR for h in range(1, 25)])
        assert all((c["ok"], c["failed"], c["baud"]) == (3, 0, 2400) for c in cycles)
        frames = world.trace.select("frame", direction="m2s")
        assert {f["baud"] for f in frames} == {2400}
        (push,) = world.trace.select("push")
        assert (push["outcome"], push["meters"]) == ("delivered", 3)
        assert push.t == pytest.approx(DAY)
        (msg,) = sink.wait_for(1)
    assert msg["To"] == "ops@example.com"
    assert sink.envelopes[0].rcpt_tos == ("ops@example.com",)
    rows = read_report_rows(msg)
    assert len(rows) == push["rows"]
    by_meter = {r["id"] for r in rows if r["status"] == "ok"}
    assert by_meter == {f"{i:08d}" for i, _, _ in METERS}
    # 23 hourly readouts (01:00..23:00) before the 00:00 report, each with records
    stamps = {r["timestamp"] for r in rows if r["id"] == "12345678"}
    assert len(stamps) == 23
    energy = [
        float(r["value"])
        for r in rows
        if r["id"] == "12345678" and r["quantity"] == "energy" and r["storage"] == "0"
    ]
    assert len(energy) == 23 and energy == sorted(energy)


def test_a_failed_delivery_keeps_the_values_for_the_next_report():
    sink = WorldSink(status=250)
    sink.fail_next(1, status=None)  # the mail server is down at the first push

    world = World(seed=2)
    gateway = build(world, meters=METERS[:1], sink=sink)
    Phone(world, gateway).commission("ops@example.com", 1)
    world.run(2 * DAY + 60)
    first, second = world.trace.select("push")
    assert (first["outcome"], second["outcome"]) == ("failed", "delivered")
    assert first["error"] == "unreachable"
    assert second["rows"] > first["rows"] > 0
    (delivered,) = sink.received
    stamps = {r["timestamp"] for r in read_report_rows(delivered.body)}
    assert len(stamps) == 23 + 24  # day 1 kept, day 2 added


PRIMARIES = [7, 42, 250]


def test_install_by_primary_address_scans_reads_and_names_the_meters():
    sink = WorldSink(status=250)
    world = World(seed=4)
    gateway = build(world, sink=sink, primaries=PRIMARIES)
    phone = Phone(world, gateway)
    phone.send(phone.sender.password_command(PASSWORD))
    phone.sender.switch_key(PASSWORD)
    phone.send("qset email ops@example.com")
    phone.send("install primary 3")
    # SND_NKE to 0..250 with the CMe3100 timing (1 s timeout, one selection retry): ~84 min
    world.run(2 * HOUR)
    texts = [t for _, t in phone.replies]
    assert texts[-2:] == [
        "installation started, expecting 3 meters by primary address",
        "installation completed: found 3 of 3 expected meters OK",
    ]
    started, done = world.trace.select("install")
    assert started["method"] == done["method"] == "primary_scan"
    assert done["primary_addresses"] == PRIMARIES
    # each primary address was read once to learn the secondary address it answers with
    expected = [str(SecondaryAddress(i, m, 1, TEMPLATES[k].medium)) for i, m, k in METERS]
    assert done["addresses"] == expected
    assert world.trace.select("scan")[0]["found"] == PRIMARIES
    assert gateway.installed == PRIMARIES

    world.run(DAY + 60)  # hourly readouts by primary address, then the 00:00 report
    cycles = world.trace.select("readout_cycle")
    assert cycles and all((c["ok"], c["failed"]) == (3, 0) for c in cycles)
    (delivered,) = sink.received
    rows = read_report_rows(delivered.body)
    assert {r["secondary_address"] for r in rows} == set(expected)
    assert {r["id"] for r in rows} == {f"{i:08d}" for i, _, _ in METERS}


def test_install_secondary_spelled_out_is_the_default_search():
    world = World(seed=4)
    gateway = build(world, primaries=PRIMARIES)
    phone = Phone(world, gateway)
    phone.send(phone.sender.password_command(PASSWORD))
    phone.sender.switch_key(PASSWORD)
    phone.send("install secondary 3")
    world.run(world.now + HOUR - 120)
    assert phone.replies[-1][1] == "installation completed: found 3 of 3 expected meters OK"
    done = world.trace.select("install", phase="completed")[0]
    assert "method" not in done.fields and "primary_addresses" not in done.fields
    assert world.trace.select("search") and not world.trace.select("scan")
    assert all(isinstance(a, SecondaryAddress) for a in gateway.installed)


def test_install_primary_with_meters_sharing_address_0_finds_one_address():
    # the factory default primary address 0 on every meter: a primary scan sees one
    # (colliding) answer at 0, so installing by primary address cannot tell them apart
    world = World(seed=4)
    gateway = build(world)
    phone = Phone(world, gateway)
    phone.send(phone.sender.password_command(PASSWORD))
    phone.sender.switch_key(PASSWORD)
    phone.send("install primary 3")
    world.run(2 * HOUR)
    assert phone.replies[-1][1] == "installation completed: found 1 of 3 expected meters MISMATCH"
    assert world.trace.select("install", phase="completed")[0]["primary_addresses"] == [0]
