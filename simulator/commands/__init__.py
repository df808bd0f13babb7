"""The ``meterbench`` verbs, one module each (see :mod:`simulator.cli`)."""
