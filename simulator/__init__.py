"""meterbench: a hardware-in-the-loop bench and discrete-event simulator for M-Bus gateways.

Subpackages follow ../shared/DESIGN.md: ``core`` (world, clocks, random streams, trace),
``mbus`` (EN 13757-2/-3 wired), ``wmbus`` (EN 13757-4 + OMS), ``nbiot`` (CMi6140 module and
network), ``gateways`` (device models), ``bridge`` (serial bridge), ``sinks`` (real receivers),
``report`` (trace, summaries, plots) and ``commands`` (the ``meterbench`` verbs).
"""

__version__ = "0.1.0"
