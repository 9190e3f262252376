"""CPU per /metrics scrape: the exporter's cached text vs uncached vs plain prometheus-client.

500 journeys x 10 HTTP steps (5 phases each, a certificate expiry on the first step),
every journey run 3 times. Four ways to produce the same series are timed (CPU time,
median of several scrapes):

- cached, idle: nothing changed since the last scrape (the joined text is reused);
- cached, 25% changed: a quarter of the journeys have a new result since the last
  scrape (500 journeys every 60 s, scraped every 15 s);
- uncached: ``generate_latest`` on the exporter's registry (every sample encoded);
- baseline: prometheus-client's own Counter/Gauge/Histogram objects holding the
  same series, rendered by ``generate_latest``, as a plain implementation would.

Run: ``PYTHONPATH=. .venv/bin/python bench/metrics_scrape.py [journeys] [steps]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from agent.language.model import Journey
from agent.run.results import FailureReason, Measurement, Outcome, RunResult, StepResult
from agent.steps.kind import Unit
from exporters.prometheus import DURATION_BUCKETS, STEP_BUCKETS, PrometheusExporter

PHASES = {"connect": 0.002, "tls": 0.004, "send": 0.0001, "wait": 0.12, "receive": 0.003}
J = ["journey", "business_process", "persona", "location"]
SCRAPES = 7


def journeys(count: int, steps: int) -> list[Journey]:
    return [
        Journey.model_validate(
            {
                "journey": f"journey-{i:04d}",
                "business_process": f"process-{i % 20:02d}",
                "owner": "team",
                "slo": {"latency": {"threshold": "2s", "objective": "95%"}},
                "steps": [
                    {"name": f"step {s}", "http": {"get": "https://example.test/"}}
                    for s in range(steps)
                ],
            }
        )
        for i in range(count)
    ]


def _measurements(step: int) -> tuple[Measurement, ...]:
    phases = tuple(
        Measurement("phases", name, value, Unit.SECONDS) for name, value in PHASES.items()
    )
    if step != 0:
        return phases
    return (*phases, Measurement("cert_expiry", "", 2e9, Unit.TIMESTAMP))


def result(journey: Journey, n: int) -> RunResult:
    ok = n % 3 != 2
    steps = tuple(
        StepResult(
            step.name,
            "http",
            ok or s < 2,
            1e9 + n,
            0.13 + s / 100,
            measurements=_measurements(s),
        )
        for s, step in enumerate(journey.steps[: None if ok else 3])
    )
    return RunResult(
        journey.journey, journey.business_process, "customer", f"r{n}", "0" * 32, 1e9 + n,
        1.5 + n / 10, Outcome.SUCCESS if ok else Outcome.FAILURE, 1, steps,
        reason=None if ok else FailureReason.HTTP_STATUS,
        failed_step=None if ok else steps[-1].name,
    )  # fmt: skip


def baseline(loaded: list[Journey], runs: list[RunResult]) -> CollectorRegistry:
    """The same series with prometheus-client's metric objects (as a plain exporter would)."""
    reg = CollectorRegistry()
    info = Gauge("journey_info", "i", [*J, "service", "application", "owner", "criticality",
                                       "title"], registry=reg)  # fmt: skip
    threshold = Gauge("journey_latency_threshold_seconds", "t", J, registry=reg)
    runs_total = Counter("journey_runs_total", "r", [*J, "outcome"], registry=reg)
    failures = Counter("journey_failures_total", "f", [*J, "reason", "step"], registry=reg)
    slow = Counter("journey_slow_runs_total", "s", J, registry=reg)
    retries = Counter("journey_retries_total", "r", J, registry=reg)
    success = Gauge("journey_success", "s", J, registry=reg)
    last = Gauge("journey_last_run_timestamp_seconds", "l", J, registry=reg)
    last_ok = Gauge("journey_last_success_timestamp_seconds", "l", J, registry=reg)
    duration = Histogram("journey_duration_seconds", "d", J, buckets=DURATION_BUCKETS,
                         registry=reg)  # fmt: skip
    step_duration = Histogram("journey_step_duration_seconds", "d", [*J, "step"],
                              buckets=STEP_BUCKETS, registry=reg)  # fmt: skip
    phase = Counter("journey_http_phase_seconds_total", "p", [*J, "step", "phase"],
                    registry=reg)  # fmt: skip
    expiry = Gauge("journey_tls_cert_expiry_timestamp_seconds", "e", [*J, "step"], registry=reg)
    by_id = {j.journey: j for j in loaded}
    for j in loaded:
        labels = [j.journey, j.business_process, j.persona.value, "bench"]
        info.labels(*labels, "", "", j.owner, j.criticality, "").set(1)
        threshold.labels(*labels).set(2.0)
        slow.labels(*labels)
        retries.labels(*labels)
        for outcome in Outcome:
            runs_total.labels(*labels, outcome.value)
    for run in runs:
        j = by_id[run.journey]
        labels = [j.journey, j.business_process, j.persona.value, "bench"]
        runs_total.labels(*labels, run.outcome.value).inc()
        success.labels(*labels).set(float(run.ok))
        last.labels(*labels).set(run.started_at)
        if run.ok:
            last_ok.labels(*labels).set(run.started_at)
            duration.labels(*labels).observe(run.duration)
        else:
            failures.labels(*labels, str(run.reason), run.failed_step or "").inc()
        for step in run.steps:
            if step.ok:
                step_duration.labels(*labels, step.name).observe(step.duration)
                for name, seconds in step.values("phases").items():
                    phase.labels(*labels, step.name, name).inc(seconds)
            cert_expiry = step.value("cert_expiry")
            if cert_expiry is not None:
                expiry.labels(*labels, step.name).set(cert_expiry)
    return reg


def cpu_ms(render: Callable[[], bytes], before: Callable[[], object] = lambda: None) -> float:
    """Median CPU milliseconds of ``render``; ``before`` runs untimed ahead of each call."""
    times = []
    for _ in range(SCRAPES):
        before()
        start = time.process_time()
        render()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    loaded = journeys(count, steps)
    runs = [result(j, n) for n in range(3) for j in loaded]
    exporter = PrometheusExporter(CollectorRegistry(), "bench")
    exporter.set_inventory(loaded, None)
    for run in runs:
        exporter.export(run)
    plain = baseline(loaded, runs)
    text = exporter.render()
    samples = sum(1 for line in text.splitlines() if not line.startswith(b"#"))
    base_text = generate_latest(plain)
    base_samples = sum(1 for line in base_text.splitlines() if not line.startswith(b"#"))
    print(f"{count} journeys x {steps} steps: {samples} samples, {len(text) / 1e6:.1f} MB "
          f"(baseline {base_samples} samples, {len(base_text) / 1e6:.1f} MB)")  # fmt: skip

    quarter = [replace(r, run_id="again") for r in runs[: count // 4]]
    figures = {
        "cached, idle": cpu_ms(exporter.render),
        "cached, 25% changed": cpu_ms(exporter.render, lambda: [*map(exporter.export, quarter)]),
        "uncached (generate_latest)": cpu_ms(lambda: generate_latest(exporter.registry)),
        "baseline prometheus-client": cpu_ms(lambda: generate_latest(plain)),
    }
    base = figures["baseline prometheus-client"]
    for name, ms in figures.items():
        print(f"{name:28} {ms:8.1f} ms CPU per scrape   {base / ms:6.1f}x faster than baseline")


if __name__ == "__main__":
    main()
