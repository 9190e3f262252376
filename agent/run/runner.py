"""Runs one journey: its steps in order, under deadlines, with retries -> RunResult.

Clocks and deadlines. What the agent itself provides for a step (a browser slot, a
launch, a context) is got by the kind's ``prepare`` before the step's clock starts; that
wait is the agent's and moves the journey's deadline by as much, so the target always
gets its whole budget. All the waiting of one attempt is bounded by the attempt's
timeout: an agent that cannot provide in time ends the run as ``not_started`` (reason
``agent_busy``), which no SLO counts against the target. Each step gets an absolute
deadline, ``min(its own, the journey's)``, in loop time (``asyncio.timeout_at``), so a
step cut by the journey deadline still records its own reason, message and evidence.

Evidence after the deadline. A kind that keeps something of a step (the browser: its
screenshot, trace, page HTML) declares a ``finish`` phase, run after the timed part,
passed or failed, cut off or not, on a budget of its own (``EVIDENCE_BUDGET``) that
starts when the step's clock stops: the failures that most need a screenshot (a page
that hangs, a script that spins) used to leave none, because writing it shared the
step's deadline. That time is the agent's, like a preparation's wait: left out of the
step's duration and the run's, and the journey's deadline moves by as much.

A run never raises out of here, except cancellation: shutdown cancellation always
propagates (the scheduler records the run as aborted, never as a failed journey).
Library exceptions were already mapped to failure reasons by each step kind; what
still escapes a step is a bug of ours and is recorded as reason ``internal``.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import structlog

from agent.language.model import Journey
from agent.language.templating import Masker, MissingValue, Template
from agent.run.context import RunEnvironment, StepContext, StepFailed, StepFunction, StepRecord
from agent.run.results import FailureReason, Outcome, RunIds, RunResult, StepResult
from agent.steps import KINDS_BY_NAME
from agent.steps.kind import StepBase, StepKind

__all__ = ["EVIDENCE_BUDGET", "finish_function", "import_kinds", "run_functions", "run_journey"]

_CLOSE_TIMEOUT = 5.0  # seconds a run's resources (clients, browser context) get to close
EVIDENCE_BUDGET = 3.0  # seconds a kind's finish phase gets after the step's clock stopped
FinishFunction = Callable[[Any, StepContext, bool], Awaitable[None]]
_log = structlog.get_logger("journeyman.runner")


@cache
def run_functions(kind: StepKind) -> tuple[StepFunction | None, StepFunction]:
    """The kind's (prepare, run) functions, imported on first use."""
    return (_resolve(kind.prepare) if kind.prepare else None), _resolve(kind.run)


def import_kinds(journeys: Iterable[Journey]) -> None:
    """Import now the run side of every kind ``journeys`` use, so that no first run starts
    late for it (HTTP's ~25 ms; a browser kind's Playwright ~110 ms: not a launch)."""
    for name in {step.kind_name for journey in journeys for step in journey.steps}:
        run_functions(KINDS_BY_NAME[name])
        finish_function(KINDS_BY_NAME[name])


@cache
def finish_function(kind: StepKind) -> FinishFunction | None:
    """The kind's finish (evidence) phase, imported on first use; None when it has none."""
    if kind.finish is None:
        return None
    function: FinishFunction = _imported(kind.finish)
    return function


def _resolve(path: str) -> StepFunction:
    function: StepFunction = _imported(path)
    return function


def _imported(path: str) -> Any:
    """The object a ``"module:name"`` path names."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class _AgentBusy(Exception):
    """The agent could not provide what a step needed before the attempt's deadline."""

    def __init__(self, message: str, waited: float) -> None:
        super().__init__(message)
        self.waited = waited  # the agent's time, left out of the run's duration like any wait


@dataclass
class _Attempt:
    steps: list[StepResult]
    duration: float  # seconds the target was given: the agent's waits left out
    masker: Masker
    not_started: bool = False


async def run_journey(
    journey: Journey, env: RunEnvironment, ids: RunIds | None = None
) -> RunResult:
    """Run ``journey`` once (with its retries) and return what happened. ``ids`` are given
    by a caller that must name the run even if it is cut off (the scheduler)."""
    started_at = time.time()
    ids = ids or RunIds.new(journey.journey, started_at)
    attempts = journey.schedule.retries + 1
    for attempt in range(1, attempts + 1):
        done = await _attempt(journey, env, ids)
        failed = next((s for s in done.steps if not s.ok), None)
        setup_failed = failed is not None and failed.kind == "setup"  # a retry cannot help
        if failed is None or done.not_started or setup_failed or attempt == attempts:
            break
    if done.not_started:
        outcome = Outcome.NOT_STARTED
    else:
        outcome = Outcome.SUCCESS if failed is None else Outcome.FAILURE
    return RunResult(
        journey=journey.journey,
        business_process=journey.business_process,
        persona=journey.persona.value,
        run_id=ids.run_id,
        trace_id=ids.trace_id,
        started_at=started_at,
        duration=done.duration,
        outcome=outcome,
        attempts=attempt,
        steps=tuple(done.steps),
        reason=failed.reason if failed else None,
        failed_step=failed.name if failed else None,
        message=done.masker(failed.message) if failed else "",
        artifacts=tuple(path for step in done.steps for path in step.artifacts),
    )


async def _attempt(journey: Journey, env: RunEnvironment, ids: RunIds) -> _Attempt:
    """One attempt: every step in order until one fails (unless it may continue)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    masker = Masker()
    done = _Attempt([], 0.0, masker)
    observer = env.observer

    def keep(result: StepResult) -> None:
        done.steps.append(result)
        if observer is not None:
            observer.step_finished(journey.journey, result)

    try:
        ctx = _context(journey, env, ids, masker)
    except MissingValue as error:
        keep(_setup_failure(str(error)))
        return done
    timeout = journey.schedule.timeout
    agent_deadline = started + timeout  # all the agent's own waiting must end by then
    journey_deadline = agent_deadline  # the target's budget, moved by the agent's waits
    waited = 0.0
    try:
        for step in journey.effective_steps():
            if loop.time() >= journey_deadline:  # after a step that was allowed to fail
                message = f"not run: the journey timeout ({timeout:g}s) had passed"
                keep(_not_run(ctx, step, message))
                break
            if observer is not None:
                observer.step_started(journey.journey, step.name, step.kind_name)
            kind = KINDS_BY_NAME[step.kind_name]
            prepare, run = run_functions(kind)
            ctx.record = StepRecord()
            if prepare is not None:
                try:
                    wait = await _prepare(prepare, step, ctx, agent_deadline)
                except StepFailed as failure:
                    keep(_failed_before(ctx, step, failure))
                    if step.continue_on_failure:
                        continue
                    break
                waited += wait
                journey_deadline += wait
            own = loop.time() + journey.step_timeout(step)
            cut_by_journey = journey_deadline < own
            ctx.deadline = min(own, journey_deadline)
            result = await _run_step(run, step, ctx, timeout if cut_by_journey else None)
            if (finish := finish_function(kind)) is not None:
                kept = await _finish(finish, step, ctx, failed=not result.ok)
                waited += kept
                journey_deadline += kept  # and the next step's wait keeps its allowance:
                agent_deadline += kept
                result = replace(result, artifacts=tuple(ctx.record.artifacts))
            keep(result)
            if not result.ok and not step.continue_on_failure:
                break
    except _AgentBusy as busy:
        done.not_started = True
        waited += busy.waited
        keep(_busy(ctx, step, str(busy)))
    finally:
        await _close(ctx)
    done.duration = loop.time() - started - waited
    return done


async def _prepare(
    prepare: StepFunction, step: StepBase, ctx: StepContext, agent_deadline: float
) -> float:
    """Get what the agent provides for ``step``; the seconds it took (the agent's time)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    ctx.deadline = agent_deadline
    try:
        async with asyncio.timeout_at(agent_deadline):
            await prepare(step, ctx)
    except TimeoutError:
        waited = loop.time() - began
        raise _AgentBusy(
            f"the agent could not prepare this step within the journey's timeout (waited "
            f"{waited:.3g}s for its own resources, e.g. a browser slot): the target was not "
            "measured",
            waited,
        ) from None
    except MissingValue as error:
        raise StepFailed(FailureReason.CONFIG, str(error)) from None
    return loop.time() - began


async def _finish(finish: FinishFunction, step: StepBase, ctx: StepContext, failed: bool) -> float:
    """The kind's finish phase on its own budget; the seconds it took (the agent's time).
    Cut off at the budget, what it recorded so far (the files already written) stays."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    ctx.deadline = began + EVIDENCE_BUDGET
    try:
        async with asyncio.timeout_at(ctx.deadline):
            await finish(step, ctx, failed)
    except TimeoutError:
        _log.info("evidence_cut_off", journey=ctx.journey_id, step=step.name)
    except Exception as error:  # a bug of ours: the step's result stands
        _log.warning(
            "step_finish_failed", journey=ctx.journey_id, step=step.name,
            error=ctx.masker(f"{type(error).__name__}: {error}"),
        )  # fmt: skip
    return loop.time() - began


def _context(journey: Journey, env: RunEnvironment, ids: RunIds, masker: Masker) -> StepContext:
    """Resolve secrets, then variables (which may use them), into a fresh context."""
    bare = Template({}, {}, env.environ)
    resolved_secrets = {name: bare.render(value) for name, value in journey.secrets.items()}
    for value in resolved_secrets.values():
        masker.add(value)
    with_secrets = Template({}, resolved_secrets, env.environ)
    variables = {name: with_secrets.render(value) for name, value in journey.variables.items()}
    return StepContext(
        journey_id=journey.journey,
        run_id=ids.run_id,
        trace_id=ids.trace_id,
        send_traceparent=journey.traceparent,
        template=Template(variables, resolved_secrets, env.environ),
        variables=variables,
        masker=masker,
        env=env,
    )


async def _run_step(
    run: StepFunction, step: StepBase, ctx: StepContext, journey_timeout: float | None
) -> StepResult:
    """The timed part of a step, under ``ctx.deadline``. ``journey_timeout`` is set when
    that deadline is the journey's, not the step's own."""
    loop = asyncio.get_running_loop()
    wall, started = time.time(), loop.time()
    reason: FailureReason | None = None
    message = ""
    try:
        async with asyncio.timeout_at(ctx.deadline):
            await run(step, ctx)
    except StepFailed as failure:
        reason, message = failure.reason, failure.message
    except MissingValue as error:
        reason, message = FailureReason.CONFIG, str(error)
    except TimeoutError:
        reason = FailureReason.TIMEOUT
        if journey_timeout is not None:
            message = f"journey timeout ({journey_timeout:g}s) reached during this step"
        else:
            message = f"step did not finish within {ctx.deadline - started:.3g}s"
    except Exception as error:  # a bug of ours: recorded, never raised into the agent
        reason, message = FailureReason.INTERNAL, f"{type(error).__name__}: {error}"
        _log.error(
            "step_internal_error", journey=ctx.journey_id, step=step.name, error=ctx.masker(message)
        )
    return _step_result(ctx, step, wall, loop.time() - started, reason, message)


def _step_result(
    ctx: StepContext,
    step: StepBase,
    started_at: float,
    elapsed: float,
    reason: FailureReason | None,
    message: str,
) -> StepResult:
    record = ctx.record
    return StepResult(
        name=step.name,
        kind=step.kind_name,
        ok=reason is None,
        started_at=started_at,
        duration=record.duration if record.duration is not None else elapsed,
        reason=reason,
        message=ctx.masker(message),
        measurements=tuple(record.measurements.values()),
        artifacts=tuple(record.artifacts),
        exchanges=tuple(record.exchanges),
    )


def _failed_before(ctx: StepContext, step: StepBase, failure: StepFailed) -> StepResult:
    """A step whose preparation failed (no browser, a bad emulation): it took no time."""
    return _step_result(ctx, step, time.time(), 0.0, failure.reason, failure.message)


def _not_run(ctx: StepContext, step: StepBase, message: str) -> StepResult:
    ctx.record = StepRecord()
    return _step_result(ctx, step, time.time(), 0.0, FailureReason.TIMEOUT, message)


def _busy(ctx: StepContext, step: StepBase, message: str) -> StepResult:
    return _step_result(ctx, step, time.time(), 0.0, FailureReason.AGENT_BUSY, message)


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
