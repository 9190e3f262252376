"""Shared fixtures: loopback servers and hand-built step contexts.

Servers live in ``http_servers``; fixtures here start them per test on 127.0.0.1 port 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest
from aiohttp import web
from http_servers import TlsServerFiles, serve_app, shop_app

from agent.language.templating import Masker, Template
from agent.run.context import RunEnvironment, StepContext
from agent.run.tls import TlsContexts

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"

ContextFactory = Callable[..., StepContext]


@pytest.fixture
def run_env() -> RunEnvironment:
    """An agent environment with an empty process environment and its own TLS contexts."""
    return RunEnvironment(environ={}, tls=TlsContexts())


@pytest.fixture
async def make_context(run_env: RunEnvironment) -> AsyncIterator[ContextFactory]:
    """Builds StepContexts as the runner would for one attempt; closes them after the test."""
    made: list[StepContext] = []

    def make(
        variables: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        step_timeout: float = 10.0,
        traceparent: bool = True,
    ) -> StepContext:
        values = dict(variables or {})
        ctx = StepContext(
            journey_id="test",
            run_id=f"run-{len(made)}",
            trace_id=TRACE_ID,
            send_traceparent=traceparent,
            template=Template(values, dict(secrets or {}), run_env.environ),
            variables=values,
            masker=Masker((secrets or {}).values()),
            env=run_env,
            deadline=asyncio.get_running_loop().time() + step_timeout,
        )
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        await ctx.aclose()


@pytest.fixture
async def shop_server() -> AsyncIterator[tuple[str, web.Application]]:
    """The test shop on loopback: (base URL, app)."""
    app = shop_app()
    async with serve_app(app) as base:
        yield base, app


@pytest.fixture
async def shop(shop_server: tuple[str, web.Application]) -> str:
    """The test shop's base URL."""
    return shop_server[0]


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsServerFiles:
    """A fresh CA for TLS servers, its certificate written to a file clients may trust."""
    return TlsServerFiles(tmp_path)
