"""The journey language as typed, immutable models (pydantic v2).

A journey file holds one or more :class:`Journey`; ``catalog.yaml`` holds a
:class:`Catalog`. Models carry defaults and cross-field rules; references between
files (a journey's business process in the catalog) are checked by the loader.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Discriminator, Field, StrictInt, Tag, model_validator

from agent.language.fields import Duration, Fraction, StrictModel, error_at
from agent.steps import KINDS
from agent.steps.browser.model import BrowserOptions, BrowserStep
from agent.steps.kind import StepBase

__all__ = ["SLO", "STEP_KINDS", "Journey", "LatencySLO", "Persona", "Schedule", "Step"]

_ID = r"^[a-z0-9][a-z0-9_-]*$"
STEP_KINDS = tuple(kind.name for kind in KINDS)  # the kind keys a step may have


def _step_kind(value: Any) -> str | None:
    """The step kind is the one kind key the step has (``http:``, ``browser:``)."""
    if isinstance(value, dict):
        kinds = [kind for kind in STEP_KINDS if kind in value]
        return kinds[0] if len(kinds) == 1 else None
    return getattr(value, "kind_name", None)


if TYPE_CHECKING:
    Step = StepBase
else:  # one branch per registered kind, tagged with its kind key
    Step = Annotated[
        Union[tuple(Annotated[kind.model, Tag(kind.name)] for kind in KINDS)],  # noqa: UP007
        Discriminator(
            _step_kind,
            custom_error_type="step_kind",
            custom_error_message=f"a step needs exactly one kind key: {' or '.join(STEP_KINDS)}",
        ),
    ]


class Persona(StrEnum):
    CUSTOMER = "customer"
    PARTNER = "partner"
    EMPLOYEE = "employee"


class Schedule(StrictModel):
    every: Duration = Field(default=60.0, description="Run interval, e.g. 30s, 5m")
    timeout: Duration = Field(default=30.0, description="Deadline of one attempt of the run")
    retries: int = Field(default=0, ge=0, le=5, description="Extra attempts before a run fails")
    step_timeout: Duration | None = Field(
        default=None, description="Default deadline of each step (defaults to timeout)"
    )
    jitter: float = Field(default=0.0, ge=0, description="Random delay added to each run, s")
    every_when_failing: Duration | None = Field(
        default=None, description="Faster interval while the journey is failing"
    )
    every_at_peak: Duration | None = Field(
        default=None, description="Interval during its business process's peak hours"
    )

    @model_validator(mode="after")
    def _fits(self) -> Schedule:
        attempts = self.retries + 1
        # point at the first of the culprits the author actually wrote
        culprit = next((n for n in ("timeout", "retries") if n in self.model_fields_set), "every")
        if self.timeout * attempts > self.every:
            raise error_at(
                f"timeout x attempts ({_fmt(self.timeout)} x {attempts}) must fit in every "
                f"({_fmt(self.every)}), so that runs never overlap",
                culprit,
            )
        if self.step_timeout is not None and self.step_timeout > self.timeout:
            raise error_at(
                f"step_timeout ({_fmt(self.step_timeout)}) must not exceed timeout "
                f"({_fmt(self.timeout)})",
                "step_timeout",
            )
        for name in ("every_when_failing", "every_at_peak"):
            faster = getattr(self, name)
            if faster is not None and self.timeout * attempts > faster:
                raise error_at(f"timeout x attempts must fit in {name} ({_fmt(faster)})", name)
        return self


class LatencySLO(StrictModel):
    threshold: Duration = Field(description="A successful run slower than this is a bad event")
    objective: Fraction = Field(description="Share of successful runs within the threshold")


class SLO(StrictModel):
    availability: Fraction | None = Field(default=None, description="Share of runs that succeed")
    latency: LatencySLO | None = None
    window: Duration = Field(default=28 * 86400.0, description="SLO window, e.g. 28d")
    min_failing_locations: StrictInt | None = Field(
        default=None,
        ge=1,
        description="A page needs the journey failing from at least this many locations "
        "(or from all those reporting it, if fewer); default: `journeyman rules "
        "--min-failing-locations`, 2",
    )
    runbook_url: str | None = None
    dashboard_url: str | None = None


class Journey(StrictModel):
    """One scripted journey of a customer, partner or employee."""

    journey: str = Field(pattern=_ID, max_length=63, description="Unique id")
    title: str = ""
    business_process: str = Field(pattern=_ID, max_length=63)
    persona: Persona = Persona.CUSTOMER
    service: str = ""
    application: str = ""
    owner: str = ""
    criticality: str = Field(default="medium", pattern=r"^(low|medium|high|critical)$")
    tags: dict[str, str] = Field(default_factory=dict)
    traceparent: bool = Field(default=True, description="Send a W3C traceparent header")
    schedule: Schedule = Field(default_factory=Schedule)
    slo: SLO | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(
        default_factory=dict, description="Values masked as *** in every output"
    )
    browser_defaults: BrowserOptions | None = Field(
        default=None,
        description="Options for every browser step (emulation, block, ...); a step's own wins",
    )
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_steps(self) -> Journey:
        seen: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            if step.name in seen:
                raise error_at(
                    f"step names must be unique, {step.name!r} is also steps[{seen[step.name]}]",
                    "steps", index, "name",
                )  # fmt: skip
            seen[step.name] = index
        for index, step in enumerate(self.steps):
            if step.timeout is not None and step.timeout > self.schedule.timeout:
                raise error_at(
                    f"timeout ({_fmt(step.timeout)}) must not exceed schedule.timeout "
                    f"({_fmt(self.schedule.timeout)})",
                    "steps", index, "timeout",
                )  # fmt: skip
        return self

    def effective_steps(self) -> list[StepBase]:
        """The steps as they run: browser steps with ``browser_defaults`` filled in."""
        defaults = self.browser_defaults
        if defaults is None:
            return list(self.steps)
        return [s.with_defaults(defaults) if isinstance(s, BrowserStep) else s for s in self.steps]

    def step_timeout(self, step: StepBase) -> float:
        return step.timeout or self.schedule.step_timeout or self.schedule.timeout


def _fmt(seconds: float) -> str:
    return f"{seconds:g}s"
