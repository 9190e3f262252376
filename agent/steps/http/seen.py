"""What an HTTP step saw of one exchange, kept in its result when a run is watched
(``RunEnvironment.observer``: ``run --once --debug``): the request's method and URL, the
response's status, content type and size, and, when the run asks
(``RunEnvironment.body_limit``), the start of its body. All masked here: the URL may
carry a secret in its query, the body may echo one."""

from __future__ import annotations

import httpx

from agent.run.context import MASK_WINDOW, StepContext
from agent.run.results import Exchange

__all__ = ["exchange"]


def exchange(
    request: httpx.Request, response: httpx.Response, body: bytes, ctx: StepContext
) -> Exchange:
    limit = ctx.env.body_limit
    return Exchange(
        method=request.method,
        url=ctx.masker(str(request.url)),
        status=response.status_code,
        content_type=ctx.masker(response.headers.get("content-type", "")),
        size=len(body),
        body=_start(body, limit, ctx) if limit > 0 else "",
    )


def _start(body: bytes, limit: int, ctx: StepContext) -> str:
    """The body's first ``limit`` bytes as text: masked before the cut, so that a secret
    the cut goes through is masked whole."""
    text = body[: limit + MASK_WINDOW].decode("utf-8", errors="replace")
    return ctx.masker(text).encode()[:limit].decode("utf-8", errors="ignore")
