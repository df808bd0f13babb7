"""The CMe2100 LTE G2's settings after commissioning (seed 000): the one declaration of their
defaults, units and sources. The gateway model reads its constants from here; docs/settings.md
is generated from it. The SMS commissioning values (keys, password, e-mail) are per device and
live in the scenario's ``[gateway]``."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

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


NET = "bench (the SMS centre stores and forwards SMS, 3GPP TS 23.040; values are not sourced)"


class SmsNetworkSettings(StrictModel):
    """What the mobile network does to each SMS, either way, beyond its latency
    (``[gateway] sms_latency_s``): an SMS can be lost, arrive late (the SMS centre holds it
    and retries), or arrive twice (the centre delivers again when it missed the delivery
    acknowledgement). All off by default, so a scenario without ``[sms_network]`` runs as it
    always did. Draws come from the stream ``sms/network``, only for non-zero probabilities.
    """

    loss_probability: float = setting(
        0.0, ge=0, le=1, source=NET, doc="probability that an SMS never arrives"
    )
    late_probability: float = setting(
        0.0, ge=0, le=1, source=NET, doc="probability that an SMS is held by the SMS centre"
    )
    late_s: tuple[float, float] = setting(
        (600.0, 3600.0),
        unit="s",
        source=NET,
        doc="[low, high] extra delay of a held SMS, drawn uniformly",
    )
    duplicate_probability: float = setting(
        0.0, ge=0, le=1, source=NET, doc="probability that an SMS is delivered a second time"
    )
    duplicate_after_s: tuple[float, float] = setting(
        (30.0, 300.0),
        unit="s",
        source=NET,
        doc="[low, high] time from the first to the second delivery, drawn uniformly",
    )

    @field_validator("late_s", "duplicate_after_s")
    @classmethod
    def _range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] <= v[1] <= 7 * 86400:
            raise ValueError("[low, high] in s with 0 <= low <= high <= 7 days")
        return v

    @property
    def active(self) -> bool:
        """Anything but a plain delivery can happen."""
        return bool(self.loss_probability or self.late_probability or self.duplicate_probability)
