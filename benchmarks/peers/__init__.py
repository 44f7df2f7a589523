"""Peer implementations of the SPEC's logic, for side-by-side benchmarks."""
