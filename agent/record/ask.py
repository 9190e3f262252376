"""What the journey is (id, business process, persona, interval): from the flags, else
asked on the terminal, else sensible defaults, each one said on stderr."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from agent.language.fields import parse_duration

if TYPE_CHECKING:
    from agent.record.writer import About

__all__ = ["PERSONAS", "about", "check_id", "check_interval", "check_persona", "default_id"]

PERSONAS = ("customer", "partner", "employee")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DEFAULTS = {"business_process": "unassigned", "persona": "customer", "interval": "5m"}


def check_id(text: str) -> str:
    """``text`` when it is a journey or business process id; ValueError says why not."""
    if not _ID.match(text):
        raise ValueError(
            f"must be lowercase letters, digits, - and _, starting with a letter or digit, "
            f"at most 63 characters; got {text!r}"
        )
    return text


def check_interval(text: str) -> str:
    parse_duration(text)  # ValueError says what is wrong
    return text


def check_persona(text: str) -> str:
    if text not in PERSONAS:
        raise ValueError(f"must be one of {', '.join(PERSONAS)}; got {text!r}")
    return text


def default_id(output: Path) -> str:
    """A journey id from the output file's name: ``journeys/New Checkout.yaml`` ->
    ``new-checkout``."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", output.stem.lower()).strip("-_")[:63]
    return slug or "recorded"


def about(
    given: dict[str, str | None],
    output: Path,
    ask: Callable[[str], str] | None,
    err: TextIO,
) -> About:
    """The journey's description: ``given`` (flag values, None where not given), else
    what ``ask`` (a prompt on the terminal, None without one) answers, else defaults."""
    checks: dict[str, Callable[[str], str]] = {
        "journey": check_id,
        "business_process": check_id,
        "persona": check_persona,
        "interval": check_interval,
    }
    defaults = _DEFAULTS | {"journey": default_id(output)}
    chosen: dict[str, str] = {}
    for name, check in checks.items():
        value = given.get(name)
        if value is None and ask is not None:
            value = _asked(name, defaults[name], check, ask, err)
        if value is None:
            value = defaults[name]
            print(f"journeyman record: {name}: {value} (not given, no terminal to ask)", file=err)
        chosen[name] = value
    if chosen["business_process"] == _DEFAULTS["business_process"]:
        print(
            "journeyman record: set business_process to one of your catalog.yaml's "
            "before deploying the journey",
            file=err,
        )
    from agent.record.writer import About  # the journal and YAML writer: only to record

    return About(**chosen)


def _asked(
    name: str, default: str, check: Callable[[str], str], ask: Callable[[str], str], err: TextIO
) -> str:
    while True:
        answer = ask(f"{name.replace('_', ' ')} [{default}]: ").strip() or default
        try:
            return check(answer)
        except ValueError as error:
            print(f"  {error}", file=err)
