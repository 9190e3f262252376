"""Benchmarks: each runnable alone as ``python -m bench.NAME``; ``bench/all.py`` runs them all."""
