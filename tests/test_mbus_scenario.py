"""mbus scenarios: validation (every error at once), meter lists, runner outputs, determinism."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from simulator.building import runner
from simulator.building.scenario_model import validate
from simulator.devices import run_scenario
from simulator.mbus.address import SecondaryMask
from simulator.mbus.meterlist import format_meter_list, parse_meter_list, read_meter_list
from simulator.scenario import DEFAULT_SCENARIO, RunOptions, ScenarioError, load_toml

ROOT = Path(__file__).resolve().parent.parent
SCEN = ROOT / "fixtures" / "scenarios"
LISTS = ROOT / "fixtures" / "meterlists"


def run(path: Path, out: Path, **kw) -> tuple[dict, Path]:
    doc = load_toml(path)
    res = run_scenario(doc, RunOptions(out_dir=out, **kw))
    return res.summary, out


def test_bad_scenario_reports_every_problem_with_file_line_and_key():
    doc = load_toml(SCEN / "mbus-bad.toml")
    with pytest.raises(ScenarioError) as exc:
        validate(doc)
    issues = exc.value.issues
    by_key = {i.key: i for i in issues}
    expected = {
        "hours": 4,
        "bus.baud": 7,
        "bus.master.settings.readout_retries": 10,
        "bus.master.settings.request_idel_ms": 11,
        "readout.install": 14,
        "slaves.0.template": 17,
        "slaves.1.primary": 24,
        "slaves.1.baud": 25,
        "slaves.2": 28,
        "slaves.2.telegram": 30,
    }
    for key, line in expected.items():
        assert key in by_key, f"missing issue for {key}: {[str(i) for i in issues]}"
        assert by_key[key].line == line, str(by_key[key])
        assert by_key[key].file.endswith("mbus-bad.toml")
    assert "unknown key" in by_key["bus.master.settings.request_idel_ms"].message
    assert "duplicate primary address 5" in by_key["slaves.1.primary"].message
    assert "mbus-bad.toml:24" in str(exc.value)


def test_valid_fixtures_and_default_scenario_validate():
    for path in [
        DEFAULT_SCENARIO,
        SCEN / "mbus-small.toml",
        SCEN / "mbus-meterlist.toml",
        SCEN / "mbus-overload.toml",
    ]:
        sc = validate(load_toml(path))
        assert sc.kind == "mbus"
    building = validate(load_toml(DEFAULT_SCENARIO))
    assert sum(g.count for g in building.slaves) == 30
    assert any(g.telegrams > 1 for g in building.slaves)
    assert any(g.bauds == [300] for g in building.slaves)
    assert any(g.faults for g in building.slaves)
    s = building.bus.master.settings
    assert (
        s.response_timeout_ms,
        s.readout_retries,
        s.selection_retries,
        s.init_idle_ms,
        s.collision_idle_ms,
        s.request_idle_ms,
    ) == (1000, 1, 1, 10000, 5000, 2000)


def test_meter_list_reads_the_manual_example_form():
    entries = read_meter_list(LISTS / "small.csv")
    assert [e.position for e in entries][:3] == ["Cafeteria", "Sales office", "Reception"]
    caf, sales = entries[0], entries[1]
    assert caf.mode == "secondary" and caf.baud == 2400
    assert caf.target == SecondaryMask.parse("13001651FFFFFFFF")
    assert sales.mode == "primary" and sales.target == 221
    assert entries[3].baud == 300
    assert entries[4].mode == "esecondary"
    again = parse_meter_list(format_meter_list(entries))
    assert [(e.position, e.secondary, e.baud, e.mode, e.primary) for e in again] == [
        (e.position, e.secondary, e.baud, e.mode, e.primary) for e in entries
    ]


def test_bad_meter_list_reports_all_rows_with_line_and_column():
    with pytest.raises(ScenarioError) as exc:
        read_meter_list(LISTS / "bad.csv")
    where = {(i.line, i.key) for i in exc.value.issues}
    assert (2, "SecondaryAddress") in where  # 7 digits
    assert (3, "BaudRate") in where  # 4800
    assert (3, "PrimaryAddress") in where  # primary mode without an address
    assert (4, "AddressingMode") in where  # "wireless"
    with pytest.raises(ScenarioError, match="missing column"):
        parse_meter_list("Position,Baud\nx,2400\n")


def test_small_scenario_outputs(tmp_path):
    summary, out = run(SCEN / "mbus-small.toml", tmp_path)
    assert summary["meters_found"] == 6 and summary["seed"] == 7
    assert summary["readouts_ok"] + summary["readouts_failed"] == 6 * 2  # rounds at 1 h, 2 h
    assert summary["sim_seconds"] == 3 * 3600
    assert summary["collisions"] > 0  # the search met collisions
    trace = [json.loads(x) for x in (out / "trace.jsonl").read_text().splitlines()]
    frames = [e for e in trace if e["kind"] == "frame"]
    assert frames and all(
        {"t", "direction", "hex", "summary", "outcome", "baud"} <= set(e) for e in frames
    )
    # the 300 bit/s meter was found by the second search and is read at 300 bit/s
    assert any(e["baud"] == 300 and e["summary"].startswith("RSP_UD") for e in frames)
    # the multi-telegram heat meters: FCB toggles within one readout
    assert any(e["summary"] == "REQ_UD2 a=253 FCB=0" for e in frames)
    with (out / "readouts.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {"time", "meter", "quantity", "unit", "value"} <= set(rows[0])
    energy = [
        float(r["value"])
        for r in rows
        if r["quantity"] == "energy" and r["storage"] == "0" and r["address"].startswith("55512340")
    ]
    assert len(energy) == 2 and energy[1] > energy[0]  # the counter grew in an hour
    # the golden Kamstrup telegram is replayed with its records unchanged
    kam = [r for r in rows if r["address"] == "068558172D2C0804"]
    assert kam and len(kam) == 2 * 27


def test_same_scenario_and_seed_give_a_byte_identical_trace(tmp_path):
    run(DEFAULT_SCENARIO, tmp_path / "a", hours=3)
    run(DEFAULT_SCENARIO, tmp_path / "b", hours=3)
    a = (tmp_path / "a" / "trace.jsonl").read_bytes()
    assert a and a == (tmp_path / "b" / "trace.jsonl").read_bytes()
    assert (tmp_path / "a" / "readouts.csv").read_bytes() == (
        tmp_path / "b" / "readouts.csv"
    ).read_bytes()
    run(DEFAULT_SCENARIO, tmp_path / "c", hours=3, seed=2)
    assert (tmp_path / "c" / "trace.jsonl").read_bytes() != a


def test_meter_list_install_reads_listed_meters_only(tmp_path):
    res = run_scenario(load_toml(SCEN / "mbus-meterlist.toml"), RunOptions(out_dir=tmp_path))
    summary, out = res.summary, tmp_path
    assert ("meters listed", "5") in res.table  # 4 on the bus: "found" would mislead
    assert summary["meters_found"] == 5  # six rows, one wireless (esecondary) skipped
    assert summary["readouts_failed"] == 2  # "Missing meter" in both rounds
    assert summary["readouts_ok"] == 8
    trace = [json.loads(x) for x in (out / "trace.jsonl").read_text().splitlines()]
    skipped = [e for e in trace if e["kind"] == "install" and "skipped" in e]
    assert [e["position"] for e in skipped] == ["Garden tap"]
    primary_reads = [e for e in trace if e["kind"] == "readout" and e["target"] == "p221"]
    assert primary_reads and all(e["ok"] for e in primary_reads)


def test_overload_scenario_fails_every_request_with_bus_overload(tmp_path):
    summary, out = run(SCEN / "mbus-overload.toml", tmp_path)
    assert summary["overloaded"] and summary["unit_loads"] == 34
    assert summary["readouts_ok"] == 0 and summary["readouts_failed"] > 0
    trace = [json.loads(x) for x in (out / "trace.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "bus_overload" for e in trace)
    assert {e["outcome"] for e in trace if e["kind"] == "frame"} == {"overload"}
    errors = {e["error"] for e in trace if e["kind"] == "readout"}
    assert errors == {"bus_overload"}


def test_golden_telegram_slave_from_a_scenario(tmp_path):
    (tmp_path / "g.hex").write_text(
        "68 15 15 68 08 01 72 78 56 34 12 96 15 01 04 00 00 00 00 04 06 39 30 00 00 B2 16\n"
    )
    (tmp_path / "s.toml").write_text(
        'kind = "mbus"\nhours = 1.5\n[[slaves]]\ntelegram = "g.hex"\nprimary = 1\n'
    )
    summary, out = run(tmp_path / "s.toml", tmp_path / "out")
    assert summary["meters_found"] == 1 and summary["readouts_ok"] == 1
    rows = list(csv.DictReader((out / "readouts.csv").open()))
    assert rows[0]["address"] == "1234567896150104"
    assert rows[0]["quantity"] == "energy" and rows[0]["value"] == "12345000"


def test_hours_override_and_progress(tmp_path):
    seen = []
    summary, _ = run(
        SCEN / "mbus-small.toml", tmp_path, hours=1.5, progress=lambda f, t="": seen.append(f)
    )
    assert summary["sim_seconds"] == 5400 and summary["rounds"] == 1
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


def test_profile_overrides_set_values_and_bad_ones_are_reported(tmp_path):
    (tmp_path / "p.toml").write_text(
        'kind = "mbus"\nhours = 1.5\n[[slaves]]\ntemplate = "heat"\nid = 12345678\n'
        "[slaves.profile]\nenergy = { start = 5000000 }\n"
        "volume_flow = { mean = 0, amplitude = 0 }\n"  # no flow, so no power: energy stays
        "error_flags = { value = 4 }\n"
    )
    summary, out = run(tmp_path / "p.toml", tmp_path / "out")
    rows = {r["quantity"]: r["value"] for r in csv.DictReader((out / "readouts.csv").open())}
    assert rows["energy"] == "5000000" and rows["error_flags"] == "4" and rows["power"] == "0"
    (tmp_path / "bad.toml").write_text(
        'kind = "mbus"\n[[slaves]]\ntemplate = "water"\nid = 1\n'
        "[slaves.profile]\nenergy = { start = 5 }\nvolume = { mean = 3 }\n"
    )
    with pytest.raises(ScenarioError) as exc:
        validate(load_toml(tmp_path / "bad.toml"))
    keys = {i.key for i in exc.value.issues}
    assert keys == {"slaves.0.profile.energy", "slaves.0.profile.volume.mean"}
    assert all(i.line == 6 or i.line == 7 for i in exc.value.issues)


def test_master_settings_come_from_the_scenario_including_f_nibble_search(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(
        'kind = "mbus"\nhours = 1\n[bus.master.settings]\nrequest_idle_ms = 1500\n'
        'f_nibble_search = "always"\n[[slaves]]\ntemplate = "heat"\nid = 12345678\n'
    )
    settings = runner.master_settings(validate(load_toml(f)))
    assert settings.f_nibble_search == "always"
    assert settings.request_idle == pytest.approx(1.5)
    summary, _ = run(f, tmp_path / "out")
    assert summary["talkovers"] == 0 and summary["meters_found"] == 1


def test_readout_rows_are_the_text_csv_writer_gives(tmp_path):
    """ReadoutRows formats repeating fields once; every row must still be byte for byte what
    csv.writer writes for it (quoting of commas, quotes and newlines, None, bools, dates,
    bytes, float reprs), whatever the values."""
    import io
    from datetime import date, datetime

    from simulator.core.world import World
    from simulator.mbus.address import SecondaryAddress
    from simulator.mbus.master import Readout
    from simulator.mbus.records import DataRecord
    from simulator.mbus.telegram import Header, Telegram

    values = [0, -12, 10**12, 0.1, 1e-7, 2.5e16, float("inf"), float("nan"), -0.0, True, None,
              "", "a,b", 'say "hi"', "two\nlines", "°C", b"\x01\xff", date(2026, 1, 5),
              datetime(2026, 1, 5, 1, 2, 3)]  # fmt: skip
    units = ["Wh", "m3, total", 'q"uote', ""]
    records = [
        DataRecord(
            4, (), 3, (), b"", fn, i % 3, 0, i % 2, "energy" if i % 2 else "x,y", units[i % 4], v
        )  # fmt: skip
        for i, (v, fn) in enumerate((v, f) for v in values for f in ("instantaneous", "maximum"))
    ]
    addr = SecondaryAddress(12345678, "ELV", 1, 4)
    tgs = [
        Telegram(Header(ci=0x72, address=addr), records[:20]),
        Telegram(Header(ci=0x72, address=None), records[20:]),
    ]
    ro = Readout(addr, ok=True, telegrams=tgs, finished=7.25)
    world = World(0)
    meters = [runner.Meter("plain", addr, 2400), runner.Meter('pos, "x"', 3, 2400)]
    meters.append(runner.Meter("", 4, 2400))
    fh = io.StringIO()
    rows = runner.ReadoutRows(fh)
    assert sum(rows.write(world, m, ro) for m in meters * 2) == 2 * len(meters) * len(records)
    ref = io.StringIO()
    w = csv.writer(ref, lineterminator="\n")
    w.writerow(runner.CSV_COLUMNS)
    when = world.clock(7.25).isoformat()
    for m in meters * 2:
        for ti, tg in enumerate(tgs):
            for r in tg.records:
                v = r.value
                v = (
                    v.isoformat()
                    if hasattr(v, "isoformat")
                    else v.hex()
                    if isinstance(v, bytes)
                    else v
                )
                a = str(tg.header.address) if tg.header.address is not None else ""
                w.writerow([when, 7.25, m.position, a, ti, r.function, r.storage, r.tariff,
                            r.subunit, r.quantity, r.unit, v])  # fmt: skip
    assert fh.getvalue() == ref.getvalue()
