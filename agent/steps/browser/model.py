"""The browser step as written in YAML: a list of actions a customer performs.

Each action is a one-key mapping (``goto: URL``, ``click: SELECTOR``, ``fill: {SELECTOR:
VALUE}``, ``expect_text: TEXT`` ...). Selectors are Playwright's (``#id``, ``text=Pay``,
``role=button[name="Pay"]``). Values may use ``${...}`` templates; a ``fill`` value that
contains a secret is typed but never shown. Step options (emulation, block list,
``fail_on_*``, artifacts) sit next to the ``browser:`` list.

An action is declared once, as a :class:`BrowserAction` model listed in :data:`ACTIONS`:
its one field is its key, its ``describe()`` its words in failure messages. The parsing
union and the list of names are built from that tuple; the run side keeps one handler
per model (``actions.py``), and ``tests/test_step_registry.py`` checks they agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from agent.language.fields import ByteSize, Duration, StrictModel
from agent.steps.kind import Aggregate, Measure, StepBase, StepKind

__all__ = [
    "ACTIONS",
    "ACTION_NAMES",
    "CLS_BUCKETS",
    "KIND",
    "VITAL_BUCKETS",
    "Action",
    "BrowserAction",
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


class BrowserAction(StrictModel):
    """One action: a one-key mapping whose key, the model's only field, is its name."""

    action_name: ClassVar[str]  # the action's key in YAML, taken from its one field

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if len(cls.model_fields) != 1:
            raise TypeError(f"{cls.__name__}: an action has exactly one field, its key")
        cls.action_name = next(iter(cls.model_fields))

    def describe(self) -> str:
        """The action in words, without any typed value: ``click '#pay'``, ``fill '#card'``
        (failure messages show it with its templates resolved)."""
        return f"{self.action_name} {getattr(self, self.action_name)!r}"


def _targets(name: str, keys: Iterable[str]) -> str:
    """An action on several targets, named by its keys only (never the values typed)."""
    return f"{name} {', '.join(repr(key) for key in keys)}"


class GotoOptions(StrictModel):
    url: str = Field(min_length=1)
    wait_until: Literal["load", "domcontentloaded", "networkidle", "commit"] = "load"


class Goto(BrowserAction):
    goto: str | GotoOptions = Field(description="URL to open, or {url, wait_until}")

    @property
    def options(self) -> GotoOptions:
        return self.goto if isinstance(self.goto, GotoOptions) else GotoOptions(url=self.goto)

    def describe(self) -> str:
        url = self.goto.url if isinstance(self.goto, GotoOptions) else self.goto
        return f"{self.action_name} {url!r}"


class Click(BrowserAction):
    click: _Selector


class Fill(BrowserAction):
    fill: dict[str, str] = Field(
        min_length=1, description="Selector -> text typed; a value with a secret is never shown"
    )

    def describe(self) -> str:
        return _targets(self.action_name, self.fill)


class Select(BrowserAction):
    select: dict[str, str | list[str]] = Field(
        min_length=1, description="Selector of a <select> -> option value or label (or a list)"
    )

    def describe(self) -> str:
        return _targets(self.action_name, self.select)


class Check(BrowserAction):
    check: _Selector


class Uncheck(BrowserAction):
    uncheck: _Selector


class Press(BrowserAction):
    press: str | dict[str, str] = Field(
        description="A key for the focused element (Enter), or selector -> key"
    )

    def describe(self) -> str:
        if isinstance(self.press, dict):
            return _targets(self.action_name, self.press)
        return super().describe()


class Hover(BrowserAction):
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


class WaitFor(BrowserAction):
    wait_for: WaitForOptions

    def describe(self) -> str:
        target = self.wait_for
        shown = target.url or target.selector or target.text  # none for network_idle
        return f"{self.action_name} {shown!r}" if shown else self.action_name


class Upload(BrowserAction):
    upload: dict[str, str | list[str]] = Field(
        min_length=1, description="Selector of a file input -> fixture file path(s)"
    )

    def describe(self) -> str:
        return _targets(self.action_name, self.upload)


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


class Extract(BrowserAction):
    extract: dict[str, ExtractFromPage] = Field(min_length=1, description="Variable -> source")

    def describe(self) -> str:
        return _targets(self.action_name, self.extract)

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


class ExpectTextAction(BrowserAction):
    expect_text: str | ExpectText = Field(description="Text the page (or selector) contains")

    @property
    def options(self) -> ExpectText:
        value = self.expect_text
        return value if isinstance(value, ExpectText) else ExpectText(text=value)

    def describe(self) -> str:
        shown = self.options.selector or self.options.text  # where to look, else the text
        return f"{self.action_name} {shown!r}"


class ExpectVisible(BrowserAction):
    expect_visible: _Selector


class ExpectHidden(BrowserAction):
    expect_hidden: _Selector


class ExpectUrl(BrowserAction):
    expect_url: str = Field(min_length=1, description="Text the page's URL contains")


class ExpectTitle(BrowserAction):
    expect_title: str = Field(min_length=1, description="Text the page's title contains")


class ExpectCount(StrictModel):
    selector: _Selector
    count: int = Field(ge=0)


class ExpectCountAction(BrowserAction):
    expect_count: ExpectCount

    def describe(self) -> str:
        return f"{self.action_name} {self.expect_count.selector!r}"


ACTIONS: tuple[type[BrowserAction], ...] = (
    Goto,
    Click,
    Fill,
    Select,
    Check,
    Uncheck,
    Press,
    Hover,
    WaitFor,
    Upload,
    Extract,
    ExpectTextAction,
    ExpectVisible,
    ExpectHidden,
    ExpectUrl,
    ExpectTitle,
    ExpectCountAction,
)
_ACTIONS = {action.action_name: action for action in ACTIONS}
ACTION_NAMES = tuple(_ACTIONS)


def _action_kind(value: Any) -> str | None:
    """An action is a mapping with exactly one key, the action's name."""
    if isinstance(value, dict):
        return next(iter(value)) if len(value) == 1 and next(iter(value)) in _ACTIONS else None
    return value.action_name if isinstance(value, BrowserAction) else None


if TYPE_CHECKING:
    Action = BrowserAction
else:  # one branch per action, tagged with its key
    Action = Annotated[
        Union[tuple(Annotated[action, Tag(action.action_name)] for action in ACTIONS)],  # noqa: UP007
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
    finish="agent.steps.browser.run:finish",
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
