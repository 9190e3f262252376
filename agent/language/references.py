"""Load-time checks of a journey's ``${...}`` references, which its model cannot see.

Templates are resolved at run time (:mod:`agent.language.templating`); here the loader makes sure
they will resolve: ``${name}`` is a journey variable or a value an earlier step extracts,
``${secret.NAME}`` is declared under ``secrets``, ``${env.NAME}`` is one journeys may
read (``--allow-env``, or read under ``secrets``) and is set (a warning, or an error when
the environment must be complete), and every reference is well formed.

The checks read the journey as written, so that they run even when its model has errors
(every mistake of a file is reported at once): each step's variables come from its
model when the step is valid; a step with errors of its own may set any name written in
it (any key), so no such name is reported as undefined after it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from pydantic import TypeAdapter, ValidationError

from agent.language.field_errors import format_path, suggest
from agent.language.model import Journey, Step
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
    data: Mapping[str, Any],
    journey: Journey | None,
    environ: Mapping[str, str] | None,
    *,
    require_env: bool = False,
    allow_env: EnvAllowList | None = None,
) -> list[Finding]:
    """Every reference problem in the journey written as ``data``; ``journey`` is its
    model, or None when ``data`` did not validate.

    ``environ`` None skips the check that environment variables are set; ``allow_env``
    None the check that the journey may read them.
    """
    written = data.get("steps")
    steps: list[Any] = written if isinstance(written, list) else []
    provides: list[frozenset[str] | None] = (
        [step.provides() for step in journey.steps] if journey else [_provides(s) for s in steps]
    )
    secrets = _names(data.get("secrets"))
    check = _Checker(secrets, provides, environ, require_env, allow_env, _secret_env(data))
    for section in ("variables", "secrets"):
        for path, text in _strings(data.get(section), (section,)):
            check.text(path, text, variables=None)
    for path, value in _items(data.get("secrets"), ("secrets",)):
        if isinstance(value, str) and value and "${" not in value.replace("$${", ""):
            check.warn(path, "secret written in the file: read it with ${env.NAME} instead")
    available = _names(data.get("variables"))
    for index, step in enumerate(steps):
        for path, text in _strings(step, ("steps", index)):
            check.text(path, text, variables=_UNKNOWN if available is None else available)
        if available is not None:
            given = provides[index]
            available |= given if given is not None else _keys(step)
    return check.findings


class _Unknown:
    """Which variables are set cannot be told: the ``variables:`` section is broken."""


_UNKNOWN = _Unknown()


def _names(section: Any) -> set[str] | None:
    """The names a ``variables:`` or ``secrets:`` mapping declares; None when it is not a
    mapping (reported by the model), so that nothing is checked against it."""
    if section is None:
        return set()
    return {str(name) for name in section} if isinstance(section, dict) else None


def _provides(step: Any) -> frozenset[str] | None:
    """What a step sets, from its model; None when the step has errors of its own."""
    try:
        return _step_model().validate_python(step).provides()
    except ValidationError:
        return None


def _keys(node: Any) -> set[str]:
    """Every mapping key written in ``node``: what a broken step may set."""
    return {path[-1] for path, _ in _strings(node, ()) if path and isinstance(path[-1], str)}


@cache
def _step_model() -> TypeAdapter[Step]:
    return TypeAdapter(Step)


class _Checker:
    def __init__(
        self,
        secrets: set[str] | None,
        provides: list[frozenset[str] | None],
        environ: Mapping[str, str] | None,
        require_env: bool,
        allow_env: EnvAllowList | None,
        secret_env: set[str],
    ) -> None:
        self.secrets = secrets  # None: the secrets section is broken, names are unknown
        self.environ = environ
        self.require_env = require_env
        self.allow_env = allow_env
        self.secret_env = secret_env  # read under secrets: always allowed (and masked)
        self.findings: list[Finding] = []
        self._setters = {name: i for i, given in enumerate(provides) for name in given or ()}

    def warn(self, path: Path, message: str) -> None:
        self.findings.append(Finding(path, message, error=False))

    def text(self, path: Path, text: str, variables: set[str] | _Unknown | None) -> None:
        """Check one string; ``variables`` None means no ``${name}`` may be used there,
        _UNKNOWN that which names are set cannot be told."""
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

    def _problem(self, scope: str, name: str, variables: set[str] | _Unknown | None) -> str | None:
        if scope == "env":
            unset = self.environ is not None and name not in self.environ
            return f"environment variable {name} is not set" if unset else None
        if scope == "secret":
            if self.secrets is None or name in self.secrets:
                return None
            return f"undeclared secret {name!r}{suggest(name, sorted(self.secrets))}"
        if variables is None:
            return f"${{{name}}}: only ${{env.NAME}} and ${{secret.NAME}} may be used here"
        if isinstance(variables, _Unknown) or name in variables:
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
