"""One CLI convention for every verb (simulator.cli): exit status 0 ok, 1 checks failed,
2 usage or input error, 3 bench fault; environment variables MBENCH_*; ``decode -`` reads
stdin; ``--out`` naming the wrong kind of path is a usage error. Verbs run as processes."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cli import (
    ENV_PREFIX,
    EXIT_BENCH_FAULT,
    EXIT_CHECKS_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    main,
)

ROOT = Path(__file__).resolve().parent.parent
BAD_CS = "10 7B 01 7D 16"  # REQ_UD2 with a wrong checksum


def mb(*args: str, stdin: str | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "simulator.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        input=stdin,
        env=env,
    )


def test_the_convention_values():
    assert (EXIT_OK, EXIT_CHECKS_FAILED, EXIT_USAGE, EXIT_BENCH_FAULT) == (0, 1, 2, 3)


# -- --out -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "verb",
    [
        ["run", "--quiet"],
        ["record", "--port", "/dev/ttyNOPE0"],
        ["suite"],
    ],
)
def test_out_naming_a_file_is_a_usage_error(tmp_path, verb):
    f = tmp_path / "results.txt"
    f.write_text("keep me\n")
    proc = mb(*verb, "--out", str(f))
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert f"argument --out: {f} is a file; --out names a folder" in proc.stderr
    assert f.read_text() == "keep me\n"


def test_meter_out_naming_a_folder_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["meter", "from-telegram", "E5", "--out", str(tmp_path)])
    assert exc.value.code == EXIT_USAGE
    assert "is a folder; --out names a file" in capsys.readouterr().err


# -- decode - --------------------------------------------------------------------------------
def test_decode_dash_reads_stdin():
    proc = mb("decode", "-", stdin="E5\n# comment\n10 7B 01 7C 16\n")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout.splitlines() == [
        "frame 1 (stdin:1): E5",
        "frame 2 (stdin:3): REQ_UD2 a=1 FCB=1",
    ]


def test_decode_file_dash_reads_stdin_and_a_bad_frame_fails_the_checks():
    proc = mb("decode", "--file", "-", stdin=f"E5\n{BAD_CS}\n")
    assert proc.returncode == EXIT_CHECKS_FAILED
    assert "stdin:2" in proc.stderr and "checksum" in proc.stderr


WMBUS_KAM = "2A442D2C998734761B168D2091D37CAC21E1D68CDAFFCD3DC452BD802913FF7B1706CA9E355D6C2701CC24"


def test_decode_wmbus_dash_reads_stdin_like_the_argument():
    keys = ("--wmbus", "--keys", "fixtures/wmbus/keys_bench.csv")
    piped = mb("decode", *keys, "-", stdin=f"# one telegram\n{WMBUS_KAM}\n")
    given = mb("decode", *keys, WMBUS_KAM)
    assert piped.returncode == given.returncode == EXIT_OK, piped.stderr
    assert piped.stdout == given.stdout and "KAM 76348799" in piped.stdout


def test_decode_without_input_is_a_usage_error():
    proc = mb("decode")
    assert proc.returncode == EXIT_USAGE and "no input" in proc.stderr


# -- bench faults vs usage -------------------------------------------------------------------
def test_suite_on_a_lab_rig_without_its_adapter_is_a_bench_fault(tmp_path):
    proc = mb("suite", "--rig", "rigs/lab-cme3100-usb.toml", "--out", str(tmp_path))
    assert proc.returncode == EXIT_BENCH_FAULT, proc.stdout[-2000:]
    assert (tmp_path / "report.html").is_file()


def test_suite_selecting_no_test_is_a_usage_error(tmp_path):
    proc = mb("suite", "-k", "no_such_test_name", "--out", str(tmp_path))
    assert proc.returncode == EXIT_USAGE


def test_record_missing_port_is_a_bench_fault_bad_range_a_usage_error(tmp_path):
    proc = mb("record", "--port", "/dev/ttyNOPE0", "--out", str(tmp_path))
    assert proc.returncode == EXIT_BENCH_FAULT and "cannot open" in proc.stderr
    proc = mb("record", "--port", "/dev/ttyNOPE0", "--addresses", "9-3", "--out", str(tmp_path))
    assert proc.returncode == EXIT_USAGE and "--addresses" in proc.stderr


def test_serve_bind_failure_is_a_bench_fault_bad_address_a_usage_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = mb("serve", "--tcp", f"127.0.0.1:{port}", "--seconds", "1")
    assert proc.returncode == EXIT_BENCH_FAULT and "in use" in proc.stderr
    proc = mb("serve", "--tcp", "nohost", "--seconds", "1")
    assert proc.returncode == EXIT_USAGE and "HOST:PORT" in proc.stderr


def test_every_verb_rejects_an_unknown_option_with_2():
    from simulator.cli import VERBS

    for verb in VERBS:
        with pytest.raises(SystemExit) as exc:
            main([verb, "--no-such-option"])
        assert exc.value.code == EXIT_USAGE, verb


# -- environment variables -------------------------------------------------------------------
def test_environment_variables_share_one_prefix():
    # every variable the package reads by literal name starts with MBENCH_
    pattern = re.compile(r"""(?:environ\.get|getenv|environ\[)\(?\s*["']([A-Z0-9_]+)["']""")
    names = {
        name
        for path in (ROOT / "simulator").rglob("*.py")
        for name in pattern.findall(path.read_text(encoding="utf-8"))
    }
    # simulator.cli.env(NAME) reads MBENCH_NAME
    names |= {
        ENV_PREFIX + n for n in re.findall(r"""\benv\(\s*["']([A-Z0-9_]+)["']""", _all_source())
    }
    assert names, "the scan found no variable at all: the pattern is broken"
    assert {n for n in names if not n.startswith(ENV_PREFIX)} == set()


def _all_source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "simulator").rglob("*.py"))


def test_sms_key_from_mbench_variable_and_the_old_name_with_a_warning(monkeypatch, capsys):
    key = "Pa55-word_2026!x"
    monkeypatch.delenv("METERBENCH_SMS_KEY", raising=False)
    monkeypatch.setenv("MBENCH_SMS_KEY", key)
    assert main(["sms", "encrypt", "--counter", "1", "x"]) == EXIT_OK
    assert "deprecated" not in capsys.readouterr().err
    monkeypatch.delenv("MBENCH_SMS_KEY")
    monkeypatch.setenv("METERBENCH_SMS_KEY", key)
    assert main(["sms", "encrypt", "--counter", "1", "x"]) == EXIT_OK
    assert "$METERBENCH_SMS_KEY is deprecated, use $MBENCH_SMS_KEY" in capsys.readouterr().err
