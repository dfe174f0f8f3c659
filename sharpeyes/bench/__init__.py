"""Benchmarks: `sharpeyes bench edge` measures the edge against a floor and a peer in one run."""
