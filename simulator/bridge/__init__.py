"""The serial bridge: a physical (or emulated) M-Bus master talks to the simulated bus.

Modules: :mod:`~simulator.bridge.transports` (pyserial URLs), :mod:`~simulator.bridge.pty`
(pseudo-terminal pairs), :mod:`~simulator.bridge.reader` (reader thread),
:mod:`~simulator.bridge.framing` (frame grammar + inter-byte timing),
:mod:`~simulator.bridge.pacing` (bytes at modelled instants),
:mod:`~simulator.bridge.realtime` (the real-time driver with look-ahead),
:mod:`~simulator.bridge.bridge` (slave emulation), :mod:`~simulator.bridge.tcp_service`
(transparent M-Bus over TCP), :mod:`~simulator.bridge.recorder` (master mode). See
docs/bridge.md.
"""
