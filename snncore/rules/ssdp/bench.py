"""Benchmark cases: the generic Trainer-step overhead case, part of bench --quick."""
from ...benchmarks import BenchCase

CASES = [BenchCase(quick=True)]
