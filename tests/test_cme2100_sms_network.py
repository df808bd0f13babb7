"""SMS delivery in a ``kind = "cme2100"`` run: late, twice or never ([sms_network]), and UCS-2
coded SMS from the script. Defaults are off: a run without the table is unchanged."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from simulator.cli import main

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "fixtures" / "scenarios" / "cme2100-small.toml"


def scenario(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(SMALL.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    return path


def run(path: Path, out: Path) -> dict:
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "summary.json").read_text())


def rows(out: Path) -> list[dict[str, str]]:
    with (out / "sms.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def events(out: Path, kind: str) -> list[dict]:
    lines = (out / "trace.jsonl").read_text().splitlines()[1:]
    return [e for e in map(json.loads, lines) if e["kind"] == kind]


def test_zero_probabilities_change_nothing(tmp_path) -> None:
    plain = run(SMALL, tmp_path / "a")
    zeros = scenario(tmp_path, "[sms_network]\nloss_probability = 0\nlate_s = [1, 2]\n")
    same = run(zeros, tmp_path / "b")
    assert (tmp_path / "a" / "trace.jsonl").read_bytes() == (
        tmp_path / "b" / "trace.jsonl"
    ).read_bytes()
    assert "sms_network" not in plain and "sms_network" not in same
    assert events(tmp_path / "a", "sms_network") == []


def test_lost_sms_never_arrive_and_are_accounted(tmp_path) -> None:
    out = tmp_path / "res"
    summary = run(scenario(tmp_path, "[sms_network]\nloss_probability = 1.0\n"), out)
    assert summary["sms_accepted"] == summary["sms_rejected"] == 0
    assert summary["sms_network"]["to_gateway"]["lost"] == summary["sms_sent"] == 7
    assert summary["security_state"] == "factory" and summary["meters_found"] is None
    to_gw = [r for r in rows(out) if r["direction"] == "to_gateway"]
    assert [r["outcome"] for r in to_gw] == ["lost"] * 7
    assert all(r["received_s"] == "" for r in to_gw)
    lost = events(out, "sms_network")
    assert len(lost) == 7 and {e["fate"] for e in lost} == {"lost"}
    assert all(e["delays_s"] == [] and e["source"] == "network" for e in lost)


def test_a_command_delivered_twice_is_rejected_as_replay_the_second_time(tmp_path) -> None:
    out = tmp_path / "res"
    extra = "[sms_network]\nduplicate_probability = 1.0\nduplicate_after_s = [60, 60]\n"
    summary = run(scenario(tmp_path, extra), out)
    net = summary["sms_network"]
    assert net["to_gateway"]["duplicated"] == summary["sms_sent"] == 7
    # 3 commands accepted once each; the second copies of qset and install are replays, the
    # password command's copy comes when the password is set (factory_key), the scripted
    # replay arrives twice, the bad SMS are rejected twice each
    assert summary["sms_accepted"] == 3
    assert summary["sms_rejected_reasons"] == {
        "bad_tag": 4,
        "factory_key": 1,
        "plaintext": 2,
        "replay": 4,
    }
    assert summary["sms_accepted"] + summary["sms_rejected"] == 2 * 7 - summary["sms_in_flight"]
    # the bench too sees each response twice and rejects the second copy as a replay
    from_gw = [r for r in rows(out) if r["direction"] == "from_gateway"]
    assert net["from_gateway"]["duplicated"] == len(from_gw) // 2
    assert [r["outcome"] for r in from_gw].count("rejected") == len(from_gw) // 2
    dup = events(out, "sms_network")
    assert all(e["fate"] == "duplicated" and len(e["delays_s"]) == 2 for e in dup)
    assert all(e["delays_s"][1] - e["delays_s"][0] == pytest.approx(60) for e in dup)


def test_a_late_sms_arrives_after_the_sms_centre_held_it(tmp_path) -> None:
    out = tmp_path / "res"
    extra = "[sms_network]\nlate_probability = 1.0\nlate_s = [1800, 1800]\n"
    summary = run(scenario(tmp_path, extra), out)
    assert summary["sms_network"]["to_gateway"]["late"] == 7
    to_gw = [r for r in rows(out) if r["direction"] == "to_gateway" and r["received_s"]]
    assert to_gw
    lo, hi = 1.0, 5.0  # the small scenario's sms_latency_s
    for r in to_gw:
        took = float(r["received_s"]) - float(r["sent_s"])
        assert 1800 + lo <= took <= 1800 + hi


def test_same_seed_same_network_fates(tmp_path) -> None:
    extra = (
        "[sms_network]\nloss_probability = 0.3\nlate_probability = 0.3\n"
        "duplicate_probability = 0.3\n"
    )
    path = scenario(tmp_path, extra)
    run(path, tmp_path / "a")
    run(path, tmp_path / "b")
    a = (tmp_path / "a" / "trace.jsonl").read_bytes()
    assert a == (tmp_path / "b" / "trace.jsonl").read_bytes()
    assert events(tmp_path / "a", "sms_network")  # something happened with p = 0.3 x 3


@pytest.mark.parametrize(
    ("table", "where"),
    [
        ("loss_probability = 1.5", "loss_probability"),
        ("late_s = [100, 10]", "late_s"),
        ("duplicate_after_s = [-1, 10]", "duplicate_after_s"),
        ("lose = 0.1", "lose"),
    ],
)
def test_bad_network_settings_are_reported_with_their_key(tmp_path, capsys, table, where):
    path = scenario(tmp_path, f"[sms_network]\n{table}\n")
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert where in capsys.readouterr().err


def test_script_sms_sent_ucs2_coded_and_a_non_gsm_character(tmp_path) -> None:
    extra = (
        '[[sms]]\nat = "1:00"\ntext = "qset email {email}"\ncoding = "ucs2"\n\n'
        '[[sms]]\nat = "1:10"\ntext = "qset email {email}"\nfault = "non_gsm"\n'
    )
    out = tmp_path / "res"
    summary = run(scenario(tmp_path, extra), out)
    assert summary["sms_accepted"] == 3 + 1  # the UCS-2 coded command is accepted
    assert summary["sms_rejected_reasons"]["non_gsm"] == 1
    gw = [e for e in events(out, "sms") if e["source"] == "cme2100" and e["direction"] == "in"]
    assert [e.get("coding") for e in gw[-2:]] == ["ucs2", "ucs2"]
    assert [e["outcome"] for e in gw[-2:]] == ["accepted", "rejected"]
    last = [r for r in rows(out) if r["direction"] == "to_gateway"][-2:]
    assert [(r["fault"], r["outcome"], r["reason"]) for r in last] == [
        ("", "accepted", ""),
        ("non_gsm", "rejected", "non_gsm"),
    ]
