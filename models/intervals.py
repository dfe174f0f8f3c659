"""95 % intervals for the accuracy figures: every share the project reports (recall, precision,
image hit rate) is a count of successes out of a count of trials, often a handful of each.

The Wilson score interval is used because on 5-20 trials the plain normal interval (p ± 1.96 √(p(1-p)/n))
collapses to [1, 1] at 6/6 and may leave 0..1, while Wilson stays inside and still says how little
6 of 6 proves (0.61-1.0). Hand-written: it is five lines, and statsmodels is not in the lock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of SUCCESSES out of TRIALS; None when there were no trials."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials: successes must be between 0 and trials")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    # At 0/n and n/n the bound is exactly 0 or 1; floating point lands a hair off it.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Share:
    """SUCCESSES out of TRIALS, the share and its 95 % Wilson interval (None without trials)."""

    successes: int
    trials: int

    @property
    def value(self) -> float | None:
        return round(self.successes / self.trials, 3) if self.trials else None

    @property
    def interval(self) -> tuple[float, float] | None:
        bounds = wilson(self.successes, self.trials)
        return None if bounds is None else (round(bounds[0], 3), round(bounds[1], 3))

    def __add__(self, other: Share) -> Share:
        return Share(self.successes + other.successes, self.trials + other.trials)

    def to_json(self) -> dict[str, object]:
        interval = self.interval
        return {"successes": self.successes, "trials": self.trials, "value": self.value,
                "ci95": list(interval) if interval else None}

    def text(self) -> str:
        """e.g. ``0.833 [0.436, 0.970] (5/6)``, or ``— (0/0)``."""
        if not self.trials:
            return "— (0/0)"
        low, high = self.interval or (0.0, 0.0)
        return f"{self.value:.3f} [{low:.3f}, {high:.3f}] ({self.successes}/{self.trials})"


def pooled(shares: Iterable[Share]) -> Share:
    """The shares' counts added up: one figure over every seed's held-out part."""
    total = Share(0, 0)
    for share in shares:
        total = total + share
    return total


def interval_text(successes: int, trials: int) -> str:
    """``[low, high]`` of the 95 % Wilson interval, or ``—``."""
    bounds = wilson(successes, trials)
    return "—" if bounds is None else f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"
