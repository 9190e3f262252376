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
