"""Load-time checks of a journey's ``${...}`` references, which its model cannot see.

Templates are resolved at run time (:mod:`agent.language.templating`); here the loader makes sure
they will resolve: ``${name}`` is a journey variable or a value an earlier step extracts,
``${secret.NAME}`` is declared under ``secrets``, ``${env.NAME}`` is one journeys may
read (``--allow-env``, or read under ``secrets``) and is set (a warning, or an error when
the environment must be complete), and every reference is well formed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from agent.language.field_errors import format_path, suggest
from agent.language.model import Journey
from agent.language.templating import EnvAllowList, references
from agent.language.yaml_marks import Path
from agent.steps.http.model import METHODS

__all__ = ["Finding", "check_references", "navigation_refusal"]

_URL_KEYS = frozenset(METHODS) | {"goto"}  # values that servers and proxies log in full


@dataclass(frozen=True, slots=True)
class Finding:
    path: Path
    message: str
    error: bool = True


def check_references(
    journey: Journey,
    data: Mapping[str, Any],
    environ: Mapping[str, str] | None,
    *,
    require_env: bool = False,
    allow_env: EnvAllowList | None = None,
) -> list[Finding]:
    """Every reference problem in ``journey`` (validated from ``data``).

    ``environ`` None skips the check that environment variables are set; ``allow_env``
    None the check that the journey may read them.
    """
    check = _Checker(journey, environ, require_env, allow_env, _secret_env(data))
    for section in ("variables", "secrets"):
        for path, text in _strings(data.get(section), (section,)):
            check.text(path, text, variables=None)
    for path, value in _items(data.get("secrets"), ("secrets",)):
        if isinstance(value, str) and value and "${" not in value.replace("$${", ""):
            check.warn(path, "secret written in the file: read it with ${env.NAME} instead")
    available = set(journey.variables)
    for index, step in enumerate(journey.steps):
        for path, text in _strings(data["steps"][index], ("steps", index)):
            check.text(path, text, variables=available)
        available |= step.provides()
    return check.findings


class _Checker:
    def __init__(
        self,
        journey: Journey,
        environ: Mapping[str, str] | None,
        require_env: bool,
        allow_env: EnvAllowList | None,
        secret_env: set[str],
    ) -> None:
        self.journey = journey
        self.environ = environ
        self.require_env = require_env
        self.allow_env = allow_env
        self.secret_env = secret_env  # read under secrets: always allowed (and masked)
        self.findings: list[Finding] = []
        self._setters = {name: i for i, s in enumerate(journey.steps) for name in s.provides()}

    def warn(self, path: Path, message: str) -> None:
        self.findings.append(Finding(path, message, error=False))

    def text(self, path: Path, text: str, variables: set[str] | None) -> None:
        """Check one string; ``variables`` None means no ``${name}`` may be used there."""
        written = text.split("${", 1)[0]  # what no template can change
        is_goto = path[-1] == "goto" or path[-2:] == ("goto", "url")
        if is_goto and urlsplit(written).scheme and written != "about:":
            refused = navigation_refusal(written)
            if refused is not None:
                self.findings.append(Finding(path, refused))
        try:
            found = references(text)
        except ValueError as error:
            self.findings.append(Finding(path, str(error)))
            return
        for scope, name in found:
            allow = self.allow_env
            if scope == "env" and allow is not None and not allow.allows(name, self.secret_env):
                self.findings.append(Finding(path, allow.refusal(name)))
                continue
            message = self._problem(scope, name, variables)
            if message:
                fatal = scope != "env" or self.require_env
                self.findings.append(Finding(path, message, fatal))
            in_url = path[-1] in _URL_KEYS or path[-2:-1] == ("query",)
            if scope == "secret" and in_url:
                self.warn(path, "a secret in a URL ends up in server logs: send it in a header")

    def _problem(self, scope: str, name: str, variables: set[str] | None) -> str | None:
        if scope == "env":
            unset = self.environ is not None and name not in self.environ
            return f"environment variable {name} is not set" if unset else None
        if scope == "secret":
            if name in self.journey.secrets:
                return None
            return f"undeclared secret {name!r}{suggest(name, list(self.journey.secrets))}"
        if variables is None:
            return f"${{{name}}}: only ${{env.NAME}} and ${{secret.NAME}} may be used here"
        if name in variables:
            return None
        if name in self._setters:
            later = format_path(("steps", self._setters[name]))
            return f"variable {name!r} is only set later, by {later}"
        return f"undefined variable {name!r}{suggest(name, sorted(variables))}"


_WEB = ("http", "https")


def navigation_refusal(url: str, *, subframe: bool = False) -> str | None:
    """Why a frame may not be navigated to ``url``, or None. The main frame opens http and
    https pages and ``about:blank`` only: no ``file:`` (the agent's files), ``data:`` or
    ``javascript:`` (pages written in the journey), ``chrome:`` or ``view-source:``. A
    subframe may also hold what its page made itself (``data:``, ``blob:``,
    ``about:srcdoc``), which reads no local file and reaches no host."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in _WEB or url == "about:blank":
        return None
    if subframe and scheme in ("data", "blob", "about"):
        return None
    what = "a local file" if scheme == "file" else f"a {scheme}: URL" if scheme else "this"
    shown = url if len(url) <= 100 else url[:100] + "..."
    return (
        f"navigation to {shown} refused: journeys open http and https pages and about:blank "
        f"only, not {what}"
    )


def _secret_env(data: Mapping[str, Any]) -> set[str]:
    """The environment variables the journey's ``secrets`` read."""
    names = set()
    for _, text in _strings(data.get("secrets"), ("secrets",)):
        try:
            names |= {name for scope, name in references(text) if scope == "env"}
        except ValueError:
            continue  # reported where it is written
    return names


def _strings(node: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """Every string in ``node`` (values and mapping keys) with its path."""
    if isinstance(node, str):
        yield path, node
    for key_path, value in _items(node, path):
        if isinstance(key_path[-1], str):
            yield key_path, key_path[-1]
        yield from _strings(value, key_path)


def _items(node: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    if isinstance(node, dict):
        yield from (((*path, key), value) for key, value in node.items())
    elif isinstance(node, list):
        yield from (((*path, i), value) for i, value in enumerate(node))
