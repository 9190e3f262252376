"""Takes values out of an HTTP step's reply into the run's variables (``extract``).

Sources: a JSON path, a regular expression (its group 1, or the whole match when it has
no group), a response header, or a cookie from the run's jar. A value that is not there
fails the step with reason ``extraction``, a body that cannot be read (see
:mod:`agent.steps.http.reply`) with ``protocol``; a ``secret: true`` value is registered
with the run's masker before anything can print it. Messages never echo extracted values.
A regular expression runs within a time bound (:mod:`agent.run.patterns`): one that takes
too long is an ``extraction`` failure saying so.
"""

from __future__ import annotations

from http.cookiejar import CookieJar

from agent.run.context import StepContext, StepFailed
from agent.run.patterns import PatternTooSlow, search
from agent.run.results import FailureReason
from agent.steps.http.model import ExtractRule
from agent.steps.http.reply import Reply, json_text

__all__ = ["extract"]


async def extract(rules: dict[str, ExtractRule], reply: Reply, ctx: StepContext) -> None:
    """Set ``ctx.variables[name]`` for every rule, in order."""
    for name, rule in rules.items():
        try:
            value = await _value(rule, reply, ctx)
        except PatternTooSlow as slow:
            message = f"expected to extract {name!r} from the body, but {slow.message}"
            raise StepFailed(FailureReason.EXTRACTION, message) from None
        if value is None:
            message = f"expected to extract {name!r} from {_source(rule)}, found none"
            raise StepFailed(FailureReason.EXTRACTION, message)
        if rule.secret:
            ctx.masker.add(value)
        ctx.variables[name] = value


async def _value(rule: ExtractRule, reply: Reply, ctx: StepContext) -> str | None:
    if rule.json_path is not None:
        found, value = reply.json_value(rule.json_path)
        if not found or value is None:
            return None
        if isinstance(value, str):
            return value
        return json_text(value)  # true, 42, [1]: as JSON, not as Python
    if rule.regex is not None:
        match = await search(rule.regex, reply.text, ctx.remaining())
        if match is None:
            return None
        value = match.group(1) if match.re.groups else match.group(0)
        return None if value is None else str(value)  # an optional group may not take part
    if rule.header is not None:
        header: str | None = reply.headers.get(rule.header)
        return header
    assert rule.cookie is not None  # the model requires exactly one source
    return _cookie(ctx.cookies, rule.cookie)


def _cookie(cookies: CookieJar, name: str) -> str | None:
    return next((c.value for c in cookies if c.name == name and c.value is not None), None)


def _source(rule: ExtractRule) -> str:
    if rule.json_path is not None:
        return f"JSON path {rule.json_path}"
    if rule.regex is not None:
        return f"the body with regex {rule.regex!r}"
    if rule.header is not None:
        return f"header {rule.header}"
    return f"cookie {rule.cookie}"
