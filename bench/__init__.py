"""Benchmarks a person runs by hand (`python -m bench.<name>`); not part of `make test`."""
