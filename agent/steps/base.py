"""What every step kind shares: the common step fields, the run context, the failure.

A step kind is a model (subclass of :class:`StepBase`) plus one async function
``run(step, ctx) -> None``. The function records what it measured on ``ctx.record``
and raises :class:`StepFailed` with a reason when the step did not do what the user
needed. The runner owns the deadline, the timing fallback and the StepResult.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import Field

from agent.fields import Duration, StrictModel
from agent.results import FailureReason
from agent.templating import Masker, Template
from agent.tls import TlsContexts

if TYPE_CHECKING:
    from agent.artifacts import ArtifactStore
    from agent.browser import BrowserPool

__all__ = [
    "RunEnvironment",
    "StepBase",
    "StepContext",
    "StepFailed",
    "StepFunction",
    "StepRecord",
]

R = TypeVar("R")


class StepBase(StrictModel):
    """Fields every step has, whatever its kind."""

    kind_name: ClassVar[str]  # the step's kind key in YAML and in STEP_FUNCTIONS
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
    phases: dict[str, float] = field(default_factory=dict)
    vitals: dict[str, float] = field(default_factory=dict)
    status_code: int | None = None
    cert_expiry: float | None = None
    console_errors: int = 0
    failed_requests: int = 0
    artifacts: list[str] = field(default_factory=list)


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
    step_timeout: float = 30.0  # the current step's deadline, seconds
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

    def traceparent(self, span_id: str) -> str | None:
        """The W3C ``traceparent`` header value for a request, or None when switched off."""
        if not self.send_traceparent:
            return None
        return f"00-{self.trace_id}-{span_id}-01"

    async def aclose(self) -> None:
        await self._stack.aclose()


StepFunction = Callable[[Any, StepContext], Awaitable[None]]
