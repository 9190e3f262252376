"""The HTTP step as written in YAML: the request, the expectations, the extractions."""

from __future__ import annotations

import re
import string
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator

from agent.language import jsonpath
from agent.language.fields import ByteSize, Duration, StrictModel
from agent.steps.kind import CERT_EXPIRY, Aggregate, Measure, StepBase, StepKind

__all__ = [
    "KIND",
    "METHODS",
    "Auth",
    "Expect",
    "ExtractRule",
    "HttpRequest",
    "HttpStep",
    "header_name_problem",
    "header_value_problem",
]

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
_STATUS_CLASS = re.compile(r"^[1-5]xx$")
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)
_REFERENCE = re.compile(r"\$\$\{|\$\{[^}]*\}")  # rendered at run time, checked again then


def header_name_problem(name: str) -> str:
    """What keeps ``name`` from being an HTTP header name (a token), or "" when nothing."""
    if not name:
        return "an empty name"
    bad = next((c for c in name if c not in _TOKEN_CHARS), None)
    return "" if bad is None else _character(bad)


def header_value_problem(value: str) -> str:
    """What keeps ``value`` from being sent as an HTTP header value, or "" when nothing:
    printable ASCII on one line (spaces and tabs included), never CR, LF or NUL."""
    bad = next((c for c in value if not (c == "\t" or " " <= c <= "~")), None)
    return "" if bad is None else _character(bad)


def _character(char: str) -> str:
    if char in "\r\n":
        return "a line break (CR or LF)"
    if char == " ":
        return "a space"
    kind = "a non-ASCII character" if ord(char) > 0x7F else "a control character"
    return f"{kind} (U+{ord(char):04X})"


def _literal_header_name(name: str) -> str:
    problem = header_name_problem(_REFERENCE.sub("x", name))
    if problem:
        raise ValueError(
            f"must be a header name (letters, digits and !#$%&'*+-.^_`|~), got {problem}"
        )
    return name


def _literal_header_value(value: str) -> str:
    problem = header_value_problem(value)
    if problem:
        raise ValueError(f"must be printable ASCII on one line, got {problem}")
    return value


HeaderName = Annotated[str, AfterValidator(_literal_header_name)]
HeaderValue = Annotated[str, AfterValidator(_literal_header_value)]


def _status_code(value: int) -> int:
    if not 100 <= value <= 599:
        raise ValueError(f"must be an HTTP status code (100-599), got {value}")
    return value


class BasicAuth(StrictModel):
    user: str
    password: str


class Auth(StrictModel):
    """Exactly one of ``basic`` or ``bearer``."""

    basic: BasicAuth | None = None
    bearer: str | None = None

    @model_validator(mode="after")
    def _one_scheme(self) -> Auth:
        if (self.basic is None) == (self.bearer is None):
            raise ValueError("give exactly one of basic or bearer")
        return self


class HttpRequest(StrictModel):
    """The request: one method key (``get: URL``, ``post: URL``, ...) and its options."""

    get: str | None = None
    post: str | None = None
    put: str | None = None
    patch: str | None = None
    delete: str | None = None
    head: str | None = None
    options: str | None = None
    query: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json", description="Request body sent as JSON")
    form: dict[str, str | int | float | bool] | None = Field(
        default=None, description="Request body sent as application/x-www-form-urlencoded"
    )
    body: str | None = Field(default=None, description="Raw request body")
    auth: Auth | None = None
    follow_redirects: bool = True
    max_redirects: int = Field(default=10, ge=0, le=50)
    verify: bool | str = Field(
        default=True, description="Verify TLS certificates: true, false, or a CA bundle path"
    )
    max_body: ByteSize = Field(
        default=10_000_000, description="Read at most this much of the response (e.g. 10MB)"
    )

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _one_method_one_body(self) -> HttpRequest:
        given = [m for m in METHODS if getattr(self, m) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one method with its URL ({', '.join(METHODS)}), got "
                f"{len(given) or 'none'}{': ' + ', '.join(given) if given else ''}"
            )
        bodies = [b for b in ("json", "form", "body") if self._body(b) is not None]
        if len(bodies) > 1:
            raise ValueError(f"give at most one body (json, form or body), got {', '.join(bodies)}")
        return self

    def _body(self, kind: str) -> Any:
        return {"json": self.json_body, "form": self.form, "body": self.body}[kind]

    @property
    def method(self) -> str:
        return next(m for m in METHODS if getattr(self, m) is not None).upper()

    @property
    def url(self) -> str:
        url: str = getattr(self, self.method.lower())
        return url


class Expect(StrictModel):
    """What the response must look like; every failure reports expected vs actual."""

    status: int | str | list[int | str] | None = Field(
        default=None, description="A code (200), a class (2xx), or a list of either"
    )
    body_contains: str | list[str] | None = None
    body_not_contains: str | list[str] | None = None
    body_matches: str | None = Field(default=None, description="A regular expression (search)")
    json_equals: dict[str, Any] = Field(
        default_factory=dict,
        alias="json",
        description='JSON path -> expected value, e.g. {"$.ok": true}',
    )
    json_exists: list[str] = Field(default_factory=list, description="JSON paths that must exist")
    json_matches: dict[str, str] = Field(
        default_factory=dict, description="JSON path -> regular expression"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Header -> exact value")
    header_matches: dict[str, str] = Field(
        default_factory=dict, description="Header -> regular expression"
    )
    max_duration: Duration | None = None

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @field_validator("status")
    @classmethod
    def _valid_status(cls, value: int | str | list[int | str] | None) -> Any:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int):
                _status_code(item)
            elif isinstance(item, str) and not _STATUS_CLASS.match(item):
                raise ValueError(f"must be a status code or a class such as 2xx, got {item!r}")
        return value

    @field_validator("body_matches")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value)
        return value

    @field_validator("json_matches", "header_matches")
    @classmethod
    def _valid_regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            _compile(pattern)
        return value

    @field_validator("json_equals", "json_exists", "json_matches")
    @classmethod
    def _valid_paths(cls, value: dict[str, Any] | list[str]) -> dict[str, Any] | list[str]:
        for path in value:
            jsonpath.parse(path)
        return value


class ExtractRule(StrictModel):
    """One source: ``json`` path, ``regex`` (group 1, or the match), ``header`` or ``cookie``."""

    json_path: str | None = Field(default=None, alias="json")
    regex: str | None = None
    header: str | None = None
    cookie: str | None = None
    secret: bool = Field(default=False, description="Mask the extracted value in every output")

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _one_source(self) -> ExtractRule:
        sources = [s for s in (self.json_path, self.regex, self.header, self.cookie) if s]
        if len(sources) != 1:
            raise ValueError("give exactly one of json, regex, header or cookie")
        if self.regex is not None:
            _compile(self.regex)
        if self.json_path is not None:
            jsonpath.parse(self.json_path)
        return self


class HttpStep(StepBase):
    """An HTTP request made with httpx, its expectations and extractions."""

    kind_name = "http"

    http: HttpRequest
    expect: Expect = Field(default_factory=Expect)
    extract: dict[str, ExtractRule] = Field(default_factory=dict)

    def provides(self) -> frozenset[str]:
        return frozenset(self.extract)


def _compile(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"invalid regular expression {pattern!r}: {error}") from None


KIND = StepKind(
    model=HttpStep,
    run="agent.steps.http.run:run",
    measures=(
        # Seconds per phase, successful steps only: dividing by the step histogram's count
        # gives the mean, at one sample per phase (a histogram per phase would be 5 x 11).
        Measure("phases", "journey_http_phase_seconds_total",
                "Seconds spent in each phase of successful HTTP steps", Aggregate.SUM,
                label="phase", only_ok=True),
        CERT_EXPIRY,
    ),
)  # fmt: skip
