"""Meter types as data: golden telegrams, bad files, physics, wired = wireless, from-telegram.

Golden checks decode each shipped file's telegram with ``meterbench decode --json`` (the codec)
and rebuild it from the file's model (the profiles); from-telegram runs on real telegrams
(libmbus corpus, OMS example) and a slave built from the new file must answer REQ_UD2 with the
same records and values.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cli import main as cli
from simulator.commands.meter_golden import build_golden, check_golden, decode_json, telegram_bytes
from simulator.core.rng import stream
from simulator.core.world import EPOCH, World
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.frames import REQ_UD2, ShortFrame, parse_frame
from simulator.mbus.slave import Slave
from simulator.mbus.telegram import decode_telegram
from simulator.meters.types import DATA, load_meter_file, meter_types
from simulator.meters.wired import TEMPLATES
from simulator.scenario import ScenarioError
from simulator.wmbus.meter import PROFILES, RadioMeter

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(DATA.glob("*.toml"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_telegram_decodes_to_expected_and_the_model_sends_it(path):
    mt = load_meter_file(path)
    assert mt.model.golden
    for g in mt.model.golden:
        raw = telegram_bytes(g)
        assert decode_json(raw, g.link) == json.loads(g.expected)
        if g.rebuild:
            assert build_golden(mt, g) == raw
    assert check_golden(mt) == []


def test_every_meter_type_the_project_had_exists_as_a_file():
    assert {"heat", "water", "warm_water", "cold_water", "electricity", "gas", "cooling"} <= set(
        TEMPLATES
    )
    assert {"water", "heat", "room_sensor"} <= set(PROFILES)
    assert {TEMPLATES[n].medium for n in ("heat", "water", "gas")} == {0x04, 0x07, 0x03}


BAD = """\
name = "Bad Name"
manufacturer = "elv"
medium = 0x04
colour = "red"
[wired]
records = ["energy", "nope"]

[[records]]
name = "energy"
data_field = 0x4
vif = 0x1FF
profile = { kind = "integral", of = "missing" }

[[records]]
name = "flow"
data_field = 0x2
vif = 0x3B
profile = { kind = "wobble" }
"""


def test_a_bad_file_reports_every_error_with_file_and_line(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(BAD)
    with pytest.raises(ScenarioError) as exc:
        load_meter_file(f)
    assert all(i.file == str(f) for i in exc.value.issues)
    keys = {i.key: i.line for i in exc.value.issues}
    assert keys["name"] == 1 and keys["manufacturer"] == 2 and keys["colour"] == 4
    assert "golden" in keys  # required: a meter file carries its golden telegram
    assert keys["records.0.vif"] == 11
    assert keys["records.1.profile"] == 18  # unknown kind
    assert keys["wired.records"] == 6  # "nope" is no record
    assert any("missing" in i.message and i.line == 12 for i in exc.value.issues)


def test_a_derived_profile_of_a_noisy_signal_is_reported_at_its_line(tmp_path):
    text = (
        (DATA / "heat.toml")
        .read_text()
        .replace("amplitude = 0.02 }", "amplitude = 0.02, noise = 0.01 }")
    )
    f = tmp_path / "noisy.toml"
    f.write_text(text)
    with pytest.raises(ScenarioError) as exc:
        load_meter_file(f)
    (issue,) = exc.value.issues
    line = text.splitlines()[issue.line - 1]
    assert "heat_power" in line or "integral" in line
    assert "noise-free" in issue.message


# -- physics --------------------------------------------------------------------------------


def _trapezoid(f, t1: float, t2: float, n: int = 4000) -> float:
    h = (t2 - t1) / n
    return h * (sum(f(t1 + i * h) for i in range(1, n)) + (f(t1) + f(t2)) / 2)


@pytest.mark.parametrize("name", ["heat", "cooling"])
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    t1=st.floats(0, 40 * 86400),
    span=st.floats(600, 3 * 86400),
)
def test_energy_is_the_integral_of_power_and_volume_of_flow(name, seed, t1, span):
    mt = meter_types()[name]
    specs = {s.quantity: s for s in mt.build(random.Random(seed))}
    clock, rng = EPOCH, random.Random(0)
    t2 = t1 + span
    power = specs["power"].profile
    flow = specs["volume_flow"].profile
    e = specs["energy"]
    v = specs["volume"]
    # registers truncate to their resolution (1 kWh, 10 l): the difference is within one step
    de = e.value(t2, clock, rng) - e.value(t1, clock, rng)
    assert abs(de - _trapezoid(power.at, t1, t2) / 3600) <= e.scale + 1e-6 * abs(de) + 1e-3
    dv = v.value(t2, clock, rng) - v.value(t1, clock, rng)
    assert abs(dv - _trapezoid(flow.at, t1, t2) / 3600) <= v.scale + 1e-6
    # power follows flow and the temperature difference; dT is flow - return (heat)
    t = t1
    q, dt = flow.at(t), specs["temperature_difference"].profile.at(t)
    tf, tr = specs["flow_temperature"].profile.at(t), specs["return_temperature"].profile.at(t)
    assert dt == pytest.approx(tf - tr if name == "heat" else tr - tf)
    assert dt > 0 and q > 0
    assert power.at(t) == pytest.approx(power.k * q * dt)
    assert 1140 < power.k < 1170  # rho * c / 3600 of water, W per m3/h and K


# -- one file, two links -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["heat", "water", "room_sensor", "electricity"])
@pytest.mark.parametrize("t", [0.0, 3600.0, 50_000.0, 7 * 86400.0 + 123.0])
def test_wired_and_wireless_meters_from_one_file_agree(name, t):
    mt = meter_types()[name]
    radio = RadioMeter(id=31234567, x=0, y=0, profile=name, seed=7)
    world = World(7)
    addr = SecondaryAddress(31234567, mt.manufacturer, mt.version, mt.medium)
    slave = Slave(world, addr, records=mt.build(stream(7, radio.profile_stream)))
    if t:
        world.run(until=t)
    reply = slave.hear(ShortFrame(REQ_UD2, 0).to_bytes(), 2400)
    wired = {(r.vif, r.storage): r.value for r in decode_telegram(parse_frame(reply.data)).records}
    wireless = {(r.vif, r.storage): r.value for r in radio.records(t)}
    assert wireless and set(wireless) <= set(wired)
    # noise is drawn per reading from each link's own stream; every noise-free value agrees
    noisy = {r.vif for r in mt.model.records if getattr(r.profile, "noise", 0)}
    assert set(wireless) - {k for k in wireless if k[0] in noisy}
    for key, value in wireless.items():
        if key[0] in noisy:
            continue
        if isinstance(value, float):
            assert value == pytest.approx(wired[key], abs=1e-9), key
        else:
            assert value == wired[key], key


# -- from-telegram --------------------------------------------------------------------------


def _modelled(records) -> list[tuple]:
    return [
        (r.dif & 0x0F, r.vif, r.storage, r.tariff, r.subunit, r.function, r.value)
        for r in records
        if not r.invalid and (r.dif & 0x0F) != 0xF and (r.vif & 0x7F) not in (0x7C, 0x7E, 0x7F)
    ]


@pytest.mark.parametrize(
    "fixture", ["kamstrup_multical_601", "elvaco_cma10", "handmade_heat_meter", "eastron_sdm630"]
)
def test_from_telegram_file_loads_and_its_slave_answers_with_the_same_records(fixture, tmp_path):
    out = tmp_path / "m.toml"
    hexfile = ROOT / "fixtures" / "telegrams" / f"{fixture}.hex"
    assert cli(["meter", "from-telegram", f"@{hexfile}", "--name", "real", "--out", str(out)]) == 0
    mt = load_meter_file(out)
    assert mt.name == "real" and check_golden(mt) == []
    original = decode_telegram(parse_frame(telegram_bytes(mt.model.golden[0])))
    a = original.header.address
    assert (mt.manufacturer, mt.version, mt.medium) == (a.manufacturer, a.version, a.medium)
    world = World(3)
    slave = Slave(world, a, primary=5, records=mt.build(world.rng("p")))
    reply = slave.hear(ShortFrame(REQ_UD2, 5).to_bytes(), 2400)
    answered = decode_telegram(parse_frame(reply.data))
    assert answered.header.address == a
    assert _modelled(answered.records) == _modelled(original.records)
    assert len(_modelled(original.records)) >= 1


def test_from_telegram_on_a_wireless_telegram(tmp_path):
    vectors = json.loads((ROOT / "fixtures" / "wmbus" / "published_telegrams.json").read_text())
    frame_b = next(v for v in vectors["telegrams"] if v["name"] == "oms_frame_b")
    out = tmp_path / "w.toml"
    assert cli(["meter", "from-telegram", frame_b["hex"], "--out", str(out)]) == 0
    mt = load_meter_file(out)
    assert (mt.manufacturer, mt.medium) == ("CEN", 7) and check_golden(mt) == []
    radio = RadioMeter(id=12345678, x=0, y=0, profile=mt.name, meter_type=mt)
    (rec,) = radio.records(0.0)
    assert rec.value == pytest.approx(876.543)


def test_from_telegram_rejects_what_it_cannot_model(capsys):
    assert cli(["meter", "from-telegram", "68 03 03 68 53 FE 50 A1 16"]) == 1
    assert "must be a long frame" in capsys.readouterr().err
    assert cli(["meter", "from-telegram", "zz"]) == 1
    assert "not hex" in capsys.readouterr().err
