"""One settings model per device: docs/settings.md is generated from the models and up to
date; scenario, rig and master defaults are the models' (no second copy)."""

from __future__ import annotations

import pytest

from simulator.building.scenario_model import MasterPortModel
from simulator.commands import settings_doc
from simulator.gateways.cme3100.settings import PROPERTIES, StreamSettings
from simulator.mbus.settings import MULTI_TELEGRAM_TIMING, MasterSettings, MbusSettings
from simulator.rig import DeviceUnderTest


def test_docs_settings_md_is_generated_from_the_models():
    assert settings_doc.DOC.read_text(encoding="utf-8") == settings_doc.render(), (
        "docs/settings.md is out of date: run python -m simulator.commands.settings_doc"
    )


def test_seed_004_defaults_reach_scenario_rig_and_master():
    scenario = MasterPortModel().settings
    rig = DeviceUnderTest().mbus
    master = MasterSettings()
    got = [
        (
            s.response_timeout_ms,
            s.readout_retries,
            s.selection_retries,
            s.init_idle_ms,
            s.collision_idle_ms,
            s.request_idle_ms,
        )
        for s in (scenario, rig)
    ]
    assert got == [(1000, 1, 1, 10000, 5000, 2000)] * 2  # seed 004 §6.25.2
    assert rig.multi_telegram_limit == scenario.multi_telegram_limit == 0  # §6.25.3: 0 = auto
    assert master == MbusSettings().master()
    assert (master.response_timeout, master.init_idle, master.request_idle) == (1.0, 10.0, 2.0)
    mt = MasterSettings.multi_telegram_defaults()
    assert (mt.response_timeout, mt.readout_retries, mt.selection_retries) == (1.5, 3, 2)
    assert (mt.init_idle, mt.collision_idle, mt.request_idle) == (10.0, 3.5, 1.0)
    assert MULTI_TELEGRAM_TIMING.collision_idle_ms == 3500


@pytest.mark.parametrize("key", ["response_timeout_ms", "init_idle_ms"])
def test_scenario_and_rig_share_the_ranges(key):
    from pydantic import ValidationError

    for model in (MbusSettings, type(DeviceUnderTest().mbus)):
        with pytest.raises(ValidationError, match=key):
            model(**{key: 10_000_000})


def test_every_setting_names_its_source_and_stream_properties_come_from_the_model():
    for model in (MbusSettings, StreamSettings):
        for name, info in model.model_fields.items():
            assert info.json_schema_extra and info.json_schema_extra["source"], name
    assert PROPERTIES["receiving.server.push.cron"] == "push_cron"
    assert str(StreamSettings().configuration_cron) == "30 0 * * *"  # seed 004 §6.31.1
