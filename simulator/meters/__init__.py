"""Meter models as data: one TOML file per meter type, for wired slaves and wM-Bus meters alike.

* :mod:`.model` the file schema (pydantic), :mod:`.types` loading with file:line errors and
  :class:`~.types.MeterType` (records and profiles for one meter),
* :mod:`.profiles` value profiles (waves, counters, heat power, integrals), :mod:`.harmonic`
  their Fourier series, :mod:`.spec` a record's coding plus profile,
* :mod:`.golden` golden telegrams (build them from a file, decode them as ``decode --json``),
  :mod:`.from_telegram` a new meter file from a real telegram.

The shipped types are package data in ``simulator/meters/data`` (so they ship in the wheel).
"""

from simulator.meters.types import MeterType, load_folder, load_meter_file, meter_types

__all__ = ["MeterType", "load_folder", "load_meter_file", "meter_types"]
