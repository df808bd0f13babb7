"""The master's time and retry settings: one model, :class:`simulator.mbus.settings.MasterSettings`
(seed 002 §6.25.2 Table 7, defaults from seed 004 §6.25.2/§6.25.3; docs/settings.md), named
here for the procedures that read it."""

from simulator.mbus.settings import AUTO_TELEGRAM_CAP, F_NIBBLE_MODES, MasterSettings

__all__ = ["AUTO_TELEGRAM_CAP", "F_NIBBLE_MODES", "MasterSettings"]
