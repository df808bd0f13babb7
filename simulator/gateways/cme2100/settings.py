"""The CMe2100 LTE G2's settings after commissioning (seed 000): the one declaration of their
defaults, units and sources. The gateway model reads its constants from here; docs/settings.md
is generated from it. The SMS commissioning values (keys, password, e-mail) are per device and
live in the scenario's ``[gateway]``."""

from __future__ import annotations

from typing import Literal

from simulator.core.settings import setting
from simulator.scenario import StrictModel

S0 = "seed 000"  # commissioning guide: "hourly readout at 2400 bit/s, daily e-mail at 00:00"


class Cme2100Settings(StrictModel):
    """What a commissioned CMe2100 does by default (seed 000)."""

    readout_baud: Literal[300, 2400, 9600] = setting(
        2400, unit="bit/s", source=S0, doc="M-Bus baud rate of install and readouts"
    )
    readout_period_s: float = setting(
        3600.0, unit="s", gt=0, le=86400, source=S0, doc="readout every hour, on the hour"
    )
    push_period_s: float = setting(
        86400.0, unit="s", gt=0, source=S0, doc="e-mail Push Report daily at 00:00"
    )


DEFAULTS = Cme2100Settings()
