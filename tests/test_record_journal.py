"""From recorded events to a journey: fills collapsed, waits as expectations, secrets
as references never written, JSON calls noted, metadata asked or defaulted."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from agent.language.loader import load
from agent.record.ask import about, default_id
from agent.record.events import ApiCall, PageEvent, from_payload
from agent.record.journal import build, stable_path
from agent.record.secrets import is_secret, unique_name
from agent.record.writer import About, render

BASE = "http://shop.test:8080"
TOKEN = "tok9f8e7d6c5b4a3x2"


def page(path: str, title: str, heading: str = "") -> PageEvent:
    return PageEvent("page", url=BASE + path, title=title, value=heading)


def typed(selector: str, value: str, field_type: str = "text", *hints: str) -> PageEvent:
    return PageEvent("fill", selector, value, field_type=field_type, hints=hints)


LEAVE = PageEvent("leave")  # the page opened the next one

LOGIN = [
    page("/", "Home · Shop", "Welcome"),
    PageEvent("click", 'role=link[name="Log in"]'),
    LEAVE,
    page("/login", "Log in · Shop"),
    typed("#user", "a"),
    typed("#user", "al"),
    typed("#user", "alice"),
    typed("#pw", "p", "password", "password"),
    typed("#pw", "pa55-word", "password", "password"),
    PageEvent("press", "#pw", "Enter"),
    LEAVE,
    page("/", "Home · Shop", "Hello alice"),
    PageEvent("expect_text", "#hello", "Hello alice pa55-word"),
]


def test_keystrokes_into_one_field_collapse_to_one_fill() -> None:
    """Each keystroke's value is one event; the file has one fill per field, together."""
    journal = build(LOGIN, [], "shop")
    actions = journal.steps[1].actions
    assert actions[0] == {"fill": {"#user": "alice", "#pw": "${secret.password}"}}


def test_a_typed_password_is_a_secret_and_never_written() -> None:
    """The password field's value becomes ${secret.password}, also inside other texts."""
    journal = build(LOGIN, [], "shop")
    assert [(s.name, s.env) for s in journal.secrets] == [("password", "SHOP_PASSWORD")]
    text = render(journal, About("shop", "sales", "customer", "5m"), BASE, datetime.now(UTC))
    assert "pa55-word" not in text
    expect = journal.steps[2].actions[-1]
    assert expect == {
        "expect_text": {"selector": "#hello", "text": "Hello alice ${secret.password}"}
    }


def test_a_page_opened_by_an_action_is_waited_for_with_an_expectation() -> None:
    """A new path is expected by URL; the same path by title, else by heading."""
    journal = build(LOGIN, [], "shop")
    assert journal.steps[0].actions == [
        {"goto": "${base}/"},
        {"click": 'role=link[name="Log in"]'},
        {"expect_url": "/login"},
    ]
    assert journal.steps[1].actions[-2:] == [
        {"press": {"#pw": "Enter"}},
        {"expect_title": "Home · Shop"},
    ]
    same_title = [*LOGIN[:4], PageEvent("click", "#go"), LEAVE, page("/", "Log in · Shop", "Hi")]
    assert build(same_title, [], "shop").steps[1].actions[-1] == {"expect_text": "Hi"}


def test_a_page_opened_by_the_person_is_a_goto() -> None:
    """A page the page before did not open (an address typed after a click that stayed,
    or a navigation the page cancelled) is a goto."""
    events = [
        page("/", "Home"),
        PageEvent("click", "#add"),
        page("/orders/W-17", "Order W-17"),
        LEAVE,
        PageEvent("click", "#spa-link"),
        page("/cart", "Cart"),
    ]
    journal = build(events, [], "shop")
    assert [s.actions for s in journal.steps] == [
        [{"goto": "${base}/"}, {"click": "#add"}],
        [{"goto": "${base}/orders/W-17"}, {"click": "#spa-link"}],
        [{"goto": "${base}/cart"}],
    ]


def test_made_up_parts_of_a_path_are_left_out_of_url_expectations() -> None:
    """Order numbers and ids change every run: the expectation stops before them."""
    assert stable_path(BASE + "/checkout/confirmation/W-1001") == "/checkout/confirmation/"
    assert stable_path(BASE + "/products/teapot?x=1") == "/products/teapot"
    assert stable_path(BASE + "/12345") == "/"


def test_json_calls_are_noted_on_their_step_without_query_or_secret() -> None:
    """A fetch with JSON is a comment suggesting an http step, never a silent change."""
    calls = [
        ApiCall("POST", f"{BASE}/api/cart?pw=pa55-word", after=5),
        ApiCall("POST", f"{BASE}/api/cart", after=6),
        ApiCall("GET", "http://other.test/api/pa55-word", after=12),
    ]
    journal = build(LOGIN, calls, "shop")
    assert journal.steps[1].notes == [
        "The page called POST ${base}/api/cart (JSON): an `http` step could check this "
        "endpoint faster."
    ]
    assert "pa55-word" not in journal.steps[2].notes[0]


def test_templates_typed_by_the_person_stay_literal() -> None:
    """Typed ``${...}`` is escaped so the journey sends it as typed."""
    events = [page("/", "Home"), typed("#q", "${env.HOME}")]
    assert build(events, [], "shop").steps[0].actions[1] == {"fill": {"#q": "$${env.HOME}"}}


def test_the_written_file_validates(tmp_path: Path) -> None:
    """The rendered journey loads without error, declares its secret, keeps comments."""
    calls = [ApiCall("POST", f"{BASE}/api/cart", after=4)]
    journal = build(LOGIN, calls, "shop")
    text = render(journal, About("shop", "sales", "customer", "10s"), BASE, datetime.now(UTC))
    path = tmp_path / "shop.yaml"
    path.write_text(text)
    loaded = load([path], environ={"SHOP_PASSWORD": "x"})
    assert [p.message for f in loaded.files.values() for p in f.errors] == []
    data = yaml.safe_load(text)
    assert data["schedule"] == {"every": "10s", "timeout": "10s", "step_timeout": "10s"}
    assert data["secrets"] == {"password": "${env.SHOP_PASSWORD}"}
    assert "# Before running it, set SHOP_PASSWORD" in text


@pytest.mark.parametrize(
    ("field_type", "hints", "value", "secret"),
    [
        ("password", (), "x", True),
        ("text", ("api_key",), "abc", True),
        ("text", ("one-time-code",), "123456", True),
        ("text", ("user",), TOKEN, True),
        ("text", ("user",), "alice", False),
        ("text", ("email",), "alice.smith2024@example.com", False),
        ("text", ("q",), "blue teapot 2024 edition", False),
        ("text", ("card",), "4242 4242 4242 4242", False),
    ],
)
def test_what_counts_as_a_secret(
    field_type: str, hints: tuple[str, ...], value: str, secret: bool
) -> None:
    """Password fields, fields named like secrets, and token-looking values."""
    assert is_secret(field_type, hints, value) is secret


def test_names_come_from_hints_and_are_unique() -> None:
    """``order-number`` -> ``order_number``; taken names get a suffix; else the default."""
    assert unique_name(["order-number"], [], "value") == "order_number"
    assert unique_name(["password"], ["password"], "secret") == "password_2"
    assert unique_name(["", "42"], [], "value") == "value"


def test_malformed_page_payloads_are_dropped() -> None:
    """The page is not trusted: wrong types or unknown events are ignored."""
    assert from_payload({"type": "click", "selector": "#a"}) == PageEvent("click", "#a")
    assert from_payload({"type": "click"}) is None
    assert from_payload({"type": "eval", "selector": "#a"}) is None
    assert from_payload({"type": "fill", "selector": "#a", "value": 3}) is None
    assert from_payload(["click"]) is None


def test_metadata_is_asked_on_a_terminal_and_defaulted_without() -> None:
    """Answers are checked and asked again; without a terminal the defaults are said."""
    answers = iter(["Bad Id!", "checkout", "", "partner", "2m"])
    err = io.StringIO()
    nothing: dict[str, str | None] = dict.fromkeys(["journey", "business_process", "persona"])
    asked = about(nothing | {"interval": None}, Path("x.yaml"), lambda _: next(answers), err)
    assert asked == About("checkout", "unassigned", "partner", "2m")
    assert "must be lowercase letters" in err.getvalue()
    err = io.StringIO()
    given = nothing | {"journey": "j", "business_process": "sales", "interval": None}
    assert about(given, Path("x.yaml"), None, err) == About("j", "sales", "customer", "5m")
    assert "persona: customer (not given, no terminal to ask)" in err.getvalue()
    assert default_id(Path("journeys/New Checkout.yaml")) == "new-checkout"
