"""``${var}``, ``${env.NAME}`` and ``${secret.NAME}`` in journey values, and secret masking.

Templates are resolved at run time, never at load time: a secret is read from the
environment when a run needs it and is never kept in a model. ``$${`` writes a literal
``${``. A reference that cannot be resolved raises :class:`MissingValue`, which the
runner records as a failed run (reason ``config``), never as an agent crash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "Masker", "MissingValue", "Template", "references"]

MASK = "***"
_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_NAME = re.compile(r"^(?:(env|secret)\.)?([A-Za-z_][A-Za-z0-9_]*)$")

T = TypeVar("T")


class MissingValue(LookupError):
    """A template names a variable, environment variable or secret that is not set."""


def references(text: str) -> list[tuple[str, str]]:
    """The references in ``text`` as (scope, name); scope is "var", "env" or "secret".

    A malformed reference (``${}``, ``${a b}``) raises ValueError naming it.
    """
    found = []
    for match in _REF.finditer(text):
        if match.group(0) == "$${":
            continue
        parsed = _NAME.match(match.group(1))
        if parsed is None:
            raise ValueError(
                f"malformed reference ${{{match.group(1)}}}: "
                "use ${name}, ${env.NAME} or ${secret.NAME}"
            )
        found.append((parsed.group(1) or "var", parsed.group(2)))
    return found


class Masker:
    """Replaces every known secret value, and its URL-, JSON- and repr-escaped forms, by ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if not secret:
            return
        forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
        forms |= {repr(form)[1:-1] for form in forms}  # messages quote what they saw with !r
        self._forms.update(forms)
        self._ordered = sorted(self._forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        if not self._forms:
            return text
        for form in self._ordered:
            if form in text:
                text = text.replace(form, MASK)
        return text


class Template:
    """Resolves references against a run's variables, secrets and environment."""

    def __init__(
        self,
        variables: Mapping[str, str],
        secrets: Mapping[str, str],
        environ: Mapping[str, str],
    ) -> None:
        self.variables = variables
        self.secrets = secrets
        self.environ = environ

    def render(self, value: T) -> T:
        """Resolve every string inside ``value`` (a string, list or dict, nested)."""
        if isinstance(value, str):
            return self._render_text(value)  # type: ignore[return-value]
        if isinstance(value, list):
            return [self.render(item) for item in value]  # type: ignore[return-value]
        if isinstance(value, tuple):
            return tuple(self.render(item) for item in value)  # type: ignore[return-value]
        if isinstance(value, dict):
            return {self.render(k): self.render(v) for k, v in value.items()}  # type: ignore[return-value]
        return value

    def _render_text(self, text: str) -> str:
        if "$" not in text:
            return text
        return _REF.sub(self._substitute, text)

    def _substitute(self, match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        parsed = _NAME.match(match.group(1))
        if parsed is None:
            raise MissingValue(f"malformed reference ${{{match.group(1)}}}")
        scope, name = parsed.group(1) or "var", parsed.group(2)
        source: Mapping[str, Any] = {
            "var": self.variables, "env": self.environ, "secret": self.secrets,
        }[scope]  # fmt: skip
        if name not in source:
            label = {"var": "variable", "env": "environment variable", "secret": "secret"}[scope]
            raise MissingValue(f"{label} {name!r} is not set")
        return str(source[name])
