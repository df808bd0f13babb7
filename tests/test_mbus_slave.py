"""Simulated slaves: every command of EN 13757-2/-3 they answer, faults, golden replay."""

from __future__ import annotations

import random
from datetime import datetime

import meterbus
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.core.world import World
from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.bus import Bus
from simulator.mbus.faults import Fault
from simulator.mbus.frames import ControlFrame, LongFrame, ShortFrame, checksum, parse_frame
from simulator.mbus.master import Master, MasterSettings
from simulator.mbus.slave import ResponseDelay, Slave, read_hex_file
from simulator.mbus.telegram import Header, Telegram, decode_telegram, encode_telegram
from simulator.mbus.wire import response_window
from simulator.meters.wired import TEMPLATES, heat_records, water_records

ADDR = SecondaryAddress(12345678, "ELV", 1, 4)
E5 = b"\xe5"


def make(world=None, **kw) -> Slave:
    world = world or World(seed=3)
    kw.setdefault("records", heat_records(random.Random(1)))
    return Slave(world, kw.pop("address", ADDR), primary=kw.pop("primary", 5), **kw)


def short(c: int, a: int) -> bytes:
    return ShortFrame(c, a).to_bytes()


def test_snd_nke_answers_e5_inside_the_window():
    s = make()
    r = s.hear(short(0x40, 5), 2400)
    assert r.data == E5 and r.baud == 2400
    lo, hi = response_window(2400)
    assert lo <= r.delay <= hi


def test_other_address_bad_checksum_and_broadcast_255_are_silent():
    s = make()
    assert s.hear(short(0x40, 6), 2400) is None
    bad = bytearray(short(0x40, 5))
    bad[3] ^= 1
    assert s.hear(bytes(bad), 2400) is None
    assert s.hear(short(0x40, 255), 2400) is None
    assert s.hear(b"\x10\x40", 2400) is None  # truncated
    assert s.hear(short(0x40, 254), 2400).data == E5  # broadcast with reply answers


def test_req_ud2_fcb_new_advances_same_repeats_and_access_number_counts():
    s = make(records=heat_records(random.Random(1), telegrams=3))
    assert s.telegrams == 3
    first = s.hear(short(0x7B, 5), 2400).data
    t1 = decode_telegram(first)
    assert t1.more_follow and t1.header.ci == 0x72 and t1.header.address == ADDR
    again = s.hear(short(0x7B, 5), 2400).data  # same FCB: repeat byte for byte
    assert again == first
    second = decode_telegram(s.hear(short(0x5B, 5), 2400).data)  # new FCB: next telegram
    assert second.more_follow
    assert second.header.access_no == (t1.header.access_no + 1) & 0xFF
    assert second.records[0].storage > 0
    third = decode_telegram(s.hear(short(0x7B, 5), 2400).data)
    assert not third.more_follow
    restart = decode_telegram(s.hear(short(0x5B, 5), 2400).data)  # after the last: start over
    assert restart.more_follow and restart.records[0].storage == 0


def test_snd_nke_resets_fcb_and_telegram_position():
    s = make(records=heat_records(random.Random(1), telegrams=2))
    s.hear(short(0x7B, 5), 2400)
    s.hear(short(0x40, 5), 2400)
    # after the reset, FCB=1 again is a *new* request -> first telegram, fresh access number
    t = decode_telegram(s.hear(short(0x7B, 5), 2400).data)
    assert t.more_follow and t.records[0].storage == 0


def test_req_ud1_answers_e5_without_class1_data():
    assert make().hear(short(0x7A, 5), 2400).data == E5


def select_frame(mask: str, ci: int = 0x52) -> bytes:
    return LongFrame(0x53, 253, ci, SecondaryMask.parse(mask).to_bytes()).to_bytes()


@pytest.mark.parametrize(
    "mask",
    [
        "1234567896150104",
        "FFFFFFFFFFFFFFFF",
        "12345FFF96150104",
        "12345678FFFFFFFF",
        "1234567896150FFF",
        "FFFFFFFF9F1F0104",
    ],
)
def test_selection_with_wildcards_answers_e5_then_253_is_served(mask):
    s = make()
    assert s.hear(short(0x7B, 253), 2400) is None  # not selected yet
    assert s.hear(select_frame(mask), 2400).data == E5
    assert s.selected
    assert decode_telegram(s.hear(short(0x7B, 253), 2400).data).header.address == ADDR


def test_non_matching_selection_deselects_silently():
    s = make()
    s.hear(select_frame("FFFFFFFFFFFFFFFF"), 2400)
    assert s.hear(select_frame("1234567996150104"), 2400) is None
    assert not s.selected
    assert s.hear(short(0x7B, 253), 2400) is None


def test_deselect_by_ci56_and_by_snd_nke_to_253():
    s = make()
    s.hear(select_frame("FFFFFFFFFFFFFFFF"), 2400)
    assert s.hear(select_frame("FFFFFFFFFFFFFFFF", ci=0x56), 2400) is None
    assert not s.selected
    assert s.world.trace.select("deselect", s.name)
    s.hear(select_frame("FFFFFFFFFFFFFFFF"), 2400)
    assert s.hear(short(0x40, 253), 2400).data == E5  # it was selected: acknowledges
    assert not s.selected
    assert s.hear(short(0x40, 253), 2400) is None  # no longer addressed by 253


def test_set_primary_address_ci51():
    s = make(primary=0)
    frame = LongFrame(0x53, 0, 0x51, bytes([0x01, 0x7A, 42])).to_bytes()
    assert s.hear(frame, 2400).data == E5
    assert s.primary == 42
    assert s.hear(short(0x40, 0), 2400) is None
    assert s.hear(short(0x40, 42), 2400).data == E5
    # 251..255 are not slave addresses: refused, no E5
    assert s.hear(LongFrame(0x53, 42, 0x51, bytes([0x01, 0x7A, 253])).to_bytes(), 2400) is None
    assert s.primary == 42


def test_application_reset_ci50():
    s = make(records=heat_records(random.Random(1), telegrams=2))
    s.hear(short(0x7B, 5), 2400)
    # PROTOCOL.md §2.6: application reset to the broadcast-with-reply address 254
    reset = LongFrame(0x53, 0xFE, 0x50, b"\x10").to_bytes()
    assert reset == bytes.fromhex("68040468 53FE5010 B116".replace(" ", ""))
    assert s.hear(reset, 2400).data == E5
    t = decode_telegram(s.hear(short(0x5B, 5), 2400).data)
    assert t.records[0].storage == 0  # back at the first telegram


def run_master(world, gen):
    box = {}

    def proc():
        box["v"] = yield from gen

    world.process(proc())
    world.run()
    return box["v"]


def test_baud_switch_e5_at_old_rate_then_listens_at_new():
    w = World(seed=1)
    bus = Bus(w, baud=2400)
    s = make(w, bauds=(300, 2400, 9600))
    bus.attach(s)
    m = Master(bus, MasterSettings(send_nke=False))
    ok = run_master(w, m.switch_baud(5, 9600))
    assert ok and s.baud == 9600 and bus.baud == 9600
    e5 = w.trace.select("frame", direction="s2m", outcome="ok")[-1]
    assert e5["hex"] == "e5" and e5["baud"] == 2400
    r = run_master(w, m.read(5))
    assert r.ok
    assert w.trace.select("frame", direction="s2m", outcome="ok")[-1]["baud"] == 9600


def test_baud_switch_to_unsupported_rate_is_refused():
    s = make(bauds=(300, 2400))
    frame = ControlFrame(0x53, 5, 0xBD).to_bytes()
    assert frame == bytes.fromhex("6803036853 05bd1516".replace(" ", ""))
    assert s.hear(frame, 2400) is None and s.baud == 2400


def test_slave_only_hears_at_its_baud():
    w = World(seed=1)
    bus = Bus(w, baud=2400)
    s = make(w, bauds=(300,), baud=300)
    bus.attach(s)
    m = Master(bus, MasterSettings(send_nke=False, readout_retries=0))
    assert not run_master(w, m.read(5)).ok
    bus.baud = 300
    assert run_master(w, m.read(5)).ok


def test_records_follow_simulated_time_and_clock():
    w = World(seed=9)
    s = make(w)
    before = {r.quantity: r.value for r in s.current_telegrams()[0].records}
    w.run(until=6 * 3600)
    after = {r.quantity: r.value for r in s.current_telegrams()[0].records}
    assert after["energy"] > before["energy"] and after["volume"] > before["volume"]
    assert after["date_time"] == datetime(2026, 1, 5, 6, 0)
    assert 30 < after["flow_temperature"] < 90
    assert after["error_flags"] == 0


@pytest.mark.parametrize("medium", sorted(TEMPLATES))
def test_rsp_ud_bytes_equal_the_codecs_encoding_of_the_built_records(medium):
    """The slave's precomputed-DIB/VIB RSP_UD is what encode_telegram makes of the records
    built with DataRecord.from_value, at many times and in every telegram of a sequence."""
    tpl = TEMPLATES[medium]
    addr = SecondaryAddress(87654321, "KAM", 7, tpl.medium)
    w = World(seed=4)
    s = Slave(w, addr, primary=9, records=tpl.build(random.Random(5), 3), status=0x11)
    for hours in (0.1, 0.3, 7.5, 30, 24 * 200 + 0.77):
        w.run(until=3600 * hours)
        for index in range(s.telegrams):
            seed = int(hours * 100) + index
            fast = s._build(index, 200 + index, draw=False)
            s._rng_values = random.Random(seed)
            fast_drawn = s._build(index, 77)
            rng, clock = random.Random(seed), w.clock()
            recs = [r.build(w.now, clock, rng) for r in s.records if r.telegram == index]
            ref = encode_telegram(
                Telegram(Header(0x72, 77, 0x11, 0, addr), recs, index < s.telegrams - 1, c=8, a=9)
            ).to_bytes()
            assert fast_drawn == ref
            assert decode_telegram(fast).more_follow == (index < s.telegrams - 1)


@pytest.mark.parametrize("medium", sorted(TEMPLATES))
def test_pymeterbus_decodes_the_same_values(medium):
    """Independent check: pymeterbus reads our RSP_UD bytes to the values we encoded."""
    tpl = TEMPLATES[medium]
    w = World(seed=4)
    addr = SecondaryAddress(87654321, "KAM", 7, tpl.medium)
    s = Slave(w, addr, primary=9, records=tpl.build(random.Random(5), 1))
    w.run(until=3600 * 7.5)
    raw = s.hear(short(0x7B, 9), 2400).data
    ours = decode_telegram(raw)
    theirs = meterbus.load(raw)
    header = theirs.body.bodyHeader
    assert int("".join(f"{b:02x}" for b in header.id_nr)) == 87654321
    assert header.manufacturer_field.decodeManufacturer == "KAM"
    their_records = theirs.body.bodyPayload.records
    assert len(their_records) == len(ours.records)
    for mine, rec in zip(ours.records, their_records, strict=True):
        v = rec.parsed_value
        if mine.quantity == "date_time":
            assert v == mine.value.strftime("%Y-%m-%dT%H:%M") == "2026-01-05T07:30"
            continue
        # pymeterbus reports Wh, m3, m3/h, W, C, K: the same base units as ours.
        assert float(v) == pytest.approx(float(mine.value), rel=1e-9, abs=1e-9), mine
        assert rec.function == 0  # instantaneous


def test_faults_silent_late_early_checksum_truncated_garbled():
    w = World(seed=2)
    lo, hi = response_window(2400)
    req = short(0x40, 5)
    assert make(w, faults=[Fault("silent")]).hear(req, 2400) is None
    late = make(w, faults=[Fault("late")]).hear(req, 2400)
    assert late.delay > hi
    early = make(w, faults=[Fault("early")]).hear(req, 2400)
    assert early.delay < lo
    rsp = short(0x7B, 5)
    bad = make(w, faults=[Fault("bad_checksum")]).hear(rsp, 2400).data
    assert bad[-2] != checksum(bad[4:-2])
    trunc = make(w, faults=[Fault("truncated", count=3)]).hear(rsp, 2400).data
    full = make(w).hear(rsp, 2400).data
    assert len(trunc) == len(full) - 3
    garbled = make(w, faults=[Fault("garbled", count=2)]).hear(rsp, 2400).data
    assert len(garbled) == len(full) and garbled != full
    kinds = [e["fault"] for e in w.trace.select("fault")]
    assert kinds == ["silent", "late", "early", "bad_checksum", "truncated", "garbled"]


def test_intermittent_fault_fires_with_its_probability_from_the_slave_stream():
    w = World(seed=5)
    s = make(w, faults=[Fault("silent", probability=0.3)])
    answers = [s.hear(short(0x40, 5), 2400) is not None for _ in range(400)]
    silent = answers.count(False)
    assert 80 < silent < 160  # 30 % of 400 = 120
    # same seed, same stream: the same pattern
    w2 = World(seed=5)
    s2 = make(w2, faults=[Fault("silent", probability=0.3)])
    assert answers == [s2.hear(short(0x40, 5), 2400) is not None for _ in range(400)]


def test_fault_limited_to_a_command():
    s = make(faults=[Fault("silent", commands=("REQ_UD2",))])
    assert s.hear(short(0x40, 5), 2400).data == E5
    assert s.hear(short(0x7B, 5), 2400) is None


def test_fixed_delay_in_seconds():
    s = make(delay=ResponseDelay(0.01, 0.01, unit="s"))
    assert s.hear(short(0x40, 5), 2400).delay == pytest.approx(0.01)


def test_golden_telegram_replay_patches_address_and_access_number(tmp_path):
    golden = bytes.fromhex("68151568080172785634129615010400000000040639300000B216")
    path = tmp_path / "g.hex"
    path.write_text(
        "# PROTOCOL.md §6 worked example\n68 15 15 68 08 01 72 78 56 34 12\n"
        "96 15 01 04 00 00 00 00 04 06 39 30 00 00 B2 16\n"
    )
    assert read_hex_file(path) == golden
    w = World(seed=1)
    s = Slave(w, ADDR, primary=1, golden=[golden])
    s.access_no = 255
    out = s.hear(short(0x7B, 1), 2400).data
    assert out[15] == 0  # access number 255 + 1 wraps to 0
    assert out == golden  # the worked example has access number 0 and A = 1
    frame = parse_frame(s.hear(short(0x5B, 1), 2400).data)
    t = decode_telegram(frame)
    assert t.header.access_no == 1 and t.records[0].value == 12_345_000


def test_bad_hex_file_names_file_and_line(tmp_path):
    p = tmp_path / "bad.hex"
    p.write_text("68 15\nzz\n")
    with pytest.raises(ValueError, match=r"bad.hex:2"):
        read_hex_file(p)


def test_water_template_fields():
    recs = water_records(random.Random(1))
    assert [r.quantity for r in recs] == ["volume", "volume_flow", "date_time", "error_flags"]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=64))
def test_junk_on_the_bus_never_breaks_a_slave(data):
    s = make()
    r = s.hear(data, 2400)
    assert r is None or r.data  # silence, or a real reply to a frame that happened to be valid


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([0x40, 0x5B, 0x7B, 0x5A, 0x7A]), st.integers(0, 255))
def test_short_frames_to_any_address_only_answered_when_addressed(c, a):
    s = make()
    r = s.hear(short(c, a), 2400)
    if a in (5, 254):
        assert r is not None
    else:
        assert r is None
