"""``meterbench decode``: hex arguments, files, JSON, errors and the --wmbus hand-over."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from simulator.cli import main as cli_main
from simulator.commands import decode as decode_cmd
from simulator.mbus.telegram import decode_telegram, telegram_json

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "fixtures" / "telegrams"
WORKED = "68 15 15 68 08 01 72 78 56 34 12 96 15 01 04 00 00 00 00 04 06 39 30 00 00 B2 16"
BAD_CS = WORKED[:-5] + "B3 16"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main(["decode", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_hex_words_as_separate_arguments(capsys):
    code, out, err = run(capsys, *WORKED.split())
    assert code == 0 and err == ""
    assert "RSP_UD a=1 CI=72 id=12345678 ELV 1 record" in out
    assert "energy" in out and "12345000" in out and "Wh" in out
    assert "heat (outlet)" in out


def test_json_shape(capsys):
    code, out, _ = run(capsys, "--json", WORKED.replace(" ", ""))
    assert code == 0
    (line,) = out.splitlines()
    doc = json.loads(line)
    expected = telegram_json(decode_telegram(bytes.fromhex(WORKED.replace(" ", ""))))
    assert {k: doc[k] for k in expected} == expected
    assert doc["frame"] == {
        "type": "LongFrame",
        "c": "08",
        "a": 1,
        "ci": "72",
        "function": "RSP_UD",
    }


def test_several_frames_back_to_back(capsys):
    code, out, _ = run(capsys, "E5", "10 7B 01 7C 16", WORKED)
    assert code == 0
    assert [ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("frame")] == [
        "E5",
        "REQ_UD2 a=1 FCB=1",
        "RSP_UD a=1 CI=72 id=12345678 ELV 1 record",
    ]


def test_bad_frame_reports_offset_and_continues(capsys):
    code, out, err = run(capsys, BAD_CS, WORKED)
    assert code == 1
    assert "FrameError" in err and "offset 25: checksum B3 != computed B2" in err
    assert "12345000" in out  # the good frame after the bad one is still decoded


def test_json_error_objects(capsys):
    code, out, _ = run(capsys, "--json", BAD_CS, "68 04 04 68 08 01 70 08 81 16")
    assert code == 1
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["error"]["type"] == "FrameError" and first["error"]["offset"] == 25
    assert second["error"]["type"] == "ApplicationError" and second["error"]["code"] == 8
    assert second["frame"]["ci"] == "70"


def test_file_one_frame_per_line(capsys, tmp_path):
    f = tmp_path / "frames.txt"
    f.write_text(f"# two good, one bad\n{WORKED}\n\nE5\n{BAD_CS}\n10 40 01 41 16\n")
    code, out, err = run(capsys, "--file", str(f))
    assert code == 1
    assert f"{f}:5" in err and "checksum" in err
    assert "12345000" in out and "SND_NKE a=1" in out and "E5" in out


def test_file_one_frame_over_several_lines(capsys, tmp_path):
    f = tmp_path / "frame.hex"
    words = WORKED.split()
    f.write_text(
        " ".join(words[:10]) + "\n" + " ".join(words[10:20]) + "\n" + " ".join(words[20:]) + "\n"
    )
    code, out, _ = run(capsys, "--json", "--file", str(f))
    assert code == 0
    assert json.loads(out)["records"][0]["value"] == 12345000


def test_seed_003_stream_example_decodes(capsys):
    # seed 003 §9.4: the Elvaco example is a frame body (C A CI data) wrapped over lines
    code, out, _ = run(capsys, "--file", str(GOLDEN / "elvaco_stream_mode_example.hex"))
    assert code == 0
    assert "id=61000164 ELV 3 records" in out and "room sensor" in out and "container" in out


def test_stream_mode_csv_line(capsys, tmp_path):
    body = (GOLDEN / "elvaco_stream_mode_example.hex").read_text().replace(" ", "").strip()
    f = tmp_path / "report.csv"
    f.write_text(f"00000161;05047168;2009-12-17 00:00:00;00; {body}\n")
    code, out, _ = run(capsys, "--json", "--file", str(f))
    assert code == 0
    assert json.loads(out)["header"]["id"] == "61000164"


def test_not_hex_and_no_input(capsys):
    code, _, err = run(capsys, "68 1G")
    assert code == 1 and "not hex" in err
    code, _, err = run(capsys, "681")
    assert code == 1 and "odd number" in err
    code, _, err = run(capsys)
    assert code == 2 and "no input" in err


def test_key_without_wmbus_is_usage_error(capsys):
    code, _, err = run(capsys, "--key", "00" * 16, WORKED)
    assert code == 2 and "--wmbus" in err


def test_wmbus_missing_module(capsys, monkeypatch):
    monkeypatch.setattr(decode_cmd, "WMBUS_MODULE", "simulator.wmbus.no_such_decode_cli")
    code, _, err = run(capsys, "--wmbus", "2E44")
    assert code == 2 and "wM-Bus decoding is not available" in err


def test_wmbus_hands_over_the_parsed_arguments(capsys, monkeypatch):
    seen = {}

    def fake_main(args):
        seen.update(hex=args.hex, json=args.json, key=args.key, keys=args.keys)
        return 7

    module = types.ModuleType("fake_wmbus_cli")
    module.main = fake_main
    monkeypatch.setitem(sys.modules, "fake_wmbus_cli", module)
    monkeypatch.setattr(decode_cmd, "WMBUS_MODULE", "fake_wmbus_cli")
    code, _, _ = run(capsys, "--wmbus", "--json", "--key", "AB" * 16, "2E", "44")
    assert code == 7
    assert seen == {"hex": ["2E", "44"], "json": True, "key": "AB" * 16, "keys": None}


def test_installed_entry_point_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "decode", "--json", WORKED],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["header"]["manufacturer"] == "ELV"


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.hex")))
def test_every_golden_through_the_cli(capsys, name):
    code, out, err = run(capsys, "--json", "--file", str(GOLDEN / f"{name}.hex"))
    expected = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    if "error" in expected:
        assert code == 1 and expected["error"]["type"] in err
    else:
        assert code == 0
        doc = json.loads(out)
        assert {k: doc[k] for k in expected["decode"]} == expected["decode"]
