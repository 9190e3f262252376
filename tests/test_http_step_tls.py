"""HTTPS: certificate verification failures are tls; certificate expiry is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from conftest import ContextFactory
from http_servers import TlsServerFiles, fails, http_step, serve_app

from agent.run.context import RunEnvironment, StepRecord
from agent.run.results import FailureReason
from agent.run.tls import TlsContexts
from agent.steps.http.run import run


@pytest.fixture
def run_env(tmp_path: Path) -> RunEnvironment:
    """The shared fixture's environment with --ca-dir where ``tls_files`` writes its CA."""
    return RunEnvironment(environ={}, tls=TlsContexts(), ca_dir=tmp_path)


def hello_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello over TLS")

    app = web.Application()
    app.router.add_get("/", hello)
    return app


def whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)  # certificates keep whole seconds


async def test_trusted_certificate_passes_and_records_expiry_and_tls_phase(
    tls_files: TlsServerFiles, make_context: ContextFactory
) -> None:
    """With the CA trusted, the step passes; cert_expiry is the cert's notAfter."""
    not_after = whole_seconds(datetime.now(UTC) + timedelta(days=30))
    server = tls_files.issued(datetime.now(UTC) - timedelta(days=1), not_after)
    ctx = make_context()
    async with serve_app(hello_app(), server) as base:
        step = http_step(http={"get": base, "verify": str(tls_files.ca_path)})
        await run(step, ctx)
        assert ctx.record.get("cert_expiry") == not_after.timestamp()
        assert ctx.record.values("phases")["tls"] > 0
        # the next step reuses the connection (no handshake) and still knows the expiry
        ctx.record = StepRecord()
        await run(http_step(http={"get": base, "verify": str(tls_files.ca_path)}), ctx)
    assert "tls" not in ctx.record.values("phases")
    assert ctx.record.get("cert_expiry") == not_after.timestamp()


async def test_self_signed_certificate_with_verify_on_is_tls(
    tls_files: TlsServerFiles, make_context: ContextFactory
) -> None:
    """A self-signed certificate fails verification: reason tls, saying why."""
    async with serve_app(hello_app(), tls_files.self_signed()) as base:
        failure = await fails(http_step(http={"get": base}), make_context())
    assert failure.reason is FailureReason.TLS
    assert "self-signed certificate" in failure.message


async def test_expired_certificate_is_tls_unless_verify_is_off(
    tls_files: TlsServerFiles, make_context: ContextFactory
) -> None:
    """An expired cert fails as tls; with verify off it passes, its expiry in the past."""
    now = datetime.now(UTC)
    not_after = whole_seconds(now - timedelta(days=1))
    server = tls_files.issued(now - timedelta(days=30), not_after)
    unverified = make_context()
    async with serve_app(hello_app(), server) as base:
        step = http_step(http={"get": base, "verify": str(tls_files.ca_path)})
        failure = await fails(step, make_context())
        await run(http_step(http={"get": base, "verify": False}), unverified)
    assert failure.reason is FailureReason.TLS
    assert "certificate has expired" in failure.message
    # read from the DER: with verify off, getpeercert() has no parsed fields
    assert unverified.record.get("cert_expiry") == not_after.timestamp()
    expiry = unverified.record.get("cert_expiry")
    assert expiry is not None
    assert expiry < now.timestamp()


async def test_plain_http_server_on_https_url_is_tls(
    shop: str, make_context: ContextFactory
) -> None:
    """An https URL pointing at a plain-HTTP port fails the handshake: reason tls."""
    url = shop.replace("http://", "https://")
    failure = await fails(http_step(http={"get": url, "verify": False}), make_context())
    assert failure.reason is FailureReason.TLS
