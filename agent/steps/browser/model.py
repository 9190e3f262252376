"""The browser step as written in YAML: a list of actions a customer performs.

Each action is a one-key mapping (``goto: URL``, ``click: SELECTOR``, ``fill: {SELECTOR:
VALUE}``, ``expect_text: TEXT`` ...). Selectors are Playwright's (``#id``, ``text=Pay``,
``role=button[name="Pay"]``). Values may use ``${...}`` templates; a ``fill`` value that
contains a secret is typed but never shown. Step options (emulation, block list,
``fail_on_*``, artifacts) sit next to the ``browser:`` list.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from agent.language.fields import ByteSize, Duration, StrictModel
from agent.steps.kind import Aggregate, Measure, StepBase, StepKind

__all__ = [
    "ACTION_NAMES",
    "CLS_BUCKETS",
    "KIND",
    "VITAL_BUCKETS",
    "Action",
    "BrowserOptions",
    "BrowserStep",
    "Emulation",
    "ExpectCount",
    "ExpectText",
    "ExtractFromPage",
    "Goto",
    "NetworkConditions",
    "Viewport",
    "WaitFor",
]

_Selector = Annotated[str, Field(min_length=1)]


class GotoOptions(StrictModel):
    url: str = Field(min_length=1)
    wait_until: Literal["load", "domcontentloaded", "networkidle", "commit"] = "load"


class Goto(StrictModel):
    goto: str | GotoOptions = Field(description="URL to open, or {url, wait_until}")

    @property
    def options(self) -> GotoOptions:
        return self.goto if isinstance(self.goto, GotoOptions) else GotoOptions(url=self.goto)


class Click(StrictModel):
    click: _Selector


class Fill(StrictModel):
    fill: dict[str, str] = Field(
        min_length=1, description="Selector -> text typed; a value with a secret is never shown"
    )


class Select(StrictModel):
    select: dict[str, str | list[str]] = Field(
        min_length=1, description="Selector of a <select> -> option value or label (or a list)"
    )


class Check(StrictModel):
    check: _Selector


class Uncheck(StrictModel):
    uncheck: _Selector


class Press(StrictModel):
    press: str | dict[str, str] = Field(
        description="A key for the focused element (Enter), or selector -> key"
    )


class Hover(StrictModel):
    hover: _Selector


class WaitForOptions(StrictModel):
    """Exactly one of selector (with state), text, url (contained) or network_idle."""

    selector: str | None = None
    state: Literal["visible", "hidden", "attached", "detached"] = "visible"
    text: str | None = None
    url: str | None = None
    network_idle: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> WaitForOptions:
        given = [
            name for name in ("selector", "text", "url") if getattr(self, name) is not None
        ] + (["network_idle"] if self.network_idle else [])
        if len(given) != 1:
            raise ValueError("give exactly one of selector, text, url or network_idle: true")
        return self


class WaitFor(StrictModel):
    wait_for: WaitForOptions


class Upload(StrictModel):
    upload: dict[str, str | list[str]] = Field(
        min_length=1, description="Selector of a file input -> fixture file path(s)"
    )


class ExtractFromPage(StrictModel):
    """The text (or an attribute) of the first element matching ``selector``."""

    selector: _Selector
    attribute: str | None = Field(default=None, description="Read this attribute, not the text")
    regex: str | None = Field(default=None, description="Keep group 1 (or the whole match)")
    secret: bool = Field(default=False, description="Mask the extracted value in every output")

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"invalid regular expression {value!r}: {error}") from None
        return value


class Extract(StrictModel):
    extract: dict[str, ExtractFromPage] = Field(min_length=1, description="Variable -> source")

    @field_validator("extract")
    @classmethod
    def _names(cls, value: dict[str, ExtractFromPage]) -> dict[str, ExtractFromPage]:
        for name in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f"variable names are letters, digits and _, got {name!r}")
        return value


class ExpectText(StrictModel):
    text: str = Field(min_length=1)
    selector: str | None = Field(default=None, description="Where to look (default: the page)")


class ExpectTextAction(StrictModel):
    expect_text: str | ExpectText = Field(description="Text the page (or selector) contains")

    @property
    def options(self) -> ExpectText:
        value = self.expect_text
        return value if isinstance(value, ExpectText) else ExpectText(text=value)


class ExpectVisible(StrictModel):
    expect_visible: _Selector


class ExpectHidden(StrictModel):
    expect_hidden: _Selector


class ExpectUrl(StrictModel):
    expect_url: str = Field(min_length=1, description="Text the page's URL contains")


class ExpectTitle(StrictModel):
    expect_title: str = Field(min_length=1, description="Text the page's title contains")


class ExpectCount(StrictModel):
    selector: _Selector
    count: int = Field(ge=0)


class ExpectCountAction(StrictModel):
    expect_count: ExpectCount


_ACTIONS: dict[str, type[StrictModel]] = {
    "goto": Goto,
    "click": Click,
    "fill": Fill,
    "select": Select,
    "check": Check,
    "uncheck": Uncheck,
    "press": Press,
    "hover": Hover,
    "wait_for": WaitFor,
    "upload": Upload,
    "extract": Extract,
    "expect_text": ExpectTextAction,
    "expect_visible": ExpectVisible,
    "expect_hidden": ExpectHidden,
    "expect_url": ExpectUrl,
    "expect_title": ExpectTitle,
    "expect_count": ExpectCountAction,
}
ACTION_NAMES = tuple(_ACTIONS)


def _action_kind(value: Any) -> str | None:
    """An action is a mapping with exactly one key, the action's name."""
    if isinstance(value, dict):
        return next(iter(value)) if len(value) == 1 and next(iter(value)) in _ACTIONS else None
    return next((name for name, model in _ACTIONS.items() if isinstance(value, model)), None)


Action = Annotated[
    Annotated[Goto, Tag("goto")]
    | Annotated[Click, Tag("click")]
    | Annotated[Fill, Tag("fill")]
    | Annotated[Select, Tag("select")]
    | Annotated[Check, Tag("check")]
    | Annotated[Uncheck, Tag("uncheck")]
    | Annotated[Press, Tag("press")]
    | Annotated[Hover, Tag("hover")]
    | Annotated[WaitFor, Tag("wait_for")]
    | Annotated[Upload, Tag("upload")]
    | Annotated[Extract, Tag("extract")]
    | Annotated[ExpectTextAction, Tag("expect_text")]
    | Annotated[ExpectVisible, Tag("expect_visible")]
    | Annotated[ExpectHidden, Tag("expect_hidden")]
    | Annotated[ExpectUrl, Tag("expect_url")]
    | Annotated[ExpectTitle, Tag("expect_title")]
    | Annotated[ExpectCountAction, Tag("expect_count")],
    Discriminator(
        _action_kind,
        custom_error_type="browser_action",
        custom_error_message=f"an action is one key of: {', '.join(ACTION_NAMES)}",
    ),
]


class Viewport(StrictModel):
    width: int = Field(ge=100, le=8000)
    height: int = Field(ge=100, le=8000)


class NetworkConditions(StrictModel):
    """Throttling applied through the Chrome DevTools Protocol (per second rates)."""

    latency: Duration = Field(description="Added round-trip time, e.g. 400ms")
    download: ByteSize = Field(description="Bytes per second, e.g. 200KB")
    upload: ByteSize = Field(description="Bytes per second, e.g. 100KB")


class Emulation(StrictModel):
    """What customer's device to emulate; applies to the step's browser context."""

    device: str | None = Field(
        default=None, description="A Playwright device name, e.g. 'iPhone 13', 'Pixel 7'"
    )
    viewport: Viewport | None = None
    locale: str | None = Field(default=None, description="e.g. de-DE")
    timezone: str | None = Field(default=None, description="IANA zone, e.g. Europe/Berlin")
    network: Literal["slow-3g", "fast-3g"] | NetworkConditions | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value


class BrowserOptions(StrictModel):
    """Options of browser steps. Under a journey's ``browser_defaults:`` they apply to every
    browser step of the journey; a step's own setting wins."""

    emulation: Emulation | None = Field(
        default=None, description="Device, viewport, locale, timezone, network throttling"
    )
    block: list[str] = Field(
        default_factory=list,
        description="Hosts whose requests are aborted, e.g. *.doubleclick.net (fnmatch)",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra HTTP headers sent with every page request"
    )
    fail_on_console_error: bool = Field(
        default=False, description="A console error or uncaught exception fails the step"
    )
    fail_on_http_error: bool = Field(
        default=False, description="Any request answered >= 400, or failing, fails the step"
    )
    artifacts: Literal["on_failure", "always", "never"] = Field(
        default="on_failure", description="When to keep screenshot, trace, HTML and console log"
    )


class BrowserStep(StepBase, BrowserOptions):
    """Actions driven in a real Chromium through Playwright."""

    kind_name = "browser"

    browser: list[Action] = Field(min_length=1, description="Actions, performed in order")

    def with_defaults(self, defaults: BrowserOptions) -> BrowserStep:
        """This step with the journey's defaults filled in where the step set nothing."""
        unset = defaults.model_fields_set - self.model_fields_set
        return self.model_copy(update={name: getattr(defaults, name) for name in unset})

    def provides(self) -> frozenset[str]:
        """The variables this step's ``extract`` actions set."""
        return frozenset(
            name
            for action in self.browser
            if isinstance(action, Extract)
            for name in action.extract
        )


# The good / poor limits of Core Web Vitals: INP 0.2/0.5, TTFB 0.8/1.8, FCP 1.8/3, LCP 2.5/4.
VITAL_BUCKETS = (0.1, 0.2, 0.5, 0.8, 1.8, 2.5, 3.0, 4.0, 10.0)
CLS_BUCKETS = (0.05, 0.1, 0.25, 0.5)  # CLS good <= 0.1, poor > 0.25

KIND = StepKind(
    model=BrowserStep,
    run="agent.steps.browser.run:run",
    prepare="agent.steps.browser.run:prepare",
    measures=(
        Measure("vitals", "journey_web_vital_seconds", "Web vitals of browser steps",
                Aggregate.OBSERVE, label="vital", buckets=VITAL_BUCKETS),
        Measure("cls", "journey_web_vital_cls", "Cumulative layout shift of browser steps",
                Aggregate.OBSERVE, buckets=CLS_BUCKETS),
        Measure("console_errors", "journey_console_errors_total",
                "Console errors seen by browser steps", Aggregate.SUM),
        Measure("failed_requests", "journey_failed_requests_total",
                "Failed page requests seen by browser steps", Aggregate.SUM),
    ),
)  # fmt: skip
