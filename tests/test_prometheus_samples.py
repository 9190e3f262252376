"""Journeys, a catalog and RunResults shared by the metrics, status and server tests.

Timestamps are fixed so that exposition text and pages are reproducible.
"""

from __future__ import annotations

from typing import Any

from agent.language.catalog import Catalog
from agent.language.model import Journey
from agent.run.results import FailureReason, Measurement, Outcome, RunResult, StepResult
from agent.steps.kind import Unit

__all__ = ["CLOCK", "T0", "catalog", "checkout", "partner_order", "results"]

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
CLOCK = T0 + 3600 * 2  # 10:00 UTC, 11:00 in Europe/Paris: a peak hour of order-to-cash


def checkout(**changes: object) -> Journey:
    """A customer journey with a latency SLO: two HTTP steps and a browser step."""
    spec = {
        "journey": "checkout",
        "title": "Customer buys a product",
        "business_process": "order-to-cash",
        "persona": "customer",
        "service": "storefront",
        "application": "shop",
        "owner": "web-team",
        "criticality": "critical",
        "slo": {"availability": "99.5%", "latency": {"threshold": "1s", "objective": "95%"}},
        "steps": [
            {"name": "home page", "http": {"get": "https://shop.test/"}},
            {"name": "log in", "http": {"post": "https://shop.test/api/login"}},
            {"name": "pay", "browser": [{"goto": "https://shop.test/cart"}]},
        ],
    }
    return Journey.model_validate({**spec, **changes})


def partner_order(**changes: object) -> Journey:
    """A partner journey with no SLO and one HTTP step."""
    step = {"name": "submit order", "http": {"post": "https://api.test/orders"}}
    spec = {"journey": "partner-order", "business_process": "partner-orders"}
    return Journey.model_validate(
        {**spec, "persona": "partner", "owner": "b2b-team", "steps": [step], **changes}
    )


def catalog() -> Catalog:
    """Two business processes: a daily profile in Paris time, and a flat rate with a peak."""
    profile = [10.0] * 24
    profile[11] = 120.0
    return Catalog.model_validate(
        {
            "timezone": "Europe/Paris",
            "business_processes": [
                {
                    "id": "order-to-cash",
                    "name": "Order to cash",
                    "owner": "sales",
                    "volume": {"per_hour": profile},
                    "value_per_transaction": 42.5,
                },
                {
                    "id": "partner-orders",
                    "name": "Partner orders",
                    "volume": {"per_hour": 30, "peak_per_hour": 90, "peak_hours": [2, 3]},
                },
            ],
        }
    )


def _measured(group: str, values: dict[str, float], unit: Unit) -> tuple[Measurement, ...]:
    return tuple(Measurement(group, name, value, unit) for name, value in values.items())


def _http(
    name: str,
    start: float,
    ok: bool = True,
    cert_expiry: float | None = None,
    reason: FailureReason | None = None,
) -> StepResult:
    phases = {"connect": 0.01, "tls": 0.02, "send": 0.001, "wait": 0.2, "receive": 0.005}
    measured = _measured("phases", phases, Unit.SECONDS)
    measured += _measured("status_code", {"": 200}, Unit.CODE)
    if cert_expiry is not None:
        measured += _measured("cert_expiry", {"": cert_expiry}, Unit.TIMESTAMP)
    return StepResult(name, "http", ok, start, 0.25, reason=reason, measurements=measured)


def results() -> list[RunResult]:
    """Runs covering every series: slow success, step failure, retry, outside-step failure,
    shutdown abort, and a journey that is not loaded."""
    expiry = T0 + 30 * 86400
    vitals = {"ttfb": 0.12, "fcp": 0.6, "lcp": 1.9, "inp": 0.15}
    measured = _measured("vitals", vitals, Unit.SECONDS) + _measured("cls", {"": 0.07}, Unit.SCORE)
    measured += _measured("console_errors", {"": 2}, Unit.COUNT)
    measured += _measured("failed_requests", {"": 1}, Unit.COUNT)
    browser = StepResult("pay", "browser", True, T0 + 1, 0.9, measurements=measured)
    run: dict[str, Any] = {
        "business_process": "order-to-cash",
        "persona": "customer",
        "trace_id": "0" * 32,
    }
    return [
        RunResult(
            "checkout",
            run_id="r1",
            started_at=T0,
            duration=1.4,
            outcome=Outcome.SUCCESS,
            attempts=1,
            steps=(_http("home page", T0, cert_expiry=expiry), _http("log in", T0 + 0.3), browser),
            **run,
        ),
        RunResult(
            "checkout",
            run_id="r2",
            started_at=T0 + 60,
            duration=0.5,
            outcome=Outcome.FAILURE,
            attempts=2,
            reason=FailureReason.HTTP_STATUS,
            failed_step="log in",
            message="expected status 200, got 503",
            steps=(
                _http("home page", T0 + 60),
                _http("log in", T0 + 60.3, ok=False, reason=FailureReason.HTTP_STATUS),
            ),
            **run,
        ),
        RunResult(
            "checkout",
            run_id="r3",
            started_at=T0 + 120,
            duration=1.0,
            outcome=Outcome.SUCCESS,
            attempts=1,
            **run,
        ),
        RunResult(
            "partner-order",
            "partner-orders",
            "partner",
            "r4",
            "1" * 32,
            T0 + 30,
            0.01,
            Outcome.FAILURE,
            1,
            reason=FailureReason.CONFIG,
            message="environment variable 'API_TOKEN' is not set",
        ),
        RunResult(
            "partner-order",
            "partner-orders",
            "partner",
            "r5",
            "2" * 32,
            T0 + 90,
            0.2,
            Outcome.ABORTED,
            1,
            reason=FailureReason.ABORTED,
        ),
        RunResult("ghost", "nowhere", "customer", "r6", "3" * 32, T0, 1.0, Outcome.SUCCESS, 1),
    ]
