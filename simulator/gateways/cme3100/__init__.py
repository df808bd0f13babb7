"""Elvaco CMe3100 gateway models (seed 002/004: the gateway; seed 003: the Stream Plugin)."""
