"""CPU of /metrics: what a scrape costs the agent, and what each result costs.

500 journeys x 10 HTTP steps (5 phases each, a certificate expiry on the first step),
every journey run 3 times, plus the scheduler's per-journey counter
(``journeyman_skipped_runs``) that the agent serves beside them.

Where the work happens, in the agent: each result updates its journey's series and
renders its block of text **on the event loop, at export time** ("updates" below, per
result); a scrape lists the rendered pieces (once per change, on the loop), writes the
other series (build, catalog, the scheduler's per-journey counters) **in a worker
thread**, and deflates the journey pieces **in a worker thread** once per change (ISA-L,
which releases the GIL), then only the rest per scrape.

Cases: the CPU between two scrapes is the updates since the last scrape (for ours with
the listing of the pieces, which the first scrape after a change does on the loop) plus
one scrape served over HTTP by the agent's own endpoint
(``agent.serve.server.start_server``) and fetched with gzip, as Prometheus asks: all the
CPU of this process during the scrape (loop, worker threads, the kernel's send on both
ends of the loopback), less the fetching client thread's own. For ours, a plain-text
scrape follows (a scraper that takes no gzip), also printed.

The issue's footing: issue 13's "207 ms per scrape, goal <= 20 ms" came from this bench
when it timed ``exporter.render()`` after the updates (those untimed), with no HTTP and
no gzip (the endpoint had none then). Today a result's render is part of its update, so
the same figure counts the updates whole (recording too, which the old one left out),
the listing and the other series written; it is printed, and its row carries the goal.
The served gzip scrape adds the deflate of the whole text (~14 MB, 6-8 ms with ISA-L)
and the send.

- idle: nothing changed since the last scrape;
- 25% changed: a quarter of the journeys have a new result (every 60 s, scraped every 15 s);
- all changed: every journey has a new result (every 15 s, scraped every 15 s);
- uncached: ``generate_latest`` on the exporter's registry (``collect()``, for reference).

Baseline: prometheus-client's own Counter/Gauge/Histogram objects holding the same
series, updated with the same results and rendered by ``generate_latest`` in the
handler, all on the loop, as a plain exporter would, behind the same endpoint (so its
gzip is ISA-L's too). ``_created`` samples are switched off on both sides
(``disable_created_metrics``), so both write the same journey samples; the agent itself
keeps them on its own counters, and the scheduler's skipped-runs counter on our side is
the agent's own (:class:`agent.schedule.skipped.SkippedRuns`), which always writes them
(one more sample per journey than the baseline's). Cases are interleaved, in rounds;
each prints the median [min..max] of the rounds, and the ratio to the baseline of the
same case. Deflating the journey text is also timed alone, against zlib's level 1 (what
the endpoint used before ISA-L).

Loop stall: the same cases once more, each scrape served the same way while a 1 ms
ticker on the loop records how late it wakes: the longest wake-up during the scrape is
how long the scrape held the loop (every run due meanwhile starts that late).

Run: ``.venv/bin/python -m bench.metrics_scrape [--quick] [journeys] [steps] [rounds]``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import urllib.request
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
from agent.schedule.skipped import SkippedRuns
from agent.serve.gzipped import deflate
from agent.serve.server import MetricsSource, start_server
from agent.steps.kind import Unit
from bench import common
from bench.common import Row, bench_arguments, write_rows
from exporters.prometheus import DURATION_BUCKETS, STEP_BUCKETS, PrometheusExporter
from exporters.status import StatusBoard

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
    """The scheduler's per-journey counter, as a plain exporter would register it."""
    skipped = Counter("journeyman_skipped_runs", "Runs not started", J, registry=registry)
    for j in loaded:
        skipped.labels(j.journey, j.business_process, j.persona.value, "bench")


def agent_skipped_runs(registry: CollectorRegistry, loaded: list[Journey]) -> None:
    """The scheduler's per-journey counter, as the agent registers it."""
    skipped = SkippedRuns(registry)
    for j in loaded:
        skipped.add((j.journey, j.business_process, j.persona.value, "bench"))


def _each(export: Callable[[RunResult], None], results: list[RunResult]) -> None:
    for run in results:
        export(run)


def cpu_ms(call: Callable[[], object]) -> float:
    start = time.process_time()
    call()
    return (time.process_time() - start) * 1000


def spread(values: list[float]) -> str:
    return f"{common.spread(values):>7}"


class PlainSource:
    """The baseline behind the agent's endpoint: prometheus-client renders at scrape time."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def render(self, openmetrics: bool = False) -> bytes:
        return generate_latest(self.registry)


async def served_cpu_ms(url: str, coding: str = "gzip") -> float:
    """CPU ms of this process while the endpoint at ``url`` serves one scrape (gzip, or
    ``identity``: plain text), less the fetching client's."""
    client = 0.0

    def fetch() -> None:
        nonlocal client
        start = time.thread_time()
        with urllib.request.urlopen(urllib.request.Request(
            f"{url}/metrics", headers={"Accept-Encoding": coding})) as answer:  # fmt: skip
            answer.read()
        client = time.thread_time() - start

    start = time.process_time()
    await asyncio.to_thread(fetch)
    return (time.process_time() - start - client) * 1000


async def loop_stall(source: MetricsSource) -> float:
    """Milliseconds the loop was held while ``source`` served one scrape (gzip, text)."""
    server = await start_server("127.0.0.1:0", metrics=source, board=StatusBoard(),
                                ready=lambda: True)  # fmt: skip
    stall = 0.0

    async def tick() -> None:
        nonlocal stall
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(0.001)
            stall = max(stall, time.perf_counter() - asked - 0.001)

    ticker = asyncio.create_task(tick())
    try:
        await asyncio.sleep(0.01)
        await served_cpu_ms(server.url)
    finally:
        ticker.cancel()
        await server.close()
    return stall * 1000


async def stalls(exporter: PrometheusExporter, plain: Baseline, runs: list[RunResult],
                 changed: dict[str, int], rounds: int) -> dict[str, list[float]]:  # fmt: skip
    """Per case and side, the loop stall of an HTTP scrape after that case's updates."""
    sources: dict[str, MetricsSource] = {"ours": exporter, "baseline": PlainSource(plain.registry)}
    exports = {"ours": exporter.export, "baseline": plain.export}
    figures: dict[str, list[float]] = {}
    for n in range(rounds):
        again = [replace(r, run_id=f"stall-{n}") for r in runs]
        for case, changes in changed.items():
            for side, source in sources.items():
                _each(exports[side], again[:changes])
                figures.setdefault(f"{case}/{side}", []).append(await loop_stall(source))
    return figures


def samples(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if not line.startswith(b"#"))


async def cpu_figures(exporter: PrometheusExporter, plain: Baseline,
                      exports: dict[str, Callable[[RunResult], None]], runs: list[RunResult],
                      changed: dict[str, int], rounds: int) -> dict[str, list[float]]:  # fmt: skip
    """Per case and side: the CPU of the updates (for ours, with the listing of the
    journey parts), of one scrape served after them, and their total; for ours also the
    issue's footing (updates, listing and the other series written, no HTTP, no gzip);
    then deflate (ISA-L and zlib) and uncached render, once a round."""
    sources: dict[str, MetricsSource] = {"ours": exporter, "baseline": PlainSource(plain.registry)}
    servers = {side: await start_server("127.0.0.1:0", metrics=source, board=StatusBoard(),
                                        ready=lambda: True)
               for side, source in sources.items()}  # fmt: skip
    figures: dict[str, list[float]] = {}
    try:
        for n in range(rounds):
            again = [replace(r, run_id=f"again-{n}") for r in runs]
            for case, changes in changed.items():
                for side in ("ours", "baseline"):
                    updates = cpu_ms(partial(_each, exports[side], again[:changes]))
                    if side == "ours":
                        # listed once per change, on the loop, by the first scrape after it
                        updates += cpu_ms(exporter.journey_parts)
                        rest = cpu_ms(exporter.other_text)  # the scrape writes it again
                        figures.setdefault(f"{case}/footing", []).append(updates + rest)
                    scrape = await served_cpu_ms(servers[side].url)
                    figures.setdefault(f"{case}/{side}/updates", []).append(updates)
                    figures.setdefault(f"{case}/{side}/scrape", []).append(scrape)
                    figures.setdefault(f"{case}/{side}/total", []).append(updates + scrape)
                    if side == "ours":  # the same text once more, as plain text
                        plain_text = await served_cpu_ms(servers[side].url, "identity")
                        figures.setdefault(f"{case}/plain", []).append(plain_text)
            parts = exporter.journey_parts()[1]
            figures.setdefault("deflate", []).append(cpu_ms(partial(deflate, parts)))
            zlib_gzip = zlib.compressobj(1, zlib.DEFLATED, 31).compress
            figures.setdefault("zlib", []).append(cpu_ms(partial(zlib_gzip, b"".join(parts))))
            figures.setdefault("uncached", []).append(
                cpu_ms(partial(generate_latest, exporter.registry))
            )
    finally:
        for server in servers.values():
            await server.close()
    return figures


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("journeys", type=int, nargs="?", default=500, help="default 500")
    parser.add_argument("steps", type=int, nargs="?", default=10, help="steps per journey")
    parser.add_argument("rounds", type=int, nargs="?", help="default 5 (quick 3)")
    args = parser.parse_args()
    count = args.journeys
    steps, rounds = args.steps, args.rounds or (3 if args.quick else 5)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    loaded = journeys(count, steps)
    runs = [result(j, n) for n in range(3) for j in loaded]
    exporter = PrometheusExporter(CollectorRegistry(), "bench")
    agent_skipped_runs(exporter.registry, loaded)
    exporter.set_inventory(loaded, None)
    plain = Baseline(loaded)
    for run in runs:
        exporter.export(run)
        plain.export(run)
    text, base_text = exporter.render(), generate_latest(plain.registry)
    print(f"{count} journeys x {steps} HTTP steps: {samples(text):,} samples, "
          f"{len(text) / 1e6:.1f} MB; baseline {samples(base_text):,} samples, "
          f"{len(base_text) / 1e6:.1f} MB (no _created on either side but in ours' skipped "
          f"runs, as in the agent; ours adds build_info); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip

    changed = {"idle": 0, "25% changed": count // 4, "all changed": count}
    exports: dict[str, Callable[[RunResult], None]] = {
        "ours": exporter.export,
        "baseline": plain.export,
    }
    figures = asyncio.run(cpu_figures(exporter, plain, exports, runs[-count:], changed, rounds))
    print(f"CPU ms between two scrapes, median [min..max] of {rounds} interleaved rounds:")
    print(f"  {'case':<13} {'side':<9} {'updates (loop)':<22} {'scrape (gzip, served)':<24} "
          f"{'total':<22} vs baseline")  # fmt: skip
    for case in changed:
        base = statistics.median(figures[f"{case}/baseline/total"])
        for name in ("ours", "baseline"):
            row = figures[f"{case}/{name}/total"]
            print(f"  {case:<13} {name:<9} {spread(figures[f'{case}/{name}/updates']):<22} "
                  f"{spread(figures[f'{case}/{name}/scrape']):<24} {spread(row):<22} "
                  f"{base / statistics.median(row):.1f}x less")  # fmt: skip
    footing = ", ".join(f"{c} {spread(figures[f'{c}/footing']).strip()}" for c in changed)
    print(f"  ours on the issue's footing (the updates, listing the parts and writing the other "
          f"series; no HTTP, no gzip): {footing} ms")  # fmt: skip
    plain_texts = ", ".join(f"{c} {spread(figures[f'{c}/plain']).strip()}" for c in changed)
    print(f"  ours, a plain-text scrape right after (its parts already listed): {plain_texts} ms")
    per_result = [u * 1000 / count for u in figures["all changed/ours/updates"]]
    print(f"  export of one result (record + render its {steps}-step journey, on the loop; "
          f"with its share of the listing): {spread(per_result).strip()} us")  # fmt: skip
    print(f"  of a scrape after a change, deflating the journey text (ISA-L, worker thread): "
          f"{spread(figures['deflate']).strip()} ms; zlib level 1 on the same text: "
          f"{spread(figures['zlib']).strip()} ms")  # fmt: skip
    print(f"  uncached generate_latest on the exporter's registry: "
          f"{spread(figures['uncached']).strip()} ms")  # fmt: skip
    held = asyncio.run(stalls(exporter, plain, runs[-count:], changed, rounds))
    print("longest loop stall during one HTTP scrape (gzip), ms, median [min..max]:")
    for case in changed:
        print(f"  {case:<13} ours {spread(held[f'{case}/ours'])}   "
              f"baseline {spread(held[f'{case}/baseline'])}")  # fmt: skip
    what = f"{count} journeys x {steps} steps"
    rows = [
        Row("metrics_scrape", f"/metrics CPU per change, the issue's footing (no HTTP, no "
            f"gzip), {what}, 25% changed", statistics.median(figures["25% changed/footing"]),
            "", float("nan"), "ms", "<= 20 ms"),
    ] + [
        Row("metrics_scrape", f"/metrics CPU between gzip scrapes, {what}, {label}",
            statistics.median(figures[f"{case}/ours/total"]), "prometheus-client, no _created",
            statistics.median(figures[f"{case}/baseline/total"]), "ms", "measured")
        for case, label in (("25% changed", "25% changed"),
                            ("all changed", "every journey changed"))
    ] + [
        Row("metrics_scrape", f"loop stall during a scrape, {what}, every journey changed",
            statistics.median(held["all changed/ours"]), "prometheus-client, no _created",
            statistics.median(held["all changed/baseline"]), "ms", "< 25 ms"),
    ]  # fmt: skip
    write_rows(args.rows, rows)


if __name__ == "__main__":
    main()
