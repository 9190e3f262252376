"""Runs an HTTP step with httpx: render, send (following redirects hop by hop), read the
body up to its cap, time it on the wire, then check ``expect`` and run ``extract``.

Library errors become failure reasons in :mod:`agent.steps.http.errors`, here and only
here. Measurements land on ``ctx.record`` as they are made, so a failed step keeps them.
What a journey may reach is checked here too: a ``verify`` CA bundle only from
``--ca-dir``, and every connection (redirects included) against the egress policy
(:mod:`agent.steps.http.session`); both refusals are ``config``.
"""

from __future__ import annotations

import base64
import functools
import secrets
from typing import Any

import httpx

from agent.language.templating import Masker
from agent.run.context import StepContext, StepFailed, ca_bundle
from agent.run.egress import EgressRefused
from agent.run.results import FailureReason
from agent.run.tls import TlsConfigError
from agent.run.wire import listening
from agent.steps.http.body import read_capped, too_large
from agent.steps.http.errors import invalid_url, transport_failure
from agent.steps.http.expect import check
from agent.steps.http.extract import extract
from agent.steps.http.model import (
    HttpRequest,
    HttpStep,
    header_name_problem,
    header_value_problem,
)
from agent.steps.http.redirect import redirect_request
from agent.steps.http.reply import Reply
from agent.steps.http.seen import exchange
from agent.steps.http.session import HttpSession, open_session
from agent.steps.http.timing import HopTimer
from agent.steps.http.transport import WireTransport
from agent.steps.kind import Unit

__all__ = ["run"]

_MAX_PORT = 65535


async def run(step: HttpStep, ctx: StepContext) -> None:
    request_spec = step.http
    verify = ca_bundle(ctx.template.render(request_spec.verify), ctx.env)
    session = await ctx.resource(
        HttpSession, lambda: open_session(ctx.env.tls, ctx.cookies, ctx.env.egress)
    )
    try:
        transport = session.transport(verify)
    except TlsConfigError as error:
        raise StepFailed(FailureReason.CONFIG, str(error)) from None
    try:
        request = _build_request(session, request_spec, ctx)
    except httpx.InvalidURL as error:
        raise StepFailed(FailureReason.CONFIG, f"invalid URL: {error}") from None
    reply = await _exchange(transport, session, request, request_spec, ctx)
    await check(step.expect, reply, ctx)
    await extract(step.extract, reply, ctx)


def _build_request(session: HttpSession, spec: HttpRequest, ctx: StepContext) -> httpx.Request:
    render = ctx.template.render
    headers = render(spec.headers)
    if spec.auth is not None:
        headers["Authorization"] = _authorization(render(spec.auth.model_dump()), ctx.masker)
    body: dict[str, Any] = {}
    if spec.json_body is not None:
        body["json"] = render(spec.json_body)
    elif spec.form is not None:
        body["data"] = render(spec.form)
    elif spec.body is not None:
        body["content"] = render(spec.body).encode()
    url = _url(render(spec.url))
    if spec.query:
        # added to the URL's own query: httpx's params= would replace it
        url = url.copy_merge_params(render(spec.query))
    # the timeout bounds inactivity; the runner bounds the total
    return session.request(spec.method, url, _sendable(headers), ctx.remaining(), body)


@functools.lru_cache(maxsize=1024)
def _url(text: str) -> httpx.URL:
    """``text`` parsed once: a journey's URLs come back every run, and parsing one took ~5%
    of a step's CPU. httpx.URL is immutable (its edits return a new one): safe to share."""
    return httpx.URL(text)


def _sendable(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` as rendered, checked as validate checks literal ones: a value from
    ``${...}`` with a line break or a non-ASCII character fails the step as config, naming
    the header and never its value (it may be a secret). Surrounding blanks are trimmed."""
    sendable = {}
    for name, value in headers.items():
        problem = header_name_problem(name)
        if problem:
            raise StepFailed(
                FailureReason.CONFIG, f"expected a header name after templating, got {problem}"
            )
        problem = header_value_problem(value)
        if problem:
            raise StepFailed(
                FailureReason.CONFIG,
                f"expected header {name} to be printable ASCII on one line after templating, "
                f"got {problem} in its value",
            )
        sendable[name] = value.strip(" \t")
    return sendable


def _authorization(auth: dict[str, Any], masker: Masker) -> str:
    """The Authorization header. Basic credentials are masked in every output, in the
    base64 form the header carries (a target echoing the header shows ***), whether or
    not the password is a declared secret: they are credentials."""
    if auth["bearer"] is not None:
        return f"Bearer {auth['bearer']}"
    basic = auth["basic"]
    pair = f"{basic['user']}:{basic['password']}".encode()
    credentials = base64.b64encode(pair).decode("ascii")
    masker.add_form(credentials)
    return f"Basic {credentials}"


async def _exchange(
    transport: WireTransport,
    session: HttpSession,
    request: httpx.Request,
    spec: HttpRequest,
    ctx: StepContext,
) -> Reply:
    """Send ``request`` and follow its redirects; the reply to the last hop."""
    for hop in range(spec.max_redirects + 1):
        timer = HopTimer()
        request.extensions = {**request.extensions, "timer": timer}  # told by our transport
        traceparent = ctx.traceparent(secrets.token_hex(8))  # a fresh span per request
        if traceparent is not None:
            request.headers["traceparent"] = traceparent
        port = request.url.port
        if port is not None and port > _MAX_PORT:  # the socket layer raises OverflowError
            detail = f"port must be at most {_MAX_PORT}, got {port}"
            raise invalid_url(detail, request.url, redirected=hop > 0)
        try:
            response, body, onward = await _send(transport, session, request, spec, timer)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise transport_failure(error, request.url, redirected=hop > 0) from None
        except EgressRefused as refused:
            led = f" (a redirect to {request.url} led there)" if hop else ""
            raise StepFailed(FailureReason.CONFIG, refused.message + led) from None
        finally:
            _record_hop(timer, request.url, session, ctx)
        ctx.record.set("status_code", "", response.status_code, Unit.CODE)
        if ctx.env.observer is not None:  # only run --debug shows them: no masking otherwise
            ctx.record.exchanges.append(exchange(request, response, body, ctx))
        if onward is None or not spec.follow_redirects:
            return Reply(response, body, ctx.record.duration, ctx.masker)
        if hop == spec.max_redirects:
            break
        request = onward
    raise StepFailed(
        FailureReason.PROTOCOL,
        f"expected at most {spec.max_redirects} redirects, got more (last to {request.url})",
    )


async def _send(
    transport: WireTransport,
    session: HttpSession,
    request: httpx.Request,
    spec: HttpRequest,
    timer: HopTimer,
) -> tuple[httpx.Response, bytes, httpx.Request | None]:
    """One request; its body read up to ``max_body`` bytes and never further, and the
    request its redirect asks for, if any. The wire tells ``timer`` when bytes arrived."""
    max_body = spec.max_body
    with listening(timer):
        response = await session.send(transport, request)
        try:
            onward = redirect_request(request, response)  # an unreadable Location fails first
            declared = response.headers.get("content-length", "")
            # a HEAD reply declares the length of a body it does not send
            if request.method != "HEAD" and declared.isdigit() and int(declared) > max_body:
                raise too_large(max_body, f"Content-Length {declared}")
            return response, await read_capped(response, max_body), onward
        finally:
            timer.body_done()
            await response.aclose()  # a body not read to its end closes the connection


def _record_hop(timer: HopTimer, url: httpx.URL, session: HttpSession, ctx: StepContext) -> None:
    """Add a hop's duration, phases and certificate expiry to the step's record."""
    hop_total = timer.total()
    if hop_total is not None:  # redirect hops add up
        ctx.record.duration = (ctx.record.duration or 0.0) + hop_total
    for phase, seconds in timer.phases().items():
        ctx.record.add("phases", phase, seconds, Unit.SECONDS)
    if url.scheme != "https":
        return
    origin = f"{url.host}:{url.port or 443}"
    if timer.cert_expiry is not None:
        session.cert_expiry[origin] = timer.cert_expiry
    expiry = session.cert_expiry.get(origin)
    if expiry is not None:
        # the certificate that expires first is the one that breaks the journey first
        current = ctx.record.get("cert_expiry")
        earliest = expiry if current is None else min(current, expiry)
        ctx.record.set("cert_expiry", "", earliest, Unit.TIMESTAMP)
