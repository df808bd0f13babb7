"""Master procedures in virtual time: search, scan, readout, retries, FCB, idle times."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.core.world import World
from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.bus import Bus
from simulator.mbus.electrical import MasterPort
from simulator.mbus.faults import Fault
from simulator.mbus.master import Master, MasterSettings
from simulator.mbus.slave import Slave
from simulator.meters.wired import heat_records, water_records


def run(world, gen):
    box = {}

    def proc():
        box["v"] = yield from gen

    world.process(proc())
    world.run()
    return box["v"]


def mk(world, ident, manufacturer="ELV", version=1, medium=7, primary=0, **kw):
    kw.setdefault("records", water_records(random.Random(ident)))
    return Slave(
        world, SecondaryAddress(ident, manufacturer, version, medium), primary=primary, **kw
    )


def m2s(world):
    return world.trace.select("frame", direction="m2s")


def test_secondary_search_finds_all_30_including_near_twins():
    w = World(seed=11)
    bus = Bus(w, master=MasterPort(max_unit_loads=32))
    rng = random.Random(4)
    ids = rng.sample(range(10_000_000, 99_999_999), 26)
    slaves = [mk(w, i, medium=rng.choice([4, 7, 2, 3])) for i in ids]
    slaves.append(mk(w, 55_512_340))  # these two differ only in the last ID digit
    slaves.append(mk(w, 55_512_341))
    # these two differ only in a hex nibble of the version (0A vs 0B): libmbus cannot split them
    slaves.append(mk(w, 66_600_001, version=0x0A))
    slaves.append(mk(w, 66_600_001, version=0x0B))
    for s in slaves:
        bus.attach(s)
    assert len(bus.slaves) == 30
    m = Master(bus)
    found = run(w, m.search_secondary())
    assert sorted(found) == sorted(s.address for s in slaves)
    assert len(found) == 30
    # the search really met collisions and descended
    assert w.trace.select("search", result="collision")
    assert bus.counters["collisions"] > 0
    done = w.trace.select("search", result="done")[0]
    assert len(done["found"]) == 30


def test_libmbus_style_search_misses_the_hex_nibble_twins():
    w = World(seed=11)
    bus = Bus(w)
    twins = [mk(w, 66_600_001, version=0x0A), mk(w, 66_600_001, version=0x0B)]
    others = [mk(w, 12_000_000), mk(w, 12_000_009)]
    for s in twins + others:
        bus.attach(s)
    found = run(w, Master(bus, MasterSettings(hex_search=False)).search_secondary())
    assert sorted(found) == sorted(s.address for s in others)
    w2 = World(seed=11)
    bus2 = Bus(w2)
    for s in [mk(w2, 66_600_001, version=0x0A), mk(w2, 66_600_001, version=0x0B)]:
        bus2.attach(s)
    assert len(run(w2, Master(bus2).search_secondary())) == 2


def test_search_of_a_single_meter_and_an_empty_bus():
    w = World(seed=1)
    bus = Bus(w)
    bus.attach(mk(w, 12345678))
    assert run(w, Master(bus).search_secondary()) == [SecondaryAddress(12345678, "ELV", 1, 7)]
    w = World(seed=1)
    assert run(w, Master(Bus(w)).search_secondary()) == []


def test_search_with_aligned_e5_still_resolves_by_the_rsp_ud_check():
    # Same reply delay: the two E5 are bit-aligned and decode clean; the master's REQ_UD2
    # confirmation then collides (different RSP_UD contents) and the descent continues.
    from simulator.mbus.slave import ResponseDelay

    fixed = ResponseDelay(0.01, 0.01, unit="s")
    w = World(seed=1)
    bus = Bus(w)
    for i in (11111111, 11111112):
        bus.attach(mk(w, i, delay=fixed))
    found = run(w, Master(bus).search_secondary())
    assert len(found) == 2
    first = w.trace.select("frame", direction="s2m")[0]
    assert first["hex"] == "e5" and first["outcome"] == "ok" and len(first["senders"]) == 2


def test_primary_scan():
    w = World(seed=2)
    bus = Bus(w)
    for p in (1, 5, 250):
        bus.attach(mk(w, 20000000 + p, primary=p))
    m = Master(bus)
    assert run(w, m.scan_primary(range(0, 251))) == [1, 5, 250]
    assert w.trace.select("scan")[0]["found"] == [1, 5, 250]


def test_multi_telegram_readout_toggles_fcb():
    w = World(seed=3)
    bus = Bus(w)
    bus.attach(
        mk(w, 30000001, medium=4, primary=3, records=heat_records(random.Random(1), telegrams=3))
    )
    m = Master(bus, MasterSettings(multi_telegram=True))
    r = run(w, m.read(3))
    assert r.ok and len(r.telegrams) == 3 and r.attempts == 3
    assert [t.more_follow for t in r.telegrams] == [True, True, False]
    reqs = [(e["address"], e["fcb"]) for e in m2s(w) if e["function"] == "REQ_UD2"]
    assert reqs == [(3, 1), (3, 0), (3, 1)]
    acc = [t.header.access_no for t in r.telegrams]
    assert acc[1] == (acc[0] + 1) % 256 and acc[2] == (acc[1] + 1) % 256
    ev = w.trace.select("readout")[0]
    assert ev["telegrams"] == 3 and ev["ok"] and ev["records"] == len(r.records)


def test_multi_telegram_off_and_limit():
    w = World(seed=3)
    bus = Bus(w)
    bus.attach(
        mk(w, 30000001, medium=4, primary=3, records=heat_records(random.Random(1), telegrams=3))
    )
    r = run(w, Master(bus).read(3))  # vendor default: multi-telegram off
    assert r.ok and len(r.telegrams) == 1 and r.more_pending
    r = run(w, Master(bus, MasterSettings(multi_telegram=True, max_telegrams=2)).read(3))
    assert r.ok and len(r.telegrams) == 2 and r.more_pending


def test_lost_reply_is_retried_with_the_same_fcb_and_the_slave_repeats():
    w = World(seed=8)
    bus = Bus(w)
    s = mk(
        w,
        30000001,
        medium=4,
        primary=3,
        records=heat_records(random.Random(1), telegrams=3),
        faults=[Fault("silent", probability=0.4, commands=("REQ_UD2",))],
    )
    bus.attach(s)
    m = Master(bus, MasterSettings(multi_telegram=True, readout_retries=5))
    r = run(w, m.read(3))
    assert r.ok and len(r.telegrams) == 3
    assert r.attempts > 3  # some replies were lost and retried
    reqs = w.trace.select("frame", direction="m2s", function="REQ_UD2")
    replies = w.trace.select("frame", direction="s2m")
    # every retry after a timeout carries the FCB of the request it repeats
    fcbs = [e["fcb"] for e in reqs]
    toggles = sum(a != b for a, b in zip(fcbs, fcbs[1:], strict=False))
    assert toggles == 2
    assert len([e for e in replies if e["outcome"] == "timeout"]) == r.attempts - 3


def test_repeat_after_a_corrupted_reply_is_byte_identical():
    w = World(seed=8)
    bus = Bus(w)
    s = mk(w, 30000001, primary=3, faults=[Fault("garbled", probability=0.5)])
    bus.attach(s)
    m = Master(bus, MasterSettings(readout_retries=6, send_nke=False))
    r = run(w, m.read(3))
    assert r.ok and r.attempts >= 2
    oks = [e for e in w.trace.select("frame", direction="s2m") if e["outcome"] == "ok"]
    bad = [e for e in w.trace.select("frame", direction="s2m") if e["outcome"] != "ok"]
    assert bad, "seed 8 should garble at least one reply"
    assert len(oks) == 1
    # the good reply has the access number of the first (garbled) one: it is the same telegram
    assert r.telegrams[0].header.access_no == (s.access_no) and s.answered == r.attempts


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_silent_meter_gets_exactly_readout_retries_plus_one_attempts(retries):
    w = World(seed=1)
    bus = Bus(w)
    bus.attach(mk(w, 40000001, primary=4, faults=[Fault("silent")]))
    m = Master(bus, MasterSettings(readout_retries=retries))
    r = run(w, m.read(4))
    assert not r.ok and r.error == "no reply" and r.attempts == retries + 1
    reqs = w.trace.select("frame", direction="m2s", function="REQ_UD2", address=4)
    assert len(reqs) == retries + 1
    assert w.trace.select("readout")[0]["attempts"] == retries + 1


def test_request_idle_init_idle_and_response_timeout_on_the_trace():
    w = World(seed=1)
    bus = Bus(w)
    bus.attach(mk(w, 40000001, primary=4))
    bus.attach(mk(w, 40000002, primary=5))
    st = MasterSettings(response_timeout=0.8, request_idle=1.5, init_idle=7.0)
    m = Master(bus, st)

    def proc():
        yield from m.read(4)  # SND_NKE, init idle, REQ_UD2
        yield from m.read(9)  # nobody: SND_NKE timeout, init idle, REQ_UD2 x2 timeouts

    w.process(proc())
    w.run()
    frames = w.trace.select("frame")
    # init idle: from the end of each SND_NKE to the next request (two reads: two SND_NKE)
    init_gaps = []
    for i, f in enumerate(frames):
        if f["direction"] == "m2s" and f.get("function") == "SND_NKE":
            nxt = next(g for g in frames[i + 1 :] if g["direction"] == "m2s")
            init_gaps.append(nxt.t - f["end"])
    assert init_gaps == pytest.approx([7.0, 7.0])
    # request idle: from the end of a reply (or of a timeout) to the next request
    gaps = []
    for i, f in enumerate(frames[:-1]):
        if f["direction"] == "s2m" and frames[i - 1].get("function") != "SND_NKE":
            nxt = frames[i + 1]
            gaps.append(nxt.t - f["end"])
    assert gaps and all(g == pytest.approx(1.5) for g in gaps)
    # response timeout: the give-up event is 0.8 s after the request ended (address 9:
    # SND_NKE and two REQ_UD2 attempts, none answered)
    waits = [
        f.t - frames[i - 1]["end"]
        for i, f in enumerate(frames)
        if f["direction"] == "s2m" and f["outcome"] == "timeout"
    ]
    assert waits == pytest.approx([0.8, 0.8, 0.8])


def test_collision_idle_after_a_detected_collision():
    w = World(seed=1)
    bus = Bus(w)
    bus.attach(mk(w, 40000001, primary=4))
    bus.attach(mk(w, 40000002, primary=4))  # duplicate primary address: they collide
    st = MasterSettings(collision_idle=4.0, request_idle=1.0, send_nke=False, readout_retries=1)
    r = run(w, Master(bus, st).read(4))
    assert not r.ok and r.error == "collision" and r.attempts == 2
    frames = w.trace.select("frame")
    assert [f["outcome"] for f in frames] == ["ok", "collision", "ok", "collision"]
    assert frames[2].t - frames[1]["end"] == pytest.approx(4.0)


def test_readout_by_secondary_address_selects_then_reads_253():
    w = World(seed=1)
    bus = Bus(w)
    a = mk(w, 12345678)
    bus.attach(a)
    bus.attach(mk(w, 12345679))
    r = run(w, Master(bus).read(a.address))
    assert r.ok and r.telegrams[0].header.address == a.address
    select, req = m2s(w)[:2]
    assert (select["function"], select["address"], select["ci"]) == ("SND_UD", 253, "52")
    assert SecondaryAddress.from_bytes(bytes.fromhex(select["hex"])[7:15]) == a.address
    assert (req["function"], req["address"], req["fcb"]) == ("REQ_UD2", 253, 1)


def test_selection_retries_on_a_missing_meter():
    w = World(seed=1)
    bus = Bus(w)
    r = run(
        w,
        Master(bus, MasterSettings(selection_retries=2)).read(
            SecondaryAddress(11111111, "ELV", 1, 7)
        ),
    )
    assert not r.ok and r.error == "selection failed" and r.attempts == 0
    assert len(m2s(w)) == 3


def test_set_primary_address_through_the_master():
    w = World(seed=1)
    bus = Bus(w)
    s = mk(w, 12345678, primary=0)
    bus.attach(s)
    m = Master(bus)
    assert run(w, m.set_primary(0, 17))
    assert s.primary == 17
    assert run(w, m.read(17)).ok


def test_multi_telegram_defaults_mapping():
    d = MasterSettings.multi_telegram_defaults()
    assert (
        d.response_timeout,
        d.readout_retries,
        d.selection_retries,
        d.init_idle,
        d.collision_idle,
        d.request_idle,
    ) == (1.5, 3, 2, 10.0, 3.5, 1.0)
    base = MasterSettings()
    assert (
        base.response_timeout,
        base.readout_retries,
        base.selection_retries,
        base.init_idle,
        base.collision_idle,
        base.request_idle,
    ) == (1.0, 1, 1, 10.0, 5.0, 2.0)


def test_collision_idle_also_when_the_master_concludes_a_collision_from_content():
    # Two selected slaves answer with clean E5s one after the other (no overlap, no UART
    # error; the gap is shorter than the 2-character end-of-reception idle): the master still
    # counts it as a collision and must wait collision_idle.
    from simulator.mbus.slave import ResponseDelay

    w = World(seed=1)
    bus = Bus(w)
    bus.attach(mk(w, 50000001, delay=ResponseDelay(0.005, 0.005, unit="s")))
    bus.attach(mk(w, 50000002, delay=ResponseDelay(0.012, 0.012, unit="s")))
    st = MasterSettings(collision_idle=4.0, request_idle=1.0, send_nke=False)
    m = Master(bus, st)
    assert run(w, m.select("5000000FFFFFFFFF")) == "collision"
    replies = w.trace.select("frame", direction="s2m")
    assert replies[0]["hex"] == "e5e5" and replies[0]["uart_errors"] == 0
    run(w, m.select("50000001FFFFFFFF"))
    requests = m2s(w)
    assert requests[1].t - replies[0]["end"] == pytest.approx(4.0)


def _search(specs, mode="unexplained", seed=3):
    w = World(seed=seed)
    bus = Bus(w)
    for ident, version, medium in specs:
        bus.attach(mk(w, ident, version=version, medium=medium))
    m = Master(bus, MasterSettings(f_nibble_search=mode))
    return w, m, run(w, m.search_secondary())


def test_meter_differing_only_by_an_f_version_nibble_is_found():
    # 0F vs 01: every mask that selects the 0F meter (F = wildcard) selects the 01 meter too,
    # so the 0F meter is named from the unexplained collision, not read.
    a = SecondaryAddress(66_600_001, "ELV", 0x01, 7)
    b = SecondaryAddress(66_600_001, "ELV", 0x0F, 7)
    w, m, found = _search([(66_600_001, 0x01, 7), (66_600_001, 0x0F, 7)])
    assert sorted(found) == sorted([a, b])
    inferred = w.trace.select("search", result="inferred")
    assert [e["address"] for e in inferred] == [str(b)]
    assert inferred[0]["alongside"] == [str(a)]
    # The old rule (no F continuation) misses it.
    _, _, old = _search([(66_600_001, 0x01, 7), (66_600_001, 0x0F, 7)], mode="off")
    assert old == [a]


def test_meter_with_version_ff_is_found_next_to_a_same_id_meter():
    a = SecondaryAddress(66_600_001, "ELV", 0x01, 7)
    c = SecondaryAddress(66_600_001, "ELV", 0xFF, 7)
    w, _, found = _search([(66_600_001, 0x01, 7), (66_600_001, 0xFF, 7)])
    assert sorted(found) == sorted([a, c])
    _, _, old = _search([(66_600_001, 0x01, 7), (66_600_001, 0xFF, 7)], mode="off")
    assert old == [a]


def test_f_nibble_pair_and_a_version_ff_meter_all_found_with_always():
    # C (version FF) is hidden behind the two found meters (they explain every collision it
    # joins until the medium nibble separates it): only the "always" continuation finds it.
    specs = [(66_600_001, 0x01, 7), (66_600_001, 0x0F, 7), (66_600_001, 0xFF, 4)]
    expected = sorted(SecondaryAddress(i, "ELV", v, med) for i, v, med in specs)
    w, _, found = _search(specs, mode="always")
    assert sorted(found) == expected
    # C answered a probe alone (read, not inferred); B was inferred.
    c = str(expected[2])
    assert c in {e["address"] for e in w.trace.select("search", result="found")}
    assert [e["address"] for e in w.trace.select("search", result="inferred")] == [str(expected[1])]
    _, _, cheap = _search(specs, mode="unexplained")
    assert sorted(cheap) == expected[:2]


_NIBBLE = st.sampled_from([0x0, 0x1, 0xF])
_METER = st.tuples(
    st.sampled_from([66_600_001, 66_600_002]),
    st.builds(lambda hi, lo: hi << 4 | lo, _NIBBLE, _NIBBLE),
    st.sampled_from([0x07, 0x0F, 0xF7, 0x04]),
)


@settings(max_examples=12)
@given(st.sets(_METER, min_size=2, max_size=4), st.sampled_from(["unexplained", "always"]))
def test_f_nibble_search_never_invents_a_meter_and_finds_the_selectable_ones(specs, mode):
    _, _, found = _search(sorted(specs), mode=mode)
    actual = {SecondaryAddress(i, "ELV", v, med) for i, v, med in specs}
    assert set(found) <= actual  # an inferred address is always a real meter
    # Every meter without an F nibble is read by the plain descent.
    assert {a for a in actual if "F" not in str(a)} <= set(found)
    if mode == "always":
        # ...and "always" finds every meter that some mask selects alone (its own mask).
        alone = {a for a in actual if sum(SecondaryMask.of(a).matches(b) for b in actual) == 1}
        assert alone <= set(found)


def test_f_nibble_continuation_costs_nothing_for_ordinary_twins():
    specs = [(66_600_001, 0x01, 7), (66_600_001, 0x02, 7)]
    w_off, _, off = _search(specs, mode="off")
    w_on, _, on = _search(specs, mode="unexplained")
    assert sorted(off) == sorted(on) and len(on) == 2
    assert len(m2s(w_off)) == len(m2s(w_on))


def test_bad_f_nibble_mode_is_refused():
    with pytest.raises(ValueError, match="f_nibble_search"):
        MasterSettings(f_nibble_search="sometimes")


def _late_readout(delay):
    # response timeout 1 s + request idle 2 s: the retry REQ_UD2 starts 3 s after the first
    # one ended; a reply delayed ~2.95 s (about 0.3 s long) is still on the line then.
    w = World(seed=5)
    bus = Bus(w)
    s = Slave(
        w,
        SecondaryAddress(12_345_678, "ELV", 1, 4),
        primary=1,
        records=heat_records(random.Random(1)),
        faults=[Fault("late", delay=delay, commands=("REQ_UD2",))],
    )
    bus.attach(s)
    m = Master(bus, MasterSettings(send_nke=False, readout_retries=1))
    return w, s, run(w, m.read(1))


def test_late_reply_running_into_the_next_request_is_half_duplex_talkover():
    w, s, readout = _late_readout(2.95)
    assert not readout.ok and readout.attempts == 2
    reqs = m2s(w)
    assert len(reqs) == 2
    assert "talkover" not in reqs[0].fields and reqs[1]["talkover"] == [s.name]
    [ev] = w.trace.select("talkover", s.name)
    assert ev["reply_start"] < ev["request_end"] and ev["reply_end"] > ev["request_start"]
    assert ev["request"] == reqs[1]["summary"]
    # The slave was sending: it did not hear the retry, so it did not answer it (one late
    # fault drawn, one reply on the line in all).
    assert len(w.trace.select("fault", s.name)) == 1
    replies = w.trace.select("frame", direction="s2m")
    assert [r["outcome"] for r in replies][0] == "timeout"
    tail = replies[1]
    assert tail["senders"] == [s.name] and tail["talkover"] is True
    # The master's UART missed the overlapped part and resynchronised inside the reply.
    assert tail["outcome"] in ("garbled", "checksum") and not tail["hex"].startswith("68")
    assert readout.error in ("collision",) or readout.error.startswith("bad frame")


def test_late_reply_that_ends_before_the_next_request_leaves_it_heard():
    # Control: a 1.5 s delay puts the whole late reply between the timeout and the retry.
    w, s, readout = _late_readout(1.5)
    assert not readout.ok and readout.attempts == 2
    assert not w.trace.select("talkover")
    assert all("talkover" not in r.fields for r in m2s(w))
    assert len(w.trace.select("fault", s.name)) == 2  # the retry was heard and answered late
