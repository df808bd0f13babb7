"""Conformance suites shipped with meterbench (run with ``meterbench suite --rig RIG``)."""
