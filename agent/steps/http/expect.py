"""Checks an HTTP step's ``expect`` against its reply; the first unmet one fails the step.

A status that does not match is ``http_status``; every other unmet expectation is
``assertion``; a body an expectation cannot read (see :mod:`agent.steps.http.reply`)
is ``protocol``. Without ``status``, any 2xx or 3xx passes and 4xx/5xx fail: a monitor
that passes a 500 is worse than none. Expected values (not regular expressions) may use
``${...}``; they are rendered at run time. Regular expressions run within a time bound
(:mod:`agent.run.patterns`): one that takes too long on the reply is an ``assertion``
failure saying so. Quoted texts are masked before they are cut.
"""

from __future__ import annotations

from typing import Any, NoReturn

from agent.run.context import MASK_WINDOW, Mask, StepContext, StepFailed, masked_cut
from agent.run.patterns import PatternTooSlow, search
from agent.run.results import FailureReason
from agent.steps.http.model import Expect
from agent.steps.http.reply import Reply, json_text, snippet

__all__ = ["DEFAULT_STATUS", "check"]

DEFAULT_STATUS: list[int | str] = ["2xx", "3xx"]
_CONTEXT_CHARS = 60  # shown either side of an unwanted text that was found
_SHOWN_CHARS = 100


async def check(expect: Expect, reply: Reply, ctx: StepContext) -> None:
    """Raise StepFailed for the first expectation ``reply`` does not meet."""
    _status(DEFAULT_STATUS if expect.status is None else expect.status, reply)
    await _body(expect, reply, ctx)
    await _json(expect, reply, ctx)
    await _headers(expect, reply, ctx)
    limit, took = expect.max_duration, reply.duration
    if limit is not None and took is not None and took > limit:
        _fail(f"expected a duration of at most {limit:g}s, took {took:.3f}s")


def _status(expected: int | str | list[int | str], reply: Reply) -> None:
    accepted = expected if isinstance(expected, list) else [expected]
    code = reply.status_code
    for item in accepted:
        if item == code or (isinstance(item, str) and item[0] == str(code)[0]):
            return
    wanted = " or ".join(str(item) for item in accepted)
    raise StepFailed(
        FailureReason.HTTP_STATUS,
        f"expected status {wanted}, got {code} {reply.reason_phrase}: {reply.description()}",
    )


async def _body(expect: Expect, reply: Reply, ctx: StepContext) -> None:
    template = ctx.template
    for needle in template.render(_listed(expect.body_contains)):
        if needle not in reply.text:
            _fail(f"expected the body to contain {needle!r}, got {reply.description()}")
    for needle in template.render(_listed(expect.body_not_contains)):
        at = reply.text.find(needle)
        if at >= 0:
            around = _around(reply.text, at, len(needle), reply.mask)
            _fail(f"expected the body not to contain {needle!r}, found it in {around}")
    pattern = expect.body_matches
    if pattern is not None and not await _matches(pattern, reply.text, ctx, "the body"):
        _fail(f"expected the body to match {pattern!r}, got {reply.description()}")


def _around(text: str, at: int, length: int, mask: Mask) -> str:
    """The text either side of ``text[at : at + length]``, each side masked before it is
    cut (so a secret cut by either edge is masked whole), quoted."""
    before = mask(text[max(0, at - _CONTEXT_CHARS - MASK_WINDOW) : at])[-_CONTEXT_CHARS:]
    after = masked_cut(text[at + length :], _CONTEXT_CHARS, mask).removesuffix("...")
    return snippet(before + text[at : at + length] + after, mask=mask)


async def _json(expect: Expect, reply: Reply, ctx: StepContext) -> None:
    mask = reply.mask
    for path, wanted in ctx.template.render(expect.json_equals).items():
        found, value = reply.json_value(path)
        if not found:
            _fail(f"expected {path} to be {_shown(wanted, mask)}, got no such value")
        if not _same(value, wanted):
            _fail(f"expected {path} to be {_shown(wanted, mask)}, got {_shown(value, mask)}")
    for path in expect.json_exists:
        if not reply.json_value(path)[0]:
            _fail(f"expected {path} to exist, got {reply.description()}")
    for path, pattern in expect.json_matches.items():
        found, value = reply.json_value(path)
        text = value if isinstance(value, str) else json_text(value)
        if not found or not await _matches(pattern, text, ctx, path):
            got = _shown(value, mask) if found else "no such value"
            _fail(f"expected {path} to match {pattern!r}, got {got}")


async def _headers(expect: Expect, reply: Reply, ctx: StepContext) -> None:
    for name, wanted in ctx.template.render(expect.headers).items():
        value = reply.headers.get(name)
        if value != wanted:
            got = repr(value) if value is not None else "no such header"
            _fail(f"expected header {name}: {wanted!r}, got {got}")
    for name, pattern in expect.header_matches.items():
        value = reply.headers.get(name)
        if value is None or not await _matches(pattern, value, ctx, f"header {name}"):
            got = repr(value) if value is not None else "no such header"
            _fail(f"expected header {name} to match {pattern!r}, got {got}")


async def _matches(pattern: str, text: str, ctx: StepContext, what: str) -> bool:
    try:
        return await search(pattern, text, ctx.remaining()) is not None
    except PatternTooSlow as slow:
        _fail(f"expected {what} to match, but {slow.message}")


def _same(actual: Any, wanted: Any) -> bool:
    """JSON equality where true is not 1 (Python's ``True == 1`` would pass it)."""
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return type(actual) is type(wanted) and actual == wanted
    if isinstance(actual, list) and isinstance(wanted, list):
        return len(actual) == len(wanted) and all(map(_same, actual, wanted))
    if isinstance(actual, dict) and isinstance(wanted, dict):
        return actual.keys() == wanted.keys() and all(_same(actual[k], wanted[k]) for k in actual)
    return bool(actual == wanted)


def _shown(value: Any, mask: Mask) -> str:
    """A JSON value as JSON (``true``, ``"42"``), masked, truncated."""
    return masked_cut(json_text(value), _SHOWN_CHARS, mask)


def _listed(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def _fail(message: str) -> NoReturn:
    raise StepFailed(FailureReason.ASSERTION, message)
