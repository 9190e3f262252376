"""Every file (or folder) in tests/invalid/ holds one kind of mistake; its exact message is here."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.language.loader import load
from agent.language.templating import EnvAllowList

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
    "header_line_break.yaml": [
        'header_line_break.yaml:8:9: steps[0].http.headers["X-Note"]: must be printable ASCII '
        "on one line, got a line break (CR or LF)",
    ],
    "header_non_ascii.yaml": [
        'header_non_ascii.yaml:8:9: steps[0].http.headers["X-Customer"]: must be printable '
        "ASCII on one line, got a non-ASCII character (U+00EB)",
    ],
    "header_name.yaml": [
        'header_name.yaml:8:9: steps[0].http.headers["X Customer"]: must be a header name '
        "(letters, digits and !#$%&'*+-.^_`|~), got a space",
    ],
    "disallowed_env.yaml": [
        "disallowed_env.yaml:5:3: variables.home: environment variable HOME is not allowed: "
        "journeys may read JOURNEY_* and the variables their secrets: read (allow it with "
        "--allow-env HOME, or read it under secrets:, which masks it)",
        'disallowed_env.yaml:10:52: steps[0].http.headers["X-Token"]: environment variable '
        "AWS_SECRET_ACCESS_KEY is not allowed: journeys may read JOURNEY_* and the variables "
        "their secrets: read (allow it with --allow-env AWS_SECRET_ACCESS_KEY, or read it under "
        "secrets:, which masks it)",
    ],
    "goto_local_file.yaml": [
        "goto_local_file.yaml:6:9: steps[0].browser[0].goto: navigation to file:///etc/passwd "
        "refused: journeys open http and https pages and about:blank only, not a local file",
        "goto_local_file.yaml:7:16: steps[0].browser[1].goto.url: navigation to "
        "data:text/html,<script>fetch('http://169.254.169.254/')</script> refused: journeys "
        "open http and https pages and about:blank only, not a data: URL",
    ],
    "yaml_tab.yaml": [
        "yaml_tab.yaml:4:1: invalid YAML: YAML does not allow tabs for indentation; use spaces",
    ],
    "yaml_indentation.yaml": [
        "yaml_indentation.yaml:6:6: invalid YAML: line 6 is indented 5 spaces, but the lines "
        "above it are indented 4 (line 5), 2 (the '-' of line 4) or 0 (line 3): indent it like "
        "the lines it goes with",
    ],
    "yaml_item_indentation.yaml": [
        "yaml_item_indentation.yaml:6:3: invalid YAML: line 6 is indented 2 spaces like the '-' "
        "of line 4: start a new item with '- ', or indent it 4 spaces to belong to the item "
        "above",
    ],
    "yaml_item_like_field.yaml": [
        "yaml_item_like_field.yaml:6:5: invalid YAML: line 6 starts a new item indented 4 "
        "spaces, like the fields of the item above: line its '-' up with the '-' of line 4 (2 "
        "spaces)",
    ],
    "yaml_no_space.yaml": [
        "yaml_no_space.yaml:4:8: invalid YAML: a space must follow ':' to make a mapping: write "
        "every: 5m",
    ],
    "no_space_mapping.yaml": [
        "no_space_mapping.yaml:6:5: steps[0].expect: must be a mapping, got 'status:200' (a "
        "space must follow ':' to make a mapping: write status: 200)",
    ],
    "yaml_colon_in_value.yaml": [
        "yaml_colon_in_value.yaml:2:8: invalid YAML: a value containing ': ' must be in quotes: "
        'write title: "Checkout: the fast path"',
    ],
    "comment_in_value.yaml": [
        "comment_in_value.yaml:7:9: steps[0].browser[1].click: must be a string, got nothing "
        "('#' starts a comment, so the value is empty: write it in quotes, '#pay')",
    ],
    "unknown_action.yaml": [
        "unknown_action.yaml:7:9: steps[0].browser[1].clik: unknown action 'clik' (did you mean "
        "'click'?); the actions are: goto, click, fill, select, check, uncheck, press, hover, "
        "wait_for, upload, extract, expect_text, expect_visible, expect_hidden, expect_url, "
        "expect_title, expect_count",
    ],
    "union_field.yaml": [  # str | GotoOptions: no "must be a string", no "text missing"
        "union_field.yaml:6:51: steps[0].browser[0].goto.wait_untill: unknown field "
        "'wait_untill' (did you mean 'wait_until'?)",
        "union_field.yaml:7:23: steps[0].browser[1].expect_text.txt: unknown field 'txt' (did "
        "you mean 'text'?)",
    ],
    "misspelt_required_field.yaml": [  # once, as unknown: not also "name: required field"
        "misspelt_required_field.yaml:4:5: steps[0].nme: unknown field 'nme' (did you mean "
        "'name'?)",
    ],
    "indented_too_far.yaml": [  # valid YAML, but the fields landed one level too deep
        "indented_too_far.yaml:5:3: slo.variables: unknown field 'variables' (indented too "
        "far? it belongs at the top level)",
        "indented_too_far.yaml:11:7: steps[0].http.expect: unknown field 'expect' (indented "
        "too far? it belongs under steps[0])",
    ],
    "every_check_at_once": [  # the model, the references and the catalog, in one pass
        "every_check_at_once/orders.yaml:2:1: business_process: unknown business process "
        "'order-to-csh' (did you mean 'order-to-cash'?)",
        "every_check_at_once/orders.yaml:3:12: schedule.every: must be a duration such as "
        "800ms, 30s, 5m, 1h or 28d, got '5 minutes'",
        "every_check_at_once/orders.yaml:11:12: steps[1].http.get: undefined variable 'order_id'",
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
    result = load([INVALID / case], environ={"SHOP_PASSWORD": "set"}, allow_env=EnvAllowList())
    assert [str(p).replace(f"{INVALID}/", "") for p in result.errors] == EXPECTED[case]
    bad = [f for f in result.files.values() if f.errors]
    assert all(f.journeys == () for f in bad)


def test_every_invalid_case_is_asserted() -> None:
    """No file in tests/invalid/ goes unchecked, and none is checked that does not exist."""
    assert sorted(p.name for p in INVALID.iterdir()) == sorted(EXPECTED)


def test_all_invalid_files_at_once() -> None:
    """Loading many broken files reports every mistake of every file in one pass, in order."""
    files = sorted(INVALID.glob("*.yaml"))
    result = load(files, environ={"SHOP_PASSWORD": "set"}, allow_env=EnvAllowList())
    expected = [line for file in files for line in EXPECTED[file.name]]
    assert [str(p).replace(f"{INVALID}/", "") for p in result.errors] == expected
    assert result.journeys == ()


GOOD = """\
journey: checkout
business_process: order-to-cash
schedule: {every: 60s, timeout: 20s, retries: 1}
variables:
  base: ${env.SHOP_URL}
secrets:
  password: ${env.SHOP_PASSWORD}
steps:
  - name: log in
    http:
      post: ${base}/api/login
      json: {user: alice, password: "${secret.password}"}
    extract: {token: {json: $.token}}
  - name: orders
    http:
      get: ${base}/api/orders
      headers: {Authorization: "Bearer ${token}"}
    expect: {status: 2xx, json: {"$.ok": true}}
"""
CATALOG = """\
business_processes:
  - id: order-to-cash
    name: Order to cash
    volume: {per_hour: 120, peak_per_hour: 300, peak_hours: [11, 12]}
"""
ENV = {"SHOP_URL": "http://127.0.0.1:1", "SHOP_PASSWORD": "pw"}


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_good_file_next_to_bad_one_still_loads(tmp_path: Path) -> None:
    """A broken file contributes errors and no journeys; the good file beside it loads."""
    bad = GOOD.replace("checkout", "broken").replace("2xx", "2000")
    write(tmp_path, {"a_good.yaml": GOOD, "b_bad.yaml": bad})
    result = load([tmp_path], environ=ENV)
    good_file, bad_file = (
        result.files[tmp_path / "a_good.yaml"],
        result.files[tmp_path / "b_bad.yaml"],
    )
    assert [j.journey.journey for j in good_file.journeys] == ["checkout"]
    assert good_file.journeys[0].source == tmp_path / "a_good.yaml"
    assert good_file.ok
    assert bad_file.journeys == ()
    assert [p.path for p in result.errors] == ["steps[1].expect.status"]


def test_several_journeys_per_file_as_list_and_documents(tmp_path: Path) -> None:
    """A file may hold a list of journeys and several --- documents; each keeps its line."""
    second = GOOD.replace("checkout", "second")
    listed = "- " + second.replace("\n", "\n  ").rstrip() + "\n"
    write(tmp_path, {"many.yaml": GOOD + "---\n" + listed.replace("second", "third") + "---\n"})
    result = load([tmp_path / "many.yaml"], environ=ENV)
    assert result.errors == ()
    assert [(j.journey.journey, j.line) for j in result.journeys] == [
        ("checkout", 1),
        ("third", 20),
    ]


def test_folder_is_read_recursively_sorted_with_catalog(tmp_path: Path) -> None:
    """Folders are read recursively in order (.yaml and .yml), hidden folders skipped, and
    catalog.yaml becomes the catalog that business processes are checked against."""
    write(
        tmp_path,
        {
            "catalog.yaml": CATALOG,
            "z/last.yml": GOOD.replace("checkout", "last"),
            "a.yaml": GOOD.replace("checkout", "first"),
            ".git/hidden.yaml": "not: a journey",
            "notes.txt": "ignored",
        },
    )
    result = load([tmp_path], environ=ENV)
    assert result.errors == ()
    assert [j.journey.journey for j in result.journeys] == ["first", "last"]
    assert result.catalog is not None
    assert result.catalog.process("order-to-cash") is not None


def test_unset_environment_variable_is_a_warning_or_an_error(tmp_path: Path) -> None:
    """An unset ${env.X} warns; with require_env it is an error; environ=None skips the check."""
    write(tmp_path, {"a.yaml": GOOD})
    lenient = load([tmp_path], environ={"SHOP_URL": "x"})
    strict = load([tmp_path], environ={"SHOP_URL": "x"}, require_env=True)
    unchecked = load([tmp_path])
    expected = (
        f"{tmp_path}/a.yaml:7:3: secrets.password: environment variable SHOP_PASSWORD is not set"
    )
    assert [str(p) for p in lenient.warnings] == [
        expected.replace(": secrets", ": warning: secrets")
    ]
    assert len(lenient.journeys) == 1
    assert [str(p) for p in strict.errors] == [expected]
    assert strict.journeys == ()
    assert unchecked.errors == unchecked.warnings == ()


def test_literal_secret_never_appears_in_messages(tmp_path: Path) -> None:
    """A secret written in the file is masked in every message, even one quoting the value."""
    text = GOOD.replace("${env.SHOP_PASSWORD}", "hunter2-planted").replace(
        "business_process: order-to-cash",
        "business_process: order-to-cash\npersona: hunter2-planted",
    )
    write(tmp_path, {"a.yaml": text + "secrets_typo: {pin: 1234}\n"})
    result = load([tmp_path], environ=ENV)
    messages = [str(p) for p in result.errors + result.warnings]
    assert any("persona: must be" in m and "'***'" in m for m in messages)
    assert not any("hunter2" in m for m in messages)


def test_secret_values_of_wrong_type_are_not_quoted(tmp_path: Path) -> None:
    """A secret of the wrong type is described by its type, never by its value."""
    write(tmp_path, {"a.yaml": GOOD.replace("${env.SHOP_PASSWORD}", "987654")})
    (error,) = load([tmp_path], environ=ENV).errors
    assert error.message == "must be a string, got a number (write it in quotes)"


def test_secret_written_in_the_file_is_a_warning(tmp_path: Path) -> None:
    """A literal secret value loads, with a warning to read it from the environment instead."""
    write(tmp_path, {"a.yaml": GOOD.replace("${env.SHOP_PASSWORD}", "hunter2")})
    result = load([tmp_path], environ=ENV)
    assert len(result.journeys) == 1
    assert [p.message for p in result.warnings] == [
        "secret written in the file: read it with ${env.NAME} instead"
    ]


def test_no_code_runs_from_yaml(tmp_path: Path) -> None:
    """A python/object tag is refused, never constructed: the command it names does not run."""
    marker = tmp_path / "owned"
    tagged = f'title: !!python/object/apply:os.system ["touch {marker}"]\n'
    write(tmp_path, {"a.yaml": GOOD.replace("steps:\n", tagged + "steps:\n", 1)})
    (error,) = load([tmp_path], environ=ENV).errors
    assert "the tag !!python/object/apply:os.system is not allowed" in error.message
    assert not marker.exists()


def test_alias_bomb_is_bounded(tmp_path: Path) -> None:
    """Nested aliases that would expand to a billion values are refused quickly."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    write(tmp_path, {"bomb.yaml": "\n".join(lines) + "\n"})
    (error,) = load([tmp_path]).errors
    assert error.message == "aliases expand to more than 100000 values"


def test_anchors_and_merge_keys_share_settings(tmp_path: Path) -> None:
    """Anchors and << merge keys work, and a key written beside << overrides the merged one."""
    text = (
        "- &base\n  " + GOOD.replace("\n", "\n  ").rstrip() + "\n"
        "- <<: *base\n  journey: copy\n  title: A copy\n"
    )
    write(tmp_path, {"a.yaml": text})
    result = load([tmp_path], environ=ENV)
    assert result.errors == ()
    assert [(j.journey.journey, j.journey.title) for j in result.journeys] == [
        ("checkout", ""),
        ("copy", "A copy"),
    ]


def test_missing_path_and_empty_folder_are_errors(tmp_path: Path) -> None:
    """A path that does not exist and a folder without journey files are reported, not ignored."""
    (tmp_path / "empty").mkdir()
    result = load([tmp_path / "nope.yaml", tmp_path / "empty"])
    assert [str(p) for p in result.errors] == [
        f"{tmp_path}/nope.yaml: no such file or folder",
        f"{tmp_path}/empty: no journey files (*.yaml, *.yml) in this folder",
    ]


def test_steps_say_which_variables_they_provide() -> None:
    """An HTTP step provides its extract names; a step kind without extraction provides none."""
    (loaded,) = load([INVALID / "variable_set_later.yaml"]).files.values()
    assert loaded.errors  # the journey itself is refused, so build its steps directly
    from agent.steps.browser.model import BrowserStep
    from agent.steps.http.model import HttpStep

    http = HttpStep.model_validate(
        {"name": "a", "http": {"get": "u"}, "extract": {"token": {"json": "$.t"}}}
    )
    assert http.provides() == frozenset({"token"})
    assert (
        BrowserStep.model_validate({"name": "b", "browser": [{"goto": "u"}]}).provides()
        == frozenset()
    )


def test_env_allow_list_takes_patterns_and_the_journeys_own_secrets(tmp_path: Path) -> None:
    """${env.X} loads when X matches --allow-env or the journey's secrets: read X (in any
    field then); otherwise it is an error; allow_env None (rules, dashboard) checks nothing."""
    text = GOOD.replace("Bearer ${token}", "Bearer ${token} ${env.SHOP_PASSWORD}")
    write(tmp_path, {"a.yaml": text})

    def errors(allow: EnvAllowList | None) -> list[str]:
        loaded = load([tmp_path], environ=ENV, allow_env=allow)
        return [f"{p.path}: {p.message.split(':')[0]}" for p in loaded.errors]

    assert errors(EnvAllowList()) == [
        "variables.base: environment variable SHOP_URL is not allowed"
    ]
    assert errors(EnvAllowList(["SHOP_*"])) == []
    assert errors(EnvAllowList(["SHOP_URL", "JOURNEY_*"])) == []
    assert errors(EnvAllowList([])) == [
        "variables.base: environment variable SHOP_URL is not allowed"
    ]
    assert errors(None) == []


def test_business_process_refused_by_the_model_is_reported_once(tmp_path: Path) -> None:
    """A process that is not an id is one error (the model's), not also unknown to the
    catalog; a journey with errors elsewhere still gets its catalog check."""
    bad_id = GOOD.replace("order-to-cash", "Order To Cash")
    elsewhere = GOOD.replace("checkout", "other").replace("order-to-cash", "order-to-csh")
    elsewhere = elsewhere.replace("retries: 1", "retries: many")
    write(tmp_path, {"catalog.yaml": CATALOG, "a.yaml": bad_id, "b.yaml": elsewhere})
    result = load([tmp_path], environ=ENV)
    assert [(p.file.name, p.path, p.message) for p in result.errors] == [
        ("a.yaml", "business_process", "must be an id of lowercase letters, digits, - and _ "
         "(such as order-to-cash), got 'Order To Cash'"),
        ("b.yaml", "business_process", "unknown business process 'order-to-csh' (did you mean "
         "'order-to-cash'?)"),
        ("b.yaml", "schedule.retries", "must be a whole number, got 'many'"),
    ]  # fmt: skip
