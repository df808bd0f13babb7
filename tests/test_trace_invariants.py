"""Run-end invariants read from the trace (issue 14): each value delivered at most once unless
the trace shows a retransmission (nbiot), and every byte in = traced (the serial bridge).

Each check is shown to pass on a real run and to fail when the model is broken on purpose.
"""

from __future__ import annotations

import textwrap
import time

import pytest
import serial

from simulator.bridge import bridge as bridge_module
from simulator.core.accounting import AccountingError
from simulator.core.trace_invariants import (
    Cme3100Once,
    NbiotOnce,
    PushWindowOnce,
    check_bridge_bytes,
)
from simulator.devices import run_scenario
from simulator.nbiot.server import NbiotServer
from simulator.scenario import RunOptions, load_toml
from simulator.testing.bench import MeterSpec
from tests.test_bridge import REQ_UD2_1, make_service, read_exactly

SMALL = textwrap.dedent("""\
    kind = "nbiot"
    name = "once"
    seed = 3
    hours = 25
    [fleet]
    modules = 40
    coupling_loss = { distribution = "uniform", low_db = 150.0, high_db = 164.0 }
    [module]
    transmit_interval_min = 1440
    readouts_per_telegram = 24
    [output]
    trace = "message"
    """)


def _nbiot(tmp_path):
    path = tmp_path / "once.toml"
    path.write_text(SMALL)
    return run_scenario(load_toml(path), RunOptions(out_dir=tmp_path / "out"))


def test_nbiot_run_passes_and_its_trace_has_retransmissions(tmp_path):
    result = _nbiot(tmp_path)
    rows = [r for r in _read(tmp_path) if r["kind"] == "nbiot.uplink" and r["op"] == "send"]
    assert any(r["duplicate"] for r in rows), "the scenario must exercise retransmissions"
    assert result.summary["readouts_delivered"] > 0


def test_server_that_forgets_retransmissions_fails_the_run(tmp_path, monkeypatch):
    receive = NbiotServer.receive

    def forgetful(self, *args, **kw):  # broken on purpose: every CoAP retransmission is new
        kw["duplicate"] = False
        return receive(self, *args, **kw)

    monkeypatch.setattr(NbiotServer, "receive", forgetful)
    with pytest.raises(AccountingError, match=r"nbiot cmi6140/\d+: readouts .* arrived 2 times"):
        _nbiot(tmp_path)


def test_value_again_after_an_acknowledged_telegram_is_reported_with_both_lines():
    once = NbiotOnce()
    up = dict(kind="nbiot.uplink", source="server", module="cmi6140/1", op="send")
    once(dict(up, t=10.0, duplicate=False, readouts=2, times=[100, 200]))
    once(dict(kind="nbiot.telegram", source="cmi6140/1", t=11.0, ok=True, attempts=1))
    once(dict(up, t=20.0, duplicate=True))  # flagged: fine
    once.check()
    once(dict(up, t=30.0, duplicate=False, readouts=2, times=[200, 300]))
    with pytest.raises(AccountingError, match=r"readouts \[200, 300\].*t=10.0.*t=30.0"):
        once.check()


def test_failed_telegram_may_deliver_its_readouts_again():
    once = NbiotOnce()
    up = dict(kind="nbiot.uplink", source="server", module="cmi6140/1", op="send")
    once(dict(up, t=10.0, duplicate=False, readouts=30, times=[100, 3000]))
    once(dict(kind="nbiot.telegram", source="cmi6140/1", t=11.0, ok=False, attempts=3))
    once(dict(up, t=50.0, duplicate=False, readouts=30, times=[100, 3000]))
    once(dict(kind="nbiot.telegram", source="cmi6140/1", t=51.0, ok=True, attempts=1))
    once.check()


# -- CMe3100: each value delivered at most once per report (issue 14) -------------------------
def _cme3100(tmp_path):
    from pathlib import Path

    scenario = Path(__file__).parents[1] / "fixtures" / "scenarios" / "cme3100-suite.toml"
    return run_scenario(load_toml(scenario), RunOptions(out_dir=tmp_path / "out", hours=30))


def test_cme3100_run_passes_and_its_trace_names_new_values(tmp_path):
    result = _cme3100(tmp_path)
    rows = [r for r in _read(tmp_path) if r["kind"] == "push_attempt" and r["ok"]]
    carried = [r for r in rows if r.get("new_values")]
    assert carried, "the scenario's reports must carry values"
    spans = [v for r in carried for v in r["new_values"].values()]
    assert all(first <= last and n >= 1 for first, last, n in spans)
    assert result.summary["kind"] == "cme3100"


def test_cme3100_ledger_that_forgets_deliveries_fails_the_run(tmp_path, monkeypatch):
    from simulator.gateways.cme3100.value_period import DeliveryLedger

    settle = DeliveryLedger.settle

    def forgetful(self, selection, delivered):  # broken on purpose: nothing marked delivered
        return settle(self, selection, False)

    monkeypatch.setattr(DeliveryLedger, "settle", forgetful)
    with pytest.raises(AccountingError, match=r"cme3100 .* delivered twice as new"):
        _cme3100(tmp_path)


def test_cme3100_once_allows_resent_and_failed_values():
    once = Cme3100Once()
    push = dict(kind="push_attempt", source="cme3100/report1", report="r1")
    span = {"1": ["2026-01-01T00:00:00", "2026-01-01T05:00:00", 6]}
    once(dict(push, t=1.0, ok=False, new_values=span))  # failed: goes again by design
    once(dict(push, t=2.0, ok=True, new_values=span))
    once(dict(push, t=3.0, ok=True, new_values={}, resent=6))  # fixed period: resent apart
    once(dict(push, t=4.0, ok=True, new_values=span, report="r2"))  # another slot
    once.check()
    later = {"1": ["2026-01-01T05:00:00", "2026-01-01T06:00:00", 2]}
    once(dict(push, t=5.0, ok=True, new_values=later))
    with pytest.raises(AccountingError, match=r"T05:00:00, 2026-01-01T05:00:00\].*t=2.0.*t=5.0"):
        once.check()


def test_cme3100_once_finds_an_overlap_with_any_earlier_span_not_only_the_latest():
    once = Cme3100Once()
    push = dict(kind="push_attempt", source="cme3100/report1", report="r1", ok=True)
    day = "2026-01-01T{:02d}:00:00"
    for t, (a, b) in enumerate([(1, 2), (5, 6), (8, 9), (10, 10)]):  # in order: no overlap
        once(dict(push, t=float(t), new_values={"1": [day.format(a), day.format(b), 2]}))
    once(dict(push, t=7.0, new_values={"1": [day.format(3), day.format(4), 2]}))  # a gap: ok
    once.check()
    once(dict(push, t=8.0, new_values={"1": [day.format(2), day.format(2), 1]}))  # the first
    with pytest.raises(AccountingError, match=r"\[2026-01-01T02:00:00, .*t=0.0 .*t=8.0"):
        once.check()


# -- stream and CMe2100: delivered push windows never overlap (issue 14) -----------------------
def _shipped(tmp_path, name, hours):
    from pathlib import Path

    scenario = Path(__file__).parents[1] / "fixtures" / "scenarios" / f"{name}.toml"
    return run_scenario(load_toml(scenario), RunOptions(out_dir=tmp_path / "out", hours=hours))


@pytest.mark.parametrize(
    ("name", "kind"), [("stream-small", "stream_push"), ("cme2100-small", "push")]
)
def test_push_windows_are_traced_and_the_run_passes(tmp_path, name, kind):
    _shipped(tmp_path, name, 50 if kind == "push" else 2)
    windows = [r["window"] for r in _read(tmp_path) if r["kind"] == kind and r.get("window")]
    assert len(windows) >= 2 and all(a <= b for a, b in windows)


def test_stream_plugin_that_keeps_pushed_telegrams_fails_the_run(tmp_path, monkeypatch):
    from simulator.gateways.cme3100.stream import StreamPlugin

    push = StreamPlugin.push

    def sticky(self):  # broken on purpose: the memory survives a delivered push
        kept = dict(self.memory)
        ok = push(self)
        self.memory.update({k: v for k, v in kept.items() if k not in self.memory})
        return ok

    monkeypatch.setattr(StreamPlugin, "push", sticky)
    with pytest.raises(AccountingError, match=r"stream_push plugin/\d+: values of .* twice"):
        _shipped(tmp_path, "stream-small", 2)


def test_cme2100_that_keeps_delivered_rows_fails_the_run(tmp_path, monkeypatch):
    from simulator.gateways.cme2100.gateway import Cme2100

    push = Cme2100._push

    def sticky(self):  # broken on purpose: the rows stay pending after a delivered report
        kept = list(self._pending)
        push(self)
        self._pending[:0] = [r for r in kept if r not in self._pending]

    monkeypatch.setattr(Cme2100, "_push", sticky)
    with pytest.raises(AccountingError, match=r"push cme2100: values of .* twice"):
        _shipped(tmp_path, "cme2100-small", 50)


def test_failed_push_may_carry_its_values_again():
    once = PushWindowOnce()
    base = dict(kind="stream_push", source="plugin/1")
    once(dict(base, t=1.0, ok=False, window=[0.0, 10.0]))
    once(dict(base, t=2.0, ok=True, window=[0.0, 12.0]))
    once(dict(base, t=3.0, ok=True, window=[12.5, 20.0]))
    once.check()
    once(dict(base, t=4.0, ok=True, window=[19.0, 30.0]))
    with pytest.raises(AccountingError, match=r"\[19.0, 20.0\].*t=3.0.*t=4.0"):
        once.check()


def test_push_window_overlapping_an_early_window_after_later_ones_is_found():
    once = PushWindowOnce()
    base = dict(kind="stream_push", source="plugin/1", ok=True)
    for t, window in enumerate([[0.0, 1.0], [5.0, 6.0], [8.0, 9.0]]):  # in order: no overlap
        once(dict(base, t=float(t), window=window))
    once(dict(base, t=3.0, window=[2.0, 4.0]))  # in a gap: fine
    once.check()
    once(dict(base, t=4.0, window=[1.0, 1.0]))  # the first window's last value again
    with pytest.raises(AccountingError, match=r"\[1.0, 1.0\].*t=0.0 .*t=4.0"):
        once.check()


def _read(tmp_path):
    from simulator.core.trace import Trace

    return Trace.read_jsonl(tmp_path / "out" / "trace.jsonl")


def _bridge_session():
    """A real bridge on a pty: one junk byte, one REQ_UD2 answered, then stop."""
    service, pty = make_service([MeterSpec(11111111, primary=1)])
    try:
        with serial.Serial(pty.path, 2400, timeout=1.0) as port:
            time.sleep(0.05)
            port.write(b"\x55" + REQ_UD2_1)
            assert read_exactly(port, 4, 3.0)
            time.sleep(0.5)  # the whole RSP_UD leaves before the stop
    finally:
        service.stop()
    return service


def test_bridge_run_accounts_for_every_byte():
    service = _bridge_session()
    tally = service.check()["bridge"]
    assert tally["in"] == 6 and tally["requests"] == 5 and tally["junk"] == 1
    assert tally["out"] == tally["replies"] > 0


def test_bridge_that_hides_junk_fails_the_check(monkeypatch):
    real = bridge_module.SerialBridge._record

    def hide_junk(self, t, wall, event):  # broken on purpose: junk not traced
        if event.kind != "bridge_junk":
            real(self, t, wall, event)

    monkeypatch.setattr(bridge_module.SerialBridge, "_record", hide_junk)
    service = _bridge_session()
    with pytest.raises(AccountingError, match=r"bridge bridge: bytes in 6 != request 5 \+ junk 0"):
        service.check()


def test_bridge_counter_that_drifts_from_the_trace_fails():
    events = [
        dict(kind="bridge_bytes", source="b", t=0.0, direction="in", n=5),
        dict(kind="bridge_exchange", source="b", t=0.1, request="105b015c16", reply=""),
    ]
    check_bridge_bytes(events, {"b": {"bytes_in": 5, "bytes_out": 0, "junk_bytes": 0}})
    with pytest.raises(AccountingError, match="counter bytes_in 6 != traced 5"):
        check_bridge_bytes(events, {"b": {"bytes_in": 6, "bytes_out": 0, "junk_bytes": 0}})
