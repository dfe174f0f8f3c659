"""Fault scenarios on real parts: `sharpeyes chaos` (docs/reliability.md)."""
