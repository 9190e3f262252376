"""PromQL for journey SLOs, built on the agent's metrics and nothing else.

An SLI is the share of bad runs: failed runs among finished ones (availability), or
runs slower than the threshold among successful ones (latency). Runs cut off by the
agent's shutdown (``outcome="aborted"``) count as neither. Every ratio sums across
locations: the SLO is the experience of the journey wherever it is measured from.
"""

from __future__ import annotations

from dataclasses import dataclass

from generators.rules_burn import prom_duration

__all__ = [
    "JOURNEY_LABELS",
    "SLI",
    "at_risk_rules",
    "bad_runs_at_least",
    "budget_remaining",
    "burn_above",
    "error_ratio",
    "failing_locations",
    "failing_locations_at_least",
    "locations",
    "no_data",
    "number",
    "ratio_series",
    "sli",
]

JOURNEY_LABELS = "journey, business_process, persona"
_RUNS = "journey_runs_total"
_LAST_RUN = "journey_last_run_timestamp_seconds"
_NO_DATA_LOOKBACK = "1d"  # a silent location is remembered this long


@dataclass(frozen=True, slots=True)
class SLI:
    """The series of one journey SLO: its bad runs and all runs it is a share of."""

    journey: str
    slo: str  # availability | latency
    bad: str
    total: str
    zero: str  # exists whenever runs do: makes the bad rate 0 before the first bad run


def sli(journey: str, slo: str) -> SLI:
    success = _selector(_RUNS, journey=journey, outcome="success")
    if slo == "availability":
        failure = _selector(_RUNS, journey=journey, outcome="failure")
        finished = _selector(_RUNS, journey=journey, outcome=("=~", "success|failure"))
        return SLI(journey, slo, bad=failure, total=finished, zero=success)
    slow = _selector("journey_slow_runs_total", journey=journey)
    return SLI(journey, slo, bad=slow, total=success, zero=success)


def number(value: float) -> str:
    """A float as PromQL writes it, without binary noise (1 - 0.995 -> 0.005)."""
    return f"{value:.12g}"


def ratio_series(sli: SLI, window: float) -> str:
    """The recorded error ratio of ``sli`` over ``window``, as a selector."""
    name = f"journey:slo_errors:ratio_rate{prom_duration(window)}"
    return _selector(name, journey=sli.journey, slo=sli.slo)


def error_ratio(sli: SLI, window: float) -> str:
    w = prom_duration(window)
    return (
        f"sum by ({JOURNEY_LABELS}) (rate({sli.bad}[{w}]) or 0 * rate({sli.zero}[{w}]))\n"
        f"/\nsum by ({JOURNEY_LABELS}) (rate({sli.total}[{w}]))"
    )


def budget_remaining(sli: SLI, slo_window: float, budget: float) -> str:
    return f"1 - {ratio_series(sli, slo_window)} / {number(budget)}"


def burn_above(sli: SLI, window: float, budget: float, factor: float) -> str:
    return f"{ratio_series(sli, window)} / {number(budget)} > {number(factor)}"


def bad_runs_at_least(sli: SLI, window: float, count: int) -> str:
    return f"sum by (journey) (increase({sli.bad}[{prom_duration(window)}])) >= {count}"


def failing_locations(sli: SLI, window: float) -> str:
    """How many locations had a bad run in ``window`` (for templates and guards)."""
    bad = f"increase({sli.bad}[{prom_duration(window)}])"
    return f"count by (journey) (sum by (journey, location) ({bad}) > 0)"


def failing_locations_at_least(sli: SLI, window: float, count: int) -> str:
    return f"{failing_locations(sli, window)} >= {count}"


def locations(journey: str) -> str:
    """How many locations report the journey."""
    return f"count by (journey) (group by (journey, location) ({_last_run(journey)}))"


def no_data(journey: str, silence: float) -> str:
    """A location has not reported a run for ``silence``, or no location ever did."""
    s = prom_duration(silence)
    last = f"max_over_time({_last_run(journey)}[{_NO_DATA_LOOKBACK}])"
    return (
        f"time() - max by ({JOURNEY_LABELS}, location) ({last}) > {number(silence)}\n"
        f"or on (journey)\nabsent_over_time({_last_run(journey)}[{s}])"
    )


def at_risk_rules() -> list[dict[str, str]]:
    """Per business process: the failed share of its runs over 1h, and what that puts at
    risk at this hour's expected volume (and value, where the catalog gives one)."""
    failure = f'{_RUNS}{{outcome="failure"}}'
    success = f'{_RUNS}{{outcome="success"}}'
    finished = f'{_RUNS}{{outcome=~"success|failure"}}'
    ratio = "business_process:journey_errors:ratio_rate1h"
    at_risk = "business_process:transactions_at_risk:rate1h"
    return [
        {
            "record": ratio,
            "expr": (
                f"sum by (business_process) (rate({failure}[1h]) or 0 * rate({success}[1h]))\n"
                f"/\nsum by (business_process) (rate({finished}[1h]))"
            ),
        },
        {
            "record": at_risk,
            "expr": (
                f"{ratio}\n* on (business_process)\nmax by (business_process) "
                "(business_process_expected_transactions_per_hour)"
            ),
        },
        {
            "record": "business_process:value_at_risk:rate1h",
            "expr": (
                f"{at_risk}\n* on (business_process) group_left (currency)\n"
                "max by (business_process, currency) (business_process_value_per_transaction)"
            ),
        },
    ]


def _last_run(journey: str) -> str:
    return _selector(_LAST_RUN, journey=journey)


def _selector(name: str, **matchers: str | tuple[str, str]) -> str:
    parts = []
    for label, matcher in matchers.items():
        op, value = matcher if isinstance(matcher, tuple) else ("=", matcher)
        parts.append(f'{label}{op}"{value}"')
    return f"{name}{{{','.join(parts)}}}"
