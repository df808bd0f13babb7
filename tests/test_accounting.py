"""Accounting invariants at the end of every run, for every kind (issue 14): each kind's
``finish`` checks that what it took adds up to the states it ended in, and stops with
:class:`AccountingError` when it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.core.accounting import AccountingError, check_balance
from simulator.devices import run_scenario
from simulator.scenario import RunOptions

SCEN = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"


def test_check_balance_names_the_part_and_every_count():
    check_balance("x", "taken", 5, a=2, b=3)
    with pytest.raises(AccountingError, match=r"^x: taken 5 != a 2 \+ b 2 \(= 4\)$"):
        check_balance("x", "taken", 5, a=2, b=2)
    with pytest.raises(AccountingError, match="negative"):
        check_balance("x", "taken", 1, a=2, b=-1)


def _run(tmp_path, name, hours):
    return run_scenario(SCEN / name, RunOptions(tmp_path / name, hours=hours)).summary


def test_nbiot_readouts_taken_are_delivered_pending_or_expired(tmp_path):
    s = _run(tmp_path, "nbiot-fleet.toml", 26.0)
    assert s["readouts_produced"] > 0
    assert s["readouts_produced"] == (
        s["readouts_delivered"] + s["readouts_pending"] + s["readouts_expired"]
    )


def test_cme2100_sms_sent_are_accepted_rejected_or_in_flight(tmp_path, monkeypatch):
    s = _run(tmp_path, "cme2100-small.toml", 24.0)
    assert s["sms_sent"] == s["sms_accepted"] + s["sms_rejected"] + s["sms_in_flight"] > 0
    from simulator.gateways.cme2100 import runner

    flush = runner.HeadEnd.flush

    def one_lost(self):  # one SMS to the gateway that the run lost track of
        left, to_gateway = flush(self)
        return left + 1, to_gateway + 1

    monkeypatch.setattr(runner.HeadEnd, "flush", one_lost)
    with pytest.raises(AccountingError, match="SMS sent"):
        _run(tmp_path / "broken", "cme2100-small.toml", 24.0)


def test_mbus_readouts_started_end_ok_failed_or_cut(tmp_path, monkeypatch):
    s = _run(tmp_path, "mbus-small.toml", 2.0)
    assert s["readouts_ok"] + s["readouts_failed"] > 0
    from simulator.building import runner

    init = runner.MbusRun.__init__

    def one_more(self, ctx):
        init(self, ctx)
        self._started += 1  # a readout begun that ends in no state

    monkeypatch.setattr(runner.MbusRun, "__init__", one_more)
    with pytest.raises(AccountingError, match="mbus master: readouts started"):
        _run(tmp_path / "broken", "mbus-small.toml", 2.0)


def test_stream_telegrams_and_head_end_lines_add_up(tmp_path, monkeypatch):
    s = _run(tmp_path, "stream-small.toml", 2.0)
    assert s["headend"]["report_lines"] > 0
    from simulator.gateways.cme3100.stream import StreamPlugin

    report_lines = StreamPlugin.report_lines
    # a plugin that writes one meter twice into a report: the head-end check catches it
    monkeypatch.setattr(
        StreamPlugin, "report_lines", lambda self, pending: report_lines(self, pending) * 2
    )
    with pytest.raises(AccountingError, match="head-end: report lines"):
        _run(tmp_path / "broken", "stream-small.toml", 2.0)


def test_cme3100_head_end_accounting_holds(tmp_path):
    s = _run(tmp_path, "cme3100-building.toml", 3.0)
    assert s["exactly_once"] is True
