"""Which typed values are secrets, and the names they get in the journey file.

A value typed into a password field, into a field whose name says secret (password,
token, PIN, API key, one-time code, card security code), or that looks like a token
(long, no spaces, letters and digits mixed) is a secret: the journey reads it from an
environment variable, ``${secret.NAME}``, and the value itself is never written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["env_var", "is_secret", "unique_name"]

_SECRET_HINT = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_ ]?key|\bpin\b|otp|one-time|cc-csc|cvc|cvv",
    re.IGNORECASE,
)
_TOKEN_MIN = 16


def is_secret(field_type: str, hints: Iterable[str], value: str) -> bool:
    """Whether ``value``, typed into a field of this type and these name hints (its
    name, id, autocomplete, labels), must be kept out of the file."""
    if field_type == "password" or any(_SECRET_HINT.search(h) for h in hints):
        return True
    return _looks_like_token(value)


def _looks_like_token(value: str) -> bool:
    if len(value) < _TOKEN_MIN or any(c.isspace() for c in value) or "@" in value:
        return False
    if "://" in value or value.startswith("/"):
        return False  # a URL or a path
    has_letters = any(c.isalpha() for c in value)
    has_digits = any(c.isdigit() for c in value)
    return has_letters and has_digits and len(set(value)) >= 10


def unique_name(hints: Iterable[str], taken: Iterable[str], default: str) -> str:
    """A variable name from the first usable hint (a field's name ``password``, an id
    ``order-number`` -> ``order_number``), else ``default``, made unique against
    ``taken`` (``password_2``)."""
    base = next((n for n in (_identifier(h) for h in hints) if n), "") or default
    used = set(taken)
    name, number = base, 2
    while name in used:
        name, number = f"{base}_{number}", number + 1
    return name


def env_var(journey: str, name: str) -> str:
    """The environment variable the journey reads the secret from: CHECKOUT_PASSWORD."""
    return f"{journey}_{name}".upper().replace("-", "_")


def _identifier(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    name = "_".join(words)[:40].strip("_")
    return name if name and name[0].isalpha() else ""
