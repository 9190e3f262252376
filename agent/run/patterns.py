"""Regular expressions from journeys run on what targets send, within a time bound.

A pattern such as ``(a|aa)+$`` backtracks for seconds on a few dozen characters of a
hostile (or merely unlucky) body, and Python's ``re`` cannot be interrupted: it would
hold the event loop, and every other journey's clock, for as long. Patterns run with
the ``regex`` package instead (the ``re`` syntax, plus a ``timeout``): first on the loop
for at most :data:`INLINE_SECONDS`, enough for any reasonable pattern on a capped body;
one that needs longer runs again in a worker thread with the GIL released, for at most
:data:`MAX_SECONDS` or the step's remaining time, so that the loop never waits for it.
Past that, :class:`PatternTooSlow` says so; the step kinds report it as ``assertion``
(an expectation) or ``extraction``.
"""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache

import regex

__all__ = ["INLINE_SECONDS", "MAX_SECONDS", "PatternTooSlow", "search"]

INLINE_SECONDS = 0.01  # on the event loop: the common case, no thread hand-off
MAX_SECONDS = 0.5  # at most, per pattern and text, in a worker thread
_MIN_SECONDS = 0.001


class PatternTooSlow(Exception):
    """A pattern did not finish within its time bound."""

    def __init__(self, pattern: str, seconds: float, size: int) -> None:
        super().__init__(
            f"the regular expression {pattern!r} took more than {seconds:.2g}s on "
            f"{size} characters and was stopped (it backtracks: simplify it, e.g. no nested "
            "repetition such as (a+)+)"
        )
        self.message = str(self)


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> regex.Pattern[str] | re.Pattern[str]:
    """The pattern for ``regex``; one that only ``re`` reads (none is known) runs unbounded
    rather than failing a journey that validate accepted."""
    try:
        return regex.compile(pattern)
    except regex.error:
        return re.compile(pattern)


async def search(
    pattern: str, text: str, remaining: float
) -> regex.Match[str] | re.Match[str] | None:
    """``re.search(pattern, text)``, bounded by ``min(remaining, MAX_SECONDS)`` seconds.
    ``pattern`` was validated with ``re`` when the journey was loaded."""
    compiled = _compiled(pattern)
    if isinstance(compiled, re.Pattern):
        return compiled.search(text)
    budget = max(min(remaining, MAX_SECONDS), _MIN_SECONDS)
    try:
        return compiled.search(text, timeout=min(INLINE_SECONDS, budget))
    except TimeoutError:
        if budget <= INLINE_SECONDS:
            raise PatternTooSlow(pattern, budget, len(text)) from None
    try:
        return await asyncio.to_thread(compiled.search, text, concurrent=True, timeout=budget)
    except TimeoutError:
        raise PatternTooSlow(pattern, budget, len(text)) from None
