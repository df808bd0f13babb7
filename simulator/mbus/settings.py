"""The CMe3100 M-Bus settings (Meters > M-Bus settings, seed 002 §6.25 Table 7; defaults from
the screenshots of seed 004 §6.25.1-§6.25.3): the one place their defaults, ranges and units
are declared. Scenario files (``[bus.master.settings]``), rig files (``[dut.mbus]``) and the
master model (:class:`MasterSettings`) all take them from here; docs/settings.md is generated
from it (``python -m simulator.commands.settings_doc``).

- :class:`MbusTiming`: the six time and retry knobs in ms as the web UI shows them (block A,
  004 §6.25.2). The readout group's advanced block (004 §6.25.3, "timeout and retry settings
  for multi-telegram") has the same knobs with other defaults: :data:`MULTI_TELEGRAM_TIMING`.
- :class:`MbusSettings`: a scenario's ``[bus.master.settings]``: timing + readout group
  (multi-telegram) + the bench's own search knobs.
- :class:`DutMbusSettings`: a rig's ``[dut.mbus]``: search baud + timing + read limit.
- :class:`MasterSettings`: what :class:`simulator.mbus.master.Master` uses, in s, derived
  from the above (same defaults, no second copy).

Errors: bad values raise pydantic's ``ValidationError`` (a ``ValueError``) naming the field.
"""

from __future__ import annotations

from typing import Literal

from simulator.core.settings import setting
from simulator.scenario import StrictModel

#: Upper bound of telegrams in "automatic" multi-telegram mode (a runaway slave guard).
AUTO_TELEGRAM_CAP = 64
#: Values of :attr:`MasterSettings.f_nibble_search`.
F_NIBBLE_MODES = ("off", "unexplained", "always")

A = "seed 004 §6.25.2"  # the timeout and retry block's screenshot
MT = "seed 004 §6.25.3"  # the multi-telegram (readout group) screenshot


class MbusTiming(StrictModel):
    """The time and retry settings (seed 002 Table 7); times in ms as in the web UI."""

    response_timeout_ms: float = setting(
        1000, unit="ms", gt=0, le=60_000, source=A, doc="wait for a reply after a request"
    )
    readout_retries: int = setting(
        1, ge=0, le=20, source=A, doc="extra REQ_UD2 attempts before a readout fails"
    )
    selection_retries: int = setting(
        1, ge=0, le=20, source=A, doc="extra selection attempts (secondary addressing)"
    )
    init_idle_ms: float = setting(
        10_000, unit="ms", ge=0, le=600_000, source=A, doc="wait after an SND_NKE"
    )
    collision_idle_ms: float = setting(
        5_000, unit="ms", ge=0, le=600_000, source=A, doc="wait after a detected collision"
    )
    request_idle_ms: float = setting(
        2_000, unit="ms", ge=0, le=600_000, source=A, doc="minimum time between two requests"
    )

    def seconds(self, name: str) -> float:
        """A ``*_ms`` setting in s (``seconds("request_idle")``)."""
        return float(getattr(self, f"{name}_ms")) / 1000.0


#: The readout group's advanced block (seed 004 §6.25.3): 1500 ms / 3 / 2 / 10000 / 3500 / 1000.
MULTI_TELEGRAM_TIMING = MbusTiming(
    response_timeout_ms=1500,
    readout_retries=3,
    selection_retries=2,
    init_idle_ms=10_000,
    collision_idle_ms=3500,
    request_idle_ms=1000,
)


class MultiTelegramLimit(StrictModel):
    multi_telegram_limit: int = setting(
        0, ge=0, le=1000, source=MT, doc="most telegrams per readout; 0 = automatic (DIF 1F)"
    )


class MbusSettings(MbusTiming, MultiTelegramLimit):
    """A scenario's ``[bus.master.settings]``: the timing block the master applies, the
    readout group and the bench's search knobs (docs/mbus.md)."""

    multi_telegram: Literal["off", "auto"] = setting(
        "off", source=MT, doc='"off": read the first telegram only'
    )
    send_nke: bool = setting(
        True, source="bench", doc="SND_NKE to the meter's primary address before a readout"
    )
    hex_search: bool = setting(
        True, source="bench", doc="step 0-F in hex positions of a secondary search (libmbus: 0-9)"
    )
    f_nibble_search: Literal["off", "unexplained", "always"] = setting(
        "unexplained", source="bench", doc='finding F nibbles, docs/mbus.md "F nibbles"'
    )

    def master(self) -> MasterSettings:
        """These settings as the master model's :class:`MasterSettings` (s)."""
        return MasterSettings.from_timing(
            self,
            multi_telegram=self.multi_telegram == "auto",
            max_telegrams=self.multi_telegram_limit,
            send_nke=self.send_nke,
            hex_search=self.hex_search,
            f_nibble_search=self.f_nibble_search,
        )


class DutMbusSettings(MbusTiming, MultiTelegramLimit):
    """A rig's ``[dut.mbus]``: the gateway's configured search baud and time and retry
    settings (the suite's limits) and its multi-telegram read limit."""

    baud: Literal[300, 2400, 9600] = setting(
        2400, unit="bit/s", source="seed 004 §6.25.1", doc="search and readout baud rate"
    )


_T = MbusTiming.model_fields
_S = MbusSettings.model_fields


def _s(name: str) -> float:
    """The default of timing knob ``name`` in s (``response_timeout`` -> 1.0)."""
    return float(_T[f"{name}_ms"].default) / 1000.0


class MasterSettings(StrictModel):
    """The master model's knobs (:class:`simulator.mbus.master.Master`), times in s. The
    defaults are :class:`MbusSettings`' (seed 004 §6.25.2/§6.25.3; bench knobs docs/mbus.md)."""

    response_timeout: float = _s("response_timeout")
    readout_retries: int = _T["readout_retries"].default
    selection_retries: int = _T["selection_retries"].default
    init_idle: float = _s("init_idle")
    collision_idle: float = _s("collision_idle")
    request_idle: float = _s("request_idle")
    multi_telegram: bool = _S["multi_telegram"].default == "auto"
    #: multi-telegram read limit, 0 = automatic (until no DIF 1F, capped at 64)
    max_telegrams: int = _S["multi_telegram_limit"].default
    send_nke: bool = _S["send_nke"].default
    hex_search: bool = _S["hex_search"].default
    #: ``"off"`` | ``"unexplained"`` | ``"always"`` (docs/mbus.md "F nibbles")
    f_nibble_search: Literal["off", "unexplained", "always"] = _S["f_nibble_search"].default
    #: End a multi-telegram readout at a telegram that repeats an earlier one but for its
    #: access number (the meter starts over, or repeats one telegram despite DIF 1F); the
    #: recorder's rule, off for the gateway model.
    stop_on_repeat: bool = False

    @classmethod
    def from_timing(cls, timing: MbusTiming, **knobs: object) -> MasterSettings:
        """Master settings with ``timing``'s six knobs (ms -> s) and ``knobs``."""
        return cls(
            response_timeout=timing.seconds("response_timeout"),
            readout_retries=timing.readout_retries,
            selection_retries=timing.selection_retries,
            init_idle=timing.seconds("init_idle"),
            collision_idle=timing.seconds("collision_idle"),
            request_idle=timing.seconds("request_idle"),
            **knobs,
        )

    @classmethod
    def multi_telegram_defaults(cls) -> MasterSettings:
        """The manual's advanced multi-telegram defaults (:data:`MULTI_TELEGRAM_TIMING`)."""
        return cls.from_timing(MULTI_TELEGRAM_TIMING, multi_telegram=True, max_telegrams=0)

    @property
    def telegram_limit(self) -> int:
        if not self.multi_telegram:
            return 1
        return self.max_telegrams if self.max_telegrams > 0 else AUTO_TELEGRAM_CAP


assert set(F_NIBBLE_MODES) == set(
    MasterSettings.model_fields["f_nibble_search"].annotation.__args__
)  # type: ignore[union-attr]
