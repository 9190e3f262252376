"""From the events of a recording to journey steps in our browser vocabulary.

One step per page the person acted on, named after the page's title. The actions on a
page are written in order; keystrokes into one field collapse to one ``fill`` (fills
that follow each other share one mapping, as people write them). A page the page before
opened (a link, a form, a script: its ``leave`` event) ends that page's step with an
``expect_*`` that holds once the new page is there (its URL, else its title, else its
heading), never a sleep; a page the person opened themselves gets a ``goto``. Typed secrets become
``${secret.NAME}`` (:mod:`agent.record.secrets`) and are written nowhere, not even
inside another text. JSON calls the page made by fetch/XHR are noted on their step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agent.record.events import ApiCall, PageEvent
from agent.record.secrets import env_var, is_secret, unique_name

__all__ = ["Journal", "Secret", "Step", "build"]

_TITLE_SEPARATORS = re.compile(r"\s+[\u00b7|\u2013\u2014-]\s+")  # "Cart · Shop", "Cart | Shop"
_NAME_LENGTH = 60


@dataclass(frozen=True)
class Secret:
    """A secret the journey declares: its name, the variable it is read from, and the
    field it was typed into (for the person told to set the variable)."""

    name: str
    env: str
    selector: str


@dataclass
class Step:
    name: str
    actions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # written as comments above the step


@dataclass(frozen=True)
class Journal:
    base: str  # the origin of the first page, the journey's ${base}
    steps: list[Step]
    secrets: list[Secret]
    uploads: list[str]  # file names the journey uploads: they belong in --uploads-dir


@dataclass
class _Typed:
    """A fill not yet written: whether it is a secret is known once typing is over."""

    selector: str
    value: str
    field_type: str
    hints: tuple[str, ...]


def build(events: Sequence[PageEvent], calls: Iterable[ApiCall], journey: str) -> Journal:
    """The journal of a recording of journey ``journey`` (its id names the secrets'
    environment variables)."""
    builder = _Builder()
    step_after: list[int] = []  # index of the current step once each event is taken
    for event in events:
        builder.add(event)
        step_after.append(len(builder.steps) - 1)
    base = builder.base
    secrets = _secrets(builder.steps, journey)
    values = _secret_values(builder.steps, secrets)
    notes: dict[int, list[str]] = {}
    for call in calls:
        index = step_after[call.after - 1] if 0 < call.after <= len(step_after) else 0
        note = f"The page called {call.method} {_shown_url(call.url, base, values)} (JSON): "
        note += "an `http` step could check this endpoint faster."
        if note not in notes.setdefault(index, []):
            notes[index].append(note)
    steps: list[Step] = []
    for index, step in enumerate(builder.steps):
        step.notes = notes.get(index, [])
        step.actions = [_written(action, secrets, values, base) for action in step.actions]
        if step.actions:
            steps.append(step)
        elif steps:  # a page passed through: its notes go with the step before
            steps[-1].notes += step.notes
    _unique_names(steps)
    return Journal(base, steps, list(dict.fromkeys(secrets.values())), builder.uploads)


class _Builder:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.page: PageEvent | None = None
        self.leaving = False  # the page is opening another, and nothing was done since
        self.base = ""
        self.uploads: list[str] = []
        self.extracted: set[str] = set()

    def add(self, event: PageEvent) -> None:
        if event.type == "page":
            self._shown(event)
        elif event.type == "leave":
            self.leaving = True
        elif self.steps:
            self.leaving = False  # a navigation the page cancelled: no page follows
            self._act(event)

    def _shown(self, shown: PageEvent) -> None:
        previous = self.page
        if previous is None:
            parts = urlsplit(shown.url)
            self.base = f"{parts.scheme}://{parts.netloc}"
            self.steps.append(Step(_step_name(shown), [{"goto": shown.url}]))
        elif self.leaving:
            self.steps[-1].actions.append(_wait_for(previous, shown))
            self.steps.append(Step(_step_name(shown)))
        elif shown.url != previous.url:
            self.steps.append(Step(_step_name(shown), [{"goto": shown.url}]))
        self.page, self.leaving = shown, False

    def _act(self, event: PageEvent) -> None:
        actions = self.steps[-1].actions
        if event.type == "fill":
            typed = _Typed(event.selector, event.value, event.field_type, event.hints)
            last = actions[-1].get("fill") if actions else None
            if isinstance(last, dict) and _continues(last, event.selector):
                last[event.selector] = typed
            else:
                actions.append({"fill": {event.selector: typed}})
        elif event.type in ("click", "check", "uncheck", "expect_visible"):
            actions.append({event.type: event.selector})
        elif event.type == "press":
            actions.append({"press": {event.selector: event.value}})
        elif event.type in ("select", "upload"):
            chosen: str | list[str] = event.values[0] if len(event.values) == 1 else [*event.values]
            actions.append({event.type: {event.selector: chosen}})
            if event.type == "upload":
                self.uploads += event.values
        elif event.type == "expect_text":
            actions.append(_expect_text(event))
        elif event.type == "extract":
            actions.append(self._extract(event))

    def _extract(self, event: PageEvent) -> dict[str, Any]:
        name = unique_name(event.hints, self.extracted, "value")
        self.extracted.add(name)
        rule: dict[str, Any] = {"selector": event.selector}
        if event.field_type:
            rule["attribute"] = "value"
        return {"extract": {name: rule}}


def _continues(fill: dict[str, _Typed], selector: str) -> bool:
    """Typing into ``selector`` goes on in the mapping ``fill``: the field typed into
    last, or a new one. An earlier field again (left, then come back to) is a fill of
    its own, so the replay types in the order the person did."""
    return selector not in fill or list(fill)[-1] == selector


def _expect_text(event: PageEvent) -> dict[str, Any]:
    if not event.value:
        return {"expect_visible": event.selector}
    if not event.selector:
        return {"expect_text": event.value}
    return {"expect_text": {"selector": event.selector, "text": event.value}}


def _wait_for(previous: PageEvent, shown: PageEvent) -> dict[str, Any]:
    """What the replay waits for once an action opened ``shown``: something true of the
    new page and not of the one before."""
    path = stable_path(shown.url)
    if path != "/" and path not in previous.url:
        return {"expect_url": path}
    if shown.title and shown.title not in previous.title:
        return {"expect_title": shown.title}
    if shown.value and shown.value != previous.value:
        return {"expect_text": shown.value}
    return {"expect_url": shown.url}


def stable_path(url: str) -> str:
    """The URL's path up to its first part that looks made for this visit (an order
    number, an id): ``/checkout/confirmation/W-1001`` -> ``/checkout/confirmation/``."""
    path = urlsplit(url).path or "/"
    kept: list[str] = []
    for part in path.strip("/").split("/"):
        if any(c.isdigit() for c in part) or len(part) >= 24:
            return "/" + "".join(f"{p}/" for p in kept)
        kept.append(part)
    return path


def _step_name(page: PageEvent) -> str:
    first = _TITLE_SEPARATORS.split(page.title.strip())[0].strip()
    return (first or urlsplit(page.url).path or page.url)[:_NAME_LENGTH]


def _unique_names(steps: list[Step]) -> None:
    seen: dict[str, int] = {}
    for step in steps:
        count = seen[step.name] = seen.get(step.name, 0) + 1
        if count > 1:
            step.name = f"{step.name} ({count})"


def _secrets(steps: list[Step], journey: str) -> dict[str, Secret]:
    """The secret of each field a secret was typed into, by selector."""
    found: dict[str, Secret] = {}
    for typed in _typed(steps):
        if typed.selector in found or not typed.value:
            continue
        if is_secret(typed.field_type, typed.hints, typed.value):
            name = unique_name(typed.hints, [s.name for s in found.values()], "secret")
            found[typed.selector] = Secret(name, env_var(journey, name), typed.selector)
    return found


def _typed(steps: list[Step]) -> Iterable[_Typed]:
    for step in steps:
        for action in step.actions:
            yield from action.get("fill", {}).values()


def _secret_values(steps: list[Step], secrets: dict[str, Secret]) -> dict[str, str]:
    """Each value typed into a secret's field, and the reference written instead."""
    return {
        typed.value: f"${{secret.{secrets[typed.selector].name}}}"
        for typed in _typed(steps)
        if typed.selector in secrets and typed.value
    }


def _written(
    action: dict[str, Any], secrets: dict[str, Secret], values: dict[str, str], base: str
) -> dict[str, Any]:
    """The action as written: typed secrets as references, other texts with any secret
    value replaced by its reference, same-site URLs on ${base}, and ``${`` escaped."""
    ((kind, value),) = action.items()
    if kind == "fill":
        return {
            "fill": {
                _text(selector, values): f"${{secret.{secrets[selector].name}}}"
                if selector in secrets
                else _text(typed.value, values)
                for selector, typed in value.items()
            }
        }
    if kind == "goto":
        return {"goto": _on_base(_text(value, values), base)}
    if kind == "expect_url" and value.startswith(base + "/"):
        return {"expect_url": _on_base(_text(value, values), base)}
    return {kind: _texts(value, values)}


def _texts(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _text(value, values)
    if isinstance(value, list):
        return [_texts(item, values) for item in value]
    if isinstance(value, dict):
        return {_text(key, values): _texts(item, values) for key, item in value.items()}
    return value


def _text(text: str, values: dict[str, str]) -> str:
    """Literal text for a journey: ``${`` escaped, then secret values as references."""
    text = text.replace("${", "$${")
    for secret, reference in sorted(values.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(secret.replace("${", "$${"), reference)
    return text


def _on_base(url: str, base: str) -> str:
    return "${base}" + url[len(base) :] if base and url.startswith(base + "/") else url


def _shown_url(url: str, base: str, values: dict[str, str]) -> str:
    """A URL for a comment: no query, the origin as ${base}, secrets as ***."""
    parts = urlsplit(url)
    shown = _on_base(f"{parts.scheme}://{parts.netloc}{parts.path}", base)
    for secret in values:
        shown = shown.replace(secret, "***")
    return shown
