"""``${var}``, ``${env.NAME}`` and ``${secret.NAME}`` in journey values, and secret masking.

Templates are resolved at run time, never at load time: a secret is read from the
environment when a run needs it and is never kept in a model. ``$${`` writes a literal
``${``. A reference that cannot be resolved raises :class:`MissingValue`, which the
runner records as a failed run (reason ``config``), never as an agent crash.
"""

from __future__ import annotations

import base64
import functools
import html.entities
import itertools
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any, TypeVar
from urllib.parse import quote

__all__ = [
    "DEFAULT_ALLOW_ENV",
    "MASK",
    "EnvAllowList",
    "JourneyEnviron",
    "Masker",
    "MissingValue",
    "Template",
    "references",
]

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
    r"""Replaces every known secret, in any encoding of its characters, by ``***``.

    A secret matches character by character, each character other than an ASCII letter
    or digit in any form it takes when text is encoded: itself; percent-encoded (its
    UTF-8 bytes, hex in either case, encoded again as ``%25..``), ``+`` for a space and a
    space for ``+``; HTML-escaped (named, decimal and hexadecimal entities, escaped again
    as ``&amp;..``); backslash-escaped as JSON, JavaScript and ``repr`` write it (``\"``,
    ``\u00e9``, ``\xe9``, ``\xc3\xa9``, with any number of backslashes: escaped once,
    twice...). So a URL as httpx or Chromium keeps it, a JSON body quoted in a message
    logged as JSON, and a page saved by the browser all lose the secret, whatever mix of
    escapes they use. A run of whitespace matches any run of whitespace (messages
    collapse them). Encoders that encode letters and digits encode every character: those
    forms (all entities, all percent, all ``\uXXXX``) are matched whole.

    The base64 of any text holding a secret of 6 bytes or more loses the characters that
    encode only the secret (at its three alignments). A form that is not character by
    character, such as the exact base64 of a Basic ``user:password`` pair, is registered
    with :meth:`add_form` by the code that makes it.

    Each secret is one compiled pattern, cached: text without a secret costs a scan per
    secret (a fast one when the secret starts with a letter or digit: the pattern then
    starts with a literal) and a substring search per whole form.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: dict[str, None] = {}  # matched character by character
        self._whole: dict[str, None] = {}  # matched as they are
        self._groups: list[tuple[str, list[str]]] = []  # whole forms by what they contain
        self._patterns: list[re.Pattern[str]] = []  # one per secret, longest first
        for secret in secrets:
            self._register(secret)
        self._compile()

    def add(self, secret: str) -> None:
        """Mask ``secret`` from now on, and the base64 of any text that holds it."""
        self._register(secret)
        self._compile()

    def add_form(self, form: str) -> None:
        """Mask ``form``, a form of a secret the agent made (the base64 of Basic credentials)."""
        if form:
            self._whole.update(dict.fromkeys(_as_is(form)))
            self._compile()

    @property
    def holds_secrets(self) -> bool:
        """Whether anything is masked: a run with no secret can show everything."""
        return bool(self._secrets or self._whole)

    def patterns(self) -> list[str]:
        """Regular expressions matching every masked form (valid in JavaScript too: the
        browser finds the elements that show a secret with them)."""
        whole = [re.escape(form) for _, forms in self._groups for form in forms]
        return [pattern.pattern for pattern in self._patterns] + whole

    def _register(self, secret: str) -> None:
        if secret:
            self._secrets[secret] = None
            self._whole.update(dict.fromkeys(_derived(secret)))

    def _compile(self) -> None:
        self._patterns = [
            _compiled(secret) for secret in sorted(self._secrets, key=len, reverse=True)
        ]
        groups: dict[str, list[str]] = {}
        for form in sorted(self._whole, key=len, reverse=True):
            groups.setdefault(_marker(form), []).append(form)
        self._groups = list(groups.items())

    def __call__(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub(MASK, text)
        for marker, forms in self._groups:
            if marker in text:  # skips a group of encoded forms in one search
                for form in forms:
                    if form in text:
                        text = text.replace(form, MASK)
        return text


_SPACES = " \t\n\r\f\v"
_SHORT_ESCAPES = {"\n": "n", "\r": "r", "\t": "t", "\b": "b", "\f": "f", "\v": "v"}
_MIN_BASE64_CORE = 8  # characters: 6 bytes of the secret


@functools.cache
def _entity_names() -> dict[str, tuple[str, ...]]:
    """HTML's named character references (``eacute;``) by the character they stand for."""
    names: dict[str, list[str]] = {}
    for name, char in html.entities.html5.items():
        if name.endswith(";") and len(char) == 1:
            names.setdefault(char, []).append(name)
    return {char: tuple(found) for char, found in names.items()}


def _hex(value: int, width: int = 1) -> str:
    """``value`` in hexadecimal as a pattern matching either case: ``[cC]3``."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in f"{value:0{width}x}")


@functools.lru_cache(maxsize=1024)
def _alternatives(char: str) -> tuple[str, ...]:
    """The patterns of one character of a secret, each starting with a literal (so that
    the compiled alternation can skip ahead to the characters that may start a match)."""
    if char.isascii() and char.isalnum():
        return (char,)
    if char in _SPACES:
        plain = [re.escape(space) for space in _SPACES] + [r"\+"]
    else:
        plain = [re.escape(char)] + ([" "] if char == "+" else [])
    code, utf8 = ord(char), char.encode("utf-8", "surrogatepass")
    percent = "".join(f"%(?:25)*{_hex(byte, 2)}" for byte in utf8)
    names = "".join(f"|{re.escape(name)}" for name in _entity_names().get(char, ()))
    entity = f"&(?:amp;)*(?:#0*{code};|#[xX]0*{_hex(code)};{names})"
    escapes = [re.escape(char)] if char in "\"'\\/" else []
    if char in _SHORT_ESCAPES:
        escapes.append(_SHORT_ESCAPES[char])
    if code > 0xFFFF:
        high, low = divmod(code - 0x10000, 0x400)
        escapes += [rf"u{_hex(0xD800 + high, 4)}\\+u{_hex(0xDC00 + low, 4)}", f"U{_hex(code, 8)}"]
    else:
        escapes.append(f"u{_hex(code, 4)}")
    if code < 0x100:
        escapes.append(f"x{_hex(code, 2)}")
    if code > 0x7F:  # repr() of the UTF-8 bytes
        escapes.append(r"\\+".join(f"x{_hex(byte, 2)}" for byte in utf8))
    escapes.append(entity)  # HTML-escaped, then JSON-escaped: \&quot;
    # one backslash, then any more: a pattern starting with a literal
    return (*plain, percent, entity, rf"\\\\*(?:{'|'.join(escapes)})")


def _form_pattern(form: str) -> str:
    """``form`` as alternatives that each start with a literal: the first character's
    patterns, each followed by the rest of the form."""
    tokens = []
    for is_space, run in itertools.groupby(form, key=lambda char: char in _SPACES):
        if is_space:
            tokens.append(f"(?:{'|'.join(_alternatives(next(run)))})+")
        else:
            tokens += [_one_of(_alternatives(char)) for char in run]
    if form[0] in _SPACES:
        return "".join(tokens)
    rest = "".join(tokens[1:])
    return "|".join(first + rest for first in _alternatives(form[0]))


def _one_of(patterns: tuple[str, ...]) -> str:
    return patterns[0] if len(patterns) == 1 else f"(?:{'|'.join(patterns)})"


@functools.lru_cache(maxsize=256)
def _compiled(secret: str) -> re.Pattern[str]:
    """One secret's pattern: compiled once per process (a run's masker costs a lookup,
    and a secret extracted during a run compiles only its own)."""
    return re.compile(_form_pattern(secret))


@functools.lru_cache(maxsize=256)
def _derived(secret: str) -> tuple[str, ...]:
    """The forms of ``secret`` matched as they are: every character encoded, base64."""
    forms = _encoded_whole(secret) + [
        variant for core in _base64_cores(secret.encode()) for variant in _as_is(core)
    ]
    return tuple(dict.fromkeys(forms))


def _marker(form: str) -> str:
    """What every form of a group contains: ``&#``, ``%``, ``\\u``, or nothing (base64)."""
    return next((marker for marker in ("&#", "%", "\\u") if form.startswith(marker)), "")


def _as_is(form: str) -> list[str]:
    """``form`` and, when it differs, its URL-encoded form (base64 in a query string)."""
    return list(dict.fromkeys((form, quote(form, safe=""))))


def _encoded_whole(secret: str) -> list[str]:
    """``secret`` with every character encoded, as "encode everything" encoders write it."""
    points, utf8 = [ord(char) for char in secret], secret.encode()
    forms = [
        "".join(f"&#{point};" for point in points),
        "".join(f"&#x{point:x};" for point in points),
        "".join(f"&#x{point:X};" for point in points),
        "".join(f"%{byte:02X}" for byte in utf8),
        "".join(f"%{byte:02x}" for byte in utf8),
        "".join(f"\\u{point:04x}" for point in points if point <= 0xFFFF),
        "".join(f"\\u{point:04X}" for point in points if point <= 0xFFFF),
    ]
    return [form for form in dict.fromkeys(forms) if len(form) > len(secret)]


def _base64_cores(secret: bytes) -> list[str]:
    """The base64 characters that encode only ``secret``, at each of its three alignments
    in a longer text, in the standard and the URL-safe alphabet."""
    cores = [base64.b64encode(secret).decode("ascii")]  # the secret alone, padded
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + secret).decode("ascii")
        cores.append(encoded[4 if offset else 0 : 4 * ((offset + len(secret)) // 3)])
    return [
        variant
        for core in dict.fromkeys(cores)
        if len(core) >= _MIN_BASE64_CORE
        for variant in dict.fromkeys((core, core.replace("+", "-").replace("/", "_")))
    ]


DEFAULT_ALLOW_ENV = ("JOURNEY_*",)


class EnvAllowList:
    """Which of the agent's environment variables journeys may read (``--allow-env``).

    A journey may read ``${env.NAME}`` when NAME matches one of the patterns (shell
    wildcards, case-sensitive: ``JOURNEY_*``, ``SHOP_URL``) or when the journey's own
    ``secrets:`` read it (a secret is masked everywhere). The rest of the agent's
    environment (``HOME``, the container's credentials) is not the journeys' to read.
    """

    def __init__(self, patterns: Iterable[str] = DEFAULT_ALLOW_ENV) -> None:
        self.patterns = tuple(dict.fromkeys(p.strip() for p in patterns if p.strip()))

    def allows(self, name: str, secret_names: Collection[str] = ()) -> bool:
        return name in secret_names or any(fnmatchcase(name, p) for p in self.patterns)

    def refusal(self, name: str) -> str:
        """Why ``name`` may not be read, and how to allow it (never its value)."""
        may = ", ".join(self.patterns)
        return (
            f"environment variable {name} is not allowed: journeys may read "
            f"{may + ' and ' if may else ''}the variables their secrets: read (allow it with "
            f"--allow-env {name}, or read it under secrets:, which masks it)"
        )


class JourneyEnviron(Mapping[str, str]):
    """The agent's environment as one journey sees it: every variable is there (so that
    an unset one is told apart), but reading one it may not read is refused by
    :class:`Template` as ``config``."""

    def __init__(
        self, raw: Mapping[str, str], allowed: EnvAllowList, secret_names: Collection[str]
    ) -> None:
        self.raw = raw
        self.allowed = allowed
        self.secret_names = frozenset(secret_names)

    def refusal(self, name: str) -> str | None:
        if self.allowed.allows(name, self.secret_names):
            return None
        return self.allowed.refusal(name)

    def __getitem__(self, name: str) -> str:
        return self.raw[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


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
        if scope == "env" and isinstance(self.environ, JourneyEnviron):
            refused = self.environ.refusal(name)  # before "not set": it tells nothing
            if refused is not None:
                raise MissingValue(refused)
        if name not in source:
            label = {"var": "variable", "env": "environment variable", "secret": "secret"}[scope]
            raise MissingValue(f"{label} {name!r} is not set")
        return str(source[name])
