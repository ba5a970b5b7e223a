"""Spike statistics used by the trainer and the app (pure functions, time first)."""
from .synchrony import chi_synchrony, firing_rate  # noqa: F401
