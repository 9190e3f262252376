"""PromQL for journey SLOs, built on the agent's metrics and nothing else.

An SLI is the share of bad runs: failed runs among finished ones (availability), or
runs slower than the threshold among successful ones (latency). Runs cut off by the
agent's shutdown (``outcome="aborted"``) count as neither. The SLO's ratios sum across
locations: the SLO is the experience of the journey wherever it is measured from. The
same ratios by location say which locations see it burn (a page needs K of them).

An agent is its scrape target (``job``, ``instance``); its location is learnt from the
journey series it exports, since ``up`` and ``journeyman_build_info`` carry none.
"""

from __future__ import annotations

from dataclasses import dataclass

from generators.rules_burn import prom_duration

__all__ = [
    "AGENT_LOCATION",
    "JOURNEY_LABELS",
    "SLI",
    "agent_down",
    "agent_location",
    "at_risk_rules",
    "bad_runs_at_least",
    "budget_remaining",
    "burn_above",
    "error_ratio",
    "failing_locations",
    "location_ratio_series",
    "locations",
    "locations_burning_at_least",
    "no_data",
    "number",
    "ratio_series",
    "sli",
]

JOURNEY_LABELS = "journey, business_process, persona"
AGENT = "job, instance"  # an agent is a scrape target
AGENT_LOCATION = "journeyman_agent:location:last_seen_timestamp"
_RUNS = "journey_runs_total"
_LAST_RUN = "journey_last_run_timestamp_seconds"
_LOOKBACK = "1d"  # a silent location, or a lost agent, is remembered this long


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


def location_ratio_series(sli: SLI, window: float) -> str:
    """The recorded error ratio of ``sli`` over ``window`` at each location."""
    name = f"journey_location:slo_errors:ratio_rate{prom_duration(window)}"
    return _selector(name, journey=sli.journey, slo=sli.slo)


def error_ratio(sli: SLI, window: float, *, by_location: bool = False) -> str:
    """Bad runs / runs over ``window``: all locations together, or each on its own."""
    w = prom_duration(window)
    by = f"{JOURNEY_LABELS}, location" if by_location else JOURNEY_LABELS
    return (
        f"sum by ({by}) (rate({sli.bad}[{w}]) or 0 * rate({sli.zero}[{w}]))\n"
        f"/\nsum by ({by}) (rate({sli.total}[{w}]))"
    )


def budget_remaining(sli: SLI, slo_window: float, budget: float) -> str:
    return f"1 - {ratio_series(sli, slo_window)} / {number(budget)}"


def burn_above(sli: SLI, window: float, budget: float, factor: float) -> str:
    return f"{ratio_series(sli, window)} / {number(budget)} > {number(factor)}"


def bad_runs_at_least(sli: SLI, window: float, count: int) -> str:
    return f"sum by (journey) (increase({sli.bad}[{prom_duration(window)}])) >= {count}"


def failing_locations(sli: SLI, window: float) -> str:
    """How many locations had a bad run in ``window`` (quoted in descriptions)."""
    bad = f"increase({sli.bad}[{prom_duration(window)}])"
    return f"count by (journey) (sum by (journey, location) ({bad}) > 0)"


def locations(journey: str) -> str:
    """How many locations report the journey."""
    return f"count by (journey) (group by (journey, location) ({_last_run(journey)}))"


def locations_burning_at_least(
    sli: SLI, long: float, short: float, budget: float, factor: float, count: int
) -> str:
    """At least ``count`` locations (or all those reporting, if fewer) burn faster than
    ``factor`` over both windows, each in its own runs: K of N, with K = min(K, N)."""
    burning = (
        f"{location_ratio_series(sli, long)} / {number(budget)} > {number(factor)}\n"
        f"and {location_ratio_series(sli, short)} / {number(budget)} > {number(factor)}"
    )
    return (
        f"count by (journey) (\n{burning}\n)\n"
        f">= on (journey) clamp_max({locations(sli.journey)}, {count})"
    )


def no_data(journey: str, silence: float) -> str:
    """A location has not reported a run for ``silence``, or no location ever did.

    A location's alert names the agent (``job``, ``instance``) that ran the journey last
    there, so that an agent-down alert for that agent can inhibit it; the newest of a
    location's series wins, so a journey that moved to another shard is not silent.
    """
    s = prom_duration(silence)
    last = f"max_over_time({_last_run(journey)}[{_LOOKBACK}])"
    newest = f"topk by ({JOURNEY_LABELS}, location) (1, {last})"
    return (
        f"time() - max by ({JOURNEY_LABELS}, location, {AGENT}) ({newest}) > {number(silence)}\n"
        f"or on (journey)\nabsent_over_time({_last_run(journey)}[{s}])"
    )


def agent_location() -> str:
    """Per agent and location, when it last exported journeys there (a recording rule:
    the agent-down alert looks a day back over agents, not over every journey)."""
    return f"max by ({AGENT}, location) (timestamp(journey_info))"


def agent_down() -> str:
    """A scrape target that was a Journeyman agent in the last day is down, labelled with
    the location it last reported journeys from (none if it never reported one)."""
    down = (
        f"up == 0 and on ({AGENT}) "
        f"group by ({AGENT}) (max_over_time(journeyman_build_info[{_LOOKBACK}]))"
    )
    where = f"topk by ({AGENT}) (1, max_over_time({AGENT_LOCATION}[{_LOOKBACK}]))"
    return (
        f"(\n{down}\n)\n* on ({AGENT}) group_left (location)\n"
        f"group by ({AGENT}, location) ({where})\n"
        f"or on ({AGENT})\n(\n{down}\n)"
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
