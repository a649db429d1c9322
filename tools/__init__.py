"""Maintenance tools of the template itself (baking, relocking, benchmarking)."""
