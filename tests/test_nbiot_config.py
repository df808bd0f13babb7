"""CMi6140 configuration: manual defaults, ranges in the error message, the PAK lock."""

from __future__ import annotations

import textwrap

import pytest

from simulator.core.world import World
from simulator.nbiot import lwm2m_objects as objects
from simulator.nbiot.config import (
    PARAMS,
    ConfigError,
    ConfigLockedError,
    ConfigRangeError,
    ConfigStore,
    ModuleConfig,
)
from simulator.nbiot.module import Cmi6140
from simulator.nbiot.scenario_model import NbiotScenario
from simulator.nbiot.server import NbiotServer
from simulator.scenario import ScenarioError, load_toml


def test_manual_defaults():
    c = ModuleConfig()
    assert c.readout_interval_min == 60  # seed 001 §7.5
    assert c.dtls_max_timeout_s == 90  # seed 001 §7.5
    assert c.utc_offset_min == 0
    assert c.message_encoding == "senml_cbor"
    assert c.power_saving_mode == "edrx+psm"
    assert c.configuration_lock == "open"  # seed 001 §7.2
    assert (c.coap_ack_timeout_s, c.coap_ack_random_factor, c.coap_max_retransmit) == (2, 1.5, 4)
    assert all(p.source for p in PARAMS.values())


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("readout_interval_min", 4, "outside 5..1440 min"),
        ("readout_interval_min", 1441, "outside 5..1440 min"),
        ("utc_offset_min", 721, "outside -720..720 min"),
        ("dtls_max_timeout_s", 0, "outside 1..3600 s"),
    ],
)
def test_out_of_range_is_rejected_with_the_range(name, value, text):
    store = ConfigStore()
    with pytest.raises(ConfigRangeError, match=text):
        store.write(name, value)
    assert store.read(name) == getattr(ModuleConfig(), name)  # nothing changed


def test_every_bad_field_is_reported_at_once_with_file_and_line(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(
        textwrap.dedent("""\
        kind = "nbiot"
        [module]
        readout_interval_min = 3
        utc_offset_min = 900
        t3324_s = 7
        power_saving_mode = "sometimes"
        """)
    )
    with pytest.raises(ScenarioError) as info:
        load_toml(f).validate(NbiotScenario)
    text = str(info.value)
    assert f"{f}:3: module.readout_interval_min" in text and "5..1440" in text
    assert f"{f}:4: module.utc_offset_min" in text and "-720..720" in text
    assert f"{f}:6: module.power_saving_mode" in text
    assert len(info.value.issues) == 3  # t3324 is checked after the field errors are fixed


def test_timer_values_must_be_encodable():
    with pytest.raises(ValueError, match="exact multiple"):
        ModuleConfig(t3324_s=7)
    with pytest.raises(ValueError, match="cycle"):
        ModuleConfig(edrx_cycle_s=30)
    with pytest.raises(ValueError, match="whole number of hours"):
        ModuleConfig(transmit_interval_min=90)


def test_window_larger_than_the_interval_falls_back_as_the_manual_says():
    c = ModuleConfig(transmit_interval_min=60, transmit_offset_min=30, transmit_delay_min=45)
    assert (c.transmit_offset_min, c.transmit_delay_min) == (0, 60)


def test_pak_lock():
    store = ConfigStore()
    store.write("readout_interval_min", 15)  # open by default
    store.lock("PAK-1234")
    assert store.locked
    with pytest.raises(ConfigLockedError, match="Product Access Key"):
        store.write("readout_interval_min", 30)
    with pytest.raises(ConfigLockedError):
        store.write("readout_interval_min", 30, pak="wrong")
    assert store.read("readout_interval_min") == 15  # reads stay allowed
    store.write("readout_interval_min", 30, pak="PAK-1234")
    assert store.read("readout_interval_min") == 30
    with pytest.raises(ConfigLockedError):
        store.unlock("nope")
    store.unlock("PAK-1234")
    store.write("readout_interval_min", 60)
    with pytest.raises(ConfigError, match="unknown configuration parameter"):
        store.read("colour")


def test_lwm2m_objects_readable_and_tied_to_the_module():
    w = World(1)
    m = Cmi6140(
        w,
        42,
        NbiotServer(w),
        coupling_loss_db=150.0,
        start=False,
        config=ModuleConfig(t3412_s=3600, utc_offset_min=60),
    )
    assert objects.read(m, "/3/0/1") == "CMi6140"
    assert objects.read(m, "/3/0/14") == "UTC+01:00"
    assert objects.read(m, "/4/0/0") == 7  # NB-IoT bearer
    assert objects.read(m, "/4/0/13") == 2  # CE1 -> 2 in OMA object 4 coding
    assert objects.read(m, "/10/0/4") == 3600  # PSM timer = T3412
    assert objects.read(m, "/10/0/5") == 10  # active timer = T3324
    assert objects.read(m, "/10/0/9") == bytes([0b00000101])  # eDRX 81.92 s, PTW 2.56 s
    assert objects.read(m, "/33906/0/2") == 42  # Standard message format
    assert objects.read(m, "/33906/0/5") is False
    assert objects.read(m, "/33909/0/0") == 240990000000042
    for oid in (3, 4, 10, 33906, 33907, 33908, 33909):
        assert objects.read_object(m, oid)
    objects.write(m, "/33906/0/2", 43)
    assert m.config.message_format == "extended"
    with pytest.raises(objects.LwM2MMethodError):
        objects.write(m, "/3/0/0", "ACME")
    with pytest.raises(objects.LwM2MPathError):
        objects.read(m, "/5/0/1")
    m.store.lock("k")
    with pytest.raises(ConfigLockedError):
        objects.write(m, "/33907/0/0", 15)
    with pytest.raises(ConfigRangeError):
        m.store.write("readout_interval_min", 2, pak="k")


def test_reading_the_battery_level_does_not_disturb_the_module():
    def run(read: bool) -> tuple[str, float]:
        w = World(4)
        m = Cmi6140(
            w, 1, NbiotServer(w, detail="datagram"), coupling_loss_db=150, detail="datagram"
        )
        levels = []

        def reader():
            for _ in range(12):
                yield w.timeout(1111)
                levels.append(objects.read(m, "/3/0/9"))

        if read:
            w.process(reader())
        w.run(5 * 3600)
        if read:
            assert all(0 <= x <= 100 for x in levels) and levels[0] >= levels[-1]
        return w.trace.to_jsonl(), m.summary(w.now)["energy_j"]

    assert run(True) == run(False)


def test_config_locked_33906_0_5_is_writable_with_the_pak():
    """Seed 001 p. 15: /33906/0/5 Config locked is Boolean W (issue 14: it was read-only)."""
    w = World(5)
    m = Cmi6140(w, 43, NbiotServer(w), coupling_loss_db=150.0, start=False)
    with pytest.raises(ConfigError, match="Product Access Key"):
        objects.write(m, "/33906/0/5", True)  # no PAK known to the DM server: refused
    m.dm_pak = "pak-43"
    with pytest.raises(ConfigError, match="Boolean"):
        objects.write(m, "/33906/0/5", 1)
    objects.write(m, "/33906/0/5", True)
    assert objects.read(m, "/33906/0/5") is True and m.store.locked
    with pytest.raises(ConfigLockedError):
        m.store.write("readout_interval_min", 15)  # NFC without the PAK
    objects.write(m, "/33907/0/0", 15)  # the DM server has it
    m.dm_pak = "wrong"
    with pytest.raises(ConfigLockedError):
        objects.write(m, "/33906/0/5", False)
    m.dm_pak = "pak-43"
    objects.write(m, "/33906/0/5", False)
    assert objects.read(m, "/33906/0/5") is False
