"""Wired M-Bus codec throughput: frames decoded and encoded per second.

Run: ``python3 -m pytest benches/bench_codec.py --benchmark-only``. One benchmark round goes
over the whole set of frames (the 76 real libmbus frames in ../shared/corpus, or the golden
telegrams in fixtures/telegrams when the corpus is absent), so frames per second =
``len(frames) / mean``; each test prints that figure and stores it in ``extra_info``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.mbus.errors import MBusError
from simulator.mbus.frames import parse_frame
from simulator.mbus.records import DataRecord
from simulator.mbus.telegram import Header, Telegram, decode_telegram, encode_telegram

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "libmbus-frames"
GOLDEN = ROOT / "fixtures" / "telegrams"


def _frames() -> tuple[str, list[bytes]]:
    folder = CORPUS if CORPUS.is_dir() else GOLDEN
    frames = []
    for path in sorted(folder.glob("*.hex")):
        raw = bytes.fromhex(path.read_text().replace("\n", " "))
        try:
            decode_telegram(raw)
        except MBusError:
            continue  # the error goldens
        if raw[:1] == b"\x68":
            frames.append(raw)
    if not frames:
        pytest.skip("no frames to benchmark")
    return folder.name, frames


def _report(benchmark, n: int, what: str) -> None:
    mean = benchmark.stats.stats.mean
    benchmark.extra_info[f"{what}_per_second"] = round(n / mean)
    print(f"\n{what}: {n / mean:,.0f} per second ({n} per round, mean {mean * 1e3:.3f} ms)")


def test_decode_frames_per_second(benchmark):
    source, frames = _frames()
    benchmark.extra_info["source"] = source

    def decode_all() -> int:
        return sum(len(decode_telegram(raw).records) for raw in frames)

    assert benchmark(decode_all) > 0
    _report(benchmark, len(frames), "frames_decoded")


def test_link_layer_parse_per_second(benchmark):
    _, frames = _frames()
    benchmark(lambda: [parse_frame(raw) for raw in frames])
    _report(benchmark, len(frames), "frames_parsed")


def test_encode_frames_per_second(benchmark):
    _, frames = _frames()
    telegrams = [decode_telegram(raw) for raw in frames]

    def encode_all() -> int:
        return sum(len(encode_telegram(t).to_bytes()) for t in telegrams)

    assert benchmark(encode_all) == sum(len(raw) for raw in frames)
    _report(benchmark, len(telegrams), "frames_encoded")


def test_build_from_values_per_second(benchmark):
    """What a simulated slave does per readout: records from values, then the frame."""
    from simulator.mbus.address import SecondaryAddress

    addr = SecondaryAddress(12345678, "ELV", 1, 4)

    def build() -> bytes:
        records = [
            DataRecord.from_value(0x06, 12_345_000),
            DataRecord.from_value(0x13, 654.321),
            DataRecord.from_value(0x5B, 71, data_field=0x2),
            DataRecord.from_value(0x5F, 43, data_field=0x2),
        ]
        return encode_telegram(Telegram(Header(0x72, 1, 0, 0, addr), records, a=1)).to_bytes()

    assert len(benchmark(build)) > 30
    _report(benchmark, 1, "telegrams_built")
