"""Runs as processes: starting a training run as its own process (launch), and the queue that starts
queued runs one after another (queue). Sweeps belong here or beside it.

A run's own writer, the sink the Trainer and own-loop rules report through, is runs.sink.
"""
