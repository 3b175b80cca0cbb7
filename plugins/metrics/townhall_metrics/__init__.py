"""Townhall plugin townhall-metrics."""
