"""Templates resolve at run time; secrets are masked in every form they take."""

from __future__ import annotations

import json

import pytest

from agent.language.templating import MASK, Masker, MissingValue, Template, references


def test_variables_env_and_secrets_resolve_inside_nested_values() -> None:
    """${var}, ${env.X} and ${secret.Y} resolve in strings nested in lists and dicts."""
    template = Template({"base": "http://shop"}, {"pw": "s3cret"}, {"USER": "alice"})
    rendered = template.render({"url": "${base}/login", "body": ["${env.USER}", "${secret.pw}"]})
    assert rendered == {"url": "http://shop/login", "body": ["alice", "s3cret"]}


def test_double_dollar_escapes_a_literal_reference() -> None:
    """$${x} writes a literal ${x} and resolves nothing."""
    assert Template({}, {}, {}).render("price: $${amount}") == "price: ${amount}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${nope}", "variable 'nope' is not set"),
        ("${env.NOPE}", "environment variable 'NOPE' is not set"),
        ("${secret.nope}", "secret 'nope' is not set"),
    ],
)
def test_missing_reference_names_what_is_missing(text: str, message: str) -> None:
    """An unresolvable reference raises MissingValue saying which value is missing."""
    with pytest.raises(MissingValue, match=message):
        Template({}, {}, {}).render(text)


def test_references_lists_scopes_and_rejects_malformed() -> None:
    """references() parses every reference and rejects a malformed one."""
    assert references("${a}-${env.B}-${secret.c}-$${d}") == [
        ("var", "a"), ("env", "B"), ("secret", "c"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="malformed reference"):
        references("${a b}")


def test_masker_hides_plain_url_and_json_escaped_forms() -> None:
    """A secret is masked raw, URL-encoded (form bodies, query strings) and JSON-escaped."""
    masker = Masker(['p@ss word/"x'])
    text = 'raw=p@ss word/"x url=p%40ss%20word%2F%22x form=p%40ss+word%2F%22x json="p@ss word/\\"x"'
    masked = masker(text)
    assert "p@ss" not in masked
    assert "p%40ss" not in masked
    assert masked.count(MASK) == 4


def test_masker_hides_the_repr_of_an_escaped_secret() -> None:
    """A JSON-escaped secret quoted again with repr() in a message is still masked."""
    secret = 'p@ss/"w0rd'
    body = json.dumps({"password": secret})
    message = f"got {body!r}"
    assert "w0rd" not in Masker([secret])(message)


def test_masker_ignores_empty_secrets() -> None:
    """An empty secret value masks nothing (it would otherwise match everywhere)."""
    assert Masker([""])("hello") == "hello"
