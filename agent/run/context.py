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
import dataclasses
import os
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from agent.language.templating import EnvAllowList, JourneyEnviron, Masker, Template, references
from agent.run.egress import EgressPolicy
from agent.run.results import Exchange, FailureReason, Measurement, StepResult
from agent.run.tls import TlsContexts
from agent.steps.kind import Unit

if TYPE_CHECKING:
    from agent.language.model import Journey
    from agent.run.artifacts import ArtifactStore
    from agent.run.browser_pool import BrowserPool

__all__ = [
    "MASK_WINDOW",
    "Mask",
    "RunEnvironment",
    "StepContext",
    "StepFailed",
    "StepFunction",
    "StepObserver",
    "StepRecord",
    "ca_bundle",
    "confined",
    "masked_cut",
]

R = TypeVar("R")
Mask = Callable[[str], str]  # a run's masker, or ``str`` for none
MASK_WINDOW = 4096  # characters past a cut masked with the text (a longer secret may leak)


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
    exchanges: list[Exchange] = field(default_factory=list)  # masked by the kind

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


class StepObserver(Protocol):
    """Told of each step as a run goes (``run --once --debug``); called on the event loop."""

    def step_started(self, journey: str, step: str, kind: str) -> None: ...

    def step_finished(self, journey: str, result: StepResult) -> None: ...


@dataclass(frozen=True)
class RunEnvironment:
    """Agent-wide things runs share: built once by the entry point, passed down."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    tls: TlsContexts = field(default_factory=TlsContexts)
    browser: BrowserPool | None = None
    artifacts: ArtifactStore | None = None  # where browser steps keep evidence
    location: str = "local"
    # What journeys may reach (docs/security.md, "What a journey may reach"):
    allow_env: EnvAllowList = field(default_factory=EnvAllowList)  # applied by for_journey
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    uploads_dir: Path | None = None  # browser uploads only from here; None: none
    ca_dir: Path | None = None  # verify: CA bundle paths only from here; None: none
    observer: StepObserver | None = None  # run --once --debug: each step as it goes
    body_limit: int = 0  # bytes of each response body an HTTP step keeps; 0: none

    def for_journey(self, journey: Journey) -> RunEnvironment:
        """This environment as ``journey`` may see it: of the agent's environment variables,
        those ``allow_env`` matches and those its own ``secrets:`` read."""
        raw = self.environ.raw if isinstance(self.environ, JourneyEnviron) else self.environ
        names = {
            name
            for value in journey.secrets.values()
            for scope, name in references(str(value))
            if scope == "env"
        }
        return dataclasses.replace(self, environ=JourneyEnviron(raw, self.allow_env, names))


def ca_bundle(verify: bool | str, env: RunEnvironment) -> bool | str:
    """A step's ``verify`` as the TLS contexts take it: a CA bundle path (a PEM file or a
    folder of hashed certificates) only from ``--ca-dir``; true and false as they are."""
    if isinstance(verify, bool):
        return verify
    where = confined(verify, env.ca_dir, what="verify", may="read CA bundles", flag="--ca-dir")
    return str(where)


def confined(written: str, root: Path | None, *, what: str, may: str, flag: str) -> Path:
    """The file ``written`` (relative to ``root``, or absolute) once resolved, symlinks
    and ``..`` included, when it lies inside ``root``; else StepFailed (config) saying
    that journeys ``may`` (upload files, read CA bundles) only from ``flag``."""
    if root is None:
        raise StepFailed(
            FailureReason.CONFIG,
            f"{what} {written!r} refused: journeys may {may} only from {flag}, which this "
            f"agent was not given (start it with {flag} DIR)",
        )
    base = root.resolve()
    path = (base / written).resolve()  # an absolute ``written`` replaces base
    if not path.is_relative_to(base):
        raise StepFailed(
            FailureReason.CONFIG,
            f"{what} {written!r} refused: journeys may {may} only from {flag} {root}, and "
            f"it resolves to {path}, outside",
        )
    return path


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


def masked_cut(text: str, limit: int, mask: Mask) -> str:
    """``text`` masked, then cut to ``limit`` characters (``...`` marks a cut), for a
    failure message: masked first, so that a secret the cut goes through is masked whole
    (its beginning alone is nothing a masker recognises). Only the first ``limit +
    MASK_WINDOW`` characters are masked; what follows is not shown."""
    shown = mask(text[: limit + MASK_WINDOW])
    return shown if len(shown) <= limit else shown[:limit] + "..."


StepFunction = Callable[[Any, StepContext], Awaitable[None]]
