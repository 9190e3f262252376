"""Every file (or folder) in tests/invalid/ holds one kind of mistake; its exact message is here."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.loader import load

INVALID = Path(__file__).parent / "invalid"

EXPECTED = {
    "unknown_key.yaml": [
        "unknown_key.yaml:6:5: steps[0].expct: unknown field 'expct' (did you mean 'expect'?)",
    ],
    "duplicate_key.yaml": [
        "duplicate_key.yaml:8:7: steps[0].expect.status: duplicate key (first written at line 7)",
    ],
    "bad_duration.yaml": [
        "bad_duration.yaml:4:3: schedule.every: must be a duration such as 800ms, 30s, 5m, 1h "
        "or 28d, got '5 minutes'",
    ],
    "bad_status.yaml": [
        "bad_status.yaml:14:7: steps[2].expect.status: must be an HTTP status code (100-599), "
        "got 2000",
    ],
    "missing_steps.yaml": ["missing_steps.yaml:1:1: steps: required field missing"],
    "two_methods.yaml": [
        "two_methods.yaml:5:5: steps[0].http: give exactly one method with its URL (get, post, "
        "put, patch, delete, head, options), got 2: get, post",
    ],
    "unknown_step_kind.yaml": [
        "unknown_step_kind.yaml:5:5: steps[0].htp: unknown step kind 'htp' (did you mean 'http'?)",
    ],
    "bad_regex.yaml": [
        "bad_regex.yaml:7:7: steps[0].expect.body_matches: invalid regular expression "
        "'Welcome (back': missing ), unterminated subpattern at position 8",
    ],
    "yaml_syntax.yaml": [
        "yaml_syntax.yaml:6:3: invalid YAML: did not find expected ',' or '}' "
        "(while parsing a flow mapping at line 5)",
    ],
    "duplicate_id_across_files": [
        "duplicate_id_across_files/second.yaml:1:1: journey: journey id 'checkout' is already "
        "used at duplicate_id_across_files/first.yaml:1:1",
    ],
    "unknown_business_process": [
        "unknown_business_process/orders.yaml:2:1: business_process: unknown business process "
        "'order-to-csh' (did you mean 'order-to-cash'?)",
    ],
    "undefined_variable.yaml": [
        "undefined_variable.yaml:7:12: steps[0].http.get: undefined variable 'bse' "
        "(did you mean 'base'?)",
    ],
    "undeclared_secret.yaml": [
        "undeclared_secret.yaml:9:27: steps[0].http.json.password: undeclared secret 'pasword' "
        "(did you mean 'password'?)",
    ],
    "step_timeout.yaml": [
        "step_timeout.yaml:7:5: steps[0].timeout: timeout (20s) must not exceed "
        "schedule.timeout (10s)",
    ],
    "timeout_attempts.yaml": [
        "timeout_attempts.yaml:5:3: schedule.timeout: timeout x attempts (30s x 3) must fit in "
        "every (60s), so that runs never overlap",
    ],
    "bad_catalog_profile": [
        "bad_catalog_profile/catalog.yaml:6:7: business_processes[0].volume.per_hour: a daily "
        "profile needs 24 values (hours 0-23), got 12",
    ],
    "duplicate_step_name.yaml": [
        "duplicate_step_name.yaml:6:5: steps[1].name: step names must be unique, 'home page' is "
        "also steps[0]",
    ],
    "malformed_reference.yaml": [
        "malformed_reference.yaml:5:12: steps[0].http.get: malformed reference ${shop url}: "
        "use ${name}, ${env.NAME} or ${secret.NAME}",
    ],
    "variable_set_later.yaml": [
        "variable_set_later.yaml:7:17: steps[0].http.headers.Authorization: variable 'token' is "
        "only set later, by steps[1]",
    ],
    "python_tag.yaml": [
        "python_tag.yaml:3:8: title: the tag !!python/object/apply:os.system is not allowed: "
        "journey files hold plain values",
    ],
    "wrong_types.yaml": [
        "wrong_types.yaml:3:1: persona: must be 'customer', 'partner' or 'employee', got 'robot'",
        "wrong_types.yaml:4:24: schedule.retries: must be a whole number, got 'many'",
        'wrong_types.yaml:9:17: steps[0].http.headers["X-Retries"]: must be a string, got 3 '
        "(write it in quotes)",
        "wrong_types.yaml:11:7: steps[0].expect.status: must be a whole number, a string or a "
        "list, got a mapping",
    ],
    "several_documents.yaml": [
        "several_documents.yaml:9:3: steps: must have at least 1 item",
        "several_documents.yaml:10:3: journey: must be an id of lowercase letters, digits, - and "
        "_ (such as order-to-cash), got 'Third_Document'",
    ],
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_invalid_file_reports_its_exact_error(case: str) -> None:
    """Each broken file yields exactly its expected file:line:col: path: message; no journeys."""
    result = load([INVALID / case], environ={"SHOP_PASSWORD": "set"})
    assert [str(p).replace(f"{INVALID}/", "") for p in result.errors] == EXPECTED[case]
    bad = [f for f in result.files.values() if f.errors]
    assert all(f.journeys == () for f in bad)


def test_every_invalid_case_is_asserted() -> None:
    """No file in tests/invalid/ goes unchecked, and none is checked that does not exist."""
    assert sorted(p.name for p in INVALID.iterdir()) == sorted(EXPECTED)


def test_all_invalid_files_at_once() -> None:
    """Loading many broken files reports every mistake of every file in one pass, in order."""
    files = sorted(INVALID.glob("*.yaml"))
    result = load(files, environ={"SHOP_PASSWORD": "set"})
    expected = [line for file in files for line in EXPECTED[file.name]]
    assert [str(p).replace(f"{INVALID}/", "") for p in result.errors] == expected
    assert result.journeys == ()
