"""Benchmarks: ``python -m bench`` runs them all in one go and prints one table (see docs/performance.md)."""
