"""Device models of metering gateways.

- :mod:`simulator.gateways.cme3100`: the Elvaco CMe3100 M-Bus metering gateway; its Stream
  Plugin (seed 003: wM-Bus receivers, filters, last telegram per meter per push, HTTP push,
  analyzer, CAD auto-configuration, wireless-in-wired container).
"""
