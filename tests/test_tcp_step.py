"""The tcp step against real loopback servers: replies, each failure reason, TLS, the
journey-file errors, and its phases exported by a whole journey run."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ContextFactory
from http_servers import TlsServerFiles, serve_raw
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from agent.language.loader import load
from agent.language.model import Journey
from agent.run.context import RunEnvironment, StepContext, StepFailed
from agent.run.results import FailureReason, Outcome
from agent.run.runner import run_journey
from agent.run.tls import TlsContexts
from agent.steps.http.model import HttpStep
from agent.steps.http.run import run as run_http
from agent.steps.tcp.model import TcpStep
from agent.steps.tcp.run import PHASES, run
from exporters.prometheus import PrometheusExporter

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
def run_env(tmp_path: Path) -> RunEnvironment:
    """The shared fixture's environment with --ca-dir where ``tls_files`` writes its CA."""
    return RunEnvironment(environ={}, tls=TlsContexts(), ca_dir=tmp_path)


async def attempt(ctx: StepContext, **fields: Any) -> StepFailed | None:
    """Run a step named "step" made of the fields a journey file would give; its failure,
    or None when it passes."""
    try:
        await run(TcpStep.model_validate({"name": "step", **fields}), ctx)
    except StepFailed as failure:
        return failure
    return None


async def passes(ctx: StepContext, **fields: Any) -> None:
    """Run a step that must pass."""
    failure = await attempt(ctx, **fields)
    assert failure is None, f"{failure.reason}: {failure.message}"


async def fails(ctx: StepContext, **fields: Any) -> StepFailed:
    """The failure of a step that must fail."""
    failure = await attempt(ctx, **fields)
    assert failure is not None, "the step passed"
    return failure


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """``serve_raw`` for TCP: yields ``127.0.0.1:PORT``."""
    async with serve_raw(handler) as base:
        yield base.removeprefix("http://")


def sends(reply: bytes, *, then_close: bool = False) -> Handler:
    """A server that writes ``reply`` as soon as a client connects (a greeting)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply)
        await writer.drain()
        if not then_close:
            await reader.read()  # until the client closes

    return handler


async def echo_lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers each line with ``250 `` and the line."""
    while line := await reader.readline():
        writer.write(b"250 " + line)
        await writer.drain()


def tls_greeting(context: ssl.SSLContext) -> Handler:
    """A server that makes a TLS handshake, then greets."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.start_tls(context)
        except ssl.SSLError:
            return  # the client refused our certificate
        await sends(b"220 secure relay\r\n")(reader, writer)

    return handler


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


GREETING = b"220 edi.test ready\r\nsecond line, not read\r\n"


async def test_greeting_read_until_delimiter_passes_and_records_phases(
    make_context: ContextFactory,
) -> None:
    """A greeting is read up to its first "\\n" only; the phases add up to the duration."""
    ctx = make_context()
    async with serving(sends(GREETING)) as address:
        await passes(
            ctx,
            tcp={"connect": address, "read": {"until": "\n"}},
            expect={"contains": "220", "matches": r"^220 \S+ ready\r\n$", "not_contains": "second"},
        )
    phases = ctx.record.values("phases")
    assert set(phases) == {"connect", "first_byte", "read"}
    assert ctx.record.duration == pytest.approx(sum(phases.values()))


async def test_sent_text_is_rendered_and_the_reply_extracted(make_context: ContextFactory) -> None:
    """``send`` resolves ${...}; ``extract`` takes group 1 of its regex into a variable."""
    ctx = make_context(variables={"who": "journeyman"})
    async with serving(echo_lines) as address:
        await passes(
            ctx,
            tcp={"connect": address, "send": "HELO ${who}\r\n", "read": {"until": "\r\n"}},
            expect={"contains": "250 HELO ${who}"},
            extract={"greeted": {"regex": r"HELO (\w+)"}, "line": {"regex": r"^\d+"}},
        )
    assert ctx.variables["greeted"] == "journeyman"
    assert ctx.variables["line"] == "250"


async def test_secret_extraction_is_masked(make_context: ContextFactory) -> None:
    """A ``secret: true`` extraction is masked in every later output."""
    ctx = make_context()
    async with serving(sends(b"SESSION k3y-99\n")) as address:
        await passes(
            ctx,
            tcp={"connect": address, "read": {"until": "\n"}},
            extract={"session": {"regex": r"SESSION (\S+)", "secret": True}},
        )
    assert ctx.masker("token is k3y-99") == "token is ***"


async def test_read_bytes_reads_exactly_that_many(make_context: ContextFactory) -> None:
    """``bytes: 4`` stops after four bytes, though the server sent more."""
    async with serving(sends(b"ABCDEFGH")) as address:
        await passes(
            make_context(),
            tcp={"connect": address, "read": {"bytes": 4}},
            expect={"matches": "^ABCD$"},
        )


async def test_read_until_close_reads_everything(make_context: ContextFactory) -> None:
    """``until_close: true`` reads every line up to the server's close."""
    async with serving(sends(GREETING, then_close=True)) as address:
        await passes(
            make_context(),
            tcp={"connect": address, "read": {"until_close": True}},
            expect={"contains": ["ready", "not read"]},
        )


async def test_connect_only_checks_the_port_is_open(make_context: ContextFactory) -> None:
    """Without send or read, the step passes once connected; it has a connect phase only."""
    ctx = make_context()
    async with serving(sends(b"")) as address:
        await passes(ctx, tcp={"connect": address})
    assert set(ctx.record.values("phases")) == {"connect"}
    assert ctx.record.duration is not None


async def test_unmet_expectations_are_assertions_showing_the_reply(
    make_context: ContextFactory,
) -> None:
    """Each unmet expectation fails with reason assertion, expected vs the reply's excerpt."""
    cases = [
        (
            {"contains": "250"},
            "expected the reply to contain '250', got '220 edi.test ready\\r\\n'",
        ),
        ({"matches": "^5"}, "expected the reply to match '^5', got '220 edi.test ready\\r\\n'"),
        (
            {"not_contains": "edi"},
            "expected the reply not to contain 'edi', found it in '220 edi.test ready\\r\\n'",
        ),
    ]
    async with serving(sends(GREETING)) as address:
        for expect, message in cases:
            failure = await fails(
                make_context(), tcp={"connect": address, "read": {"until": "\n"}}, expect=expect
            )
            assert failure.reason is FailureReason.ASSERTION
            assert failure.message == message


async def test_slow_reply_fails_max_duration(make_context: ContextFactory) -> None:
    """A reply slower than ``max_duration`` fails with reason assertion."""

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.1)
        await sends(b"220 late\n")(reader, writer)

    async with serving(slow) as address:
        failure = await fails(
            make_context(),
            tcp={"connect": address, "read": {"until": "\n"}},
            expect={"max_duration": "10ms"},
        )
    assert failure.reason is FailureReason.ASSERTION
    expected, took = failure.message.split(", took ")
    assert expected == "expected a duration of at most 0.01s"
    assert float(took.removesuffix("s")) >= 0.1


async def test_sent_text_never_appears_in_a_failure(make_context: ContextFactory) -> None:
    """A refused login fails on the reply; the message does not repeat what was sent."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"535 denied\n")

    async with serving(refuse) as address:
        failure = await fails(
            make_context(secrets={"password": "tea-for-two"}),
            tcp={"connect": address, "send": "AUTH ${secret.password}\n", "read": {"until": "\n"}},
            expect={"contains": "235"},
        )
    assert failure.message == "expected the reply to contain '235', got '535 denied\\n'"


async def test_missing_extraction_is_extraction(make_context: ContextFactory) -> None:
    """A regex that finds nothing fails with reason extraction, naming the variable."""
    async with serving(sends(GREETING)) as address:
        failure = await fails(
            make_context(),
            tcp={"connect": address, "read": {"until": "\n"}},
            extract={"id": {"regex": "id=(\\d+)"}},
        )
    assert failure.reason is FailureReason.EXTRACTION
    assert failure.message.startswith("expected to extract 'id' from the reply")


async def test_peer_closing_before_the_delimiter_is_protocol(make_context: ContextFactory) -> None:
    """The server closes before "\\n" (or before the bytes asked): reason protocol."""
    async with serving(sends(b"220 partial", then_close=True)) as address:
        for read, wanted in (({"until": "\n"}, "'\\n'"), ({"bytes": 64}, "64 bytes")):
            failure = await fails(make_context(), tcp={"connect": address, "read": read})
            assert failure.reason is FailureReason.PROTOCOL
            assert failure.message == (
                f"expected {wanted} before {address} closed the connection, got 11 bytes: "
                "'220 partial'"
            )


async def test_reply_over_the_cap_is_too_large(make_context: ContextFactory) -> None:
    """A reply with no delimiter within ``max_bytes`` fails with too_large at the cap."""
    async with serving(sends(b"x" * 100_000)) as address:
        failure = await fails(
            make_context(), tcp={"connect": address, "read": {"until": "\n", "max_bytes": "1KB"}}
        )
    assert failure.reason is FailureReason.TOO_LARGE
    assert failure.message.startswith(
        "expected a reply of at most 1000 bytes, got more (stopped reading at 1001 bytes)"
    )


@pytest.mark.parametrize(
    ("until", "within"), [("\n", True), ("\n\n", False)], ids=["ends-at-cap", "ends-past-cap"]
)
async def test_a_delimiter_counts_within_the_cap(
    make_context: ContextFactory, until: str, within: bool
) -> None:
    """A delimiter ending exactly at ``max_bytes`` passes; one ending a byte past fails."""
    async with serving(sends(b"x" * 9 + b"\n\n" + b"y" * 50)) as address:
        read = {"until": until, "max_bytes": 10}
        failure = await attempt(make_context(), tcp={"connect": address, "read": read})
    assert (failure and failure.reason) is (None if within else FailureReason.TOO_LARGE)


async def test_refused_port_is_connect(make_context: ContextFactory) -> None:
    """Nothing listening on the port: reason connect, naming the address; no duration."""
    ctx = make_context()
    address = f"127.0.0.1:{free_port()}"
    failure = await fails(ctx, tcp={"connect": address})
    assert failure.reason is FailureReason.CONNECT
    assert failure.message.startswith(f"expected a connection to {address}, got: ")
    assert ctx.record.duration is None  # the runner's wall time stands


async def test_unresolvable_name_is_dns(
    make_context: ContextFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that does not resolve fails with reason dns (the resolver is faked: no test
    leaves loopback)."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "gateway.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    failure = await fails(make_context(), tcp={"connect": "gateway.invalid:7000"})
    assert failure.reason is FailureReason.DNS
    assert failure.message == (
        "expected 'gateway.invalid' to resolve, got: [Errno -2] Name or service not known"
    )


async def test_bad_rendered_address_is_config(make_context: ContextFactory) -> None:
    """An address that is only known at run time, and wrong, fails with reason config."""
    ctx = make_context(variables={"gateway": "edi.test"})
    failure = await fails(ctx, tcp={"connect": "${gateway}"})
    assert failure.reason is FailureReason.CONFIG
    assert failure.message.startswith("connect: must be HOST:PORT")


async def test_tls_with_a_trusted_ca_passes_and_records_expiry(
    tls_files: TlsServerFiles, make_context: ContextFactory
) -> None:
    """With the CA trusted (``verify`` a CA file), the step passes; tls is a phase and
    cert_expiry the certificate's notAfter."""
    not_after = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    server = tls_files.issued(datetime.now(UTC) - timedelta(days=1), not_after)
    ctx = make_context()
    async with serving(tls_greeting(server)) as address:
        await passes(ctx, tcp={"connect": address, "tls": True, "verify": str(tls_files.ca_path),
                 "read": {"until": "\n"}},
            expect={"contains": "220 secure"})  # fmt: skip
    phases = ctx.record.values("phases")
    assert set(phases) == set(PHASES)
    assert ctx.record.duration == pytest.approx(sum(phases.values()))
    assert ctx.record.get("cert_expiry") == not_after.timestamp()


async def test_self_signed_certificate_is_tls_unless_verify_is_off(
    tls_files: TlsServerFiles, make_context: ContextFactory
) -> None:
    """The system CAs refuse a self-signed certificate: reason tls; ``verify: false`` passes."""
    async with serving(tls_greeting(tls_files.self_signed())) as address:
        checked = {"connect": address, "tls": True, "read": {"until": "\n"}}
        failure = await fails(make_context(), tcp=checked)
        await passes(make_context(), tcp={**checked, "verify": False})
    assert failure.reason is FailureReason.TLS
    assert failure.message == f"TLS with {address} failed: self-signed certificate"


async def test_tls_to_a_plain_or_closing_server_is_tls(make_context: ContextFactory) -> None:
    """A plain-text greeting, or a close, where a TLS handshake was expected: reason tls,
    with a detail even when the error has no text (a reset)."""
    for server in (sends(GREETING), sends(b"", then_close=True)):
        async with serving(server) as address:
            failure = await fails(
                make_context(), tcp={"connect": address, "tls": True, "verify": False}
            )
        assert failure.reason is FailureReason.TLS
        assert failure.message.startswith(f"TLS with {address} failed: ")
        assert not failure.message.endswith(": ")


def journey(address: str, **step: Any) -> Journey:
    """A journey of one tcp step, reading a line from ``address``."""
    tcp = {"name": "greets", "tcp": {"connect": address, "read": {"until": "\n"}}, **step}
    return Journey.model_validate(
        {"journey": "edi", "business_process": "partner-orders", "steps": [tcp]}
    )


async def test_timeout_cancels_the_step_and_closes_the_connection(run_env: RunEnvironment) -> None:
    """A server that never answers: the run fails with timeout at the step's deadline, and
    the server sees the connection closed."""
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # returns at the client's close
        closed.set()

    async with serving(silent) as address:
        result = await run_journey(journey(address, timeout="200ms"), run_env)
        await asyncio.wait_for(closed.wait(), timeout=5)
    assert result.reason is FailureReason.TIMEOUT
    assert result.message.startswith("step did not finish within")


def samples(exporter: PrometheusExporter, metric: str) -> dict[tuple[str, ...], float]:
    """The samples of ``metric`` as {(step, phase or reason): value}."""
    found: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(exporter.render().decode()):
        for sample in family.samples:
            if sample.name == metric:
                labels = sample.labels
                found[(labels["step"], labels.get("phase") or labels["reason"])] = sample.value
    return found


async def test_journey_run_exports_tcp_phases(run_env: RunEnvironment) -> None:
    """A successful run adds its phases to journey_tcp_phase_seconds_total; a failed run
    counts its reason and adds none."""
    exporter = PrometheusExporter(CollectorRegistry(), "test")
    async with serving(sends(GREETING)) as address:
        good = journey(address, expect={"matches": "^220 "})
        exporter.set_inventory([good], None)
        passed = await run_journey(good, run_env)
    exporter.export(passed)
    refused = await run_journey(journey(f"127.0.0.1:{free_port()}"), run_env)
    exporter.export(refused)
    assert (passed.outcome, refused.reason) == (Outcome.SUCCESS, FailureReason.CONNECT)
    phases = samples(exporter, "journey_tcp_phase_seconds_total")
    assert set(phases) == {("greets", "connect"), ("greets", "first_byte"), ("greets", "read")}
    assert phases[("greets", "connect")] == passed.steps[0].value("phases", "connect")
    assert samples(exporter, "journey_failures_total") == {("greets", "connect"): 1.0}


BAD_STEPS = {
    "tcp: {connect: edi.test}":
        "6:11: steps[0].tcp.connect: must be HOST:PORT, such as edi.example.com:7000 or "
        "[2001:db8::1]:7000, got 'edi.test'",
    'tcp: {connect: "${host}:70000"}':
        "6:11: steps[0].tcp.connect: must have a port from 1 to 65535, got '70000'",
    "tcp: {connect: 'h:1', read: {until: x, bytes: 2}}":
        "6:27: steps[0].tcp.read: give exactly one of until, bytes or until_close: true",
    "tcp: {connect: 'h:1', read: {bytes: 1MB}}":
        "6:34: steps[0].tcp.read.bytes: must not exceed max_bytes (64000), got 1000000",
    "tcp: {connect: 'h:1', verify: false}":
        "6:27: steps[0].tcp.verify: applies to TLS only: add tls: true",
    "tcp: {connect: 'h:1', sned: x}":
        "6:27: steps[0].tcp.sned: unknown field 'sned' (did you mean 'send'?)",
    "tcp: {connect: 'h:1'}\n    expect: {contains: '220'}":
        "7:5: steps[0].expect: needs a reply: add tcp.read (until, bytes or until_close)",
    "tcp: {connect: 'h:1', read: {until: x}}\n    expect: {matches: '(220'}":
        "7:14: steps[0].expect.matches: invalid regular expression '(220': missing ), "
        "unterminated subpattern at position 0",
}  # fmt: skip


@pytest.mark.parametrize("step", sorted(BAD_STEPS))
def test_journey_file_errors_point_at_their_field(tmp_path: Path, step: str) -> None:
    """A mistake in a tcp step is reported by the loader as file:line:col: path: message."""
    file = tmp_path / "edi.yaml"
    file.write_text(
        "journey: edi\nbusiness_process: partner-orders\nvariables: {host: h}\nsteps:\n"
        f"  - name: greets\n    {step}\n"
    )
    errors = [str(problem) for problem in load([file], environ={}).errors]
    assert errors == [f"{file}:{BAD_STEPS[step]}"]


def test_model_imports_no_runtime_library() -> None:
    """Loading the tcp model (to validate a file) imports no asyncio, TLS or certificate
    library, nor its run side (test_import_rules covers httpx, Playwright and the like)."""
    runtime = ("asyncio", "ssl", "cryptography")
    code = (
        "import sys, agent.steps.tcp.model\n"
        f"print([m for m in {runtime!r} + ('agent.steps.tcp.run',) if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


async def test_tcp_tls_offers_no_alpn_after_an_https_step(
    tls_files: TlsServerFiles, make_context: ContextFactory
) -> None:
    """An HTTPS step before a TCP step does not make the TCP handshake offer HTTP's ALPN
    (httpcore sets it on the context it is given; the kinds keep separate contexts)."""
    server = tls_files.issued(
        datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=9)
    )
    server.set_alpn_protocols(["http/1.1", "edi"])
    offered: list[str | None] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.start_tls(server)
        except (ssl.SSLError, ConnectionError):
            return
        offered.append(writer.get_extra_info("ssl_object").selected_alpn_protocol())
        writer.write(b"220 secure relay\r\n")
        await writer.drain()
        writer.close()

    ctx = make_context()
    verify = str(tls_files.ca_path)
    async with serving(handler) as address:
        https = HttpStep.model_validate(
            {"name": "web", "http": {"get": f"https://{address}/", "verify": verify}}
        )
        with pytest.raises(StepFailed):  # the peer does not speak HTTP; ALPN was offered
            await run_http(https, ctx)
        await passes(
            ctx, tcp={"connect": address, "tls": True, "verify": verify, "read": {"until": "\n"}}
        )
    assert offered == ["http/1.1", None]
