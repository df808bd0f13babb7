"""``meterbench decode``: hex arguments, files, JSON, errors and the --wmbus hand-over."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import types
from pathlib import Path

import meterbus
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cli import main as cli_main
from simulator.commands import decode as decode_cmd
from simulator.gateways.cme3100.container import wired_container, wired_frame
from simulator.mbus.telegram import decode_telegram, telegram_json
from simulator.wmbus.telegram import build_telegram

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "fixtures" / "telegrams"
WORKED = "68 15 15 68 08 01 72 78 56 34 12 96 15 01 04 00 00 00 00 04 06 39 30 00 00 B2 16"
BAD_CS = WORKED[:-5] + "B3 16"
#: Seed 003 §9.4.2 example (frame body C A CI ..): bytes 25-28 are the record head 0D FD 3B 61,
#: then the 97-byte wireless telegram (L 0x60, ELV room sensor 61000164, CRCs removed).
STREAM_BODY = bytes.fromhex(
    (GOLDEN / "elvaco_stream_mode_example.hex").read_text().replace(" ", "").strip()
)
STREAM_INNER = STREAM_BODY[29:]
#: wmbusmeters' published Kamstrup Multical 21 telegram (mode 5, CRCs removed) and its key.
MC21 = "2A442D2C998734761B168D2091D37CAC21E1D68CDAFFCD3DC452BD802913FF7B1706CA9E355D6C2701CC24"
MC21_KEY = "28F64A24988064A079AA2C807D6102AE"
KEYS_BENCH = ROOT / "fixtures" / "wmbus" / "keys_bench.csv"


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


def test_key_without_wmbus_is_accepted_and_checked(capsys):
    code, out, err = run(capsys, "--key", "00" * 16, WORKED)  # no container: key unused
    assert code == 0 and err == "" and "12345000" in out
    code, _, err = run(capsys, "--key", "00", WORKED)
    assert code == 2 and "32 hex characters" in err
    code, _, err = run(capsys, "--key", "00" * 16, "--keys", str(KEYS_BENCH), WORKED)
    assert code == 2 and "not both" in err


def test_wmbus_missing_module(capsys, monkeypatch):
    monkeypatch.setattr(decode_cmd, "WMBUS_MODULE", "simulator.wmbus.no_such_decode_cli")
    code, _, err = run(capsys, "--wmbus", "2E44")
    assert code == 2 and "wM-Bus decoding is not available" in err
    code, _, err = run(capsys, "--key", "00" * 16, STREAM_BODY.hex())
    assert code == 2 and "wM-Bus decoding is not available" in err
    # without a key the container is still shown, as its bytes
    code, out, _ = run(capsys, "--json", STREAM_BODY.hex())
    assert code == 0
    record = json.loads(out)["records"][2]
    assert record["value"] == STREAM_INNER.hex().upper() and "inner" not in record


def test_wmbus_hands_over_the_parsed_arguments(capsys, monkeypatch):
    seen = {}

    def fake_main(args, out, err):  # the decode's own streams are handed over too
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
        # "inner" (an opened wM-Bus container) is checked by the container tests below
        opened = [r.pop("inner") for r in doc["records"] if "inner" in r]
        assert len(opened) == sum(r["quantity"] == "container" for r in doc["records"])
        assert {k: doc[k] for k in expected["decode"]} == expected["decode"]


# --- wM-Bus containers (0D FD 3B, seed 003 §9.4) -------------------------------------------


def _with_container(inner: bytes) -> str:
    """The seed example's wired frame with ``inner`` as its container (any bytes, LVAR fitted)."""
    body = STREAM_BODY[:25] + bytes([0x0D, 0xFD, 0x3B, len(inner)]) + inner
    return wired_frame(body).hex()


def _inner_json(out: str) -> dict:
    (container,) = [r for r in json.loads(out)["records"] if r["quantity"] == "container"]
    return container["inner"]


def test_stream_example_container_opened_in_the_table(capsys):
    code, out, err = run(capsys, "--file", str(GOLDEN / "elvaco_stream_mode_example.hex"))
    assert code == 0 and err == ""
    lines = out.splitlines()
    row = next(i for i, ln in enumerate(lines) if " container " in ln)
    assert "wM-Bus telegram, 97 bytes" in lines[row]
    nested = [ln for ln in lines[row + 1 :] if ln.startswith("      | ")]
    assert len(nested) == 2 + 16  # link header, TPL header, 16 records
    assert "SND_NR ELV 61000164 version 1 device type 27 (format A, no CRCs)" in nested[0]
    assert "TPL CI 7A ACC=151 status=04" in nested[1] and "security mode 0" in nested[1]
    # by hand: 02 65 36 07 = 0x0736 * 0.01 degC; 02 FB 1A 0E 02 = 0x020E * 0.1 % RH;
    # 0D FD 0F 05 "2.0.1" is ASCII sent last character first
    assert "external_temperature     18.46 °C" in nested[2]
    assert "relative_humidity        52.6 %" in nested[9]
    assert "software_version         1.0.2" in nested[17]


def test_stream_example_inner_json_matches_wmbus_json_and_pymeterbus(capsys):
    code, out, _ = run(capsys, "--json", "--file", str(GOLDEN / "elvaco_stream_mode_example.hex"))
    assert code == 0
    inner = _inner_json(out)
    code, alone, _ = run(capsys, "--wmbus", "--json", STREAM_INNER.hex())
    assert code == 0
    expected = json.loads(alone)
    assert {k: v for k, v in inner.items() if k != "source"} == {
        k: v for k, v in expected.items() if k != "source"
    }
    assert inner["link"]["crc"] is False and inner["security_mode"] == 0
    assert inner["header"]["id"] == "61000164" and inner["header"]["access_number"] == 0x97
    temps = [r["value"] for r in inner["records"] if r["quantity"] == "external_temperature"]
    hums = [r["value"] for r in inner["records"] if r["quantity"] == "relative_humidity"]
    assert temps == [18.46, 18.44, 18.36, 18.42, 18.46, 18.14, 18.78]
    assert hums == [52.6] * 5 + [52.1, 52.7]
    # independently: pymeterbus reads the same wireless telegram (its SND_NR parser)
    theirs = json.loads(meterbus.load(STREAM_INNER).to_JSON())["records"]
    assert [float(r["value"]) for r in theirs[:14]] == pytest.approx(temps + hums)
    assert [r["storage_number"] for r in theirs[:14]] == [
        r["storage"] for r in inner["records"][:14]
    ]


#: Seed 003 §9.4.2 "Example in csv", verbatim (the PDF text keeps spaces inside the hex).
SEED_CSV_LINE = (
    "00000161;05047168;2009-12-17 00:00:00;00; 080072640100619615011B000000000C787217006201FD711C"
    "0DFD3B61604496156401006 1011B7A970400202F2F02653607426534078201652C07226532071265360762651607"
    "5265 560702FB1A0E0242FB1A0E028201FB1A0E0222FB1A0E0212FB1A0E0262FB1A090252FB1A0 F0202FD1B20C3"
    "0DFD0F05322E302E310F"
)


def test_stream_report_csv_lines_open_the_container(capsys, tmp_path):
    f = tmp_path / "report.csv"
    f.write_text(
        "(product serial number;device identification;date;value data count;telegram)\n"
        f"(00000161;05047157;2009-12-17 00:00:00;00; {STREAM_BODY.hex().upper()})\n"
        f"{SEED_CSV_LINE}\n"
    )
    code, out, err = run(capsys, "--json", "--file", str(f))
    assert code == 0 and err == ""  # the heading line is skipped, not an error
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d["source"] for d in docs] == [f"{f}:2", f"{f}:3"]
    for doc in docs:
        assert doc["header"]["id"] == "61000164"
        assert _inner_json(json.dumps(doc))["records"][0]["value"] == 18.46


KEY = bytes(range(16))
ENCRYPTED = build_telegram(
    manufacturer="ELV",
    id=13360079,
    version=1,
    device_type=7,
    records=bytes.fromhex("0413" + "15CD5B07"),  # volume 0x075BCD15 l = 123456.789 m3
    access_no=0x21,
    security_mode=5,
    key=KEY,
    crc=False,
)


def test_encrypted_container_decrypted_with_key(capsys):
    frame = wired_frame(wired_container(ENCRYPTED, rssi_dbm=-70, a=7)).hex()
    code, out, err = run(capsys, "--json", "--key", KEY.hex(), frame)
    assert code == 0 and err == ""
    inner = _inner_json(out)
    assert inner["encrypted"] is True and inner["decrypted"] is True
    assert inner["security_mode"] == 5 and inner["tpl"]["security_mode"] == 5
    assert [(r["quantity"], r["value"], r["unit"]) for r in inner["records"]] == [
        ("volume", 123456.789, "m3")
    ]
    code, out, _ = run(capsys, "--key", KEY.hex(), frame)
    assert code == 0 and "security mode 5" in out and "123456.789 m3" in out
    assert "encrypted, decrypted" in out


def test_encrypted_container_without_key_shows_headers(capsys):
    frame = wired_frame(wired_container(ENCRYPTED, rssi_dbm=-70)).hex()
    code, out, _ = run(capsys, "--json", frame)
    assert code == 0
    inner = _inner_json(out)
    assert inner["encrypted"] is True and inner["decrypted"] is False
    assert inner["records"] == [] and "key" in inner["records_error"]


def test_encrypted_container_wrong_key_refused_rest_decoded(capsys):
    frame = wired_frame(wired_container(ENCRYPTED, rssi_dbm=-70, fabrication_no=42)).hex()
    code, out, err = run(capsys, "--json", "--key", "00" * 16, frame)
    assert code == 0  # the outer frame decoded; the container carries its error
    assert "warning:" in err and "record 2 (container): WrongKeyError" in err
    doc = json.loads(out)
    assert doc["records"][0]["value"] == 42  # fabrication number still decoded
    assert doc["records"][1]["value"] == 30  # FD 71 raw: (-70 + 130) / 2
    error = doc["records"][2]["inner"]["error"]
    assert error["type"] == "WrongKeyError" and isinstance(error["offset"], int)
    assert "123456.789" not in out  # a wrong key never yields records
    code, out, _ = run(capsys, "--key", "00" * 16, frame)
    assert code == 0 and "container not decoded" in out and "WrongKeyError" in out
    assert doc["records"][2]["value"] == ENCRYPTED.hex().upper()  # bytes kept


def test_published_mc21_in_a_container_with_key_file(capsys):
    frame = wired_frame(wired_container(bytes.fromhex(MC21), rssi_dbm=-80)).hex()
    code, out, _ = run(capsys, "--keys", str(KEYS_BENCH), frame)
    assert code == 0 and "6.408 m3" in out and "KAM 76348799" in out
    assert "ELL CI 8D" in out and "security 1" in out  # ELL AES-CTR (EN 13757-4), TPL CI 78
    assert "encrypted, decrypted" in out


def test_corrupt_container_shows_typed_error_and_rest_decodes(capsys):
    bad_l = bytes([0x70]) + STREAM_INNER[1:]  # L-field says 113 bytes, container has 97
    code, out, err = run(capsys, _with_container(bad_l))
    assert code == 0
    assert "FrameError: offset 0: L-field 0x70 does not fit 97 bytes" in err
    assert "container not decoded (offsets from its L-field): FrameError: offset 0" in out
    assert "62001772" in out and "reception_level" in out  # the records around it
    code, out, err = run(capsys, "--json", _with_container(STREAM_INNER[:11]), WORKED)
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert _inner_json(json.dumps(first))["error"]["type"] == "FrameError"
    assert second["records"][0]["value"] == 12345000  # the next frame is still decoded


@settings(max_examples=60, deadline=None)
@given(
    inner=st.one_of(
        st.binary(max_size=120),
        st.tuples(st.integers(0, len(STREAM_INNER) - 1), st.integers(0, 255)).map(
            lambda m: STREAM_INNER[: m[0]] + bytes([m[1]]) + STREAM_INNER[m[0] + 1 :]
        ),
        st.integers(0, len(STREAM_INNER)).map(lambda n: STREAM_INNER[:n]),
    )
)
def test_any_container_bytes_give_a_telegram_or_one_typed_error(inner):
    # called without capsys (hypothesis reuses function-scoped fixtures): own streams
    args = types.SimpleNamespace(
        hex=[_with_container(inner)], file=None, json=True, wmbus=False, key=None, keys=None
    )
    out, err = io.StringIO(), io.StringIO()
    assert decode_cmd.main(args, out, err) == 0
    doc = json.loads(out.getvalue())
    assert doc["records"][0]["value"] == 62001772  # the record before the container
    container = doc["records"][2]
    assert container["value"] == inner.hex().upper()
    if inner:
        opened = container["inner"]
        if "error" in opened:
            assert opened["error"]["type"].endswith("Error") and opened["error"]["message"]
            assert f"record 2 (container): {opened['error']['type']}" in err.getvalue()
        else:
            assert opened["link"]["l"] == inner[0] and err.getvalue() == ""
