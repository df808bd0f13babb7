"""Generate docs/settings.md from the device settings models (issue 10: the docs' settings
tables come from the one model of each device).

``python -m simulator.commands.settings_doc [PATH]`` writes the file (default
docs/settings.md); ``tests/test_settings_doc.py`` fails when the file is out of date.
"""

from __future__ import annotations

from pathlib import Path

from simulator.core.docgen import write_generated
from simulator.core.settings import describe, markdown_table
from simulator.gateways.cme2100.settings import Cme2100Settings, SmsNetworkSettings
from simulator.gateways.cme3100.gateway_settings import (
    AutoConfigSettings,
    Cme3100Settings,
    EventReport,
    ReportSlot,
    SlavePortService,
    SnmpService,
    TimeSettings,
    TransparentMbusService,
    VirtualMbusService,
)
from simulator.gateways.cme3100.settings import StreamSettings
from simulator.mbus.settings import (
    MULTI_TELEGRAM_TIMING,
    DutMbusSettings,
    MbusSettings,
    MbusTiming,
)
from simulator.nbiot.config import ModuleConfig
from simulator.nbiot.energy import PowerModel
from simulator.nbiot.network import NetworkParams
from simulator.wmbus.scenario_model import MetersModel

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"

#: (heading, model, (other defaults, their source) or None, what the section is)
SECTIONS = [
    (
        "CMe3100 M-Bus settings: scenario `[bus.master.settings]`",
        MbusSettings,
        None,
        "Meters > M-Bus settings (seed 002 §6.25 Table 7). Times in ms as the web UI shows "
        "them; the master model uses them in s (`MasterSettings`).",
    ),
    (
        "CMe3100 M-Bus settings: rig `[dut.mbus]`",
        DutMbusSettings,
        None,
        "The device under test's configured settings; the conformance suite's limits.",
    ),
    (
        "CMe3100 multi-telegram advanced block",
        MbusTiming,
        (MULTI_TELEGRAM_TIMING, "seed 004 §6.25.3"),
        "The readout group's own time and retry block (seed 004 §6.25.3): "
        "`MasterSettings.multi_telegram_defaults()`. Same knobs and ranges, other defaults.",
    ),
    (
        "CMe3100 gateway: scenario `[gateway]`",
        Cme3100Settings,
        None,
        'The gateway as one device (`kind = "cme3100"`, docs/cme3100.md); `search` and '
        "`readout` are the two M-Bus time and retry blocks (block A and block B above).",
    ),
    (
        "CMe3100 push report: `[[gateway.reports]]`",
        ReportSlot,
        None,
        "Push reports > Report 1-5 (seed 002 §6.9.1); templates in docs/cme3100-reports.md.",
    ),
    (
        "CMe3100 event report: `[[gateway.event_reports]]`",
        EventReport,
        None,
        "Event reports (seed 002 §6.9 Table 5; CME3100.md §6).",
    ),
    (
        "CMe3100 SNMP: `[gateway.snmp]`",
        SnmpService,
        None,
        "Services > SNMP (seed 002 §6.30; docs/cme3100-snmp.md).",
    ),
    (
        "CMe3100 Virtual M-Bus over TCP: `[gateway.virtual_mbus]`",
        VirtualMbusService,
        None,
        'Services > Virtual M-Bus over TCP/IP (seed 002 §6.27; docs/cme3100.md "Services").',
    ),
    (
        "CMe3100 Transparent M-Bus over TCP: `[gateway.transparent_mbus_1]`, `_2`",
        TransparentMbusService,
        None,
        "Services > Transparent M-Bus over TCP/IP 1 and 2 (seed 002 §6.26); service 2 "
        'defaults to port 10002 (docs/cme3100.md "Services").',
    ),
    (
        "CMe3100 M-Bus slave ports: `[gateway.slave_port_1]`, `_2`",
        SlavePortService,
        None,
        "Services > M-Bus slave port 1 and 2 (seed 002 §6.28); settings only, no wire model "
        'yet (docs/cme3100.md "Services").',
    ),
    (
        "CMe3100 time: `[gateway.time]`",
        TimeSettings,
        None,
        'System > Time (seed 002 §6.3.1; CME3100.md §10; docs/cme3100.md "Time").',
    ),
    (
        "CMe3100 Auto Configuration: `[gateway.auto_config]`",
        AutoConfigSettings,
        None,
        'System > Auto Configuration (seed 002 §6.31.1; docs/cme3100.md "Configuration").',
    ),
    (
        "CMe3100 Stream Plugin properties",
        StreamSettings,
        None,
        "Plugin properties (seed 003 §6.1), set in a stream scenario's `[plugin] properties` "
        "or by a CAD file's `Sync-Config-N`.",
    ),
    (
        "wM-Bus meters: stream scenario `[meters]`",
        MetersModel,
        None,
        'What the simulated wM-Bus meters send (docs/wmbus-radio.md "Compact frames"); '
        "the placement and mix keys are in the scenario docs (docs/wmbus-radio.md).",
    ),
    (
        "CMe2100 LTE G2",
        Cme2100Settings,
        None,
        "What a commissioned CMe2100 does (seed 000).",
    ),
    (
        "CMe2100 SMS network",
        SmsNetworkSettings,
        None,
        'What the mobile network does to each SMS of a `kind = "cme2100"` run, '
        "set in the scenario's `[sms_network]` (all off by default).",
    ),
    (
        "CMi6140 NB-IoT stack: scenario `[module]`",
        ModuleConfig,
        None,
        "The stack knobs real NB-IoT modules use (docs/nbiot.md, docs/nbiot-fidelity.md); "
        "the manual's own parameters are in `simulator.nbiot.config.PARAMS`.",
    ),
    (
        "NB-IoT network: scenario `[network]`",
        NetworkParams,
        None,
        'What the cell and core do to a module (docs/nbiot.md "Network model").',
    ),
    (
        "NB-IoT power model: scenario `[power]`",
        PowerModel,
        None,
        'Currents per state (docs/nbiot.md "Energy").',
    ),
]


def render() -> str:
    """The whole docs/settings.md text."""
    out = [
        "# Device settings\n",
        "Generated from the settings models by `python -m simulator.commands.settings_doc`; "
        "do not edit by hand. Each model is the one declaration of its defaults, ranges and "
        'units; "source" is the document section a default comes from ("bench": the '
        "bench's own choice).\n",
    ]
    for heading, model, values, what in SECTIONS:
        name = f"{model.__module__}.{model.__qualname__}"
        out.append(f"## {heading}\n\n{what} Model: `{name}`.\n")
        out.append(markdown_table(describe(model, *(values or ()))))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    return write_generated(DOC, render, argv)


if __name__ == "__main__":
    raise SystemExit(main())
