"""Lab suite ergonomics (issue 13): operator prompts past pytest's capture with a timeout,
bench faults reported as ERROR, lab rigs only by an explicit --rig, per-test evidence folders,
run facts in the record and the HTML report.

Each case runs pytest as a separate process on a tiny test module (the plugin's hooks, capture
and stdin are the real ones).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_plugin import _plugin_args
from test_rig_lab import GATEWAY

from simulator import __version__
from simulator.rig import load_rig
from simulator.testing.html_report import render
from simulator.testing.run_facts import run_facts

ROOT = Path(__file__).resolve().parent.parent
SIM_RIG = ROOT / "rigs" / "sim.toml"

pytestmark = pytest.mark.timeout(60)


def run_pytest(tmp_path: Path, body: str, *args: str, stdin=subprocess.DEVNULL, env=None):
    """Run pytest on ``body`` (as test_x.py in ``tmp_path``); returns (code, stdout, stderr).

    ``stdin``: DEVNULL, a str fed on a pipe, or ``"open"`` (a pipe nobody writes to)."""
    (tmp_path / "test_x.py").write_text(textwrap.dedent(body))
    full_env = {k: v for k, v in os.environ.items() if k != "MBENCH_RIG"}
    full_env.update(env or {})
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *_plugin_args()]
    with out.open("w") as fo, err.open("w") as fe:
        pipe = subprocess.DEVNULL if stdin is subprocess.DEVNULL else subprocess.PIPE
        proc = subprocess.Popen(
            [*cmd, "test_x.py", *args], cwd=tmp_path, stdin=pipe, stdout=fo, stderr=fe,
            env=full_env,
        )  # fmt: skip
        if isinstance(stdin, str) and stdin != "open":
            proc.stdin.write(stdin.encode())
            proc.stdin.flush()
        try:
            code = proc.wait(timeout=50)
        finally:
            if proc.stdin:
                proc.stdin.close()
            if proc.poll() is None:
                proc.kill()
    return code, out.read_text(), err.read_text()


def lab_rig_file(tmp_path: Path, transport: str, **dut: str) -> Path:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in dut.items())
    path = tmp_path / "lab.toml"
    path.write_text(
        textwrap.dedent("""
        name = "lab-x"
        mode = "lab"
        features = []
        [dut]
        model = "CMe3100"
        firmware = "1.9.3"
        serial = "70512345"
        quiet_s = 0.5
        """)
        + extra
        + '[dut.mbus]\ninit_idle_ms = 250\n[[transports]]\nname = "dut"\n'
        + transport
        + "\n"
    )
    return path


# -- 1. operator prompts ----------------------------------------------------------------------
OPERATOR_TEST = """
    def test_probe(operator):
        assert operator.confirm("connect the probe to port 2") == "done"
"""


def test_operator_prompt_reaches_the_terminal_and_reads_the_answer(tmp_path):
    code, out, err = run_pytest(tmp_path, OPERATOR_TEST, "--operator-timeout=20", stdin="done\n")
    assert code == 0, out + err
    # shown past the capture (on the real stderr, while the test runs), not only on failure
    assert "OPERATOR: connect the probe to port 2" in err, err


def test_operator_not_answering_is_a_bench_error_after_the_timeout(tmp_path):
    code, out, err = run_pytest(tmp_path, OPERATOR_TEST, "--operator-timeout=1", stdin="open")
    assert code == 1, out + err
    assert "OperatorTimeout: no operator answer within 1 s (--operator-timeout) to: " in out
    assert "'connect the probe to port 2'" in out
    assert "ERROR test_x.py::test_probe" in out and "1 error" in out, out


def test_operator_auto_logs_and_confirms_without_a_terminal(tmp_path):
    code, out, err = run_pytest(
        tmp_path,
        """
        def test_probe(operator):
            assert operator.confirm("press the gateway's test button") == "auto"
            assert [p.message for p in operator.log] == ["press the gateway's test button"]
        """,
        "--operator=auto",
    )
    assert code == 0, out + err


def test_lab_dut_asks_the_operator_then_observes_the_gateway(tmp_path):
    # A lab rig without a trigger: the LabDut asks through the operator fixture; the
    # "operator" starts the stand-in gateway and answers on stdin. The test's evidence
    # folder then holds the trace, the bridge's wire log, the operator log and the verdict.
    (tmp_path / "gateway.py").write_text(GATEWAY)
    link = tmp_path / "ttyDUT"
    rig = lab_rig_file(tmp_path, f'pty = true\npty_link = "{link}"')
    code, out, err = run_pytest(
        tmp_path,
        f"""
        import subprocess, sys
        from simulator.testing.bench import MeterSpec
        from simulator.testing.observe import requests_to
        def test_read(bench):
            run = bench.setup([MeterSpec(12345678, primary=3)])
            subprocess.Popen([sys.executable, "gateway.py", {str(link)!r}, "read", "3"])
            assert run.dut.read(3) is None
            assert len(requests_to(run.trace, "REQ_UD2", 3)) == 1
        """,
        f"--rig={rig}",
        "--operator-timeout=20",
        f"--mbench-record={tmp_path / 'res' / 'record.json'}",
        stdin="\n",
    )
    assert code == 0, out + err
    assert "OPERATOR: make the gateway run: read 3" in err
    record = json.loads((tmp_path / "res" / "record.json").read_text())
    [test] = record["tests"]
    folder = tmp_path / "res" / test["evidence"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "operator.log", "trace.jsonl", "verdict.txt", "wire.log",
    ]  # fmt: skip
    wire = (folder / "wire.log").read_text().splitlines()
    # the REQ_UD2 to address 3 as it came in, with its UTC time
    assert any(" bridge_bytes in 107b037e16" in line for line in wire), wire
    assert "make the gateway run: read 3" in (folder / "operator.log").read_text()
    assert record["run"]["adapter"] == f"dut: pty {link} 2400 bit/s 8N1"


# -- 2. bench faults are ERROR ----------------------------------------------------------------
def test_bench_faults_in_a_test_body_are_errors_not_failures(tmp_path):
    busy = socket.create_server(("127.0.0.1", 0))  # the receiver's port is taken
    port = busy.getsockname()[1]
    rig = tmp_path / "rx.toml"
    rig.write_text(SIM_RIG.read_text() + f"\n[receivers.http]\nport = {port}\n")
    try:
        code, out, err = run_pytest(
            tmp_path,
            """
            from simulator.testing.bench import BenchError
            from simulator.testing.receivers import Receivers
            def test_adapter_gone():
                raise BenchError("rig x: transport dut /dev/ttyUSB0 gone")
            def test_receiver_cannot_bind(rig):
                with Receivers.for_rig(rig):
                    pass
            def test_device_wrong():
                assert 1 + 1 == 3
            """,
            f"--rig={rig}",
            f"--mbench-record={tmp_path / 'record.json'}",
            f"--junitxml={tmp_path / 'junit.xml'}",
        )
    finally:
        busy.close()
    assert code == 1, out + err
    assert "ERROR at call of test_adapter_gone" in out, out
    assert "ERROR at call of test_receiver_cannot_bind" in out, out
    assert "ReceiverUnavailable" in out and f"127.0.0.1:{port}" in out
    assert "== 1 failed, " in out and ", 2 errors in " in out, out
    outcomes = {
        t["nodeid"].split("::")[1]: (t["outcome"], t.get("bench_fault", False))
        for t in json.loads((tmp_path / "record.json").read_text())["tests"]
    }
    assert outcomes == {
        "test_adapter_gone": ("error", True),
        "test_receiver_cannot_bind": ("error", True),
        "test_device_wrong": ("failed", False),
    }
    junit = (tmp_path / "junit.xml").read_text()
    assert junit.count('name="mbench_bench_fault"') == 2


# -- 3. lab rigs only by an explicit --rig ----------------------------------------------------
RIG_TEST = "def test_uses_rig(rig):\n    assert rig.name\n"


def test_a_lab_rig_from_the_environment_is_refused(tmp_path):
    rig = lab_rig_file(tmp_path, 'url = "/dev/ttyUSB0"')
    code, out, err = run_pytest(tmp_path, RIG_TEST, env={"MBENCH_RIG": str(rig)})
    assert code == 4, out + err
    assert f"{rig} (from $MBENCH_RIG) is lab rig 'lab-x'" in out + err
    assert f"--rig {rig}" in out + err
    code, out, err = run_pytest(tmp_path, RIG_TEST, f"--rig={rig}")
    assert code == 0, out + err


def test_a_lab_rig_at_the_default_path_is_refused(tmp_path):
    (tmp_path / "rigs").mkdir()
    lab_rig_file(tmp_path, 'url = "/dev/ttyUSB0"').rename(tmp_path / "rigs" / "sim.toml")
    code, out, err = run_pytest(tmp_path, RIG_TEST)
    assert code == 4, out + err
    assert "(from default) is lab rig 'lab-x'" in out + err


def test_lab_only_tests_need_an_explicit_rig(tmp_path):
    body = "import pytest\n@pytest.mark.lab_only\ndef test_lab(rig):\n    pass\n"
    code, out, err = run_pytest(tmp_path, body)
    assert code == 4, out + err
    assert "test_x.py::test_lab is lab-only: name the lab rig with --rig PATH" in out + err
    code, out, err = run_pytest(tmp_path, body, f"--rig={SIM_RIG}")
    assert code == 0 and "lab-only test; rig 'sim' is not a lab rig" in out, out + err


def test_the_header_says_which_rig_a_run_without_rig_uses(tmp_path):
    code, out, err = run_pytest(tmp_path, "def test_plain(): pass\n")
    assert code == 0, out + err
    assert "meterbench rig: " in out and "(default; name a lab rig with --rig)" in out, out


def test_suite_verb_names_its_rig_and_refuses_a_lab_rig_it_was_not_given(tmp_path):
    from test_suite import run_suite

    proc = run_suite(tmp_path / "out", "-k", "primary_scan")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "meterbench suite: rig sim (mode sim) from " in proc.stdout
    assert "(default; name a lab rig with --rig)" in proc.stdout
    rig = lab_rig_file(tmp_path, 'url = "/dev/ttyUSB0"')
    env = {**os.environ, "MBENCH_RIG": str(rig), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "suite", "--out", str(tmp_path / "o2")],
        capture_output=True, text=True, timeout=50, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "(from $MBENCH_RIG) is lab rig 'lab-x'" in proc.stderr


# -- 4. evidence per test ---------------------------------------------------------------------
def test_every_bench_test_keeps_evidence_linked_from_the_record(tmp_path):
    code, out, err = run_pytest(
        tmp_path,
        """
        from simulator.testing.bench import MeterSpec
        def test_pass(bench, measure):
            bench.setup([MeterSpec(12345678, primary=4)])
            assert bench.current.dut.read(4).ok
            measure("frames", len(bench.current.trace.select("frame")), "1", low=1)
        def test_fail(bench):
            bench.setup([MeterSpec(12345678, primary=4)])
            bench.current.dut.read(5)
            assert False, "the device did something wrong"
        def test_without_bench():
            pass
        """,
        f"--rig={SIM_RIG}",
        f"--mbench-record={tmp_path / 'res' / 'record.json'}",
    )
    assert code == 1, out + err
    tests = {
        t["nodeid"].split("::")[1]: t
        for t in json.loads((tmp_path / "res" / "record.json").read_text())["tests"]
    }
    assert "evidence" not in tests["test_without_bench"]
    for name, outcome in (("test_pass", "passed"), ("test_fail", "failed")):
        folder = tmp_path / "res" / tests[name]["evidence"]
        assert folder.parent == tmp_path / "res" / "evidence"
        assert sorted(p.name for p in folder.iterdir()) == ["trace.jsonl", "verdict.txt"]
        lines = (folder / "trace.jsonl").read_text().splitlines()
        frames = [json.loads(x) for x in lines[1:] if '"kind":"frame"' in x]
        target = 4 if name == "test_pass" else 5  # each folder has its own test's run
        assert {f["address"] for f in frames if "address" in f} == {target}, frames[:2]
        verdict = (folder / "verdict.txt").read_text()
        assert f"outcome: {outcome}\n" in verdict
    assert "measurement: frames = " in (tmp_path / "res" / tests["test_pass"]["evidence"]
                                         / "verdict.txt").read_text()  # fmt: skip
    fail = (tmp_path / "res" / tests["test_fail"]["evidence"] / "verdict.txt").read_text()
    assert "the device did something wrong" in fail


# -- 5. run facts -----------------------------------------------------------------------------
def test_run_facts_come_from_the_rig_file_or_the_device(tmp_path):
    rig = load_rig(lab_rig_file(tmp_path, 'url = "/dev/ttyUSB0"'))
    facts = run_facts(rig)
    assert facts["rig"] == "lab-x" and facts["meterbench_version"] == __version__
    assert facts["adapter"] == "dut: /dev/ttyUSB0 2400 bit/s 8N1"
    assert facts["dut"] == {
        "model": "CMe3100", "serial": "70512345", "firmware": "1.9.3", "source": "rig file",
    }  # fmt: skip
    ident = tmp_path / "ident.py"
    ident.write_text('print(\'{"serial": "70599999", "firmware": "1.10.0"}\')\n')
    rig = load_rig(
        lab_rig_file(tmp_path, 'url = "/dev/ttyUSB0"', identify=f"{sys.executable} {ident}")
    )
    dut = run_facts(rig)["dut"]
    assert (dut["serial"], dut["firmware"], dut["source"]) == (
        "70599999", "1.10.0", "device (identify)",
    )  # fmt: skip
    rig = load_rig(lab_rig_file(tmp_path, 'url = "/dev/ttyUSB0"', identify="false"))
    dut = run_facts(rig)["dut"]
    assert dut["source"] == "rig file" and dut["serial"] == "70512345"
    assert dut["identify_error"].startswith("[dut] identify 'false': Command '['false']'")


def test_record_and_html_header_carry_the_run_facts(tmp_path):
    code, out, err = run_pytest(
        tmp_path,
        "def test_a(bench):\n    pass\n",
        f"--rig={SIM_RIG}",
        f"--mbench-record={tmp_path / 'record.json'}",
    )
    assert code == 0, out + err
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["run"]["rig"] == "sim"
    assert record["run"]["adapter"] == "none (simulated DUT)"
    assert record["run"]["meterbench_version"] == __version__
    assert record["run"]["dut"]["model"] == "CMe3100 (model)"
    assert record["rig"]["chosen_by"] == "--rig"
    html = render(record)
    for row in (
        f"<th>meterbench version</th><td>{__version__}</td>",
        "<th>adapter / transport</th><td>none (simulated DUT)</td>",
        "<th>DUT serial</th><td>not given</td>",
        "<th>DUT identity from</th><td>rig file</td>",
        "evidence/test_x.py_test_a",
    ):
        assert row in html, row
