"""Hints for the YAML mistakes product owners make most, beyond the one-file-per-error
cases of tests/invalid/: what is hinted without an error, and what is not hinted."""

from __future__ import annotations

from pathlib import Path

from agent.language.loader import load
from agent.language.yaml_hints import Hint, colon_hint, syntax_hint

HEAD = "journey: hints\nbusiness_process: order-to-cash\n"


def loaded(tmp_path: Path, text: str) -> list[str]:
    """Every error and warning of ``text`` as a journey file, without the folder."""
    (tmp_path / "j.yaml").write_text(HEAD + text, encoding="utf-8")
    result = load([tmp_path / "j.yaml"])
    return [str(p).replace(f"{tmp_path}/", "") for p in result.errors + result.warnings]


def test_value_cut_by_a_comment_is_a_warning_at_its_line(tmp_path: Path) -> None:
    """`body_contains: Order #123` loads as 'Order'; with no error to attach it to, the hint
    is a warning of its own at the value's line."""
    text = (
        "steps:\n  - name: order\n    http: {get: 'http://127.0.0.1:8080/'}\n"
        "    expect:\n      body_contains: Order #123\n"
    )
    assert loaded(tmp_path, text) == [
        "j.yaml:7:7: warning: steps[0].expect.body_contains: ' #' starts a comment, so the "
        "value stops at 'Order': write it in quotes to keep '#123'"
    ]


def test_comments_and_urls_written_as_meant_get_no_hint(tmp_path: Path) -> None:
    """A comment after '# ', a quoted '#', a URL's '://' and a time's ':' are left alone."""
    text = (
        "schedule: {every: 60s}  # once a minute\n"
        "tags: {window: '10:30', anchor: '#top', team:x: y}\n"
        "steps:\n  - name: order  #  the first step\n"
        "    http: {get: http://127.0.0.1:8080/#top}\n"
    )
    assert loaded(tmp_path, text) == []


def test_colon_hint_only_for_a_key_without_its_space() -> None:
    """`every:5m` gets the hint; a URL, a time, text with spaces around ':' do not."""
    assert colon_hint("every:5m") == "a space must follow ':' to make a mapping: write every: 5m"
    for meant in ("http://127.0.0.1/", "10:30", "status: 200", "plain text", 42, None):
        assert colon_hint(meant) is None, meant


def test_error_past_the_last_line_points_at_the_mistake() -> None:
    """A parser that gives up at the end of the file is pointed back at the line with the
    missing space."""
    lines = ["steps:", "  - name: a", "    expect:status"]
    assert syntax_hint(lines, 4, 1, 3) == Hint(
        3, 11, "a space must follow ':' to make a mapping", "expect: status"
    )


def test_a_line_that_lines_up_keeps_the_parsers_message() -> None:
    """When the error's line is indented like a line above it and holds no other known
    mistake, no hint replaces the parser's own words."""
    lines = ["journey: a", "steps: [1, 2", "title: b"]
    assert syntax_hint(lines, 3, 6, 2) is None


def test_tab_anywhere_in_the_indentation_is_named() -> None:
    """A tab after spaces, on a line above the error, is the hint, at the tab's column."""
    lines = ["journey: a", "schedule:", "  \tevery: 5m", "steps: []"]
    hint = syntax_hint(lines, 4, 1, None)
    assert hint is not None
    assert (hint.line, hint.column, hint.message) == (
        3, 3, "YAML does not allow tabs for indentation; use spaces",
    )  # fmt: skip


def test_catalog_values_cut_by_a_comment_are_hinted_too(tmp_path: Path) -> None:
    """catalog.yaml gets the same '#' hints: on the error it causes, or as a warning."""
    (tmp_path / "catalog.yaml").write_text(
        "business_processes:\n  - id: order-to-cash\n    name: Orders #1\n    owner: #web\n",
        encoding="utf-8",
    )
    result = load([tmp_path / "catalog.yaml"])
    assert [p.message for p in result.errors] == [
        "must be a string, got nothing ('#' starts a comment, so the value is empty: write it "
        "in quotes, '#web')"
    ]
    assert [(p.line, p.path) for p in result.warnings] == [(3, "business_processes[0].name")]


def test_hints_about_secrets_quote_nothing(tmp_path: Path) -> None:
    """A hint on a line under secrets: says what to do without the value written there."""
    steps = "steps:\n  - name: a\n    http: {get: 'http://127.0.0.1:8080/'}\n"
    cases = {
        "secrets:\n  token: hunter2: planted\n": "j.yaml:4:10: invalid YAML: a value "
        "containing ': ' must be in quotes",
        "secrets:\n  token:hunter2\n  pin: 1\n": "j.yaml:4:8: invalid YAML: a space must "
        "follow ':' to make a mapping",
        "secrets:\n  token: hunter2 #planted\n": "j.yaml:4:3: warning: secrets.token: ' #' "
        "starts a comment, so the value stops before it: write it in quotes",
        "secrets: token:hunter2\n": "j.yaml:3:1: secrets: must be a mapping, got a string",
    }
    for text, expected in cases.items():
        messages = loaded(tmp_path, text + steps)
        assert expected in messages, text
        assert not any("hunter2" in m or "planted" in m for m in messages), messages


def test_missing_space_in_flow_mappings(tmp_path: Path) -> None:
    """`key:{...}` is pointed at its ':' with the line as it should be; `{every:5m}` reads
    as one key, whose unknown-field error says the same."""
    steps = "steps:\n  - name: a\n    http: {get: 'http://127.0.0.1:8080/'}\n"
    assert loaded(tmp_path, "schedule:{every: 5m, timeout: 30s}\n" + steps) == [
        "j.yaml:3:9: invalid YAML: a space must follow ':' to make a mapping: write "
        "schedule: {every: 5m, timeout: 30s}"
    ]
    assert loaded(tmp_path, "schedule: {timeout: 30s, every:5m}\n" + steps) == [
        "j.yaml:3:26: schedule[\"every:5m\"]: unknown field 'every:5m' (a space must follow "
        "':' to make a mapping: write every: 5m)"
    ]
