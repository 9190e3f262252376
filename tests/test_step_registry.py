"""The step-kind union and the registry of run functions name the same kinds."""

from __future__ import annotations

import typing

from agent.model import STEP_KINDS, Step
from agent.steps import STEP_FUNCTIONS


def test_union_tags_registry_and_kind_names_agree() -> None:
    """Every kind parsed by the Step union has a run function, and nothing else does."""
    union = typing.get_args(typing.get_args(Step)[0])
    models = [typing.get_args(member)[0] for member in union]
    assert sorted(model.kind_name for model in models) == sorted(STEP_KINDS)
    assert sorted(STEP_FUNCTIONS) == sorted(STEP_KINDS)
