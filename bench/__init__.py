"""The national benchmark: `make bench` (python -m bench.run); see bench/RESULTS.md."""
