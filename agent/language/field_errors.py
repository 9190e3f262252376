"""Pydantic's validation errors as a product owner should read them.

Pydantic reports a location made of field names, list indexes, union tags (``http``,
``int``, ``list[...]``) and aliases, and messages written for programmers. This module
maps each location onto the path a person wrote in YAML (``steps[2].expect.status``),
drops the tags, folds the errors of one union into one, and rewrites the messages:
"required field missing", "unknown field 'expct' (did you mean 'expect'?)", "must be a
whole number, got 'ten'". A union reports the real problem once: when the value has the
shape of one branch (a mapping for ``str | GotoOptions``), that branch's errors are
kept and the other branches' "must be a string" dropped; a misspelt field is reported
as unknown, not also as a required one missing. A model validator may name the field it
is about by raising :func:`agent.language.fields.error_at`.
"""

from __future__ import annotations

import difflib
import inspect
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from agent.language.model import STEP_KINDS
from agent.language.yaml_hints import colon_hint
from agent.language.yaml_marks import Key, Path
from agent.steps.browser.model import ACTION_NAMES

__all__ = ["FieldError", "field_errors", "format_path", "suggest"]

_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}
_PATTERNS = {
    r"^[a-z0-9][a-z0-9_-]*$": "an id of lowercase letters, digits, - and _ (such as order-to-cash)",
    r"^(low|medium|high|critical)$": "one of low, medium, high, critical",
}


@dataclass(frozen=True, slots=True)
class FieldError:
    path: Path
    message: str


def field_errors(
    error: ValidationError, data: Any, model: type[BaseModel], *, secret_fields: frozenset[str]
) -> list[FieldError]:
    """The errors of validating ``data`` as ``model``, one per path the person wrote.

    Values under a top-level field in ``secret_fields`` are never quoted in a message.
    """
    grouped: dict[Path, list[ErrorDetails]] = {}
    for details in error.errors():
        grouped.setdefault(_path(details, data, model), []).append(details)
    grouped = _real_problems(grouped, data, model)
    return [
        _error(group, path, data, model, reveal=not (path and path[0] in secret_fields))
        for path, group in grouped.items()
    ]


def _real_problems(
    grouped: dict[Path, list[ErrorDetails]], data: Any, model: type[BaseModel]
) -> dict[Path, list[ErrorDetails]]:
    """Without the errors that only echo another: a union branch's wrong type at a path
    that another branch found deeper problems under, and a required field missing whose
    name an unknown field beside it is a misspelling of."""
    deeper = {path[:end] for path in grouped for end in range(len(path))}
    misspelt = set()
    for path, group in grouped.items():
        if path and any(d["type"] == "extra_forbidden" for d in group):
            known = _field_names(model, path[:-1], data)
            close = difflib.get_close_matches(str(path[-1]), known, n=1, cutoff=0.6)
            misspelt |= {(*path[:-1], name) for name in close}
    return {
        path: group
        for path, group in grouped.items()
        if not (path in deeper and all(d["type"] in _EXPECTED for d in group))
        and not (path in misspelt and all(d["type"] == "missing" for d in group))
    }


def format_path(path: Path) -> str:
    """``("steps", 2, "expect", "status")`` -> ``steps[2].expect.status``."""
    text = ""
    for key in path:
        if isinstance(key, int) and not isinstance(key, bool):
            text += f"[{key}]"
        elif isinstance(key, str) and key.isidentifier():
            text += f".{key}" if text else key
        else:
            text += f'["{key}"]' if isinstance(key, str) else f"[{key}]"
    return text


def suggest(name: object, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` when ``name`` is close to one of ``choices``, else ''."""
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _path(details: ErrorDetails, data: Any, model: type[BaseModel]) -> Path:
    loc = tuple(details["loc"]) + tuple(details.get("ctx", {}).get("at", ()))
    if details["type"] == "missing":  # its parent is the mapping whose model has the field
        name = loc[-1]
        parents = _resolve(loc[:-1], data)
        owner = [p for p in parents if name in _field_names(model, p, data, by_kind=False)]
        return (*(owner or parents)[0], name)
    return _resolve(loc, data)[0]


def _resolve(loc: tuple[Any, ...], data: Any) -> list[Path]:
    """The paths in ``data`` that ``loc`` may name, skipping union tags and type names,
    the likeliest first.

    A tag can also be a key (``tcp`` is both), so every reading is tried: the best one
    matches the last element of ``loc`` and as many elements as possible.
    """
    scored = {path: (last_matched, len(path)) for path, last_matched in _readings(loc, data)}
    return sorted(scored, key=lambda path: scored[path], reverse=True) or [()]


def _readings(loc: tuple[Any, ...], node: Any) -> Iterator[tuple[Path, bool]]:
    if not loc:
        yield (), False
        return
    head, rest = loc[0], loc[1:]
    child = _child(node, head)
    if child is not _ABSENT:
        for path, last in _readings(rest, child):
            yield (head, *path), last or not rest
    for path, last in _readings(rest, node):
        yield path, last


_ABSENT = object()


def _child(node: Any, key: Any) -> Any:
    if isinstance(node, dict) and key in node:
        return node[key]
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return _ABSENT


def _error(
    group: list[ErrorDetails], path: Path, data: Any, model: type[BaseModel], *, reveal: bool
) -> FieldError:
    value = _at(data, path)
    kinds = [d["type"] for d in group]
    if all(kind in _EXPECTED for kind in kinds):  # a union's branches, or one type error
        expected = _join_or(list(dict.fromkeys(_EXPECTED[kind] for kind in kinds)))
        hint = _quote_hint(kinds, value) or (_mapping_hint(expected, value) if reveal else "")
        return FieldError(path, f"must be {expected}, got {_describe(value, reveal)}{hint}")
    specific = [d for d in group if d["type"] not in _EXPECTED]  # more telling than types
    if specific[0]["type"] == "step_kind":
        return _step_kind(path, value, model, data)
    if specific[0]["type"] == "browser_action":
        return _browser_action(path, value)
    texts = [_text(d, path, data, model, reveal) for d in specific]
    return FieldError(path, "; ".join(dict.fromkeys(texts)))


def _text(
    details: ErrorDetails, path: Path, data: Any, model: type[BaseModel], reveal: bool
) -> str:
    kind, ctx, value = details["type"], details.get("ctx", {}), _at(data, path)
    if kind == "missing":
        return "required field missing"
    if kind == "extra_forbidden":
        known = _field_names(model, path[:-1], data)
        hint = (
            suggest(path[-1], known)
            or _misplaced(model, path, data)
            or f" (known fields: {', '.join(known)})"
        )
        spaced = colon_hint(path[-1]) if reveal else None  # {every:5m} is one key
        return f"unknown field {path[-1]!r}{f' ({spaced})' if spaced else hint}"
    if kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        return f"must be {words} {ctx[bound]}, got {_describe(value, reveal)}"
    if kind in ("too_short", "too_long"):
        limit = ctx["min_length" if kind == "too_short" else "max_length"]
        words = "at least" if kind == "too_short" else "at most"
        return f"must have {words} {limit} item{'s' if limit != 1 else ''}"
    if kind == "string_too_short":
        return (
            "must not be empty"
            if ctx["min_length"] == 1
            else (f"must be at least {ctx['min_length']} characters")
        )
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "string_pattern_mismatch":
        wanted = _PATTERNS.get(ctx["pattern"], f"text matching {ctx['pattern']}")
        return f"must be {wanted}, got {_describe(value, reveal)}"
    if kind in ("enum", "literal_error"):
        return f"must be {ctx['expected']}, got {_describe(value, reveal)}"
    if kind in ("value_error", "assertion_error"):
        return details["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return details["msg"][:1].lower() + details["msg"][1:]  # pydantic's own words, as a clause


def _step_kind(path: Path, value: Any, model: type[BaseModel], data: Any) -> FieldError:
    """Which kind key a step lacks or has twice, pointing at the stray key when there is one."""
    kinds = ", ".join(STEP_KINDS)
    if not isinstance(value, dict):
        message = f"must be a mapping with one kind key ({kinds}), got {_describe(value, True)}"
        return FieldError(path, message + _mapping_hint("a mapping", value))
    given = [kind for kind in STEP_KINDS if kind in value]
    if len(given) > 1:
        return FieldError(path, f"a step has exactly one kind, got {' and '.join(given)}")
    known = set(_field_names(model, path, data, by_kind=False))
    strays = [key for key in value if key not in known]
    if strays:
        hint = suggest(strays[0], list(STEP_KINDS)) or f" (a step is one of: {kinds})"
        return FieldError((*path, strays[0]), f"unknown step kind {strays[0]!r}{hint}")
    return FieldError(path, f"a step needs one kind key: {kinds}")


def _misplaced(model: type[BaseModel], path: Path, data: Any) -> str:
    """For an unknown field that is a field of a mapping further out: the indentation."""
    for end in range(len(path) - 2, -1, -1):
        if path[-1] in _field_names(model, path[:end], data):
            owner = f"under {format_path(path[:end])}" if end else "at the top level"
            return f" (indented too far? it belongs {owner})"
    return ""


def _browser_action(path: Path, value: Any) -> FieldError:
    """Which action a browser step's item names wrongly: an unknown (misspelt) action key,
    several keys, or no mapping at all."""
    names = ", ".join(ACTION_NAMES)
    if not isinstance(value, dict):
        hint = _mapping_hint("a mapping", value)
        message = f"must be one action such as click: '#pay', got {_describe(value, True)}{hint}"
        return FieldError(path, message)
    unknown = [key for key in value if key not in ACTION_NAMES]
    if unknown:
        close = suggest(unknown[0], list(ACTION_NAMES))
        return FieldError(
            (*path, unknown[0]), f"unknown action {unknown[0]!r}{close}; the actions are: {names}"
        )
    if value:
        given = ", ".join(str(key) for key in value)
        return FieldError(
            path, f"an action has one key, got {len(value)}: {given} (write each as its own - item)"
        )
    return FieldError(path, f"an action needs one key: {names}")


def _field_names(
    model: type[BaseModel], path: Path, data: Any, *, by_kind: bool = True
) -> list[str]:
    """The field names (as written in YAML) that the mapping at ``path`` may have."""
    candidates: list[Any] = [model]
    for key in path:
        candidates = [inner for c in candidates for inner in _inner(c, key)]
    models = [c for c in candidates if inspect.isclass(c) and issubclass(c, BaseModel)]
    node = _at(data, path)
    if by_kind and isinstance(node, dict):  # a step: only the fields of its own kind
        kinds = [m for m in models if getattr(m, "kind_name", None) in node]
        models = kinds or models
    names = [f.alias or name for m in models for name, f in m.model_fields.items()]
    return list(dict.fromkeys(names))


def _inner(annotation: Any, key: Key) -> list[Any]:
    """The types one step down from ``annotation`` along ``key``."""
    found = []
    for kind in _flatten(annotation):
        origin, args = get_origin(kind), get_args(kind)
        if inspect.isclass(kind) and issubclass(kind, BaseModel) and isinstance(key, str):
            for name, field in kind.model_fields.items():
                if key in (name, field.alias):
                    found += _flatten(field.annotation)
        elif origin in (list, tuple) and isinstance(key, int) and args:
            found += _flatten(args[0])
        elif origin is dict and len(args) == 2:
            found += _flatten(args[1])
    return found


def _flatten(annotation: Any) -> list[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _flatten(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [inner for arg in get_args(annotation) for inner in _flatten(arg)]
    return [annotation]


def _at(data: Any, path: Path) -> Any:
    for key in path:
        data = _child(data, key)
        if data is _ABSENT:
            return None
    return data


def _describe(value: Any, reveal: bool) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return ("true" if value else "false") if reveal else "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if not reveal:
        return "a string" if isinstance(value, str) else "a number"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _quote_hint(kinds: list[str], value: Any) -> str:
    if kinds == ["string_type"] and isinstance(value, int | float | bool):
        return " (write it in quotes)"
    return ""


def _mapping_hint(expected: str, value: Any) -> str:
    """When a mapping was expected and ``key:value`` came, the missing space is why."""
    hint = colon_hint(value) if "a mapping" in expected else None
    return f" ({hint})" if hint else ""


def _join_or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"
