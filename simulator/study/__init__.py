"""Studies: parameter sweeps over a scenario, run as Dask tasks, and their statistics.

- :mod:`.spec`: the sweep file (TOML), validated in full before anything runs, expanded into
  runs (a point = one set of parameter values; a run = a point with one seed);
- :mod:`.paths`: dotted paths into the scenario TOML;
- :mod:`.results`: the results table (CSV), keyed by a hash of each run's scenario and seed;
- :mod:`.execute`: the runs as tasks on Dask distributed (a LocalCluster or a scheduler);
- :mod:`.stats`: mean and Student t confidence interval over seeds;
- :mod:`.outputs`: the study table (CSV + markdown) and plots per figure and parameter.

``meterbench sweep SPEC`` (:mod:`simulator.commands.sweep`) ties them together; docs/sweeps.md.
"""
