"""Benchmark scenarios replayed through the real path (HTTP, database, scheduler, simulated execution)."""
