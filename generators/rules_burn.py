"""The arithmetic of multi-window, multi-burn-rate alerts, made explicit.

The Google SRE workbook pages when the error budget burns 14.4x too fast over 1h (and
5m), or 6x over 6h (and 30m); it opens a ticket at 3x over 1d (and 2h) or 1x over 3d
(and 6h). Those factors are for a 30-day SLO window: each one is "this share of the
budget gone within the long window", so for another SLO window they are rescaled to
consume the same share.

Synthetic journeys are sparse: a journey that runs once a minute has 5 runs in 5
minutes and 60 in an hour, so at 99.9% a single failed run is already a 16.7x burn
over the hour. :func:`arithmetic` says, per alert, how many runs each window holds and
the fewest failed runs that can fire it, so nobody is surprised by a one-failure page.
A page also needs K locations each burning on its own (K of N), which multiplies the
fewest bad runs of one location by K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "BURN_ALERTS",
    "MIN_RUNS_PER_WINDOW",
    "RECORDED_WINDOWS",
    "AlertArithmetic",
    "BurnAlert",
    "arithmetic",
    "effective_window",
    "prom_duration",
]

_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86400.0
_WORKBOOK_WINDOW = 30 * _DAY  # the SLO window the workbook's factors are written for

RECORDED_WINDOWS = (5 * _MINUTE, 30 * _MINUTE, _HOUR, 2 * _HOUR, 6 * _HOUR, _DAY, 3 * _DAY)
"""The windows the error ratios are recorded over (plus each journey's SLO window)."""

MIN_RUNS_PER_WINDOW = 2
"""A window must hold this many runs to give a ratio; sparser journeys widen it."""


@dataclass(frozen=True, slots=True)
class BurnAlert:
    """One pair of windows of the recipe: fire when both burn faster than the factor."""

    severity: str  # page | ticket
    long: float  # seconds
    short: float  # seconds
    budget_share: float  # share of the budget the factor burns within the long window

    def factor(self, slo_window: float) -> float:
        """Burn-rate threshold for an SLO window (14.4 for 1h at 30d, 13.44 at 28d)."""
        return round(self.budget_share * slo_window / self.long, 6)


BURN_ALERTS = (
    BurnAlert("page", _HOUR, 5 * _MINUTE, 0.02),
    BurnAlert("page", 6 * _HOUR, 30 * _MINUTE, 0.05),
    BurnAlert("ticket", _DAY, 2 * _HOUR, 0.10),
    BurnAlert("ticket", 3 * _DAY, 6 * _HOUR, 0.10),
)


@dataclass(frozen=True, slots=True)
class AlertArithmetic:
    """What one burn-rate pair means for one journey SLO, in runs."""

    severity: str
    long: float  # the windows actually used, after widening for sparse journeys
    short: float
    factor: float
    ratio_threshold: float  # factor x error budget: the bad-run share that fires
    runs_long: float  # expected runs in each window, all locations together
    runs_short: float
    fewest_bad_runs: int | None  # None: this pair can never fire

    def explain(self) -> str:
        windows = f"{prom_duration(self.long)}&{prom_duration(self.short)}"
        head = (
            f"{self.severity} {windows} at {self.factor:g}x "
            f"(bad share > {self.ratio_threshold:.4g}; {self.runs_long:g} and "
            f"{self.runs_short:g} runs)"
        )
        if self.fewest_bad_runs is None:
            return f"{head}: can never fire"
        return f"{head}: fires from {self.fewest_bad_runs} bad run(s)"


def effective_window(window: float, every: float) -> float:
    """The smallest recorded window at least ``window`` that holds enough runs."""
    needed = max(window, MIN_RUNS_PER_WINDOW * every)
    fitting = [w for w in RECORDED_WINDOWS if w >= needed]
    return fitting[0] if fitting else RECORDED_WINDOWS[-1]


def arithmetic(
    alert: BurnAlert,
    *,
    budget: float,
    slo_window: float,
    every: float,
    locations: int,
    min_bad_runs: int,
    failing_locations: int = 1,
) -> AlertArithmetic:
    """Runs per window and the fewest bad runs that fire ``alert`` for one SLO.

    A pair fires when the bad share exceeds factor x budget in both windows; the bad
    runs of the short window also count in the long one, so the fewest bad runs is
    the larger of the two windows' minimums (and of the guard, ``min_bad_runs``). With
    ``failing_locations`` K > 1, K locations must each exceed it in their own runs.
    """
    factor = alert.factor(slo_window)
    threshold = factor * budget
    long = effective_window(alert.long, every)
    short = effective_window(alert.short, every)
    runs_long = long / every * locations
    runs_short = short / every * locations
    one_location = max(
        _fewest_above(threshold, long / every), _fewest_above(threshold, short / every)
    )
    fewest: int | None = max(
        _fewest_above(threshold, runs_long),
        _fewest_above(threshold, runs_short),
        failing_locations * one_location,
        min_bad_runs,
    )
    if fewest is not None and fewest > math.floor(runs_long + 1e-9):
        fewest = None  # more bad runs than the window holds: a factor x budget >= 100%
    return AlertArithmetic(
        severity=alert.severity,
        long=long,
        short=short,
        factor=factor,
        ratio_threshold=threshold,
        runs_long=round(runs_long, 3),
        runs_short=round(runs_short, 3),
        fewest_bad_runs=fewest,
    )


def _fewest_above(threshold: float, runs: float) -> int:
    """Fewest bad runs whose share of ``runs`` is strictly above ``threshold``."""
    return math.floor(threshold * runs + 1e-9) + 1


def prom_duration(seconds: float) -> str:
    """A Prometheus duration in the largest whole unit: 28d, 6h, 90s."""
    whole = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"
