"""Sweeps: many ordinary runs over hyperparameters and seeds, run by Ray Tune (issue #15).

spec.py parses and checks the grid before anything starts; engine.py runs the trials (each a run in
the RunStore) and keeps the sweep's state under <runs>/sweeps/<sweep_id>/; the commands `sweep` / `sweeps` are snncore/cli/sweep.py.
"""
from .spec import SweepError, SweepSpec, parse_spec  # noqa: F401
