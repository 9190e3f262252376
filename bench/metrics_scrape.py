"""CPU of /metrics: what a scrape costs on the event loop, and what each result costs.

500 journeys x 10 HTTP steps (5 phases each, a certificate expiry on the first step),
every journey run 3 times, plus the scheduler's per-journey counter
(``journeyman_skipped_runs``) that the agent serves beside them.

Where the work happens, in the agent: each result updates its journey's series and
renders its block of text **on the event loop, at export time** ("updates" below, per
result); a scrape joins the blocks **on the loop** (only when one changed since the last
scrape), and writes the other series (build, catalog, the scheduler's per-journey
counters) **in a worker thread**; gzip of the joined journey text runs in a worker thread
too (zlib releases the GIL), once per change, and only the small rest on the loop.

Cases: the CPU between two scrapes is the updates since the last scrape plus the scrape.

- idle: nothing changed since the last scrape;
- 25% changed: a quarter of the journeys have a new result (every 60 s, scraped every 15 s);
- all changed: every journey has a new result (every 15 s, scraped every 15 s);
- uncached: ``generate_latest`` on the exporter's registry (``collect()``, for reference).

Baseline: prometheus-client's own Counter/Gauge/Histogram objects holding the same
series, updated with the same results and rendered by ``generate_latest``, all on the
loop, as a plain exporter would. ``_created`` samples are switched off on both sides
(``disable_created_metrics``), so both write the same samples; the agent itself keeps
them on its own counters. Cases are interleaved, in rounds; each prints the median
[min..max] of the rounds, and the ratio to the baseline of the same case.

Run: ``PYTHONPATH=. .venv/bin/python bench/metrics_scrape.py [journeys] [steps] [rounds]``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
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


class Baseline:
    """The same series with prometheus-client's metric objects (as a plain exporter would)."""

    def __init__(self, loaded: list[Journey]) -> None:
        self.registry = reg = CollectorRegistry()
        info = Gauge("journey_info", "i", [*J, "service", "application", "owner",
                                           "criticality", "title"], registry=reg)  # fmt: skip
        threshold = Gauge("journey_latency_threshold_seconds", "t", J, registry=reg)
        self.runs = Counter("journey_runs_total", "r", [*J, "outcome"], registry=reg)
        self.failures = Counter("journey_failures_total", "f", [*J, "reason", "step"],
                                registry=reg)  # fmt: skip
        self.slow = Counter("journey_slow_runs_total", "s", J, registry=reg)
        self.retries = Counter("journey_retries_total", "r", J, registry=reg)
        self.success = Gauge("journey_success", "s", J, registry=reg)
        self.last = Gauge("journey_last_run_timestamp_seconds", "l", J, registry=reg)
        self.last_ok = Gauge("journey_last_success_timestamp_seconds", "l", J, registry=reg)
        self.duration = Histogram("journey_duration_seconds", "d", J, buckets=DURATION_BUCKETS,
                                  registry=reg)  # fmt: skip
        self.step_duration = Histogram("journey_step_duration_seconds", "d", [*J, "step"],
                                       buckets=STEP_BUCKETS, registry=reg)  # fmt: skip
        self.phase = Counter("journey_http_phase_seconds_total", "p", [*J, "step", "phase"],
                             registry=reg)  # fmt: skip
        self.expiry = Gauge("journey_tls_cert_expiry_timestamp_seconds", "e", [*J, "step"],
                            registry=reg)  # fmt: skip
        skipped_runs(reg, loaded)
        self.labels = {j.journey: [j.journey, j.business_process, j.persona.value, "bench"]
                       for j in loaded}  # fmt: skip
        for j in loaded:
            labels = self.labels[j.journey]
            info.labels(*labels, "", "", j.owner, j.criticality, "").set(1)
            threshold.labels(*labels).set(2.0)
            self.slow.labels(*labels)
            self.retries.labels(*labels)
            for outcome in Outcome:
                self.runs.labels(*labels, outcome.value)

    def export(self, run: RunResult) -> None:
        labels = self.labels[run.journey]
        self.runs.labels(*labels, run.outcome.value).inc()
        self.success.labels(*labels).set(float(run.ok))
        self.last.labels(*labels).set(run.started_at)
        if run.ok:
            self.last_ok.labels(*labels).set(run.started_at)
            self.duration.labels(*labels).observe(run.duration)
        else:
            self.failures.labels(*labels, str(run.reason), run.failed_step or "").inc()
        for step in run.steps:
            if step.ok:
                self.step_duration.labels(*labels, step.name).observe(step.duration)
                for name, seconds in step.values("phases").items():
                    self.phase.labels(*labels, step.name, name).inc(seconds)
            cert_expiry = step.value("cert_expiry")
            if cert_expiry is not None:
                self.expiry.labels(*labels, step.name).set(cert_expiry)


def skipped_runs(registry: CollectorRegistry, loaded: list[Journey]) -> None:
    """The scheduler's per-journey counter, as the agent registers it."""
    skipped = Counter("journeyman_skipped_runs", "Runs not started", J, registry=registry)
    for j in loaded:
        skipped.labels(j.journey, j.business_process, j.persona.value, "bench")


def _each(export: Callable[[RunResult], None], results: list[RunResult]) -> None:
    for run in results:
        export(run)


def cpu_ms(call: Callable[[], object]) -> float:
    start = time.process_time()
    call()
    return (time.process_time() - start) * 1000


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} [{min(values):.1f}..{max(values):.1f}]"


def samples(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if not line.startswith(b"#"))


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    disable_created_metrics()  # type: ignore[no-untyped-call]
    loaded = journeys(count, steps)
    runs = [result(j, n) for n in range(3) for j in loaded]
    exporter = PrometheusExporter(CollectorRegistry(), "bench")
    skipped_runs(exporter.registry, loaded)
    exporter.set_inventory(loaded, None)
    plain = Baseline(loaded)
    for run in runs:
        exporter.export(run)
        plain.export(run)
    text, base_text = exporter.render(), generate_latest(plain.registry)
    print(f"{count} journeys x {steps} HTTP steps: {samples(text):,} samples, "
          f"{len(text) / 1e6:.1f} MB; baseline {samples(base_text):,} samples, "
          f"{len(base_text) / 1e6:.1f} MB (no _created on either side; ours adds build_info); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip

    changed = {"idle": 0, "25% changed": count // 4, "all changed": count}
    scrapes: dict[str, Callable[[], object]] = {
        "ours": exporter.journey_text,
        "baseline": partial(generate_latest, plain.registry),
    }
    exports: dict[str, Callable[[RunResult], None]] = {
        "ours": exporter.export,
        "baseline": plain.export,
    }
    figures: dict[str, list[float]] = {}
    for n in range(rounds):
        again = [replace(r, run_id=f"again-{n}") for r in runs[-count:]]
        for case, changes in changed.items():
            for side in ("ours", "baseline"):
                updates = cpu_ms(partial(_each, exports[side], again[:changes]))
                scrape = cpu_ms(scrapes[side])
                thread = cpu_ms(exporter.other_text) if side == "ours" else 0.0
                figures.setdefault(f"{case}/{side}/updates", []).append(updates)
                figures.setdefault(f"{case}/{side}/scrape", []).append(scrape)
                figures.setdefault(f"{case}/{side}/thread", []).append(thread)
                total = updates + scrape + thread
                figures.setdefault(f"{case}/{side}/total", []).append(total)
        deflate = zlib.compressobj(1, zlib.DEFLATED, 31).compress
        figures.setdefault("gzip", []).append(cpu_ms(partial(deflate, exporter.journey_text()[1])))
        figures.setdefault("uncached", []).append(
            cpu_ms(partial(generate_latest, exporter.registry))
        )

    print(f"CPU ms between two scrapes, median [min..max] of {rounds} interleaved rounds:")
    print(f"  {'case':<13} {'side':<9} {'updates (loop)':<22} {'scrape (loop)':<22} "
          f"{'scrape (thread)':<22} {'total':<22} vs baseline")  # fmt: skip
    for case in changed:
        base = statistics.median(figures[f"{case}/baseline/total"])
        for name in ("ours", "baseline"):
            row = figures[f"{case}/{name}/total"]
            print(f"  {case:<13} {name:<9} {spread(figures[f'{case}/{name}/updates']):<22} "
                  f"{spread(figures[f'{case}/{name}/scrape']):<22} "
                  f"{spread(figures[f'{case}/{name}/thread']):<22} {spread(row):<22} "
                  f"{base / statistics.median(row):.1f}x less")  # fmt: skip
    per_result = [u * 1000 / count for u in figures["all changed/ours/updates"]]
    print(f"  export of one result (record + render its {steps}-step journey, on the loop): "
          f"{spread(per_result).strip()} us")  # fmt: skip
    print(f"  gzip of the journey text (once per change, in a worker thread): "
          f"{spread(figures['gzip']).strip()} ms")  # fmt: skip
    print(f"  uncached generate_latest on the exporter's registry: "
          f"{spread(figures['uncached']).strip()} ms")  # fmt: skip


if __name__ == "__main__":
    main()
