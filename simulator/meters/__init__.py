"""Meter models as data: one TOML file per meter type, for wired slaves and wM-Bus meters alike.

* :mod:`.model` the file schema (pydantic), :mod:`.types` loading with file:line errors and
  :class:`~.types.MeterType` (records and profiles for one meter),
* :mod:`.profiles` value profiles (waves, counters, heat power, integrals), :mod:`.harmonic`
  their Fourier series, :mod:`.wired` the wired templates by name;
  a record's coding plus profile is :class:`simulator.mbus.record_spec.RecordSpec`.

Golden telegrams (:mod:`simulator.commands.meter_golden`) and ``meterbench meter
from-telegram`` (:mod:`simulator.commands.meter_from_telegram`) need both codecs and both
meter models, so they live with the CLI: the package graph stays one-way
(``wmbus -> meters -> mbus``, never back).

The shipped types are package data in ``simulator/meters/data`` (so they ship in the wheel).
"""

from simulator.meters.types import MeterType, load_folder, load_meter_file, meter_types

__all__ = ["MeterType", "load_folder", "load_meter_file", "meter_types"]
