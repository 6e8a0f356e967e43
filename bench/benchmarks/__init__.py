"""Benchmark scripts: each prints figures (run them with `make bench-*`); none is a test."""
