"""The runner against real loopback servers: retries, continue_on_failure, deadlines (the
step's own and the journey's, absolute), values missing at run time, and a run the agent
could not start (a saturated browser pool) as it reaches the Prometheus exporter."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from browser_support import require_chromium, start_site
from http_servers import serve_app
from prometheus_client import CollectorRegistry

from agent.language.model import Journey
from agent.run.browser_pool import BrowserPool
from agent.run.context import RunEnvironment
from agent.run.results import FailureReason, Outcome, RunResult
from agent.run.runner import run_journey
from exporters.prometheus import PrometheusExporter

_HITS = web.AppKey("hits", Counter[str])


def _target_app() -> web.Application:
    """A loopback target that counts the hits of every path; ``/attempt`` answers 500 on
    its first hit, 501 on the second, and so on, ``/flaky`` 500 once and then 200."""
    app = web.Application()
    app[_HITS] = Counter()

    async def handle(request: web.Request) -> web.Response:
        hits = app[_HITS]
        hits[request.path] += 1
        if request.path == "/flaky":
            return web.Response(status=500 if hits["/flaky"] == 1 else 200)
        if request.path == "/attempt":
            return web.Response(status=499 + hits["/attempt"])
        if request.path.startswith("/status/"):
            return web.Response(status=int(request.path.rsplit("/", 1)[1]))
        if request.path == "/slow":
            await asyncio.sleep(float(request.query.get("seconds", "10")))
        if request.path == "/json":
            return web.json_response({"ok": True})
        return web.Response(text="ok")

    app.router.add_route("*", "/{path:.*}", handle)
    return app


@pytest.fixture
async def target() -> AsyncIterator[tuple[RunEnvironment, Counter[str]]]:
    """The counting target on 127.0.0.1: a run environment whose ``${env.BASE}`` is its
    URL, and its hits by path."""
    app = _target_app()
    async with serve_app(app) as base:
        yield RunEnvironment(environ={"BASE": base}), app[_HITS]


def _journey(
    steps: list[dict[str, Any]], fields: dict[str, Any] | None = None, **schedule: Any
) -> Journey:
    """A journey of ``steps`` (``base`` is the target's URL) with ``schedule``, plus
    ``fields``."""
    return Journey.model_validate(
        {
            "journey": "runner-test",
            "business_process": "testing",
            "schedule": {"every": "1m", **schedule},
            "variables": {"base": "${env.BASE}"},
            "steps": steps,
            **(fields or {}),
        }
    )


def _get(name: str, path: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "http": {"get": "${base}" + path}, **fields}


async def test_a_target_failing_once_passes_on_the_retry(
    target: tuple[RunEnvironment, Counter[str]],
) -> None:
    """A target failing the first attempt and passing the second is a success in 2 attempts."""
    env, hits = target
    result = await run_journey(_journey([_get("flaky", "/flaky")], retries=2, timeout="5s"), env)
    assert result.outcome is Outcome.SUCCESS, result.message
    assert result.attempts == 2
    assert [step.ok for step in result.steps] == [True]
    assert hits["/flaky"] == 2


async def test_failing_every_attempt_reports_the_last_attempts_steps(
    target: tuple[RunEnvironment, Counter[str]],
) -> None:
    """Failing every attempt: a failure after retries + 1 attempts, with the steps and
    message of the last attempt only."""
    env, hits = target
    steps = [_get("home", "/ok"), _get("pay", "/attempt")]
    result = await run_journey(_journey(steps, retries=2, timeout="5s"), env)
    assert result.outcome is Outcome.FAILURE
    assert result.attempts == 3
    assert [(step.name, step.ok) for step in result.steps] == [("home", True), ("pay", False)]
    assert result.reason is FailureReason.HTTP_STATUS
    assert result.failed_step == "pay"
    assert "got 502" in result.message  # the third answer: 500, 501, then 502
    assert hits == Counter({"/ok": 3, "/attempt": 3})


async def test_continue_on_failure_runs_the_next_steps_and_still_fails(
    target: tuple[RunEnvironment, Counter[str]],
) -> None:
    """Steps after a continue_on_failure step run; the run fails, naming the first failure."""
    env, hits = target
    steps = [
        _get("home", "/ok"),
        _get("broken", "/status/500", continue_on_failure=True),
        _get("after", "/ok?after"),
        _get("also broken", "/status/503", continue_on_failure=True),
        _get("last", "/json"),
    ]
    result = await run_journey(_journey(steps), env)
    assert result.outcome is Outcome.FAILURE
    assert [step.ok for step in result.steps] == [True, False, True, False, True]
    assert result.failed_step == "broken"
    assert result.reason is FailureReason.HTTP_STATUS
    assert "got 500" in result.message
    assert hits["/json"] == 1


async def test_a_step_cut_by_the_journey_deadline_says_so(
    target: tuple[RunEnvironment, Counter[str]],
) -> None:
    """A step whose timeout outlasts the journey's remaining time is cut at the journey's
    deadline with a message naming the journey timeout; the steps before it are kept."""
    env, _ = target
    steps = [
        _get("first", "/slow?seconds=0.5"),
        _get("hangs", "/slow?seconds=30", timeout="1s"),
    ]
    began = time.monotonic()
    result = await run_journey(_journey(steps, timeout="1s"), env)
    elapsed = time.monotonic() - began
    assert [step.ok for step in result.steps] == [True, False]
    assert result.steps[0].duration >= 0.5
    assert result.reason is FailureReason.TIMEOUT
    assert result.failed_step == "hangs"
    assert "journey timeout (1s)" in result.message
    assert elapsed < 1 + 1


async def test_a_step_overrunning_its_own_timeout_says_so(
    target: tuple[RunEnvironment, Counter[str]],
) -> None:
    """A step that overruns its own timeout fails with a message naming that timeout."""
    env, _ = target
    steps = [_get("hangs", "/slow?seconds=30", timeout="300ms")]
    result = await run_journey(_journey(steps, timeout="5s"), env)
    assert result.reason is FailureReason.TIMEOUT
    assert "within 0.3s" in result.message
    assert "journey" not in result.message
    assert 0.3 <= result.steps[0].duration < 0.3 + 1


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"variables": {"base": "${env.BASE}", "token": "${env.TOKEN}"}}, "'TOKEN'"),
        ({"secrets": {"password": "${env.PASSWORD}"}}, "'PASSWORD'"),
    ],
)
async def test_a_value_missing_at_run_time_fails_before_any_step(
    target: tuple[RunEnvironment, Counter[str]], fields: dict[str, Any], missing: str
) -> None:
    """A variable or secret whose ${env.X} is not set fails the run as config, no step run,
    and is not retried (a retry cannot set it)."""
    env, hits = target
    result = await run_journey(_journey([_get("home", "/ok")], fields, retries=1), env)
    assert result.attempts == 1
    assert result.outcome is Outcome.FAILURE
    assert result.reason is FailureReason.CONFIG
    assert missing in result.message
    assert [step.kind for step in result.steps] == ["setup"]
    assert not hits


async def test_a_variable_never_extracted_fails_its_step_as_config(
    target: tuple[RunEnvironment, Counter[str]],
) -> None:
    """A ${var} that an earlier (continued) step failed to extract fails the step using it
    as config, without sending its request."""
    env, hits = target
    steps = [
        _get("log in", "/json", extract={"token": {"json": "$.token"}}, continue_on_failure=True),
        _get("use it", "/use?token=${token}"),
    ]
    result = await run_journey(_journey(steps), env)
    assert [step.reason for step in result.steps] == [
        FailureReason.EXTRACTION,
        FailureReason.CONFIG,
    ]
    assert "variable 'token' is not set" in result.steps[1].message
    assert hits["/use"] == 0


async def test_the_journey_deadline_bounds_the_whole_attempt(
    target: tuple[RunEnvironment, Counter[str]],
) -> None:
    """Several hanging steps, each with its own timeout, end near the journey timeout, not
    after the sum of their timeouts; the step the deadline cuts says so, and the next one is
    recorded as not run (and never sent)."""
    env, hits = target
    steps = [
        _get(f"hangs {n}", "/slow?seconds=30", timeout="1s", continue_on_failure=True)
        for n in range(4)
    ]
    began = time.monotonic()
    result = await run_journey(_journey(steps, timeout="1.5s"), env)
    elapsed = time.monotonic() - began
    assert elapsed < 1.5 + 1  # the step timeouts add up to 4 s
    assert result.duration < 1.5 + 1
    assert [step.reason for step in result.steps] == [FailureReason.TIMEOUT] * 3
    assert "within 1s" in result.steps[0].message
    assert "journey timeout (1.5s) reached during this step" in result.steps[1].message
    assert result.steps[2].message == "not run: the journey timeout (1.5s) had passed"
    assert hits["/slow"] == 2


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def not_started() -> tuple[Journey, RunResult, list[float]]:
    """A browser journey that cannot get a context in time, for real: a pool of one
    context, held by a long run, and a second journey whose timeout is shorter than the
    hold. (The second journey, its result, the pool's waits), shared by the module."""
    require_chromium()
    site, runner = await start_site()
    waits: list[float] = []
    held_open = asyncio.Event()  # the pool reports a wait once the context is open

    def on_wait(seconds: float) -> None:
        waits.append(seconds)
        held_open.set()

    holding = Journey.model_validate(
        {
            "journey": "holds-the-browser",
            "business_process": "testing",
            "schedule": {"timeout": "3s"},
            "steps": [{"name": "s", "browser": [{"goto": site.url}, {"click": "#never"}]}],
        }
    )
    busy = Journey.model_validate(
        {
            "journey": "finds-it-busy",
            "business_process": "testing",
            "schedule": {"timeout": "1s"},
            "steps": [{"name": "look", "browser": [{"goto": site.url}]}],
        }
    )
    try:
        async with BrowserPool(max_contexts=1, on_wait=on_wait) as pool:
            async with pool.context():  # launched now, not inside the timeouts under test
                pass
            waits.clear()
            held_open.clear()
            env = RunEnvironment(environ={}, browser=pool)
            holder = asyncio.create_task(run_journey(holding, env))
            async with asyncio.timeout(30):
                await held_open.wait()
            result = await run_journey(busy, env)
            held = await holder
    finally:
        await runner.cleanup()
    assert held.reason is FailureReason.ELEMENT_NOT_FOUND, held.message  # it had the slot
    return busy, result, waits


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_a_run_that_cannot_get_a_browser_in_time_is_not_started(
    not_started: tuple[Journey, RunResult, list[float]],
) -> None:
    """A browser slot not free within the journey's timeout ends the run as not_started,
    reason agent_busy, with the wait reported to the pool's on_wait."""
    _, result, waits = not_started
    assert result.outcome is Outcome.NOT_STARTED, result.message
    assert result.reason is FailureReason.AGENT_BUSY
    assert result.failed_step == "look"
    assert "the target was not measured" in result.message
    assert result.attempts == 1
    assert result.duration < 0.5  # the target was given no time: the wait is the agent's
    assert len(waits) == 2  # the holder's context, then the busy run's cut-off wait
    assert 0.9 <= waits[1] < 1 + 1


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_a_not_started_run_is_counted_but_not_held_against_the_target(
    not_started: tuple[Journey, RunResult, list[float]],
) -> None:
    """A not_started run is exported as journey_runs_total{outcome="not_started"} and
    leaves journey_success and the failures untouched."""
    journey, result, _ = not_started
    exporter = PrometheusExporter(CollectorRegistry(), "here")
    exporter.set_inventory([journey], None)
    exporter.export(result)
    text = exporter.render().decode()
    labels = 'business_process="testing",journey="finds-it-busy",location="here"'
    assert f'journey_runs_total{{{labels},outcome="not_started",persona="customer"}} 1.0' in text
    assert f'journey_runs_total{{{labels},outcome="failure",persona="customer"}} 0.0' in text
    assert "journey_success{" not in text
    assert "journey_failures_total{" not in text
