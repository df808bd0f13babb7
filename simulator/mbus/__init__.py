"""Wired M-Bus (EN 13757-2 link layer, EN 13757-3 application layer).

The codec lives in :mod:`.errors`, :mod:`.frames`, :mod:`.address`, :mod:`.records`,
:mod:`.vif`, :mod:`.datatypes` and :mod:`.telegram`; the bus model (slaves, master, wire)
lives next to it. This package only re-exports the codec's most used names.
"""

from simulator.mbus.address import (
    SecondaryAddress,
    SecondaryMask,
    manufacturer_code,
    manufacturer_letters,
)
from simulator.mbus.errors import (
    AddressError,
    ApplicationError,
    FrameError,
    MBusError,
    RecordError,
)
from simulator.mbus.frames import (
    ControlFrame,
    Frame,
    LongFrame,
    ShortFrame,
    SingleChar,
    describe,
    frame_length,
    parse_frame,
)
from simulator.mbus.records import DataRecord, decode_records, encode_records
from simulator.mbus.telegram import (
    MEDIUM_NAMES,
    Header,
    Telegram,
    decode_telegram,
    encode_telegram,
    telegram_json,
)

__all__ = [
    "MEDIUM_NAMES",
    "AddressError",
    "ApplicationError",
    "ControlFrame",
    "DataRecord",
    "Frame",
    "Header",
    "FrameError",
    "LongFrame",
    "MBusError",
    "RecordError",
    "SecondaryAddress",
    "SecondaryMask",
    "ShortFrame",
    "SingleChar",
    "Telegram",
    "decode_records",
    "decode_telegram",
    "describe",
    "encode_records",
    "encode_telegram",
    "frame_length",
    "manufacturer_code",
    "manufacturer_letters",
    "parse_frame",
    "telegram_json",
]
