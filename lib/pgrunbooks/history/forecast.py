"""Linear trends with an honest uncertainty band, and "days until the disk is full".

An ordinary least-squares line through (day, bytes), and the **prediction interval** of a
future observation (not the narrower confidence interval of the mean): the band widens with the
residual noise, with fewer points and the further the forecast reaches past the data. The band's
crossings of the disk size give the earliest and latest plausible day the disk fills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

#: the forecast looks this far ahead for the band to reach the disk size, at most (ten years)
MAX_HORIZON_DAYS = 3650


@dataclass(frozen=True)
class LinearFit:
    """y = intercept + slope * x, fitted on ``n`` points."""

    slope: float
    intercept: float
    n: int
    residual_se: float  # standard error of the residuals (n - 2 degrees of freedom)
    x_mean: float
    sxx: float  # sum of squared deviations of x
    x_last: float

    def value(self, x: float) -> float:
        return self.intercept + self.slope * x

    def interval(self, x: float, level: float = 0.95) -> tuple[float, float]:
        """The prediction interval of one observation at ``x``."""
        spread = self.residual_se * math.sqrt(1 + 1 / self.n + (x - self.x_mean) ** 2 / self.sxx)
        half = t_quantile(0.5 + level / 2, self.n - 2) * spread
        return self.value(x) - half, self.value(x) + half


def fit_linear(xs: Sequence[float], ys: Sequence[float]) -> LinearFit:
    """Least squares through at least three points with at least two distinct x."""
    n = len(xs)
    if n != len(ys) or n < 3:
        raise ValueError(f"a linear fit needs at least 3 points, got {n}")
    x_mean, y_mean = sum(xs) / n, sum(ys) / n
    sxx = sum((x - x_mean) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("a linear fit needs at least two distinct x values")
    slope = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys)) / sxx
    intercept = y_mean - slope * x_mean
    sse = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
    return LinearFit(slope, intercept, n, math.sqrt(sse / (n - 2)), x_mean, sxx, max(xs))


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (Cornish-Fisher expansion of the normal one; within 1 % for df ≥ 5)."""
    z = NormalDist().inv_cdf(p)
    if df <= 0:
        return math.inf
    v = float(df)
    return (z + (z ** 3 + z) / (4 * v) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * v ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * v ** 3))


@dataclass(frozen=True)
class DiskForecast:
    """When the fitted trend reaches ``disk_bytes``, counted from the last observation."""

    disk_bytes: float
    used_bytes: float  # the fitted value at the last observation
    growth_per_day: float
    days: float | None  # None: not growing, or beyond MAX_HORIZON_DAYS
    earliest: float | None  # the band's upper edge reaches the disk (None: not within the horizon)
    latest: float | None  # the band's lower edge reaches the disk (None: not within the horizon)
    level: float

    def describe(self) -> str:
        if self.days is None:
            return (f"not filling within {MAX_HORIZON_DAYS} days at the current trend "
                    f"({self.growth_per_day / 1e6:+.2f} MB/day)")
        low = f"{self.earliest:.0f}" if self.earliest is not None else "?"
        high = f"{self.latest:.0f}" if self.latest is not None else f"more than {MAX_HORIZON_DAYS}"
        return (f"full in about {self.days:.0f} days ({low} to {high} days, {self.level:.0%} prediction "
                f"interval) at {self.growth_per_day / 1e6:+.2f} MB/day")


def days_until_full(fit: LinearFit, disk_bytes: float, *, level: float = 0.95) -> DiskForecast:
    """Days from the last observation until the trend (and its band's edges) reach ``disk_bytes``."""
    now = fit.x_last
    used = fit.value(now)
    days = None
    if fit.slope > 0:
        crossing = (disk_bytes - fit.intercept) / fit.slope - now
        days = max(0.0, crossing) if crossing <= MAX_HORIZON_DAYS else None
    earliest = _first_day(lambda d: fit.interval(now + d, level)[1] >= disk_bytes)
    latest = _first_day(lambda d: fit.interval(now + d, level)[0] >= disk_bytes)
    return DiskForecast(disk_bytes, used, fit.slope, days, earliest, latest, level)


def _first_day(reached) -> float | None:
    """The first whole day in [0, MAX_HORIZON_DAYS] where ``reached(day)`` holds (bands are monotone
    far enough out; a scan of whole days is exact enough for a disk forecast)."""
    for day in range(0, MAX_HORIZON_DAYS + 1):
        if reached(day):
            return float(day)
    return None
