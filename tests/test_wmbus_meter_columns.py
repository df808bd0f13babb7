"""MeterColumns (a city's meters as arrays) against meters built one by one: same RadioMeter
fields, same radio setup, same kernel receptions; and a bad column is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulator.gateways.cme3100 import stream_runner as runner
from simulator.scenario import load_toml
from simulator.wmbus.channel import Channel
from simulator.wmbus.meter import RadioMeter
from simulator.wmbus.radio_kernel import RadioSetup, run_kernel
from simulator.wmbus.scenario_model import validate
from tests.test_stream_runner import SCENARIOS


def _scenario(tmp_path, count: int, frame: str = "full"):
    text = (SCENARIOS / "stream-city.toml").read_text()
    data = load_toml(SCENARIOS / "stream-city.toml").data
    old = data["meters"]["count"]
    path = tmp_path / "city.toml"
    path.write_text(text.replace(f"count = {old}", f"count = {count}", 1))
    sc = validate(load_toml(path))
    # every field a meter can differ in: encryption with and without ELL, basements
    meters = sc.meters.model_copy(
        update={
            "encrypted_fraction": 0.5,
            "ell_encryption": True,
            "basement_fraction": 0.2,
            "frame": frame,
        }
    )
    return sc.model_copy(update={"meters": meters})


def _one_by_one(cols) -> list[RadioMeter]:
    """The meters as the runner built them before the columns: one RadioMeter per row."""
    out = []
    for i in range(len(cols)):
        meter_id = int(cols.id[i])
        out.append(
            RadioMeter(
                id=meter_id,
                x=float(cols.x[i]),
                y=float(cols.y[i]),
                mode=str(cols.mode[i]),
                manufacturer=str(cols.manufacturer[i]),
                profile=str(cols.profile[i]),
                indoor=bool(cols.indoor[i]),
                floor=int(cols.floor[i]),
                tx_power_dbm=cols.tx_power_dbm,
                interval_s=cols.interval_s,
                jitter=cols.jitter,
                security_mode=int(cols.security_mode[i]),
                key=runner.meter_key(cols.seed, meter_id) if cols.encrypted[i] else None,
                ell_encryption=bool(cols.ell_encryption[i]),
                frame=str(cols.frame[i]),
                full_every=cols.full_every,
                seed=cols.seed,
            )
        )
    return out


@pytest.mark.parametrize("frame", ["full", "compact"])
def test_columns_give_the_same_meters_setup_and_receptions(tmp_path, frame):
    sc = _scenario(tmp_path, 300, frame)
    cols = runner.build_meters(sc, 7)
    assert len(cols) == 300
    plain = _one_by_one(cols)
    kinds = {(m.mode, m.security_mode, m.ell_encryption, m.floor < 0) for m in plain}
    assert len(kinds) >= 6, kinds  # the draw covers encrypted, ELL and basement meters
    for a, b in zip(cols, plain, strict=True):
        assert a == b and a.key == b.key and a.meter_type is b.meter_type
    assert cols[-1] is cols[299]  # built once, then kept
    receivers = runner.build_receivers(sc)
    channel = Channel.preset("oulu")
    from_cols = RadioSetup.build(cols, receivers, channel, 7)
    from_list = RadioSetup.build(plain, receivers, channel, 7)
    for f in dataclasses.fields(RadioSetup):
        if f.name in ("meters", "receivers", "channel", "seed"):
            continue
        a, b = getattr(from_cols, f.name), getattr(from_list, f.name)
        if a is None or b is None:  # compact-frame fields of an all-full setup
            assert a is b and frame == "full", f.name
            continue
        assert a.dtype == b.dtype and np.array_equal(a, b), f.name
    ra = run_kernel(from_cols, 3600.0).receptions
    rb = run_kernel(from_list, 3600.0).receptions
    assert len(ra) > 0
    for f in dataclasses.fields(ra):
        assert np.array_equal(getattr(ra, f.name), getattr(rb, f.name)), f.name


def test_unknown_profile_column_is_refused(tmp_path):
    cols = runner.build_meters(_scenario(tmp_path, 20), 1)
    profile = cols.profile.astype(object)
    profile[13] = "gas-turbine"
    with pytest.raises(ValueError, match="meter 30000013: unknown profile 'gas-turbine'"):
        type(cols)(
            **{
                k: getattr(cols, k)
                for k in (
                    "id", "x", "y", "mode", "manufacturer", "indoor", "floor", "security_mode",
                    "ell_encryption", "encrypted", "key", "tx_power_dbm", "interval_s", "jitter",
                    "seed",
                )
            },
            profile=profile,
        )  # fmt: skip
