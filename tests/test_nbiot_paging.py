"""Paging occasions: DRX, eDRX paging time window (TS 36.304 §7.1/§7.3), and the radio's
mobile-terminated path (downlink to an idle module waits for its PO; PSM makes it unreachable)."""

from __future__ import annotations

import random
import statistics

import pytest

from simulator.nbiot.config import ModuleConfig
from simulator.nbiot.network import NetworkParams, Radio, Timeline
from simulator.nbiot.paging import PagingSchedule

IMSI = 240990000012345


def _brute_force_occasions(p: PagingSchedule, end_s: float) -> list[float]:
    """Frame-by-frame predicate (the TS 36.304 formulas as written, cf. jounikor/3gpp
    ``gotpaged_DRX`` / ``gotpaged_eDRX``): is this frame a paging frame inside a PTW?"""
    t_drx = p.drx_cycle_frames
    out = []
    for frame in range(int(end_s * 100)):
        hsfn, sfn = divmod(frame, 1024)
        if sfn % t_drx != p.ue_id % t_drx:  # PF: SFN mod T = (T div N)(UE_ID mod N), N = T
            continue
        if p.edrx_cycle_s is not None:
            th = round(p.edrx_cycle_s / 10.24)
            ptw_start = 256 * ((p.ue_id_h // th) % 4)
            inside = False
            for ph in range(hsfn - 4, hsfn + 1):  # a PTW (<= 40.96 s) spans <= 5 hyperframes
                if ph >= 0 and ph % th == p.ue_id_h % th:
                    first = ph * 1024 + ptw_start
                    inside |= first <= frame < first + round(p.ptw_s * 100)
            if not inside:
                continue
        out.append((frame * 10 + 9) / 1000)
    return out


def test_drx_occasions_every_paging_cycle_at_the_ue_offset():
    p = PagingSchedule(IMSI)
    occ = p.occasions(0.0, 30.0)
    assert occ[0] == pytest.approx(((IMSI % 4096) % 256) * 0.01 + 0.009)
    assert [b - a for a, b in zip(occ, occ[1:], strict=False)] == pytest.approx(
        [2.56] * (len(occ) - 1)
    )
    assert occ == pytest.approx(_brute_force_occasions(p, 30.0))


@pytest.mark.parametrize(
    ("cycle", "ptw", "imsi"),
    [(20.48, 2.56, IMSI), (81.92, 2.56, IMSI + 7), (81.92, 40.96, IMSI + 99), (40.96, 10.24, 5)],
)
def test_edrx_occasions_lie_in_the_ptw_of_each_cycle(cycle, ptw, imsi):
    p = PagingSchedule(imsi, cycle, ptw)
    end = 3 * cycle + 50
    occ = p.occasions(0.0, end)
    assert occ == pytest.approx(_brute_force_occasions(p, end))
    per_cycle = round(ptw / 2.56)  # one PO per 2.56 s paging cycle inside the window
    # window -1 may still run past t = 0
    starts = [p.ptw_start_frame(k) / 100 for k in range(-1, int(end / cycle) + 1)]
    for s in starts:
        inside = [t for t in occ if s <= t < s + ptw]
        if 0 <= s and s + ptw <= end:
            assert len(inside) == per_cycle
    assert all(any(s <= t < s + ptw for s in starts) for t in occ)
    assert [b - a for a, b in zip(starts, starts[1:], strict=False)] == pytest.approx(
        [cycle] * (len(starts) - 1)
    )


def test_paging_wait_matches_the_rule_of_radio_section_8_anchor_4():
    """RADIO-NBIOT §8 anchor 4: for MT data at random times the mean wait to the next PTW is
    about T_eDRX / 2 and the p95 about 0.95 T_eDRX when PTW << T_eDRX. A PTW of L holds
    n = L / 2.56 POs 2.56 s apart, so for uniform arrivals the mean wait is
    ((n - 1) x 2.56^2 + (C - (n - 1) x 2.56)^2) / (2 C): shorter with a long window."""
    rng = random.Random(7)
    for cycle, ptw in ((81.92, 2.56), (163.84, 2.56), (81.92, 40.96)):
        p = PagingSchedule(IMSI, cycle, ptw)
        waits = sorted(
            p.next_occasion(t) - t for t in (rng.uniform(0, 50 * cycle) for _ in range(4000))
        )
        n = round(ptw / 2.56)
        expected = ((n - 1) * 2.56**2 + (cycle - (n - 1) * 2.56) ** 2) / (2 * cycle)
        assert statistics.mean(waits) == pytest.approx(expected, rel=0.05)
        if ptw == 2.56:
            assert statistics.mean(waits) == pytest.approx(cycle / 2, rel=0.06)
            assert waits[int(0.95 * len(waits))] == pytest.approx(0.95 * cycle, rel=0.05)
        assert max(waits) <= cycle - ptw + 2.56 + 1e-6


def test_paging_hyperframes_spread_over_the_cycle_across_a_fleet():
    cycle = 327.68
    phases = [
        (PagingSchedule(240990000000000 + i, cycle).ptw_start_frame(0) / 100) % cycle
        for i in range(2000)
    ]
    quarters = [
        sum(1 for x in phases if q * cycle / 4 <= x < (q + 1) * cycle / 4) for q in range(4)
    ]
    assert all(400 <= n <= 600 for n in quarters), quarters


def test_bad_paging_parameters_are_rejected():
    with pytest.raises(ValueError, match="hyperframes"):
        PagingSchedule(IMSI, 30.0)
    with pytest.raises(ValueError, match="no paging occasion"):
        PagingSchedule(IMSI, 20.48, 2.56, drx_cycle_frames=512)
    with pytest.raises(ValueError, match="multiple of 2.56"):
        ModuleConfig(paging_time_window_s=3.0)


def _idle_radio(*, psm: bool) -> tuple[Radio, float]:
    net = NetworkParams(residual_loss=(0.0, 0.0, 0.0), transfer_sigma=0.0)
    radio = Radio(
        140.0,
        net,
        random.Random(3),
        psm=psm,
        edrx=True,
        t3324_s=30.0,
        edrx_cycle_s=20.48,
        paging=PagingSchedule(IMSI, 20.48, 5.12),
    )
    done, _ = radio.uplink(1000.0, 60, Timeline())
    return radio, done + net.rrc_inactivity_s  # the RRC release


def test_downlink_to_an_idle_module_waits_for_its_paging_occasion():
    radio, release = _idle_radio(psm=False)
    t_server = release + 100.0
    tl = Timeline()
    got = radio.downlink(t_server, 40, tl)
    po = radio.paging.next_occasion(t_server + radio.params.core_delay_s)
    paged = [(t, f) for t, k, f in tl.events if k == "nbiot.paged"]
    rrc = [(t, f) for t, k, f in tl.events if k == "nbiot.rrc_connected"]
    assert paged[0][0] == pytest.approx(po)
    assert rrc[0][0] - rrc[0][1]["setup_s"] == pytest.approx(po)  # random access starts at PO
    assert got is not None and got > po
    # the PO is in the module's PTW, not a uniform draw over the cycle
    assert any(
        radio.paging.ptw_start_frame(k) / 100 <= po < radio.paging.ptw_start_frame(k) / 100 + 5.12
        for k in range(int(po / 20.48) - 1, int(po / 20.48) + 2)
    )


def test_with_psm_a_page_after_t3324_expiry_is_not_heard():
    radio, release = _idle_radio(psm=True)
    psm_at = release + radio.t3324_s
    # find arrival times inside the active time whose next PO is before / after PSM entry
    arrivals = [release + 0.5 * k for k in range(int(radio.t3324_s / 0.5))]
    core = radio.params.core_delay_s
    heard = [t for t in arrivals if radio.paging.next_occasion(t + core) < psm_at]
    missed = [t for t in arrivals if radio.paging.next_occasion(t + core) >= psm_at]
    assert heard and missed  # a 30 s active time and a 20.48 s cycle give both cases
    tl = Timeline()
    assert radio.downlink(missed[-1], 40, tl) is None
    assert [f["reason"] for _, k, f in tl.events if k == "nbiot.downlink_unreachable"] == [
        "PSM before paging occasion"
    ]
    radio2, _ = _idle_radio(psm=True)
    assert radio2.downlink(heard[0], 40, Timeline()) is not None
