"""The JSON Schemas editors check journey files and catalog.yaml against: they accept the
repo's files, and a mistake is reported inside the step kind, action or field meant,
never as "is not valid under any of the given schemas"."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from agent.cli import main
from agent.language.schema import catalog_file_schema, journey_file_schema

JOURNEYS = Path(__file__).resolve().parent.parent / "journeys"
STEP = {"name": "home page", "http": {"get": "http://127.0.0.1:8080/"}}
JOURNEY = {"journey": "home", "business_process": "order-to-cash", "steps": [STEP]}


def errors(schema: dict[str, Any], document: Any) -> list[tuple[list[Any], str, str]]:
    """(path, keyword, message) of every error a draft-7 validator reports."""
    validator = jsonschema.Draft7Validator(schema)
    found = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [(list(e.absolute_path), str(e.validator), e.message) for e in found]


def journey_with(**step: Any) -> dict[str, Any]:
    journey = copy.deepcopy(JOURNEY)
    journey["steps"] = [step]
    return journey


def test_schemas_are_draft7_and_accept_the_repos_files() -> None:
    """Both schemas are valid draft 7, and every journey and the catalog in journeys/ pass."""
    jsonschema.Draft7Validator.check_schema(journey_file_schema())
    jsonschema.Draft7Validator.check_schema(catalog_file_schema())
    files = sorted(JOURNEYS.glob("*.yaml"))
    assert len(files) > 2
    for file in files:
        is_catalog = file.name == "catalog.yaml"
        schema = catalog_file_schema() if is_catalog else journey_file_schema()
        for document in yaml.safe_load_all(file.read_text(encoding="utf-8")):
            assert errors(schema, document) == [], file


def test_broken_catalog_is_reported_at_the_field() -> None:
    """A misspelt field of a business process and a volume of the wrong type are each
    reported at their own place, naming the field."""
    catalog = yaml.safe_load((JOURNEYS / "catalog.yaml").read_text(encoding="utf-8"))
    catalog["business_processes"][0]["ownr"] = "web-team"
    catalog["business_processes"][0]["volume"] = {"per_hour": "lots"}
    assert errors(catalog_file_schema(), catalog) == [
        (
            ["business_processes", 0],
            "additionalProperties",
            "Additional properties are not allowed ('ownr' was unexpected)",
        ),
        (
            ["business_processes", 0, "volume", "per_hour"],
            "type",
            "'lots' is not of type 'number', 'array'",
        ),
    ]


def test_misspelt_field_is_reported_inside_the_http_step() -> None:
    """A typo in an HTTP step, or in its request, is one error in that step naming the
    field: the browser and TCP kinds are not tried."""
    step = {**STEP, "expct": {"status": 200}}
    assert errors(journey_file_schema(), journey_with(**step)) == [
        (
            ["steps", 0],
            "additionalProperties",
            "Additional properties are not allowed ('expct' was unexpected)",
        )
    ]
    request = {**STEP, "http": {"get": "http://127.0.0.1:8080/", "hedaers": {}}}
    assert errors(journey_file_schema(), [journey_with(**request)]) == [
        (
            [0, "steps", 0, "http"],
            "additionalProperties",
            "Additional properties are not allowed ('hedaers' was unexpected)",
        )
    ]


def test_unknown_action_and_step_kind_are_named() -> None:
    """A misspelt browser action, or step kind, is named with the keys that are allowed."""
    browser = {"name": "pay", "browser": [{"goto": "http://127.0.0.1:8080/"}, {"clik": "#pay"}]}
    (named,) = errors(journey_file_schema(), journey_with(**browser))
    assert named[:2] == (["steps", 0, "browser", 1], "enum")
    assert named[2].startswith("'clik' is not one of ['goto', 'click', 'fill',")
    kind = {"name": "home", "htp": {"get": "http://127.0.0.1:8080/"}}
    (named,) = errors(journey_file_schema(), journey_with(**kind))
    assert named[2].startswith("'htp' is not one of ['http', 'browser', 'tcp', 'name',")
    (missing,) = errors(journey_file_schema(), journey_with(name="home"))
    assert missing[:2] == (["steps", 0], "anyOf")  # no stray key: the kind key is missing


def test_union_of_types_reports_inside_the_branch_that_fits() -> None:
    """A field written as text or as a mapping (goto) is checked as the form it was written
    in; a value of neither form names both."""
    at = ["steps", 0, "browser", 0, "goto"]
    options = {"url": "http://127.0.0.1:8080/", "wait": "load"}
    cases = [
        (options, (at, "additionalProperties", "Additional properties are not allowed "
                   "('wait' was unexpected)")),
        (5, (at, "type", "5 is not of type 'string', 'object'")),
    ]  # fmt: skip
    for goto, expected in cases:
        step = {"name": "open", "browser": [{"goto": goto}]}
        assert errors(journey_file_schema(), journey_with(**step)) == [expected]
    late = {**JOURNEY, "schedule": {"every": "5 minutes"}}
    ((path, keyword, _),) = errors(journey_file_schema(), late)
    assert (path, keyword) == (["schedule", "every"], "pattern")


def test_no_union_is_left_for_a_validator_to_give_up_on() -> None:
    """Every oneOf/anyOf pydantic wrote is rewritten; the only anyOf left say which kind
    keys a step (or action) may have."""

    def unions(node: Any) -> list[Any]:
        if isinstance(node, list):
            return [u for item in node for u in unions(item)]
        if not isinstance(node, dict):
            return []
        own = [node[w] for w in ("oneOf", "anyOf") if w in node]
        return own + [u for value in node.values() for u in unions(value)]

    for schema in (journey_file_schema(), catalog_file_schema()):
        for branches in unions(schema):
            assert all(list(branch) == ["required"] for branch in branches), branches


@pytest.mark.parametrize(("flag", "title"), [([], "journey file"), (["--catalog"], "catalog")])
def test_schema_command_prints_either_schema(
    flag: list[str], title: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`journeyman schema` prints the journey file schema, `--catalog` the catalog's."""
    assert main(["schema", *flag]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["title"] == f"Journeyman {title}"
    assert printed == (catalog_file_schema() if flag else journey_file_schema())
