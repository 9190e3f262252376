"""What a step kind declares, once: its model, its run side, and how its measurements
are exported.

A :class:`StepKind` ties the three together. Its model (a :class:`StepBase` subclass) is
the language side: parsing, validation, schema. Its run side (``prepare``, ``run`` and
``finish``) is named by import path and imported only when a run needs it, so that
validating a file or printing the schema never imports httpx or Playwright. Its
:class:`Measure` list says how exporters turn the kind's measurements into metric
families; exporters read that list and never branch on the kind's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from agent.language.fields import Duration, StrictModel

__all__ = ["CERT_EXPIRY", "Aggregate", "Measure", "StepBase", "StepKind", "Unit"]


class StepBase(StrictModel):
    """Fields every step has, whatever its kind."""

    kind_name: ClassVar[str]  # the step's kind key in YAML; its StepKind's name
    name: str = Field(min_length=1, description="Shown in results, metrics (label `step`) and logs")
    timeout: Duration | None = Field(
        default=None, description="Deadline of this step; defaults to schedule.step_timeout"
    )
    continue_on_failure: bool = Field(
        default=False, description="Run the next steps even if this one fails (the run still fails)"
    )

    def provides(self) -> frozenset[str]:
        """The variables this step sets for the steps after it (``${name}``)."""
        return frozenset()


class Unit(StrEnum):
    """What a measured number is."""

    SECONDS = "seconds"
    TIMESTAMP = "timestamp_seconds"  # unix time
    COUNT = "count"
    SCORE = "score"  # unitless (layout shift)
    CODE = "code"  # an identifier that is a number (an HTTP status)


class Aggregate(StrEnum):
    """How the values of one series add up across runs."""

    SUM = "sum"  # a counter: every value added
    LATEST = "latest"  # a gauge: the last value seen
    OBSERVE = "observe"  # a histogram: every value observed in ``buckets``


@dataclass(frozen=True, slots=True)
class Measure:
    """How one group of a kind's measurements becomes one metric family.

    A step reports measurements as ``(group, name, value, unit)``; this says which family
    the group feeds. ``label`` carries the measurement's name (``phase="connect"``); a group
    of one unnamed value has none. Groups a kind reports without a Measure are kept in the
    results (logs, status page) but not exported as series.
    """

    group: str
    metric: str
    doc: str
    aggregate: Aggregate
    label: str | None = None
    only_ok: bool = False  # counted for successful steps only
    buckets: tuple[float, ...] = ()  # for OBSERVE

    @property
    def kind(self) -> str:
        """The metric type: counter, gauge or histogram."""
        return {"sum": "counter", "latest": "gauge", "observe": "histogram"}[self.aggregate]


# Shared by every kind that speaks TLS: one family, so one declaration.
CERT_EXPIRY = Measure(
    "cert_expiry",
    "journey_tls_cert_expiry_timestamp_seconds",
    "Expiry time of the server certificate seen by the step",
    Aggregate.LATEST,
)


@dataclass(frozen=True, slots=True)
class StepKind:
    """One step kind, declared once and listed in :data:`agent.steps.KINDS`.

    ``run``, ``prepare`` and ``finish`` are ``"module:function"`` paths. ``prepare(step,
    ctx)`` gets what the agent itself provides (a browser slot, a launched browser, a
    context) before the step's clock starts: its wait is the agent's, never the target's.
    ``run(step, ctx)`` is timed and does the step. ``finish(step, ctx, failed)``, after the
    step's clock has stopped (at its deadline, if it got that far), keeps what is kept of
    the step (evidence) on a small budget of its own (``ctx.deadline``, the runner's
    ``EVIDENCE_BUDGET``), which is the agent's time: in neither the step's duration nor
    the journey's timeout.
    """

    model: type[StepBase]
    run: str
    prepare: str | None = None
    finish: str | None = None
    measures: tuple[Measure, ...] = ()

    @property
    def name(self) -> str:
        return self.model.kind_name
