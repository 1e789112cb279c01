"""Benchmarks for the schedules package: `python -m benchmarks --help`."""
