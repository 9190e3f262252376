"""Logs exporter: one structured event per run, and one per step where it says more.

A run's ``journey_run`` event (info; warning when it failed) carries each step's
duration (``steps: {name: seconds}``). A ``journey_step`` event with the step's phases,
status and other measurements is written for a step that failed (warning) and, at
``--log-level debug``, for every step. One line per run, not one per step: log shippers
store and bill by the line, and a passing three-step run said the same in four.

Texts in results are already masked by the runner; nothing here reads variables or
request bodies, so nothing here can leak a secret.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.run.results import Measurement, RunResult, StepResult
from agent.steps.kind import Unit
from exporters.base import NoLifecycle

__all__ = ["LogExporter"]


class LogExporter(NoLifecycle):
    def __init__(self, logger: Any, location: str) -> None:
        self._log = logger.bind(location=location)
        # a structlog filtering logger: the level is set once, at start-up
        self._every_step = self._log.is_enabled_for(logging.DEBUG)

    def export(self, result: RunResult) -> None:
        run = self._log.bind(
            journey=result.journey,
            business_process=result.business_process,
            persona=result.persona,
            run_id=result.run_id,
            trace_id=result.trace_id,
        )
        for step in result.steps:
            if not step.ok:
                run.warning("journey_step", **_step_fields(step))
            elif self._every_step:
                run.debug("journey_step", **_step_fields(step))
        fields: dict[str, Any] = {
            "outcome": result.outcome.value,
            "duration_seconds": round(result.duration, 6),
            "attempts": result.attempts,
            "steps": {step.name: round(step.duration, 6) for step in result.steps},
        }
        if not result.ok:
            fields.update(
                reason=result.reason, failed_step=result.failed_step, error=result.message
            )
        if result.artifacts:
            fields["artifacts"] = list(result.artifacts)
        (run.info if result.ok else run.warning)("journey_run", **fields)


def _step_fields(step: StepResult) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "step": step.name,
        "kind": step.kind,
        "ok": step.ok,
        "duration_seconds": round(step.duration, 6),
    }
    for measurement in step.measurements:  # named ones grouped: {"phases": {"connect": ...}}
        value = _number(measurement)
        if measurement.name:
            fields.setdefault(measurement.group, {})[measurement.name] = value
        else:
            fields[measurement.group] = value
    if not step.ok:
        fields.update(reason=step.reason, error=step.message)
    if step.artifacts:
        fields["artifacts"] = list(step.artifacts)
    return fields


def _number(measurement: Measurement) -> float | int:
    if measurement.unit in (Unit.COUNT, Unit.CODE):
        return int(measurement.value)
    return round(measurement.value, 6)
