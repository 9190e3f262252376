"""Runs one journey: its steps in order, under deadlines, with retries -> RunResult.

A run never raises out of here, except cancellation: shutdown cancellation always
propagates (the scheduler records the run as aborted, never as a failed journey).
Library exceptions were already mapped to failure reasons by each step kind; what
still escapes a step is a bug of ours and is recorded as reason ``internal``.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from agent.model import Journey
from agent.results import FailureReason, Outcome, RunIds, RunResult, StepResult
from agent.steps import STEP_FUNCTIONS
from agent.steps.base import RunEnvironment, StepBase, StepContext, StepFailed, StepRecord
from agent.templating import Masker, MissingValue, Template

__all__ = ["run_journey"]

_CLOSE_TIMEOUT = 5.0  # seconds a run's resources (clients, browser context) get to close
_log = structlog.get_logger("journeyman.runner")


async def run_journey(
    journey: Journey, env: RunEnvironment, ids: RunIds | None = None
) -> RunResult:
    """Run ``journey`` once (with its retries) and return what happened. ``ids`` are given
    by a caller that must name the run even if it is cut off (the scheduler)."""
    started_at = time.time()
    ids = ids or RunIds.new(journey.journey, started_at)
    run_id, trace_id = ids.run_id, ids.trace_id
    attempts = journey.schedule.retries + 1
    for attempt in range(1, attempts + 1):
        steps, duration, masker = await _attempt(journey, env, run_id, trace_id)
        failed = next((s for s in steps if not s.ok), None)
        if failed is None or attempt == attempts:
            break
    return RunResult(
        journey=journey.journey,
        business_process=journey.business_process,
        persona=journey.persona.value,
        run_id=run_id,
        trace_id=trace_id,
        started_at=started_at,
        duration=duration,
        outcome=Outcome.SUCCESS if failed is None else Outcome.FAILURE,
        attempts=attempt,
        steps=tuple(steps),
        reason=failed.reason if failed else None,
        failed_step=failed.name if failed else None,
        message=masker(failed.message) if failed else "",
        artifacts=tuple(path for step in steps for path in step.artifacts),
    )


async def _attempt(
    journey: Journey, env: RunEnvironment, run_id: str, trace_id: str
) -> tuple[list[StepResult], float, Masker]:
    """One attempt: every step in order until one fails (unless it may continue)."""
    started = time.perf_counter()
    masker = Masker()
    results: list[StepResult] = []
    try:
        ctx = _context(journey, env, run_id, trace_id, masker)
    except MissingValue as error:
        results.append(_setup_failure(str(error)))
        return results, time.perf_counter() - started, masker
    current: list[tuple[str, str, float, float]] = []  # the step in progress, for a deadline
    try:
        async with asyncio.timeout(journey.schedule.timeout):
            for step in journey.effective_steps():
                current[:] = [(step.name, step.kind_name, time.time(), time.perf_counter())]
                result = await _run_step(step, journey.step_timeout(step), ctx)
                current.clear()
                results.append(result)
                if not result.ok and not step.continue_on_failure:
                    break
    except TimeoutError:
        name, kind, wall, mono = current[0]
        results.append(
            _step_result(
                ctx,
                name,
                kind,
                wall,
                time.perf_counter() - mono,
                FailureReason.TIMEOUT,
                f"journey timeout ({journey.schedule.timeout:g}s) reached during this step",
            )
        )
    finally:
        await _close(ctx)
    return results, time.perf_counter() - started, masker


def _context(
    journey: Journey, env: RunEnvironment, run_id: str, trace_id: str, masker: Masker
) -> StepContext:
    """Resolve secrets, then variables (which may use them), into a fresh context."""
    bare = Template({}, {}, env.environ)
    resolved_secrets = {name: bare.render(value) for name, value in journey.secrets.items()}
    for value in resolved_secrets.values():
        masker.add(value)
    with_secrets = Template({}, resolved_secrets, env.environ)
    variables = {name: with_secrets.render(value) for name, value in journey.variables.items()}
    return StepContext(
        journey_id=journey.journey,
        run_id=run_id,
        trace_id=trace_id,
        send_traceparent=journey.traceparent,
        template=Template(variables, resolved_secrets, env.environ),
        variables=variables,
        masker=masker,
        env=env,
    )


async def _run_step(step: StepBase, deadline: float, ctx: StepContext) -> StepResult:
    kind, name = step.kind_name, step.name
    ctx.record = StepRecord()
    ctx.step_timeout = deadline
    wall, started = time.time(), time.perf_counter()
    reason: FailureReason | None = None
    message = ""
    try:
        async with asyncio.timeout(deadline):
            await STEP_FUNCTIONS[kind](step, ctx)
    except StepFailed as failure:
        reason, message = failure.reason, failure.message
    except MissingValue as error:
        reason, message = FailureReason.CONFIG, str(error)
    except TimeoutError:
        reason, message = FailureReason.TIMEOUT, f"step did not finish within {deadline:g}s"
    except Exception as error:  # a bug of ours: recorded, never raised into the agent
        reason, message = FailureReason.INTERNAL, f"{type(error).__name__}: {error}"
        _log.error(
            "step_internal_error", journey=ctx.journey_id, step=name, error=ctx.masker(message)
        )
    elapsed = time.perf_counter() - started
    return _step_result(ctx, name, kind, wall, elapsed, reason, message)


def _step_result(
    ctx: StepContext,
    name: str,
    kind: str,
    started_at: float,
    elapsed: float,
    reason: FailureReason | None,
    message: str,
) -> StepResult:
    record = ctx.record
    return StepResult(
        name=name,
        kind=kind,
        ok=reason is None,
        started_at=started_at,
        duration=record.duration if record.duration is not None else elapsed,
        reason=reason,
        message=ctx.masker(message),
        phases=dict(record.phases),
        vitals=dict(record.vitals),
        status_code=record.status_code,
        cert_expiry=record.cert_expiry,
        console_errors=record.console_errors,
        failed_requests=record.failed_requests,
        artifacts=tuple(record.artifacts),
    )


def _setup_failure(message: str) -> StepResult:
    """A run that could not start (a secret or variable is not set) fails before any step."""
    return StepResult(
        name="",
        kind="setup",
        ok=False,
        started_at=time.time(),
        duration=0.0,
        reason=FailureReason.CONFIG,
        message=message,
    )


async def _close(ctx: StepContext) -> None:
    """Close the run's resources even while being cancelled, and never for too long."""
    closing = asyncio.ensure_future(_bounded_close(ctx))
    try:
        await asyncio.shield(closing)
    except asyncio.CancelledError:
        await closing
        raise


async def _bounded_close(ctx: StepContext) -> None:
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await ctx.aclose()
    except Exception as error:  # a stuck or broken close must not fail a finished run
        _log.warning("run_close_failed", journey=ctx.journey_id, error=ctx.masker(repr(error)))
