"""The results of a run: the contract between the runner and the exporters.

Everything here is immutable. Exporters read these and nothing else; every text in
them has already been passed through the run's secret masker.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from agent.steps.kind import Unit

__all__ = [
    "Exchange",
    "FailureReason",
    "Measurement",
    "Outcome",
    "RunIds",
    "RunResult",
    "StepResult",
]


class FailureReason(StrEnum):
    """Why a step or run failed: a closed set, documented in the README."""

    CONFIG = "config"  # a ${env.X} or ${var} the run needs is not set
    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    ASSERTION = "assertion"
    EXTRACTION = "extraction"
    PROTOCOL = "protocol"
    TOO_LARGE = "too_large"
    BROWSER_UNAVAILABLE = "browser_unavailable"
    BROWSER_CRASH = "browser_crash"
    NAVIGATION = "navigation"
    ELEMENT_NOT_FOUND = "element_not_found"
    CONSOLE_ERROR = "console_error"
    HTTP_ERROR = "http_error"
    ABORTED = "aborted"  # cut off by the agent's shutdown
    AGENT_BUSY = "agent_busy"  # the agent could not provide what the run needed in time
    INTERNAL = "internal"  # a bug in Journeyman, never the target's fault


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    ABORTED = "aborted"  # cut off by the agent's shutdown
    NOT_STARTED = "not_started"  # the agent could not give the run what it needed in time


@dataclass(frozen=True, slots=True)
class RunIds:
    """How a run is found again: its artifacts and log events, and the backend's own trace
    (every request of the run sends ``trace_id`` in its ``traceparent`` header)."""

    run_id: str
    trace_id: str

    @classmethod
    def new(cls, journey: str, started_at: float) -> RunIds:
        stamp = datetime.fromtimestamp(started_at, UTC).strftime("%Y%m%dT%H%M%SZ")
        return cls(f"{journey}-{stamp}-{secrets.token_hex(3)}", secrets.token_hex(16))


@dataclass(frozen=True, slots=True)
class Measurement:
    """One number a step measured: ``group`` and ``name`` (``phases``/``connect``), its
    value and unit. A group of one value has the name ``""``. How a group is exported is
    declared by the step kind (:class:`agent.steps.kind.Measure`)."""

    group: str
    name: str
    value: float
    unit: Unit


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request and its response as a step saw them, masked (``run --debug``).
    ``body`` is the start of the response body, kept only when the run asks for it
    (``RunEnvironment.body_limit``); ``size`` is the bytes read of it."""

    method: str
    url: str
    status: int
    content_type: str
    size: int
    body: str = ""


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of one attempt."""

    name: str
    kind: str  # the step kind: http, browser, ...
    ok: bool
    started_at: float  # unix time
    duration: float  # seconds; HTTP steps: the sum of their phases, timed on the wire
    reason: FailureReason | None = None
    message: str = ""  # what was expected and what was seen (masked)
    measurements: tuple[Measurement, ...] = ()
    artifacts: tuple[str, ...] = ()  # paths of files written for this step
    exchanges: tuple[Exchange, ...] = ()  # HTTP steps: each request (redirect hop) sent

    def values(self, group: str) -> dict[str, float]:
        """The measurements of ``group`` by name (``{"connect": 0.002, ...}``)."""
        return {m.name: m.value for m in self.measurements if m.group == group}

    def value(self, group: str, name: str = "") -> float | None:
        """One measurement's value, or None when the step did not measure it."""
        return next(
            (m.value for m in self.measurements if m.group == group and m.name == name), None
        )


@dataclass(frozen=True, slots=True)
class RunResult:
    """One run of a journey: the last attempt's steps, and how many attempts it took."""

    journey: str
    business_process: str
    persona: str
    run_id: str
    trace_id: str  # W3C trace id sent in every request's traceparent header
    started_at: float  # unix time of the first attempt
    duration: float  # seconds of the last attempt, end to end
    outcome: Outcome
    attempts: int
    steps: tuple[StepResult, ...] = ()
    reason: FailureReason | None = None
    failed_step: str | None = None
    message: str = ""
    artifacts: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS
