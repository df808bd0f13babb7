"""The wired building (scenario ``kind = "mbus"``): a wired M-Bus segment of meters read by a
gateway's master, built from the codec and bus model in :mod:`simulator.mbus` and the meter
types in :mod:`simulator.meters`. The device kind is :data:`simulator.building.runner.DEVICE`."""
