"""Benchmarks of PAStools Jobs: `python -m bench` (the platform against the raw Temporal
SDK and Temporal visibility) and `python -m bench.datasets` (the dataset jobs against
plain single-process baselines). Results and the machine they ran on: bench/README.md."""
