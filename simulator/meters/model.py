"""The schema of a meter type file (``simulator/meters/data/*.toml``), as pydantic models.

One file is one meter type. Shape (every key optional unless marked)::

    name = "heat"                       # required; the name scenarios use (template = "heat")
    description = "heat meter, volume at return (outlet)"
    manufacturer = "ELV"                # three letters (EN 13757-3 manufacturer ID)
    version = 1
    medium = 0x04                       # required; EN 13757-3 medium / device type (§4.6)

    [wired]                             # can be a wired slave (template); records: default all
    records = ["energy", "volume"]
    [wireless]                          # can be a wM-Bus meter (profile); records: default all
    mode = "T1"                         # S1, T1, C1A, C1B
    records = ["energy"]
    [history]                           # multi-telegram: monthly values in telegrams 1..n-1
    records = ["energy"]; per_telegram = 4; interval_s = 2592000

    [[records]]                         # one data record (at least one)
    name = "energy"                     # required; unique; scenario overrides use it
    data_field = 0x4                    # required; DIF low nibble (PROTOCOL.md §4.4)
    vif = 0x06                          # required; VIF byte, vife = [..] for extensions
    storage = 0; tariff = 0; subunit = 0; function = "instantaneous"
    resolution = 1000                   # default: 10^exponent of the VIF, in the family unit
    profile = { kind = "integral", of = "power", start = { uniform = [1e6, 5e7] } }

    [[golden]]                          # at least one: a telegram and its decode
    link = "wired"                      # or "wireless"
    seed = 1; t_s = 3600.0; id = 12345678; primary = 0; mode = "T1"; access_no = 0
    rebuild = true                      # the file's model sends exactly these bytes
    telegram = "68 ... 16"
    expected = '''{ ... meterbench decode --json ... }'''

Profile kinds: ``constant`` (value), ``counter`` (start, rate_per_h, swing), ``wave`` (mean,
amplitude, period_s, phase, noise), ``clock``, ``difference`` (of = [a, b]), ``heat_power``
(flow, temperature_difference, rho_kg_m3, c_j_kgk), ``integral`` (of, start, per_s); see
:mod:`simulator.meters.profiles`. A number parameter may be ``{ uniform = [lo, hi] }``: each
meter draws it from its own random stream, record by record in file order and within a profile
in the order listed here, so adding a meter never changes another meter's values.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from simulator.scenario import StrictModel

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class Uniform(StrictModel):
    """A parameter drawn uniformly in ``[lo, hi]`` from the meter's random stream."""

    uniform: tuple[float, float]

    @model_validator(mode="after")
    def _order(self):
        if self.uniform[0] > self.uniform[1]:
            raise ValueError(f"uniform = [lo, hi] needs lo <= hi, got {list(self.uniform)}")
        return self


Param = int | float | Uniform


class HexValue(StrictModel):
    """Raw bytes (manufacturer-specific records, LVAR bytes) as hex."""

    hex: str = Field(pattern=r"^([0-9A-Fa-f]{2})*$")


class ConstantProfile(StrictModel):
    kind: Literal["constant"]
    value: int | float | str | datetime | date | Uniform | HexValue | None = None


class CounterProfile(StrictModel):
    kind: Literal["counter"]
    start: Param
    rate_per_h: Param
    swing: Param = Field(0.6)


class WaveProfile(StrictModel):
    kind: Literal["wave"]
    mean: Param
    amplitude: Param = 0.0
    period_s: float = Field(86400.0, gt=0)
    phase: Param = 0.0
    noise: Param = 0.0


class ClockProfile(StrictModel):
    kind: Literal["clock"]


class DifferenceProfile(StrictModel):
    kind: Literal["difference"]
    of: tuple[Name, Name]


class HeatPowerProfile(StrictModel):
    kind: Literal["heat_power"]
    flow: Name
    temperature_difference: Name
    rho_kg_m3: float = Field(988.0, gt=0)
    c_j_kgk: float = Field(4181.0, gt=0)


class IntegralProfile(StrictModel):
    kind: Literal["integral"]
    of: Name
    start: Param = 0.0
    per_s: float = Field(3600.0, gt=0)


ProfileModel = Annotated[
    ConstantProfile
    | CounterProfile
    | WaveProfile
    | ClockProfile
    | DifferenceProfile
    | HeatPowerProfile
    | IntegralProfile,
    Field(discriminator="kind"),
]

#: Profile fields that name other records (checked to exist, no cycles).
REFERENCES = {
    "difference": ("of",),
    "heat_power": ("flow", "temperature_difference"),
    "integral": ("of",),
}


class RecordModel(StrictModel):
    name: Name
    data_field: int = Field(ge=0, le=0xE)
    vif: int = Field(ge=0, le=0xFF)
    vife: list[Annotated[int, Field(ge=0, le=0xFF)]] = Field(default_factory=list)
    function: Literal["instantaneous", "maximum", "minimum", "error"] = "instantaneous"
    storage: int = Field(0, ge=0)
    tariff: int = Field(0, ge=0)
    subunit: int = Field(0, ge=0)
    resolution: float | None = Field(None, gt=0)
    description: str = ""
    profile: ProfileModel


class WiredModel(StrictModel):
    records: list[Name] | None = None


class WirelessModel(StrictModel):
    mode: Literal["S1", "T1", "C1A", "C1B"] = "T1"
    records: list[Name] | None = None


class HistoryModel(StrictModel):
    records: list[Name]
    per_telegram: int = Field(ge=0, le=100)
    interval_s: float = Field(30 * 86400.0, gt=0)


class GoldenModel(StrictModel):
    link: Literal["wired", "wireless"] = "wired"
    source: str = ""
    seed: int = 1
    t_s: float = Field(0.0, ge=0)
    id: int = Field(12345678, ge=0, le=99_999_999)
    primary: int = Field(0, ge=0, le=250)
    mode: Literal["S1", "T1", "C1A", "C1B"] = "T1"
    access_no: int = Field(0, ge=0, le=255)
    rebuild: bool = True
    telegram: str = Field(pattern=r"^[0-9A-Fa-f\s]+$")
    expected: str


class MeterFile(StrictModel):
    name: Name
    description: str = ""
    manufacturer: str = Field("ELV", pattern=r"^[A-Z]{3}$")
    version: int = Field(1, ge=0, le=255)
    medium: int = Field(ge=0, le=0xFF)
    wired: WiredModel | None = None
    wireless: WirelessModel | None = None
    history: HistoryModel | None = None
    records: list[RecordModel] = Field(min_length=1)
    golden: list[GoldenModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _identity(self):
        if self.wired is None and self.wireless is None:
            raise ValueError("a meter type needs a [wired] or a [wireless] table (or both)")
        return self
