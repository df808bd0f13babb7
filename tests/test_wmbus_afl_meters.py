"""Simulated mode-7 meters that send their message as AFL fragments, and a receiver that
joins them (simulator/wmbus/listener.py). The AFL MAC is the AES-CMAC the published OMS
mode-7 example verifies with (tests/test_wmbus_afl.py); no published *fragmented* telegram
exists to compare bytes with (simulator/wmbus/afl.py)."""

from __future__ import annotations

import pytest

from simulator.wmbus.listener import Listener
from simulator.wmbus.meter import RadioMeter
from simulator.wmbus.telegram import parse_telegram

KEY = bytes(range(16))


def _meter(**kw) -> RadioMeter:
    return RadioMeter(id=12345678, x=0.0, y=0.0, profile="heat", security_mode=7, key=KEY, **kw)


@pytest.mark.parametrize("size", [1, 10, 37])
def test_fragments_of_a_meter_join_into_its_values(size: int) -> None:
    meter = _meter(fragment_size=size)
    frames = meter.frames(60.0, 5, 0)
    assert len(frames) > 1
    rx = Listener()
    heard = [rx.hear(f, meter.key) for f in frames]
    assert [h.outcome for h in heard] == ["fragment_held"] * (len(frames) - 1) + ["full"]
    last = heard[-1].telegram
    assert last.afl["fragments"] == len(frames) and last.security_mode == 7 and last.decrypted
    sent = meter.records(60.0)
    assert [(r.dif, r.vif, r.data) for r in last.records] == [(r.dif, r.vif, r.data) for r in sent]
    # the AFL MAC covers the whole message: the same values as the unfragmented telegram
    whole = parse_telegram(_meter().telegram(60.0, 5, 0), keys=KEY)
    assert [r.value for r in whole.records] == [r.value for r in last.records]


def test_a_message_that_fits_is_one_frame_with_ml() -> None:
    frames = _meter(fragment_size=200).frames(60.0, 5, 0)
    assert len(frames) == 1
    t = Listener().hear(frames[0], KEY).telegram
    assert t.afl["ml"] is not None and t.afl["more_fragments"] is False


def test_a_missing_fragment_drops_the_message_and_a_wrong_key_fails_the_mac() -> None:
    meter = _meter(fragment_size=10)
    frames = meter.frames(60.0, 5, 0)
    rx = Listener()
    outcomes = [rx.hear(f, KEY).outcome for f in frames[:1] + frames[2:]]
    # fragment 2 after 0: the partial message is dropped, and fragment 3 has no first one
    assert outcomes == ["fragment_held", "fragment_error", "fragment_error"]
    assert rx.fragments.pending == {}
    wrong = Listener()
    assert [wrong.hear(f, bytes(16)).outcome for f in frames][-1] == "undecoded"


def test_fragments_need_mode_7_without_an_ell() -> None:
    with pytest.raises(ValueError, match="AFL fragments"):
        RadioMeter(id=1, x=0.0, y=0.0, fragment_size=10)
    with pytest.raises(ValueError, match="AFL fragments"):
        _meter(mode="C1A", fragment_size=10)
