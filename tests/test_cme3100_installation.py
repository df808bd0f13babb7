"""CMe3100 installation: licence steps, passive meters (latest installed first), hand states."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.gateways.cme3100.installation import (
    LICENCE_STEPS,
    NO_LICENCE,
    Installation,
    LicenceError,
)
from simulator.mbus.meterlist import MeterListEntry


def entries(n: int, start: int = 1) -> list[MeterListEntry]:
    return [
        MeterListEntry(f"m{i:03d}", f"{70000000 + i:08d}", 2400, "secondary")
        for i in range(start, start + n)
    ]


def test_without_a_licence_eight_meters_are_read_the_latest_installed_turn_passive():
    inst = Installation()
    assert inst.licence == NO_LICENCE == 8
    res = inst.install(entries(10))
    assert [m.position for m in inst.active()] == [f"m{i:03d}" for i in range(1, 9)]
    assert [m.position for m in res.passive] == ["m009", "m010"] and inst.exceeded
    inst.install(entries(2, start=11))  # a later upload: the newest are passive
    assert [m.position for m in inst.passive()] == ["m009", "m010", "m011", "m012"]


def test_a_licence_file_activates_passive_meters_in_install_order():
    inst = Installation()
    inst.install(entries(40))
    inst.set_licence(32)
    assert len(inst.active()) == 32 and [m.position for m in inst.passive()][:1] == ["m033"]
    inst.set_licence(64)
    assert not inst.passive() and not inst.exceeded


def test_licence_steps_are_the_manuals_and_nothing_else():
    assert LICENCE_STEPS == (8, 32, 64, 128, 255, 256, 512)
    for bad in (0, 9, 100, 1024, True):
        with pytest.raises(LicenceError):
            Installation(bad)


def test_hand_states_passive_stays_activation_beyond_the_licence_is_refused():
    inst = Installation(8)
    inst.install(entries(9))
    inst.set_state("m002", "passive")  # by hand: frees a place for m009
    assert "m009" in [m.position for m in inst.active()]
    with pytest.raises(LicenceError, match="8 active"):
        inst.set_state("m002", "active")
    assert inst.meter("m002").state == "passive"
    inst.set_licence(32)
    assert inst.meter("m002").state == "passive"  # the operator's choice stands
    inst.set_state("m002", "active")
    assert len(inst.active()) == 9


def test_reinstalling_the_same_meter_is_a_duplicate_not_a_second_meter():
    inst = Installation(32)
    inst.install(entries(3))
    res = inst.install(entries(3))
    assert len(inst.meters) == 3 and len(res.duplicates) == 3 and not res.installed


@given(
    n=st.integers(0, 70),
    licence=st.sampled_from(LICENCE_STEPS),
    hand=st.lists(st.tuples(st.integers(0, 69), st.booleans()), max_size=10),
)
def test_never_more_active_than_the_licence_and_passive_are_the_latest(n, licence, hand):
    inst = Installation(licence)
    inst.install(entries(n))
    for i, active in hand:
        if i < n:
            try:
                inst.set_state(f"m{i + 1:03d}", "active" if active else "passive")
            except LicenceError:
                pass
    assert len(inst.active()) <= licence
    by_licence = [m for m in inst.passive() if not m.by_hand]
    if by_licence:  # passive by the licence: every active meter was installed earlier
        assert max(m.order for m in inst.active()) < min(m.order for m in by_licence) or any(
            m.by_hand for m in inst.active()
        )
