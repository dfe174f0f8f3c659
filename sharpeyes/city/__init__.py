"""The city layout run for real on one machine, with faults: `sharpeyes city` (docs/reliability.md)."""
