"""The M-Bus master procedures as one I/O-free state machine (sans-I/O, h11 style).

* :mod:`.commands`: what the machine asks (Send, Listen, Wait, SetBaud, Note, Done) and what a
  driver answers (Clock, Heard);
* :mod:`.settings`: :class:`MasterSettings` (CMe3100 time and retry settings);
* :mod:`.machine`: :class:`MasterMachine` (link timing, SND_NKE, selection, set primary
  address, baud switch) and :class:`Procedure` (steps one procedure);
* :mod:`.readout`: reading one meter (retries, FCB, multi-telegram) -> :class:`Readout`;
* :mod:`.search`: primary scan and secondary search by digit descent.

Drivers: :class:`simulator.mbus.master.Master` (SimPy, world time) and
:class:`simulator.bridge.serial_master.SerialMaster` (blocking, a pyserial port).
"""

from simulator.mbus.procedures.commands import (
    Clock,
    Command,
    Done,
    Event,
    Heard,
    Listen,
    Note,
    Send,
    SetBaud,
    Wait,
)
from simulator.mbus.procedures.machine import MasterMachine, Proc, Procedure
from simulator.mbus.procedures.readout import Readout, target_str, telegram_of
from simulator.mbus.procedures.settings import AUTO_TELEGRAM_CAP, F_NIBBLE_MODES, MasterSettings

__all__ = [
    "AUTO_TELEGRAM_CAP",
    "F_NIBBLE_MODES",
    "Clock",
    "Command",
    "Done",
    "Event",
    "Heard",
    "Listen",
    "MasterMachine",
    "MasterSettings",
    "Note",
    "Proc",
    "Procedure",
    "Readout",
    "Send",
    "SetBaud",
    "Wait",
    "target_str",
    "telegram_of",
]
