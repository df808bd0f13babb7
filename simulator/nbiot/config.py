"""CMi6140 configuration parameters: defaults, ranges, sources, and the configuration lock.

Every parameter is a :class:`Param` with its unit, range and the source of its default. The
manual's table (seed 001, §7.5 "Configuration options", pages 29-33) gives: readout interval
5..1440 min (default 60), DTLS max timeout 90 s, UTC offset in minutes, power saving mode
Disabled / eDRX / PSM / eDRX+PSM, T3324, T3412, eDRX, message encoding (default SenML CBOR) and
the configuration lock (default Open; a locked module needs the Product Access Key, §7.2). Where
the page summaries do not show a default, the bench picks one and says so (``source`` starts
with "bench:"). Out-of-range values raise :class:`ConfigRangeError` naming the range.

:class:`ModuleConfig` is a pydantic model, so a scenario's ``[module]`` table is validated with
file:line for every bad key at once (see :mod:`simulator.scenario`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Literal

import pydantic

from simulator.core.settings import setting
from simulator.nbiot import timers
from simulator.nbiot.dtls import TIMER_PROFILES as DTLS_INITIAL_TIMER_S
from simulator.scenario import StrictModel


@dataclass(frozen=True)
class Param:
    """One numeric configuration parameter: unit, inclusive range, default and its source."""

    name: str
    unit: str
    low: float
    high: float
    default: float
    source: str

    def check(self, value: float) -> None:
        if not self.low <= value <= self.high:
            raise ConfigRangeError(self, value)


class ConfigError(ValueError):
    """A configuration write that the module refuses."""


class ConfigRangeError(ConfigError):
    """A value outside the parameter's range; the message names the range, unit and source."""

    def __init__(self, param: Param, value: Any) -> None:
        self.param = param
        self.value = value
        super().__init__(
            f"{param.name} = {value!r} is outside {param.low:g}..{param.high:g} "
            f"{param.unit} ({param.source})"
        )


class ConfigLockedError(ConfigError):
    """A write to a locked module without the correct Product Access Key (seed 001 §7.2)."""


S7_5 = "seed 001 §7.5"
PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("readout_interval_min", "min", 5, 1440, 60, f"{S7_5} Readout interval"),
        Param(
            "transmit_interval_min",
            "min",
            60,
            10080,
            60,
            "bench: range; default as the examples of seed 001 §7.3.4",
        ),
        Param("transmit_offset_min", "min", 0, 10080, 0, "bench: T_offset of seed 001 §7.3.3"),
        Param("transmit_delay_min", "min", 0, 10080, 60, "bench: T_delay of seed 001 §7.3.3"),
        Param(
            "utc_offset_min",
            "min",
            -720,
            720,
            0,
            "seed 001 §7.3.1; range/default from the Elvaco CMi configuration table",
        ),
        Param("dtls_max_timeout_s", "s", 1, 3600, 90, f"{S7_5} DTLS max timeout"),
        Param(
            "dtls_min_timeout_s",
            "s",
            1,
            60,
            1,
            "RFC 6347 §4.2.4.1 initial timer 1 s; unset: from dtls_timer_profile (RFC 7925 §11: 9 s)",
        ),
        Param(
            "communication_retry_count",
            "attempts",
            0,
            10,
            3,
            f"bench: default; parameter of {S7_5}",
        ),
        Param(
            "t3324_s",
            "s",
            0,
            timers.T3324_MAX_S,
            10,
            "bench: default 10 s (NCS 'RAT 10 s', RADIO-NBIOT §4.3); max TS 24.008",
        ),
        Param(
            "t3412_s",
            "s",
            2,
            timers.T3412_EXT_MAX_S,
            43200,
            "bench: default 12 h (NCS 'RPTAU 12 h', RADIO-NBIOT §4.3); max TS 24.008",
        ),
        Param("edrx_cycle_s", "s", 20.48, 10485.76, 81.92, "bench: default; NB-S1 table TS 24.008"),
        Param("paging_time_window_s", "s", 2.56, 40.96, 2.56, "TS 24.008 §10.5.5.32 NB-S1 PTW"),
        Param("max_uploads_per_transmission", "telegrams", 1, 100, 4, "seed 001 §7.3.4 Example 1"),
        Param("upload_max_age_h", "h", 1, 8760, 72, "seed 001 §7.3.4 Example 1"),
        Param(
            "readouts_per_telegram",
            "readouts",
            1,
            48,
            12,
            "seed 001 §7.3.4 Example 2 'device max payload size'",
        ),
        Param("coap_ack_timeout_s", "s", 1, 60, 2.0, "RFC 7252 §4.8 ACK_TIMEOUT"),
        Param("coap_ack_random_factor", "", 1.0, 4.0, 1.5, "RFC 7252 §4.8 ACK_RANDOM_FACTOR"),
        Param("coap_max_retransmit", "", 0, 20, 4, "RFC 7252 §4.8 MAX_RETRANSMIT"),
        Param("mqttsn_t_retry_s", "s", 1, 120, 10, "MQTT-SN 1.2 §6.13: Tretry 10..15 s"),
        Param("mqttsn_n_retry", "", 0, 20, 3, "MQTT-SN 1.2 §6.13: Nretry 3..5"),
    )
}

PowerSavingMode = Literal["disabled", "edrx", "psm", "edrx+psm"]


def _default(name: str) -> Any:
    p = PARAMS[name]
    return int(p.default) if float(p.default).is_integer() and p.unit != "s" else p.default


class ModuleConfig(StrictModel):
    """The CMi6140 configuration (every field has the default of :data:`PARAMS`)."""

    readout_interval_min: int = _default("readout_interval_min")
    transmit_interval_min: int = _default("transmit_interval_min")
    transmit_offset_min: int = _default("transmit_offset_min")
    transmit_delay_min: int = _default("transmit_delay_min")
    utc_offset_min: int = _default("utc_offset_min")
    dtls_max_timeout_s: float = PARAMS["dtls_max_timeout_s"].default
    # None: the initial timer of dtls_timer_profile (1 s RFC 6347, 9 s RFC 7925 §11).
    dtls_min_timeout_s: float | None = None
    dtls_timer_profile: Literal["rfc6347", "rfc7925"] = setting(
        "rfc7925",
        source="RFC 7925 §11 (TLS/DTLS IoT profile, the profile of the LwM2M PSK cipher suite): "
        "initial timer 9 s for links whose round trip exceeds RFC 6347's 1 s",
        doc="DTLS handshake retransmission timer profile (simulator.nbiot.dtls)",
    )
    communication_retry_count: int = _default("communication_retry_count")
    power_saving_mode: PowerSavingMode = "edrx+psm"  # seed 001 §7.5 (default column)
    t3324_s: int = int(PARAMS["t3324_s"].default)
    t3412_s: int = int(PARAMS["t3412_s"].default)
    edrx_cycle_s: float = PARAMS["edrx_cycle_s"].default
    paging_time_window_s: float = PARAMS["paging_time_window_s"].default
    protocol: Literal["lwm2m", "mqttsn"] = "lwm2m"  # seed 001 §7.3: LwM2M or MQTT-SN server
    message_encoding: Literal["senml_cbor", "json", "mbus"] = "senml_cbor"  # seed 001 §7.5 default
    message_format: Literal["standard", "extended", "pulse", "combined"] = "standard"  # §7.4.1
    # What pulse inputs In A / In B count (seed 001 Table 12): "volume" or "energy".
    pulse_inputs: tuple[Literal["volume", "energy"], Literal["volume", "energy"]] = (
        "volume",
        "energy",
    )
    upload_order: Literal["fifo", "lifo"] = "fifo"  # seed 001 §7.3.4 ("Auto upload order")
    max_uploads_per_transmission: int = _default("max_uploads_per_transmission")
    upload_max_age_h: float = PARAMS["upload_max_age_h"].default
    readouts_per_telegram: int = _default("readouts_per_telegram")
    coap_ack_timeout_s: float = PARAMS["coap_ack_timeout_s"].default
    coap_ack_random_factor: float = PARAMS["coap_ack_random_factor"].default
    coap_max_retransmit: int = int(PARAMS["coap_max_retransmit"].default)
    mqttsn_qos: Literal[-1, 0, 1] = 1
    mqttsn_t_retry_s: float = PARAMS["mqttsn_t_retry_s"].default
    mqttsn_n_retry: int = int(PARAMS["mqttsn_n_retry"].default)
    dtls_connection_id: bool = setting(
        True,
        source="RFC 9146 (DTLS 1.2 Connection ID): the session survives NAT rebinding after "
        "PSM, no handshake per uplink (RADIO §4.1; boaks, NCS); the CMi6140 manual is silent",
        doc="keep the DTLS session across PSM and NAT rebinding",
    )
    lwm2m_lifetime_s: int = setting(
        86400,
        source="OMA LwM2M 1.1 Core: Register `lt` = Server object /1/x/1, example 86400 s "
        "(RADIO §4.3); the CMi6140 page summaries do not give a value",
        unit="s",
        ge=60,
        le=timers.T3412_EXT_MAX_S,
        doc="LwM2M registration lifetime: the module sends a Registration Update before it "
        "lapses (with a transmission when the next one would come too late, else on its own)",
    )
    lwm2m_update_margin_s: int = setting(
        60,
        source="bench (clients update ahead of expiry; Zephyr LwM2M uses a few seconds to "
        "a few minutes)",
        unit="s",
        ge=1,
        doc="a standalone Update goes this long before the registration lapses",
    )
    lwm2m_bootstrap: Literal["factory", "client_initiated"] = setting(
        "factory",
        source="seed 001 p. 35 lists 'Preconfig on delivery' among the configuration methods "
        "(with Elvaco Evo / third-party DM) and p. 7 (sends data once mounted, no manual step): the "
        "LwM2M Server Account is provisioned in the factory (OMA LwM2M 1.1 Core §6.1.3.1). "
        "The p. 10 menu shows a 'Bootstrap status' (a Bootstrap-Server account exists); the "
        "page summaries do not say when it is used",
        doc="'factory': straight to DTLS + Register; 'client_initiated': DTLS with the "
        "Bootstrap-Server, Bootstrap-Request, its Delete / Writes, Bootstrap-Finish, then DTLS "
        "+ Register with the LwM2M server (simulator.nbiot.bootstrap)",
    )
    lwm2m_bootstrap_on_registration_failure: bool = setting(
        True,
        source="OMA LwM2M 1.1 Core §6.2.1.1 Table 6.2.1.1-1: /1/x/16 'Bootstrap on "
        "Registration Failure', default true",
        doc="after lwm2m_registration_attempts failed registration attempts in a row, bootstrap "
        "again (client_initiated only: a factory-bootstrapped module has no Bootstrap-Server "
        "account to fall back to)",
    )
    lwm2m_registration_attempts: int = setting(
        5,
        source="OMA LwM2M 1.1 Core §6.2.1.1 Table 6.2.1.1-1 defaults: Communication Retry "
        "Count /1/x/17 = 5 attempts x Communication Sequence Retry Count /1/x/20 = 1",
        unit="attempts",
        ge=1,
        le=100,
        doc="failed registration attempts (DTLS handshake or Register with the LwM2M server) "
        "in a row after which the registration counts as failed",
    )
    configuration_lock: Literal["open", "locked"] = "open"  # seed 001 §7.2 default Open

    @pydantic.field_validator(*PARAMS, mode="after")
    @classmethod
    def _in_range(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if value is not None:  # None: an optional parameter left to its profile
            PARAMS[info.field_name].check(value)
        return value

    @pydantic.field_validator("transmit_interval_min", mode="after")
    @classmethod
    def _full_hours(cls, value: int) -> int:
        if value % 60:
            raise ValueError(
                f"transmit_interval_min = {value} is not a whole number of hours; "
                "transmissions are planned at full hours (seed 001 §7.3.3)"
            )
        return value

    @pydantic.field_validator("edrx_cycle_s", mode="after")
    @classmethod
    def _edrx_table(cls, value: float) -> float:
        timers.encode_edrx_nbs1(value)  # raises with the list of allowed cycles
        return value

    @pydantic.model_validator(mode="after")
    def _window_fits(self) -> ModuleConfig:
        # Seed 001 §7.3.3: T_offset + T_delay <= T_transmit; if the interval is reduced below
        # that, the module sets T_offset = 0 and T_delay = T_transmit.
        if self.transmit_offset_min + self.transmit_delay_min > self.transmit_interval_min:
            object.__setattr__(self, "transmit_offset_min", 0)
            object.__setattr__(self, "transmit_delay_min", self.transmit_interval_min)
        if self.t3324_s:
            timers.encode_t3324(self.t3324_s)
        timers.encode_t3412_ext(self.t3412_s)
        # NB-S1 PTW: (n + 1) x 2.56 s (TS 24.008 §10.5.5.32); raises with the allowed values
        timers.encode_edrx_nbs1(self.edrx_cycle_s, self.paging_time_window_s)
        if self.dtls_initial_timeout_s > self.dtls_max_timeout_s:
            raise ValueError(
                f"DTLS initial timer {self.dtls_initial_timeout_s:g} s is above "
                f"dtls_max_timeout_s {self.dtls_max_timeout_s:g} s"
            )
        return self

    @property
    def dtls_initial_timeout_s(self) -> float:
        """The DTLS handshake's first retransmission timeout (s): ``dtls_min_timeout_s`` if set,
        else the initial timer of ``dtls_timer_profile`` (:data:`.dtls.TIMER_PROFILES`)."""
        if self.dtls_min_timeout_s is not None:
            return self.dtls_min_timeout_s
        return DTLS_INITIAL_TIMER_S[self.dtls_timer_profile]


class ConfigStore:
    """The module's configuration as NFC / device management sees it, with the lock.

    An open module accepts writes; a locked one accepts them only with the correct Product
    Access Key (PAK), else :class:`ConfigLockedError`. Reads are always allowed (seed 001 §7.5
    "Locked device & no PAK: Readable"). A write is validated like the scenario file:
    :class:`ConfigRangeError` (with the range) or :class:`ConfigError`; a refused write changes
    nothing.
    """

    def __init__(self, config: ModuleConfig | None = None, *, pak: str | None = None) -> None:
        self.config = config or ModuleConfig()
        self._pak = pak

    @property
    def locked(self) -> bool:
        return self.config.configuration_lock == "locked"

    def read(self, name: str) -> Any:
        if name not in ModuleConfig.model_fields:
            raise ConfigError(f"unknown configuration parameter {name!r}")
        return getattr(self.config, name)

    def _authorise(self, pak: str | None) -> None:
        if not self.locked:
            return
        if pak is None or self._pak is None or not hmac.compare_digest(pak, self._pak):
            raise ConfigLockedError(
                "configuration is locked; a correct Product Access Key "
                "(PAK) is needed to write (seed 001 §7.2)"
            )

    def write(self, name: str, value: Any, *, pak: str | None = None) -> None:
        """Set one parameter; raises :class:`ConfigLockedError` or :class:`ConfigRangeError`."""
        self._authorise(pak)
        if name not in ModuleConfig.model_fields:
            raise ConfigError(f"unknown configuration parameter {name!r}")
        if name in PARAMS and value is not None:
            PARAMS[name].check(value)  # the range error, without pydantic's wrapping
        data = self.config.model_dump()
        data[name] = value
        try:
            self.config = ModuleConfig.model_validate(data)
        except pydantic.ValidationError as exc:
            raise ConfigError("; ".join(e["msg"] for e in exc.errors())) from None

    def lock(self, pak: str) -> None:
        """Enable the configuration lock, claiming ``pak`` as the Product Access Key."""
        self._authorise(pak)
        if not pak:
            raise ConfigError("a Product Access Key must not be empty")
        self._pak = pak
        self.config = self.config.model_copy(update={"configuration_lock": "locked"})

    def unlock(self, pak: str) -> None:
        """Open the module again; needs the PAK."""
        self._authorise(pak)
        self.config = self.config.model_copy(update={"configuration_lock": "open"})
