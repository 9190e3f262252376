"""What the run side of every step kind shares: the run context, the record, the failure.

A step kind's ``run(step, ctx) -> None`` records what it measured on ``ctx.record`` and
raises :class:`StepFailed` with a reason when the step did not do what the user needed.
It must end by ``ctx.deadline`` (loop time; the runner enforces it with
``asyncio.timeout_at``). An optional ``prepare(step, ctx)`` runs before the step's clock
starts, to get what the agent itself provides. The runner owns the deadlines, the timing
fallback and the StepResult.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any, TypeVar

from agent.language.templating import Masker, Template
from agent.run.results import FailureReason, Measurement
from agent.run.tls import TlsContexts
from agent.steps.kind import Unit

if TYPE_CHECKING:
    from agent.run.artifacts import ArtifactStore
    from agent.run.browser_pool import BrowserPool

__all__ = [
    "RunEnvironment",
    "StepContext",
    "StepFailed",
    "StepFunction",
    "StepRecord",
]

R = TypeVar("R")


class StepFailed(Exception):
    """The step did not do what the user needed. ``message`` says expected vs actual."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class StepRecord:
    """What a step kind measured, filled in as the step goes (kept even when it fails)."""

    duration: float | None = None  # set by kinds that time themselves more exactly
    measurements: dict[tuple[str, str], Measurement] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)

    def set(self, group: str, name: str, value: float, unit: Unit) -> None:
        """Record ``value`` as the measurement ``group``/``name`` (replacing any earlier)."""
        self.measurements[group, name] = Measurement(group, name, value, unit)

    def add(self, group: str, name: str, value: float, unit: Unit) -> None:
        """Add ``value`` to the measurement ``group``/``name`` (redirect hops add up)."""
        earlier = self.get(group, name)
        self.set(group, name, value if earlier is None else earlier + value, unit)

    def values(self, group: str) -> dict[str, float]:
        """The measurements of ``group`` so far, by name."""
        return {m.name: m.value for (g, _), m in self.measurements.items() if g == group}

    def get(self, group: str, name: str = "") -> float | None:
        found = self.measurements.get((group, name))
        return None if found is None else found.value


@dataclass(frozen=True)
class RunEnvironment:
    """Agent-wide things runs share: built once by the entry point, passed down."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    tls: TlsContexts = field(default_factory=TlsContexts)
    browser: BrowserPool | None = None
    artifacts: ArtifactStore | None = None  # where browser steps keep evidence
    location: str = "local"


@dataclass
class StepContext:
    """The state of one run attempt that its steps share: variables, cookies, resources."""

    journey_id: str
    run_id: str
    trace_id: str
    send_traceparent: bool
    template: Template  # resolves ${...}; its variables are ``variables`` below
    variables: dict[str, str]  # journey variables, then values extracted by earlier steps
    masker: Masker
    env: RunEnvironment
    cookies: CookieJar = field(default_factory=CookieJar)  # shared by HTTP and browser steps
    record: StepRecord = field(default_factory=StepRecord)
    deadline: float = 0.0  # loop time by which the current step must end (asyncio.timeout_at)
    _resources: dict[type[Any], Any] = field(default_factory=dict)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def resource(
        self, key: type[R], factory: Callable[[], AbstractAsyncContextManager[R]]
    ) -> R:
        """The run's single instance of ``key`` (an HTTP session, a browser page), made once
        and closed when the attempt ends."""
        if key not in self._resources:
            self._resources[key] = await self._stack.enter_async_context(factory())
        resource: R = self._resources[key]
        return resource

    def remaining(self) -> float:
        """Seconds left before the current step's deadline."""
        return max(self.deadline - asyncio.get_running_loop().time(), 0.0)

    def traceparent(self, span_id: str) -> str | None:
        """The W3C ``traceparent`` header value for a request, or None when switched off."""
        if not self.send_traceparent:
            return None
        return f"00-{self.trace_id}-{span_id}-01"

    async def aclose(self) -> None:
        await self._stack.aclose()


StepFunction = Callable[[Any, StepContext], Awaitable[None]]
