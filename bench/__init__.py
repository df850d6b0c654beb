"""Benchmarks: each part measures through the real stack and prints figures (never asserts)."""
