"""``meterbench decode --wmbus``: through the real CLI parser (simulator.cli.main)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main as cli
from simulator.wmbus.telegram import build_telegram

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wmbus"
MC21 = "2A442D2C998734761B168D2091D37CAC21E1D68CDAFFCD3DC452BD802913FF7B1706CA9E355D6C2701CC24"
MC21_KEY = "28F64A24988064A079AA2C807D6102AE"
FRAME_B = "1444AE0C7856341201078C2027780B134365877AC5"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli(["decode", "--wmbus", *argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_plain_frame_b_text(capsys) -> None:
    rc, out, _ = run(capsys, FRAME_B)
    assert rc == 0
    assert "SND_NR CEN 12345678" in out and "format B, CRCs ok" in out
    assert "876.543 m3" in out


def test_spaced_hex_is_one_telegram(capsys) -> None:
    rc, out, _ = run(capsys, *[FRAME_B[i : i + 2] for i in range(0, len(FRAME_B), 2)])
    assert rc == 0 and "876.543 m3" in out


def test_key_decrypts_and_json(capsys) -> None:
    rc, out, _ = run(capsys, MC21, "--key", MC21_KEY, "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["header"]["id"] == "76348799"
    assert doc["decrypted"] is True
    assert [r["value"] for r in doc["records"] if r["quantity"] == "volume"] == [6.408, 6.408]
    assert doc["link"]["crc"] is False


def test_key_file_decrypts(capsys) -> None:
    rc, out, _ = run(capsys, MC21, "--keys", str(FIXTURES / "keys_bench.csv"))
    assert rc == 0 and "6.408 m3" in out and "decrypted" in out


def test_wrong_key_exit_1_with_reason(capsys) -> None:
    rc, out, err = run(capsys, MC21, "--key", "00" * 16)
    assert rc == 1
    assert "WrongKeyError" in err and "payload CRC" in err
    rc, out, _ = run(capsys, MC21, "--key", "00" * 16, "--json")
    assert rc == 1
    assert json.loads(out)["error"]["type"] == "WrongKeyError"


def test_no_key_shows_headers(capsys) -> None:
    rc, out, _ = run(capsys, MC21)
    assert rc == 0 and "NOT decrypted" in out and "no key" in out


def test_file_with_rtlwmbus_lines_and_errors(tmp_path: Path, capsys) -> None:
    with_crcs = build_telegram(
        manufacturer="ELV", id=1, version=1, device_type=7, records=b"", access_no=1, fmt="A"
    ).hex()
    f = tmp_path / "telegrams.txt"
    f.write_text(
        "# comment\n"
        f"C1;1;1;2020-01-23 10:25:13.000;97;148;76348799;0x{MC21}\n"
        f"{with_crcs}\n"
        "zz\n"
        f"{with_crcs[:-2]}00\n",  # format A, last CRC broken
        encoding="utf-8",
    )
    rc, out, err = run(capsys, "--file", str(f), "--key", MC21_KEY)
    assert rc == 1  # two bad lines, the good ones still decoded
    assert "6.408 m3" in out and "SND_NR ELV 00000001" in out
    assert f"{f}:4: not hex" in err
    assert f"{f}:5: CRCError: offset {len(with_crcs) // 2 - 2}" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--key", "00"],
        ["--key", MC21_KEY, "--keys", "x.csv", MC21],
        ["--keys", str(FIXTURES / "keys_manual_figure8.csv"), MC21],
    ],
)
def test_usage_errors_exit_2(capsys, argv) -> None:
    rc, _, err = run(capsys, *argv)
    assert rc == 2 and err.startswith("error:")


def test_values_keep_their_digits(capsys) -> None:
    # 04 13 15 CD 5B 07: volume 0x075BCD15 = 123456789 l (VIF 13: 1e-3 m3); "%g" showed 123457
    raw = build_telegram(
        manufacturer="ELV",
        id=1,
        version=1,
        device_type=7,
        records=bytes.fromhex("041315CD5B07"),
        access_no=1,
    )
    rc, out, _ = run(capsys, raw.hex())
    assert rc == 0 and "123456.789 m3" in out


#: CMa12w room sensor, from wmbusmeters' simulations/simulation_c1.txt (published telegram,
#: CRCs removed, ``_`` at the header/payload split): 23.34 °C, id 66666666.
CMA12W = "2744961566666666201B7AF9000020_2F2F02651E094265180902FD1B30030DFD0F05302E302E340F"


def test_file_in_wmbusmeters_simulation_format(tmp_path: Path, capsys) -> None:
    """Issue 14: ``telegram=|HEX|`` lines (and their expected-JSON lines) are read."""
    f = tmp_path / "simulation_c1.txt"
    f.write_text(
        "# Test CMa12w C1 telegrams\n\n"
        f"telegram=|{CMA12W}|\n"
        '{"media":"room sensor","meter":"cma12w","id":"66666666"}\n'
        f"telegram=||{MC21}|+24\n"  # logged undecrypted, 24 s later
        "telegram=|zz|\n"
        "telegram=2A44\n",
        encoding="utf-8",
    )
    rc, out, err = run(capsys, "--file", str(f), "--key", MC21_KEY)
    assert rc == 1
    assert "SND_NR ELV 66666666" in out and "23.34" in out
    assert "6.408 m3" in out
    assert f"{f}:6: not hex" in err
    assert f"{f}:7: expected telegram=|HEX|" in err
    assert f"{f}:4" not in err  # the JSON line is skipped


def test_one_file_shares_compact_formats_and_afl_fragments(capsys, tmp_path) -> None:
    # compact frames decode after their full frame in the same input (wmbusmeters
    # tests/test_analyze.sh pair); AFL fragments join into one message
    from simulator.mbus.records import decode_records
    from simulator.wmbus.telegram import build_fragments

    compact = "23442D2C998734761B168D20983081B2227A6FA1F10E1B79B5EB4B17E81F930E937EE06C"
    recs, _, _ = decode_records(bytes.fromhex("0413393000000C1378563412"))
    frags = build_fragments(
        fragment_size=9, manufacturer="ELS", id=12345678, version=3, device_type=7,
        records=recs, access_no=5, security_mode=7, key=bytes.fromhex(MC21_KEY),
    )  # fmt: skip
    lines = [compact, MC21, compact, *(f.hex() for f in frags)]
    path = tmp_path / "t.txt"
    path.write_text("\n".join(lines) + "\n")
    rc, out, _ = run(capsys, "--file", str(path), "--key", MC21_KEY, "--json")
    assert rc == 0
    docs = [json.loads(x) for x in out.splitlines()]
    assert "A8ED unknown" in docs[0]["records_error"]
    assert docs[2]["format_signature"] == "A8ED" and docs[2]["records_error"] is None
    assert [r["value"] for r in docs[2]["records"]][1] == pytest.approx(6.409)
    *held, last = docs[3:]
    assert all("held" in d["records_error"] for d in held)
    assert last["afl"]["fragments"] == len(frags) and len(last["records"]) == 2


def test_a_message_missing_its_last_fragment_fails_the_decode(capsys, tmp_path) -> None:
    from simulator.mbus.records import decode_records
    from simulator.wmbus.telegram import build_fragments

    recs, _, _ = decode_records(bytes.fromhex("0413393000000C1378563412"))
    frags = build_fragments(
        fragment_size=9, manufacturer="ELS", id=12345678, version=3, device_type=7,
        records=recs, access_no=5, security_mode=7, key=bytes.fromhex(MC21_KEY),
    )  # fmt: skip
    path = tmp_path / "t.txt"
    path.write_text("\n".join(f.hex() for f in frags[:-1]) + "\n")
    rc, _, err = run(capsys, "--file", str(path), "--key", MC21_KEY)
    assert rc == 1
    assert "FragmentError" in err and "last fragment missing" in err
