"""What the bench writes to set a physical CMe3100 up (simulator/testing/push_setup.py): the
meter list of the emulated meters, the CAD file (parsed back by the project's own CAD parser
and served by the HTTP receiver), the operator's sheet, and the operator's refusal."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from simulator.building.scenario_model import group_ids
from simulator.gateways.cme3100.cad import parse_cad
from simulator.gateways.cme3100.gateway_settings import Cme3100Settings
from simulator.mbus.meterlist import format_meter_list, parse_meter_list
from simulator.rig import (
    FtpReceiverSpec,
    HttpReceiverSpec,
    ReceiversSpec,
    SmtpReceiverSpec,
    TrapReceiverSpec,
    load_rig,
)
from simulator.testing import push_setup as ps
from simulator.testing.bench import BenchError
from simulator.testing.receivers import Receivers

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "rigs" / "lab-cme3100-push.toml"
SIM = ROOT / "rigs" / "sim-cme3100.toml"
SPEC = ReceiversSpec(
    http=HttpReceiverSpec(path="/bench", user="gw", password="pw-http"),
    ftp=FtpReceiverSpec(user="ftpgw", password="pw-ftp"),
    smtp=SmtpReceiverSpec(),
    snmp_traps=TrapReceiverSpec(community="bench-traps"),
)


@pytest.fixture(scope="module")
def rx():
    with Receivers(SPEC, rig_name="test") as receivers:
        yield receivers


@pytest.fixture(scope="module")
def lab():
    return load_rig(LAB)


def _ids(entries) -> list[str]:
    return [e.secondary for e in entries]


def _scenario_ids(rig) -> list[str]:
    """The emulated meters' IDs as the scenario's slave groups make them (not the list)."""
    sc, _ = ps.load_scenario(rig)
    return [f"{i:08d}" for g in sc.slaves for i in group_ids(g)]


# -- the meter list -----------------------------------------------------------------------
def test_meter_list_round_trip_gives_the_emulated_meters(lab):
    meters = ps.emulated_meters(lab)
    back = parse_meter_list(format_meter_list(meters))
    strip = [(e.position, e.secondary, e.baud, e.mode, e.primary, e.enhanced) for e in meters]
    assert [(e.position, e.secondary, e.baud, e.mode, e.primary, e.enhanced) for e in back] == strip
    assert sorted(_ids(back)) == sorted(_scenario_ids(lab))  # every emulated meter, once


def test_meter_list_from_the_slave_groups_without_a_list(lab, tmp_path):
    src = ROOT / "fixtures" / "scenarios" / "cme3100-suite.toml"
    text = src.read_text().replace('meter_list = "../meterlists/cme3100-suite.csv"', "")
    (tmp_path / "sc.toml").write_text(text)
    rig = lab.model_copy(
        update={"push": lab.push.model_copy(update={"scenario": str(tmp_path / "sc.toml")})}
    )
    meters = ps.emulated_meters(rig)
    back = parse_meter_list(format_meter_list(meters))
    assert _ids(back) == _scenario_ids(rig)
    assert {e.baud for e in back} == {2400} and {e.mode for e in back} == {"secondary"}
    assert "silent water meter 92000003" in [e.position for e in back]


# -- the CAD file -------------------------------------------------------------------------
def test_cad_parses_back_and_targets_the_receivers(lab, rx, tmp_path):
    files = ps.prepare_lab(lab, rx, tmp_path, lambda text: True)
    text = files.cad.read_text()
    cad = parse_cad(text)  # the project's own parser: no problems
    assert cad.mode == "server" and [c.path for c in cad.configs] == [None] * len(cad.configs)
    fresh = ps.settings_from_cad(Cme3100Settings(), text)  # a factory-fresh unit takes it
    http = {(urlsplit(r.target).hostname, urlsplit(r.target).port, r.user, r.password)
            for r in (*fresh.reports, *fresh.event_reports) if r.protocol == "http"}  # fmt: skip
    assert http == {("127.0.0.1", rx.http.port, "gw", "pw-http")}
    assert {urlsplit(r.target).path for r in fresh.reports if r.protocol == "http"} == {
        "/bench/push",
        "/bench/status",
    }
    ftp = [r for r in fresh.reports if r.protocol == "ftp"]
    assert [(r.target, r.user, r.password) for r in ftp] == [
        (f"ftp://127.0.0.1:{rx.ftp.port}/push", "ftpgw", "pw-ftp")
    ]
    assert fresh.snmp.enabled and fresh.snmp.community == "bench-traps"
    assert [(t.host, t.port) for t in fresh.snmp.traps] == [("127.0.0.1", rx.snmp_traps.port)]
    assert fresh.readout_schedule == "15min" and fresh.http_timeout_s == 30
    # the HTTP receiver serves the very file
    assert urllib.request.urlopen(files.cad_url, timeout=5).read().decode() == text


def test_one_settings_object_makes_the_cad_and_the_model(lab, rx, tmp_path):
    model = ps.apply_sim(load_rig(SIM))  # what the simulated gateway runs with
    setup = ps.gateway_setup(lab, rx)
    cad = ps.cad_text(setup.settings)
    back = ps.settings_from_cad(model, cad)
    carried = ps.cad_keys(setup.settings)
    assert {"reports", "event_reports", "snmp", "readout_schedule", "http_timeout_s"} <= set(
        carried
    )
    assert {k: getattr(back, k) for k in carried} == {
        k: getattr(setup.settings, k) for k in carried
    }
    # a factory-fresh unit loaded with the CAD runs the model's settings: only where the
    # reports go (and who receives traps) differs
    unit = ps.settings_from_cad(Cme3100Settings(), cad)
    skip = {"target", "user", "password"}
    for key in ("reports", "event_reports"):
        assert [r.model_dump(exclude=skip) for r in getattr(unit, key)] == [
            r.model_dump(exclude=skip) for r in getattr(model, key)
        ]
    assert unit.snmp.model_dump(exclude={"traps", "community"}) == model.snmp.model_dump(
        exclude={"traps", "community"}
    )
    rest = {"reports", "event_reports", "snmp"}
    assert unit.model_dump(exclude=rest) == model.model_dump(exclude=rest)


def test_cad_carries_any_settings_a_scenario_changes():
    s = Cme3100Settings(
        continuous_readout=True,
        status_byte_logging="always",
        multi_telegram="auto",
        mail_timeout_s=-1,
        readout_schedule="0 1 * * *|0 13 * * *",
        time={"rtc_drift_ppm": 20, "ntp": False},
        virtual_mbus={"enabled": True, "port": 10100},
        event_reports=[{"template": 3005, "target": "http://x/e|/f"}],
        reports=[
            {
                "name": "r",
                "template": 3001,
                "target": "http://x/y|/z",
                "schedule": "0 1 * * *|0 13 * * *",
            }
        ],
    )
    assert ps.settings_from_cad(Cme3100Settings(), ps.cad_text(s)) == s


# -- the sheet and the operator -----------------------------------------------------------
def test_the_sheet_names_every_target_and_schedule(lab, rx, tmp_path):
    shown = []
    files = ps.prepare_lab(lab, rx, tmp_path, lambda text: shown.append(text) or True)
    assert shown == [files.sheet_text] == [files.sheet.read_text()]
    setup = ps.gateway_setup(lab, rx)
    rows = {line.split("|")[1].strip(): line for line in files.sheet_text.splitlines()
            if line.startswith("| ")}  # fmt: skip
    for r in setup.settings.reports:
        assert f"`{r.target}`" in rows[r.name] and r.schedule in rows[r.name]
        assert r.value_period in rows[r.name] and str(r.template) in rows[r.name]
    for e in setup.settings.event_reports:
        assert f"`{e.target}`" in rows[e.name]
    sheet = files.sheet_text
    assert f"`127.0.0.1:{rx.snmp_traps.port}`" in sheet and "`bench-traps`" in sheet
    assert f"port {rx.smtp.port}" in sheet and "/dev/ttyUSB0" in sheet
    assert str(files.meter_list) in sheet and files.cad_url in sheet
    assert "expects 8" in sheet and "15min" in sheet


def test_a_declined_setup_is_a_bench_error(lab, rx, tmp_path):
    with pytest.raises(BenchError, match="did not confirm"):
        ps.prepare_lab(lab, rx, tmp_path, lambda text: False)


def test_a_missing_receiver_is_named(lab, tmp_path):
    with Receivers(ReceiversSpec(http=HttpReceiverSpec()), rig_name="x") as only_http:
        with pytest.raises(
            BenchError,
            match=r"values-ftp.*\[receivers\.ftp\].*values-mail.*\[receivers\.smtp\].*SNMP traps",
        ):
            ps.prepare_lab(lab, only_http, tmp_path, lambda text: True)


def test_a_wildcard_receiver_needs_the_bench_address(lab, tmp_path):
    spec = ReceiversSpec(
        http=HttpReceiverSpec(host="0.0.0.0"),
        ftp=FtpReceiverSpec(),
        smtp=SmtpReceiverSpec(),
        snmp_traps=TrapReceiverSpec(),
    )
    with Receivers(spec, rig_name="x") as wild:
        with pytest.raises(BenchError, match="bench_host"):
            ps.gateway_setup(lab, wild)
        setup = ps.gateway_setup(lab, wild, bench_host="192.0.2.7")
    assert {
        urlsplit(r.target).hostname for r in setup.settings.reports if r.protocol != "mail"
    } == {"192.0.2.7"}


def test_setup_files_are_written_where_asked(lab, rx, tmp_path):
    out = tmp_path / "deep" / "setup"
    files = ps.prepare_lab(lab, rx, out, lambda text: True)
    assert {p.name for p in out.iterdir()} == {"meterlist.csv", "cme3100.cad", "setup-sheet.md"}
    assert files.meter_list.read_text().startswith("Position,SecondaryAddress,BaudRate")
    shutil.rmtree(out)
