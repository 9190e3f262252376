"""Every registered step kind and browser action has every part, and nothing else does."""

from __future__ import annotations

import inspect
import typing

from agent.language.model import STEP_KINDS, Step
from agent.run.runner import run_functions
from agent.steps import KINDS
from exporters.prometheus_series import SPECS


def test_union_tags_and_registry_name_the_same_kinds() -> None:
    """The Step union parses exactly the registered kinds, each with its own model."""
    union = typing.get_args(typing.get_args(Step)[0])
    models = [typing.get_args(member)[0] for member in union]
    assert [model.kind_name for model in models] == [kind.name for kind in KINDS]
    assert list(STEP_KINDS) == [kind.name for kind in KINDS]
    assert len(set(STEP_KINDS)) == len(STEP_KINDS)


def test_every_kind_has_its_run_side() -> None:
    """Each kind's run (and prepare, when declared) resolves to an async function of
    (step, ctx)."""
    for kind in KINDS:
        prepare, run = run_functions(kind)
        for function in (run, prepare) if prepare is not None else (run,):
            assert inspect.iscoroutinefunction(function), f"{kind.name}: {function}"
            assert list(inspect.signature(function).parameters) == ["step", "ctx"]
        assert (prepare is None) == (kind.prepare is None)


def test_every_measure_is_an_exported_family() -> None:
    """A kind's measures become families, and a metric shared by two kinds is declared
    the same way by both."""
    names = {spec.name: spec for spec in SPECS}
    seen: dict[str, tuple[str, str | None]] = {}
    for kind in KINDS:
        groups = [measure.group for measure in kind.measures]
        assert len(groups) == len(set(groups)), f"{kind.name}: a group declared twice"
        for measure in kind.measures:
            assert measure.metric in names
            assert names[measure.metric].kind == measure.kind
            shape = (measure.kind, measure.label)
            assert seen.setdefault(measure.metric, shape) == shape
            if measure.kind == "histogram":
                assert measure.buckets
                assert list(measure.buckets) == sorted(measure.buckets)


# One example of each browser action; typed values hold TYPED, which no description shows.
_ACTION_EXAMPLES = {
    "goto": {"url": "${base}/cart", "wait_until": "commit"},
    "click": "#pay",
    "fill": {"#card": "TYPED"},
    "select": {"#size": ["TYPED"]},
    "check": "#terms",
    "uncheck": "#newsletter",
    "press": {"#search": "TYPED"},
    "hover": "text=Menu",
    "wait_for": {"selector": "#done", "state": "attached"},
    "upload": {"#file": "TYPED.pdf"},
    "extract": {"order": {"selector": "#order", "regex": "TYPED (\\d+)"}},
    "expect_text": {"text": "Thank you", "selector": "#message"},
    "expect_visible": "#receipt",
    "expect_hidden": "#spinner",
    "expect_url": "/thanks",
    "expect_title": "Receipt",
    "expect_count": {"selector": ".line", "count": 2},
}


def test_every_browser_action_has_a_handler_a_description_and_a_doc_row() -> None:
    """Each browser action parses to its own model with a name and a description that
    shows no typed value, has exactly one run-side handler and a row in
    docs/browser-steps.md; no handler or doc row names an action that does not exist."""
    import re
    from pathlib import Path

    from agent.steps.browser.actions import HANDLERS
    from agent.steps.browser.model import ACTION_NAMES, ACTIONS, BrowserStep

    names = [action.action_name for action in ACTIONS]
    assert names == list(ACTION_NAMES)
    assert len(set(names)) == len(names)
    assert sorted(_ACTION_EXAMPLES) == sorted(names), "an example per action, above"

    no_handler = [action.__name__ for action in ACTIONS if action not in HANDLERS]
    no_action = [getattr(model, "__name__", model) for model in HANDLERS if model not in ACTIONS]
    assert no_handler == [], "actions without a handler in agent/steps/browser/actions.py"
    assert no_action == [], "handlers of no action in agent/steps/browser/model.py ACTIONS"

    step = BrowserStep.model_validate(
        {"name": "buy", "browser": [{name: value} for name, value in _ACTION_EXAMPLES.items()]}
    )
    for name, action in zip(_ACTION_EXAMPLES, step.browser, strict=True):
        assert type(action).action_name == name
        description = action.describe()
        assert description.startswith(name), description
        assert "TYPED" not in description, description

    docs = Path(__file__).parent.parent / "docs" / "browser-steps.md"
    table = docs.read_text(encoding="utf-8").split("\n## Actions\n")[1].split("\n## ")[0]
    documented = [
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])
    ]
    assert sorted(documented) == sorted(names), "a row per action in docs/browser-steps.md"
