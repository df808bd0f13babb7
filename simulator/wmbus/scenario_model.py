"""The ``kind = "stream"`` scenario file: meters, channel, receivers, Stream Plugin, report.

Validated with pydantic (:class:`simulator.scenario.StrictModel`: unknown keys are errors),
every error reported at once with file:line (``doc.validate``). Example (all keys shown with
their defaults where they have one)::

    kind = "stream"
    name = "stream-small"
    seed = 1
    hours = 2.0
    engine = "event"            # "event" (SimPy, telegram bytes, plugin, HTTP) or "kernel"

    [meters]
    count = 200
    width_m = 600.0             # meters are placed uniformly in width x height, centred on 0
    height_m = 600.0
    indoor_fraction = 0.8
    max_floor = 4               # indoor floors drawn uniformly in basement..max_floor
    basement_fraction = 0.1
    modes = { T1 = 0.7, C1A = 0.2, C1B = 0.1 }
    profiles = { water = 0.6, heat = 0.3, room_sensor = 0.1 }
    manufacturers = { ELV = 0.5, KAM = 0.3, DME = 0.2 }
    interval_s = 900.0
    jitter = 0.1
    tx_power_dbm = 10.0
    encrypted_fraction = 0.0    # meters with OMS mode 5 and a per-meter key
    security_mode = 5           # their TPL mode: 5, or 7 (AES-CBC with the AFL MAC)
    # fragment_size = 40        # mode-7 S1/T1 meters: AFL fragments of <= N message bytes
                                # (event engine; unset = whole telegrams)
    fragment_gap_s = 0.01       # silence between fragments (the bench's choice)
    ell_encryption = false      # encrypted C1 meters use ELL II AES-CTR (Kamstrup) instead
    frame = "full"              # "compact": a full frame every full_every telegrams, CI 79
    full_every = 8              # compact frames between (Kamstrup); TPL mode-5 meters stay full
    unheard_modes = []          # modes no receiver listens to, on purpose (see below)

    [channel]
    preset = "oulu"             # oulu | dortmund | lorasim (RADIO-NBIOT.md §6.1)
    sigma_db = 7.8              # optional override of the preset's shadowing
    fading_sigma_db = 3.0
    building_entry_db = 15.0    # ground-floor building entry loss (RADIO-NBIOT.md §6.2)

    [receivers]
    grid = [5, 5]               # receivers on a grid over the area ...
    # positions = [[0.0, 0.0], [250.0, 100.0]]   # ... or explicit positions (m)
    radio_mode = "T1_C1A_C1B"
    capture_db = 6.0            # -1 = capture off (any overlap destroys both)
    interference = "pairwise"   # or "sum": capture against the mW sum of all interferers
    noise_floor_dbm = -115.0

    [plugin]
    push = true                 # event engine: push reports to a head-end
    sink = "world"              # "world": in-world head-end (no I/O); "http": a real local
                                # HTTP server, reports POSTed chunked (simulator.sinks)
    properties = { "receiving.server.push.cron" = "*/15 * * * *" }   # seed 003 §6.1
    # with "sync.enabled" = "true" (event engine) each plugin fetches its CAD file from
    # "configuration.server.url" at every "configuration.server.cron" firing (seed 003 §9.1)

    [config_server]             # the in-world configuration server: CAD files by URL,
    files = {}                  # { "http://cfg.invalid/stream.cad" = "stream.cad" } (relative)

    [report]
    resolutions_s = [900.0, 86400.0]
    redundancy_threshold = 0.98
    distance_bin_m = 50.0
    plots = true
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from simulator.core.settings import setting
from simulator.core.text import is_letters
from simulator.scenario import (
    ConfigServerModel,
    Issue,
    ScenarioDoc,
    StrictModel,
    budget_check,
    config_server_check,
)
from simulator.wmbus.channel import BUILDING_ENTRY_DB, PRESETS
from simulator.wmbus.meter import ELL_MODES, FRAGMENT_GAP_S, FULL_EVERY, MODES, PROFILES
from simulator.wmbus.receiver import RADIO_MODES


def _weights(v: dict[str, float], allowed, what: str) -> dict[str, float]:
    bad = [k for k in v if k not in allowed]
    if bad:
        raise ValueError(f"unknown {what} {', '.join(bad)}; one of {', '.join(allowed)}")
    if not v or any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
        raise ValueError(f"{what} weights must be >= 0 with a positive sum")
    return v


class MetersModel(StrictModel):
    count: int = Field(100, ge=1, le=2_000_000)
    width_m: float = Field(1000.0, gt=0)
    height_m: float = Field(1000.0, gt=0)
    indoor_fraction: float = Field(0.8, ge=0, le=1)
    max_floor: int = Field(4, ge=0, le=100)
    basement_fraction: float = Field(0.1, ge=0, le=1)
    modes: dict[str, float] = Field(default_factory=lambda: {"T1": 1.0})
    profiles: dict[str, float] = Field(default_factory=lambda: {"water": 1.0})
    manufacturers: dict[str, float] = Field(default_factory=lambda: {"ELV": 1.0})
    interval_s: float = Field(900.0, gt=0)
    jitter: float = Field(0.1, ge=0, lt=1)
    tx_power_dbm: float = Field(10.0, ge=-30, le=30)
    encrypted_fraction: float = Field(0.0, ge=0, le=1)
    security_mode: Literal[5, 7] = setting(
        5,
        source="OMS Vol.2 security profiles A, B; EN 13757-7",
        doc="TPL security mode of the encrypted meters (encrypted_fraction, not ELL-encrypted):"
        " 5 (AES-128-CBC) or 7 (AES-128-CBC, AFL with AES-CMAC over the message)",
    )
    fragment_size: int | None = setting(
        None,
        unit="bytes",
        ge=1,
        le=255,
        source="EN 13757-7 AFL (CI 90)",
        doc="security mode 7 S1/T1 meters send each message as AFL fragments of at most this "
        "many message bytes, one transmission each (event engine only); unset: whole telegrams",
    )
    fragment_gap_s: float = setting(
        FRAGMENT_GAP_S,
        unit="s",
        ge=0,
        le=60,
        source="bench",
        doc="silence between a meter's consecutive AFL fragments (no published value found)",
    )
    ell_encryption: bool = False
    frame: Literal["full", "compact"] = setting(
        "full",
        source="wmbusmeters #1242",
        doc="what meters send: full frames only, or compact frames (CI 79, format signature) "
        "between full ones; meters with TPL security (mode 5) send full frames",
    )
    full_every: int = setting(
        FULL_EVERY,
        unit="telegrams",
        ge=1,
        le=1000,
        source="wmbusmeters #1242",
        doc="compact meters: a full frame every N telegrams, the first one full "
        "(Kamstrup: every 8th)",
    )
    #: modes no receiver listens to, on purpose (a study of exactly that); see mode_check
    unheard_modes: list[str] = Field(default_factory=list)

    @field_validator("unheard_modes")
    @classmethod
    def _unheard(cls, v):
        bad = [k for k in v if k not in MODES]
        if bad:
            raise ValueError(f"unknown mode {', '.join(bad)}; one of {', '.join(MODES)}")
        return v

    @field_validator("modes")
    @classmethod
    def _modes(cls, v):
        return _weights(v, MODES, "mode")

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, v):
        return _weights(v, list(PROFILES), "profile")

    @field_validator("manufacturers")
    @classmethod
    def _man(cls, v):
        bad = [k for k in v if not (len(k) == 3 and is_letters(k) and k.isupper())]
        if bad:
            raise ValueError(f"manufacturer codes must be three capital letters: {bad}")
        return _weights(v, list(v), "manufacturer")


#: The most receivers one scenario may place (``grid`` cells or ``positions``): every telegram
#: is evaluated at every receiver, so this bounds the work per telegram.
MAX_RECEIVERS = 10_000


class ChannelModel(StrictModel):
    preset: str = "oulu"
    sigma_db: float | None = Field(None, ge=0, le=30)
    fading_sigma_db: float = Field(3.0, ge=0, le=20)
    #: ground-floor building entry loss (dB), RADIO-NBIOT.md §6.2; a study parameter
    building_entry_db: float = Field(BUILDING_ENTRY_DB, ge=0, le=60)

    @field_validator("preset")
    @classmethod
    def _preset(cls, v):
        if v not in PRESETS:
            raise ValueError(f"unknown preset {v!r}; one of {', '.join(PRESETS)}")
        return v


class ReceiversModel(StrictModel):
    grid: tuple[int, int] | None = None
    positions: list[tuple[float, float]] | None = Field(None, max_length=MAX_RECEIVERS)
    radio_mode: str = "T1_C1A_C1B"
    capture_db: float = Field(6.0, ge=-1, le=60)
    noise_floor_dbm: float = Field(-115.0, ge=-150, le=-60)
    interference: Literal["pairwise", "sum"] = "pairwise"

    @field_validator("radio_mode")
    @classmethod
    def _mode(cls, v):
        if v not in RADIO_MODES:
            raise ValueError(f"unknown radio.mode {v!r}; one of {', '.join(RADIO_MODES)}")
        return v

    @model_validator(mode="after")
    def _where(self):
        if (self.grid is None) == (self.positions is None):
            raise ValueError("give exactly one of grid = [cols, rows] or positions = [[x, y], ...]")
        if self.grid is not None and (self.grid[0] < 1 or self.grid[1] < 1):
            raise ValueError("grid needs at least 1 x 1 receivers")
        if self.grid is not None and self.grid[0] * self.grid[1] > MAX_RECEIVERS:
            raise ValueError(
                f"grid of {self.grid[0] * self.grid[1]} receivers; at most {MAX_RECEIVERS}"
            )
        if self.positions is not None and not self.positions:
            raise ValueError("positions is empty")
        return self


class PluginModel(StrictModel):
    push: bool = False
    #: where pushes go: an in-world head-end, or a real local HTTP server (real I/O)
    sink: Literal["world", "http"] = "world"
    properties: dict[str, str] = Field(default_factory=dict)


class ReportModel(StrictModel):
    resolutions_s: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [900.0, 86400.0]
    )
    redundancy_threshold: float = Field(0.98, ge=0, le=1)
    distance_bin_m: float = Field(50.0, gt=0)
    plots: bool = True


class StreamScenario(StrictModel):
    kind: Literal["stream"] = "stream"
    name: str = "stream"
    description: str = ""
    seed: int = 1
    hours: float = Field(24.0, gt=0, le=24 * 366)
    engine: Literal["kernel", "event"] = "kernel"
    meters: MetersModel = Field(default_factory=MetersModel)
    channel: ChannelModel = Field(default_factory=ChannelModel)
    receivers: ReceiversModel
    plugin: PluginModel = Field(default_factory=PluginModel)
    config_server: ConfigServerModel = Field(default_factory=ConfigServerModel)
    report: ReportModel = Field(default_factory=ReportModel)


def mode_check(doc: ScenarioDoc) -> list[Issue]:
    """Every meter mode with a weight > 0 is one the receivers listen to (their
    ``radio_mode``, seed 003 §6.1), unless ``[meters] unheard_modes`` names it: a meter whose
    mode no receiver hears can never be heard, which a planner would read as a coverage
    hole. Values of the wrong kind are left to the model."""
    meters, receivers = doc.data.get("meters", {}), doc.data.get("receivers", {})
    modes = meters.get("modes", MetersModel().modes)
    radio_mode = receivers.get("radio_mode", ReceiversModel.model_fields["radio_mode"].default)
    if radio_mode not in RADIO_MODES or not isinstance(modes, dict):
        return []
    declared = set(meters.get("unheard_modes", []))
    deaf = [m for m, w in modes.items() if m in MODES and w > 0 and m not in declared]
    deaf = [m for m in deaf if m not in RADIO_MODES[radio_mode]]
    if not deaf:
        return []
    share = sum(modes[m] for m in deaf) / sum(modes.values())
    return [
        doc.issue(
            ("meters", "modes"),
            f"{', '.join(deaf)} meters ({100 * share:.3g} % of the meters) transmit in a mode "
            f"no receiver listens to (receivers.radio_mode = {radio_mode!r} hears "
            f"{', '.join(sorted(RADIO_MODES[radio_mode]))}): they can never be heard. Give "
            f"the receivers a radio_mode that hears them, drop the mode, or say the scenario "
            f"studies exactly that: [meters] unheard_modes = {json.dumps(deaf)}",
        )
    ]


def fragment_check(doc: ScenarioDoc) -> list[Issue]:
    """``[meters] fragment_size`` needs meters that can send AFL fragments: encrypted ones
    (``encrypted_fraction`` > 0) in ``security_mode = 7``, some in S1 or T1 (C1 meters carry an
    ELL and send whole telegrams), and the event engine (the kernel models one transmission
    per telegram). Values of the wrong kind are left to the model."""
    meters = doc.data.get("meters", {})
    size = meters.get("fragment_size")
    if size is None:
        return []
    need = []
    if meters.get("security_mode", 5) != 7:
        need.append(f"security_mode = 7 (got {meters.get('security_mode', 5)})")
    if not meters.get("encrypted_fraction", 0.0):
        need.append("encrypted_fraction > 0 (only encrypted meters use mode 7)")
    modes = meters.get("modes", MetersModel().modes)
    if isinstance(modes, dict) and not any(
        w > 0 for m, w in modes.items() if m in MODES and m not in ELL_MODES
    ):
        need.append("some S1 or T1 meters in modes (C1 meters carry an ELL, never fragments)")
    if doc.data.get("engine", "kernel") != "event":
        need.append('engine = "event" (the kernel sends one transmission per telegram)')
    if not need:
        return []
    return [
        doc.issue(
            ("meters", "fragment_size"),
            f"AFL fragments (fragment_size = {size}) need " + "; ".join(need),
        )
    ]


def sync_check(doc: ScenarioDoc) -> list[Issue]:
    """CAD auto-configuration (``sync.enabled``) needs the plugins of the event engine: the
    kernel runs the radio only."""
    props = doc.data.get("plugin", {}).get("properties", {})
    sync = str(props.get("sync.enabled", "false")).strip().lower() == "true"
    if sync and doc.data.get("engine", "kernel") != "event":
        return [
            doc.issue(
                ("plugin", "properties", "sync.enabled"),
                'auto-configuration runs in the Stream Plugins: it needs engine = "event" '
                "(the kernel runs the radio only)",
            )
        ]
    return []


def validate(doc: ScenarioDoc) -> StreamScenario:
    """Validate a ``stream`` scenario; :class:`ScenarioError` lists every problem at once,
    including a run over :data:`~simulator.scenario.MAX_METERS` /
    :data:`~simulator.scenario.MAX_EVENTS` (meters x telegrams) and meters in a mode no
    receiver hears (:func:`mode_check`)."""
    count = (("meters", "count"), MetersModel.model_fields["count"].default)
    interval = (("meters", "interval_s"), MetersModel.model_fields["interval_s"].default)
    return doc.validate(
        StreamScenario,
        checks=[
            budget_check(count, interval, 1.0),
            mode_check,
            fragment_check,
            sync_check,
            config_server_check,
        ],
    )
