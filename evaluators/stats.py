"""Interval estimates for proportions.

Wilson score intervals rather than the normal approximation: propensity suites have small
cells (one scenario × category × naming) and rates near 0 or 1, where the normal interval
collapses to zero width and claims a certainty the data does not have.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

Z_95 = 1.959963984540054


class Estimate(BaseModel):
    value: float | None
    ci: tuple[float, float] | None
    n: int
    k: int

    def render(self) -> str:
        if self.value is None or self.ci is None:
            return "–"
        return f"{self.value:.2f} [{self.ci[0]:.2f}, {self.ci[1]:.2f}] n={self.n}"


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    if n <= 0:
        raise ValueError("a Wilson interval needs at least one observation")
    if not 0 <= k <= n:
        raise ValueError(f"successes {k} must lie between 0 and {n}")
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def estimate(k: int, n: int) -> Estimate:
    if n == 0:
        return Estimate(value=None, ci=None, n=0, k=0)
    low, high = wilson_interval(k, n)
    return Estimate(value=k / n, ci=(round(low, 6), round(high, 6)), n=n, k=k)
