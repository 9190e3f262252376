"""The HTTP step against a real loopback shop: logins, tokens, redirects, cookies, tracing."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web
from conftest import TRACE_ID, ContextFactory
from http_servers import PASSWORD, SEEN_TRACEPARENTS, USER, fails, http_step, serve_raw

from agent.language.model import Journey
from agent.run.context import RunEnvironment
from agent.run.results import FailureReason, Outcome
from agent.run.runner import run_journey
from agent.steps.http.run import run


def login_journey(base: str) -> Journey:
    return Journey.model_validate(
        {
            "journey": "login",
            "business_process": "order-to-cash",
            "variables": {"base": base, "user": USER},
            "secrets": {"password": "${env.SHOP_PASSWORD}"},
            "steps": [
                {
                    "name": "login form",
                    "http": {"get": "${base}/login"},
                    "expect": {"status": 200, "body_contains": "Sign in"},
                    "extract": {"csrf": {"regex": r'name="csrf_token" value="([0-9a-f]+)"'}},
                },
                {
                    "name": "sign in",
                    "http": {
                        "post": "${base}/login",
                        "form": {
                            "csrf_token": "${csrf}",
                            "user": USER,
                            "password": "${secret.password}",
                        },
                    },
                    "expect": {"status": 200, "body_contains": "Welcome ${user}"},
                },
            ],
        }
    )


async def test_csrf_login_form_posts_token_back_with_session_cookie(shop: str) -> None:
    """A CSRF token scraped from the form, posted with the session cookie, signs in."""
    env = RunEnvironment(environ={"SHOP_PASSWORD": PASSWORD})
    result = await run_journey(login_journey(shop), env)
    assert result.outcome is Outcome.SUCCESS, result.message
    signed_in = result.steps[1]
    assert signed_in.value("status_code") == 200
    assert signed_in.duration > 0


async def test_login_without_session_cookie_is_refused(
    shop: str, make_context: ContextFactory
) -> None:
    """The same token posted from another run (no session cookie) is rejected: 403."""
    first, second = make_context(), make_context()
    form = http_step(
        http={"get": f"{shop}/login"}, extract={"csrf": {"regex": 'value="([0-9a-f]+)"'}}
    )
    await run(form, first)
    post = http_step(
        http={
            "post": f"{shop}/login",
            "form": {"csrf_token": first.variables["csrf"], "user": USER, "password": PASSWORD},
        }
    )
    failure = await fails(post, second)
    assert failure.reason is FailureReason.HTTP_STATUS
    assert "got 403" in failure.message
    assert "invalid CSRF token" in failure.message


async def test_cookies_persist_within_a_run_not_across_runs(
    shop: str, make_context: ContextFactory
) -> None:
    """A run's login cookie is sent by its later steps, and never by the next run."""
    env = RunEnvironment(environ={"SHOP_PASSWORD": PASSWORD})
    first = await run_journey(login_journey(shop), env)
    assert first.ok, first.message
    fresh = make_context()
    failure = await fails(http_step(http={"get": f"{shop}/account"}), fresh)
    assert failure.reason is FailureReason.HTTP_STATUS
    assert "got 401" in failure.message
    assert not list(fresh.cookies)


async def test_json_api_token_extracted_then_sent_as_bearer(
    shop: str, make_context: ContextFactory
) -> None:
    """A token from a JSON login authorises the next request; as a secret it is masked."""
    ctx = make_context(variables={"base": shop}, secrets={"pw": PASSWORD})
    await run(
        http_step(
            http={"post": "${base}/api/token", "json": {"user": USER, "password": "${secret.pw}"}},
            expect={"json": {"$.ok": True}, "json_exists": ["$.expires_in"]},
            extract={"token": {"json": "$.token", "secret": True}},
        ),
        ctx,
    )
    token = ctx.variables["token"]
    assert re.fullmatch("[0-9a-f]{32}", token)
    assert ctx.masker(f"token={token}") == "token=***"
    await run(
        http_step(
            http={"get": "${base}/api/orders", "auth": {"bearer": "${token}"}},
            expect={
                "status": "2xx",
                "json": {"$.orders[0].id": 7, "$.count": 1},
                "json_matches": {"$.orders[-1].state": "^ship"},
                "header_matches": {"Content-Type": "application/json"},
            },
            extract={"order": {"json": "$.orders[0].id"}},
        ),
        ctx,
    )
    assert ctx.variables["order"] == "7"
    assert ctx.record.get("status_code") == 200


async def test_request_parts_are_rendered_and_sent(shop: str, make_context: ContextFactory) -> None:
    """Method, query (added to the URL's), headers, raw body and basic auth arrive as written."""
    ctx = make_context(variables={"who": "bob"})
    await run(
        http_step(
            http={
                "put": f"{shop}/echo?from=url",
                "query": {"q": "${who}", "n": 2},
                "headers": {"X-Who": "${who}"},
                "body": "hello ${who}",
                "auth": {"basic": {"user": "u", "password": "p"}},
            },
            expect={
                "json": {
                    "$.method": "PUT",
                    "$.query": {"from": "url", "q": "bob", "n": "2"},
                    "$.headers.X-Who": "bob",
                    "$.headers.Authorization": "Basic dTpw",
                    "$.body": "hello bob",
                }
            },
        ),
        ctx,
    )


async def test_redirects_are_followed_and_bounded(shop: str, make_context: ContextFactory) -> None:
    """Three redirects are followed; with max_redirects 2 the step fails as protocol."""
    ctx = make_context()
    await run(
        http_step(http={"get": f"{shop}/redirect/3"}, expect={"body_contains": "arrived"}), ctx
    )
    failure = await fails(
        http_step(http={"get": f"{shop}/redirect/3", "max_redirects": 2}), make_context()
    )
    assert failure.reason is FailureReason.PROTOCOL
    assert "at most 2 redirects" in failure.message


async def test_redirect_loop_is_a_protocol_failure(shop: str, make_context: ContextFactory) -> None:
    """A page redirecting to itself fails with reason protocol, not a hang."""
    failure = await fails(http_step(http={"get": f"{shop}/loop"}), make_context())
    assert failure.reason is FailureReason.PROTOCOL
    assert "at most 10 redirects" in failure.message


async def test_redirect_not_followed_when_switched_off(
    shop: str, make_context: ContextFactory
) -> None:
    """With follow_redirects off the 302 itself is the reply, and it passes by default."""
    ctx = make_context()
    step = http_step(
        http={"get": f"{shop}/redirect/1", "follow_redirects": False},
        expect={"headers": {"Location": "/redirect/0"}},
        extract={"next": {"header": "Location"}},
    )
    await run(step, ctx)
    assert ctx.record.get("status_code") == 302
    assert ctx.variables["next"] == "/redirect/0"


async def test_every_request_sends_its_own_traceparent(
    shop_server: tuple[str, web.Application], make_context: ContextFactory
) -> None:
    """Each hop carries the run's trace id with a fresh span id; none when switched off."""
    base, app = shop_server
    await run(http_step(http={"get": f"{base}/redirect/1"}), make_context())
    seen = app[SEEN_TRACEPARENTS]
    assert len(seen) == 2
    for header in seen:
        assert re.fullmatch(f"00-{TRACE_ID}-[0-9a-f]{{16}}-01", header)
    assert seen[0] != seen[1]
    await run(http_step(http={"get": f"{base}/echo"}), make_context(traceparent=False))
    assert seen[2] == ""


async def test_cookie_extraction_reads_the_run_jar(shop: str, make_context: ContextFactory) -> None:
    """A cookie set by the server can be extracted into a variable."""
    ctx = make_context()
    await run(http_step(http={"get": f"{shop}/login"}, extract={"sid": {"cookie": "sid"}}), ctx)
    assert re.fullmatch("[0-9a-f]{16}", ctx.variables["sid"])


async def test_secret_echoed_by_the_target_is_masked_in_the_run_message(shop: str) -> None:
    """A failure message quoting a body that echoes a secret shows *** instead."""
    journey = Journey.model_validate(
        {
            "journey": "leaky",
            "business_process": "order-to-cash",
            "secrets": {"password": "${env.SHOP_PASSWORD}"},
            "steps": [
                {
                    "name": "echo",
                    "http": {"get": f"{shop}/echo", "query": {"pw": "${secret.password}"}},
                    "expect": {"status": 201},
                }
            ],
        }
    )
    result = await run_journey(journey, RunEnvironment(environ={"SHOP_PASSWORD": PASSWORD}))
    assert result.reason is FailureReason.HTTP_STATUS
    assert PASSWORD not in result.message
    assert "***" in result.message


async def test_hanging_target_under_the_runner_is_a_timeout_not_a_crash() -> None:
    """Through the runner, a target that never answers fails the run with reason timeout."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    async with serve_raw(hang) as base:
        journey = Journey.model_validate(
            {
                "journey": "hangs",
                "business_process": "order-to-cash",
                "schedule": {"every": "10s", "timeout": "1s"},
                "steps": [{"name": "stuck", "timeout": "300ms", "http": {"get": base}}],
            }
        )
        result = await run_journey(journey, RunEnvironment(environ={}))
    assert result.outcome is Outcome.FAILURE
    assert result.reason is FailureReason.TIMEOUT
    assert result.steps[0].duration < 1.0
