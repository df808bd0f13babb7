"""`meterbench serve` tells the master which meters it offers (addresses and baud rates)."""

from __future__ import annotations

from pathlib import Path

from simulator.bridge.serve import realtime_segment
from simulator.commands.serve import slave_listing

SMALL = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios" / "mbus-small.toml"


def test_listing_names_every_slave_with_its_addresses_and_bauds():
    seg = realtime_segment(SMALL)
    lines = slave_listing(seg.slaves).splitlines()[1:]
    assert len(lines) == len(seg.slaves) >= 2
    for slave, line in zip(seg.slaves, lines, strict=True):
        fields = line.split()
        assert fields[0] == str(slave.address) and len(fields[0]) == 16
        assert int(fields[1]) == slave.primary
        assert fields[2].split("/") == [str(b) for b in slave.bauds]
