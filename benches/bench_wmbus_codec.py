"""wM-Bus codec throughput: telegrams encoded + decoded per second.

Run: ``python3 -m pytest benches/bench_wmbus_codec.py --benchmark-only``. One op = one
telegram built (records encoded, encrypted where asked, block CRCs) and parsed back
(CRCs checked, decrypted, records decoded); ops/s is the figure to compare. The plain and
mode-5 cases differ only by AES-CBC and the 2F 2F check, the mode-7 case adds two CMAC key
derivations and the MAC; ``crc_only`` isolates the pure-Python CRC-16 on a 127-byte frame.
"""

from __future__ import annotations

import pytest

from simulator.mbus.records import DataRecord
from simulator.wmbus.frame import decode_frame, encode_frame
from simulator.wmbus.telegram import build_telegram, parse_telegram

KEY = bytes(range(16))
RECORDS = [
    DataRecord.from_value(0x06, 12_345_000),
    DataRecord.from_value(0x13, 4.242, data_field=0x0C),
    DataRecord.from_value(0x5B, 21, data_field=0x01),
]


@pytest.mark.parametrize("mode", [0, 5, 7])
def test_encode_decode_round_trip(benchmark, mode: int) -> None:
    counter = iter(range(10**9))

    def round_trip() -> int:
        raw = build_telegram(
            manufacturer="KAM",
            id=76348799,
            version=0x1B,
            device_type=0x16,
            records=RECORDS,
            access_no=next(counter) & 0xFF,
            security_mode=mode,
            key=KEY if mode else None,
        )
        return len(parse_telegram(raw, keys=KEY, fmt="A", crc=True).records)

    assert benchmark(round_trip) == 3


def test_crc_only(benchmark) -> None:
    payload = bytes(range(110))
    assert benchmark(lambda: decode_frame(encode_frame(payload, "A"), "A", crc=True))[1] == payload
