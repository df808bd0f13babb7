"""Test support: the meterbench pytest plugin, the bench, trace observations, the suites."""
