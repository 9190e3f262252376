"""Checks an HTTP step's ``expect`` against its reply; the first unmet one fails the step.

A status that does not match is ``http_status``; every other unmet expectation is
``assertion``; a body an expectation cannot read (see :mod:`agent.steps.http.reply`)
is ``protocol``. Without ``status``, any 2xx or 3xx passes and 4xx/5xx fail: a monitor
that passes a 500 is worse than none. Expected values (not regular expressions) may use
``${...}``; they are rendered at run time.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from agent.language.templating import Template
from agent.run.context import StepFailed
from agent.run.results import FailureReason
from agent.steps.http.model import Expect
from agent.steps.http.reply import Reply, json_text, snippet

__all__ = ["DEFAULT_STATUS", "check"]

DEFAULT_STATUS: list[int | str] = ["2xx", "3xx"]
_CONTEXT_CHARS = 60  # shown either side of an unwanted text that was found
_SHOWN_CHARS = 100


def check(expect: Expect, reply: Reply, template: Template) -> None:
    """Raise StepFailed for the first expectation ``reply`` does not meet."""
    _status(DEFAULT_STATUS if expect.status is None else expect.status, reply)
    _body(expect, reply, template)
    _json(expect, reply, template)
    _headers(expect, reply, template)
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


def _body(expect: Expect, reply: Reply, template: Template) -> None:
    for needle in template.render(_listed(expect.body_contains)):
        if needle not in reply.text:
            _fail(f"expected the body to contain {needle!r}, got {reply.description()}")
    for needle in template.render(_listed(expect.body_not_contains)):
        at = reply.text.find(needle)
        if at >= 0:
            around = reply.text[max(0, at - _CONTEXT_CHARS) : at + len(needle) + _CONTEXT_CHARS]
            _fail(f"expected the body not to contain {needle!r}, found it in {snippet(around)}")
    if expect.body_matches is not None and not re.search(expect.body_matches, reply.text):
        _fail(f"expected the body to match {expect.body_matches!r}, got {reply.description()}")


def _json(expect: Expect, reply: Reply, template: Template) -> None:
    for path, wanted in template.render(expect.json_equals).items():
        found, value = reply.json_value(path)
        if not found:
            _fail(f"expected {path} to be {_shown(wanted)}, got no such value")
        if not _same(value, wanted):
            _fail(f"expected {path} to be {_shown(wanted)}, got {_shown(value)}")
    for path in expect.json_exists:
        if not reply.json_value(path)[0]:
            _fail(f"expected {path} to exist, got {reply.description()}")
    for path, pattern in expect.json_matches.items():
        found, value = reply.json_value(path)
        text = value if isinstance(value, str) else json_text(value)
        if not found or not re.search(pattern, text):
            got = _shown(value) if found else "no such value"
            _fail(f"expected {path} to match {pattern!r}, got {got}")


def _headers(expect: Expect, reply: Reply, template: Template) -> None:
    for name, wanted in template.render(expect.headers).items():
        value = reply.headers.get(name)
        if value != wanted:
            got = repr(value) if value is not None else "no such header"
            _fail(f"expected header {name}: {wanted!r}, got {got}")
    for name, pattern in expect.header_matches.items():
        value = reply.headers.get(name)
        if value is None or not re.search(pattern, value):
            got = repr(value) if value is not None else "no such header"
            _fail(f"expected header {name} to match {pattern!r}, got {got}")


def _same(actual: Any, wanted: Any) -> bool:
    """JSON equality where true is not 1 (Python's ``True == 1`` would pass it)."""
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return type(actual) is type(wanted) and actual == wanted
    if isinstance(actual, list) and isinstance(wanted, list):
        return len(actual) == len(wanted) and all(map(_same, actual, wanted))
    if isinstance(actual, dict) and isinstance(wanted, dict):
        return actual.keys() == wanted.keys() and all(_same(actual[k], wanted[k]) for k in actual)
    return bool(actual == wanted)


def _shown(value: Any) -> str:
    """A JSON value as JSON (``true``, ``"42"``), truncated."""
    text = json_text(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def _listed(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def _fail(message: str) -> NoReturn:
    raise StepFailed(FailureReason.ASSERTION, message)
