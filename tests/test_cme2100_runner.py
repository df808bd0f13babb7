"""``meterbench run`` on ``kind = "cme2100"`` scenarios: SMS script, install, readouts, reports."""

from __future__ import annotations

import csv
import json
import socket
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.gateways.cme2100.protocol import Direction, SmsProtocolError, decrypt
from simulator.gateways.cme2100.report import read_report_rows
from simulator.gateways.cme2100.scenario_model import parse_at
from simulator.sinks.smtp import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "fixtures" / "scenarios"
SMALL = SCENARIOS / "cme2100-small.toml"
FACTORY_KEY = "Fk7#qZ2m!Lw9Rt4x"
PASSWORD = "Pa55-word_2026!x"
METER_IDS = {"12345678", "20250001", "31000042"}


def run(scenario: Path, out: Path, *extra: str) -> dict:
    assert main(["run", str(scenario), "--out", str(out), "--quiet", *extra]) == 0
    return json.loads((out / "summary.json").read_text())


def sms_rows(out: Path) -> list[dict[str, str]]:
    with (out / "sms.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_eml(path: Path):
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


def with_extra(tmp_path: Path, text: str, name: str = "scenario.toml") -> Path:
    """The small scenario with ``text`` appended (a TOML table), in ``tmp_path``."""
    path = tmp_path / name
    path.write_text(SMALL.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")
    return path


def test_small_scenario_end_to_end(tmp_path, capsys):
    out = tmp_path / "res"
    summary = run(SMALL, out)
    printed = capsys.readouterr().out
    assert "SMS sent / accepted / rejected" in printed and "meters found / expected" in printed

    assert (summary["sms_sent"], summary["sms_accepted"], summary["sms_rejected"]) == (7, 3, 4)
    assert summary["sms_rejected_reasons"] == {"bad_tag": 2, "plaintext": 1, "replay": 1}
    assert (summary["security_state"], summary["recipient"]) == ("password_set", "ops@example.com")
    assert summary["meters_found"] == summary["meters_expected"] == 3
    # install completes within the first hour: readouts at 01:00 .. 23:00, 3 meters each
    assert (summary["readout_cycles"], summary["readouts_ok"], summary["readouts_failed"]) == (
        23,
        69,
        0,
    )
    assert (summary["push_reports"], summary["push_failed"]) == (1, 0)
    assert summary["report_files"] == ["push-01-20260106.eml"]

    # the .eml parses with the email package and holds every meter, hour by hour
    msg = read_eml(out / "push-01-20260106.eml")
    assert msg["To"] == "ops@example.com"
    assert msg["Subject"] == "CMe2100 Push Report cme2100 2026-01-06"
    rows = read_report_rows(msg)
    assert len(rows) == summary["rows_per_report"][0] > 0
    assert {r["id"] for r in rows} == METER_IDS
    assert {r["status"] for r in rows} == {"ok"}
    for ident in METER_IDS:
        assert len({r["timestamp"] for r in rows if r["id"] == ident}) == 23

    # the trace: readouts at 2400 bit/s, the push at 00:00 of day 2 (the run's end instant)
    trace = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    cycles = [e for e in trace if e["kind"] == "readout_cycle"]
    assert {c["baud"] for c in cycles} == {2400}
    assert {e["baud"] for e in trace if e["kind"] == "frame"} == {2400}
    (push,) = [e for e in trace if e["kind"] == "push"]
    assert (push["t"], push["outcome"]) == (86400.0, "delivered")


def test_sms_csv_has_every_sms_with_its_outcome(tmp_path):
    out = tmp_path / "res"
    run(SMALL, out)
    rows = sms_rows(out)
    to_gw = [r for r in rows if r["direction"] == "to_gateway"]
    from_gw = [r for r in rows if r["direction"] == "from_gateway"]
    assert [(r["fault"], r["outcome"], r["reason"]) for r in to_gw] == [
        ("", "accepted", ""),
        ("", "accepted", ""),
        ("plaintext", "rejected", "plaintext"),
        ("", "accepted", ""),
        ("replay", "rejected", "replay"),
        ("wrong_key", "rejected", "bad_tag"),
        ("tampered", "rejected", "bad_tag"),
    ]
    # the password never appears in clear; the replay is the install SMS byte for byte
    assert (
        to_gw[0]["plain"].endswith("=" + "*" * 16) and PASSWORD not in (out / "sms.csv").read_text()
    )
    assert to_gw[4]["text"] == to_gw[3]["text"]
    # rejected SMS get no response: four responses to three accepted commands (install: 2)
    assert [r["plain"] for r in from_gw] == [
        "OK communication password set",
        "OK e-mail recipient set to ops@example.com",
        "installation started, expecting 3 meters",
        "installation completed: found 3 of 3 expected meters OK",
    ]
    # independent check: each response decrypts with protocol.decrypt to the logged text
    for r in from_gw:
        plains = []
        for key in (FACTORY_KEY, PASSWORD):
            try:
                plains.append(decrypt(key, r["text"], direction=Direction.RESPONSE).text)
            except SmsProtocolError:
                pass
        assert plains == [r["plain"]]
    # every SMS took the scenario's latency, [1, 5] s
    for r in rows:
        assert 1.0 <= float(r["received_s"]) - float(r["sent_s"]) <= 5.0
    assert [float(r["received_s"]) for r in rows] == sorted(float(r["received_s"]) for r in rows)


def test_same_seed_same_bytes_other_seed_other_trace(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run(SMALL, a)
    run(SMALL, b)
    run(SMALL, c, "--seed", "6")
    for name in ("trace.jsonl", "sms.csv", "push-01-20260106.eml"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "trace.jsonl").read_bytes() != (c / "trace.jsonl").read_bytes()


def test_bad_scenario_reports_every_problem_with_file_and_line(tmp_path, capsys):
    bad = SCENARIOS / "cme2100-bad.toml"
    assert main(["run", str(bad), "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "10 problem(s)" in err
    for line, key in [
        (7, "gateway.password"),
        (8, "gateway.email"),
        (10, "gateway.sms_latency_s"),
        (11, "gateway.fax"),
        (21, "slaves.1.primary"),
        (25, "sms.0.text"),
        (28, "sms.1.at"),
        (32, "sms.2.at"),
        (38, "sms.3.fault"),
        (42, "sms.4.text"),
    ]:
        assert f"cme2100-bad.toml:{line}: {key}:" in err, (line, key)
    assert not (tmp_path / "trace.jsonl").exists()


def test_reports_also_go_to_a_real_smtp_server(tmp_path):
    with SmtpSink() as sink:
        scenario = with_extra(tmp_path, f'[smtp]\nhost = "127.0.0.1"\nport = {sink.port}\n')
        summary = run(scenario, tmp_path / "res")
        (received,) = sink.wait_for(1)
    assert summary["push_reports"] == 1 and summary["smtp"] == f"127.0.0.1:{sink.port}"
    assert sink.envelopes[0].rcpt_tos == ("ops@example.com",)
    saved = read_eml(tmp_path / "res" / "push-01-20260106.eml")
    assert read_report_rows(received) == read_report_rows(saved)


def test_a_refused_smtp_delivery_keeps_the_rows_for_the_next_report(tmp_path):
    with socket.socket() as s:  # a port nobody listens on (bound, then released)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scenario = with_extra(tmp_path, f'[smtp]\nhost = "127.0.0.1"\nport = {port}\ntimeout_s = 2\n')
    out = tmp_path / "res"
    summary = run(scenario, out, "--hours", "48")
    assert (summary["push_reports"], summary["push_failed"]) == (0, 2)
    first, second = (read_report_rows(read_eml(out / f)) for f in summary["report_files"])
    stamps = {r["timestamp"] for r in first}
    assert len({s[:13] for s in stamps}) == 23  # readouts 01:00 .. 23:00 of day 1
    assert stamps < {r["timestamp"] for r in second}  # all kept, day 2 added
    assert len(second) > len(first)


def test_no_script_means_the_default_commissioning(tmp_path):
    text = SMALL.read_text(encoding="utf-8").split("[[sms]]")[0]
    scenario = tmp_path / "default.toml"
    scenario.write_text(text.replace("hours = 24", "hours = 2"), encoding="utf-8")
    summary = run(scenario, tmp_path / "res")
    assert (summary["sms_sent"], summary["sms_accepted"], summary["sms_rejected"]) == (3, 3, 0)
    assert summary["security_state"] == "password_set" and summary["meters_found"] == 3
    assert summary["readouts_ok"] == 3  # the 01:00 readout; 02:00 starts at the end instant
    assert summary["push_skipped"] == 0 and summary["report_files"] == []


def test_a_password_response_still_in_flight_at_the_end_is_kept(tmp_path):
    # 0:01 + up to 5 s latency, then the response: a run of 62 s ends before it arrives
    out = tmp_path / "res"
    summary = run(SMALL, out, "--hours", str(62 / 3600))
    rows = sms_rows(out)
    assert summary["sms_sent"] == 1
    assert [r["outcome"] for r in rows] in (["accepted", "in_flight"], ["in_flight"])
    assert summary["sms_in_flight"] == sum(r["outcome"] == "in_flight" for r in rows) >= 1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0:05", 300.0), ("24:00", 86400.0), ("1:02:03", 3723.0), ("0:00:01.5", 1.5)],
)
def test_parse_at(text, seconds):
    assert parse_at(text) == seconds


@pytest.mark.parametrize("text", ["5", "0:60", "1:2", "-1:00", "00:05pm", ""])
def test_parse_at_rejects(text):
    with pytest.raises(ValueError, match="H:MM"):
        parse_at(text)


def test_shipped_building_scenario_does_what_its_comments_say(tmp_path):
    summary = run(SCENARIOS / "cme2100-building.toml", tmp_path)
    assert summary["meters_found"] == summary["meters_expected"] == 8
    assert summary["sms_rejected_reasons"] == {
        "bad_tag": 3,  # wrong key, its replay, tampered
        "factory_key": 1,
        "plaintext": 1,
        "replay": 1,
    }
    assert summary["report_files"] == ["push-01-20260106.eml", "push-02-20260107.eml"]
    assert summary["push_reports"] == 2 and summary["readout_cycles"] == 47
    assert summary["readouts_ok"] + summary["readouts_failed"] == 47 * 8
    assert summary["readouts_failed"] > 0  # the silent-fault meter
    for name in summary["report_files"]:
        assert len({r["id"] for r in read_report_rows(read_eml(tmp_path / name))}) == 8
