"""Wireless M-Bus (EN 13757-4) and OMS security: the codec.

Modules (one concept each):

* :mod:`.crc` CRC-16/EN-13757;
* :mod:`.frame` data link layer (L, C, M, A), frame formats A and B, block CRCs, the error family;
* :mod:`.layers` ELL (CI 8C..8F), AFL (CI 90), TPL headers (CI 7A/72/78);
* :mod:`.afl` AFL fragment reassembly; :mod:`.compact` compact frames (CI 79, format signature);
* :mod:`.security` OMS security modes 5 and 7, ELL AES-CTR;
* :mod:`.phy` 3-of-6, Manchester, NRZ, preamble/sync, time on air;
* :mod:`.keys` the CMe3100 encryption key file and key matching;
* :mod:`.telegram` a whole telegram: build, parse (decrypting), JSON;
* :mod:`.decode_cli` ``meterbench decode --wmbus``.

The radio world (channel, meters, receivers) lives in sibling modules of this package.
Sources: PROTOCOL.md §5, RADIO-NBIOT.md §6.3, CMe3100 manual (seed 002) §6.15.
"""

from __future__ import annotations

from simulator.wmbus.crc import crc16_en13757
from simulator.wmbus.frame import (
    ACC_DMD,
    ACC_NR,
    SND_IR,
    SND_NR,
    CodingError,
    CRCError,
    FrameError,
    KeyFileError,
    LayerError,
    LinkHeader,
    MacError,
    MissingKeyError,
    RecordsError,
    SecurityError,
    WMBusError,
    WrongKeyError,
    add_crcs,
    decode_frame,
    encode_frame,
    on_air_length,
    strip_crcs,
)
from simulator.wmbus.keys import KeyStore
from simulator.wmbus.phy import time_on_air
from simulator.wmbus.telegram import WMBusTelegram, build_telegram, parse_telegram, telegram_json

__all__ = [
    "ACC_DMD",
    "ACC_NR",
    "SND_IR",
    "SND_NR",
    "CodingError",
    "CRCError",
    "FrameError",
    "KeyFileError",
    "KeyStore",
    "LayerError",
    "LinkHeader",
    "MacError",
    "MissingKeyError",
    "RecordsError",
    "SecurityError",
    "WMBusError",
    "WMBusTelegram",
    "WrongKeyError",
    "add_crcs",
    "build_telegram",
    "crc16_en13757",
    "decode_frame",
    "encode_frame",
    "on_air_length",
    "parse_telegram",
    "strip_crcs",
    "telegram_json",
    "time_on_air",
]
