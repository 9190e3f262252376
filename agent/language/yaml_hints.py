"""What a product owner most likely meant when YAML did not read as they wrote it.

PyYAML's messages ("did not find expected key", "mapping values are not allowed in this
context") name the parser's state, not the mistake, and point where the parser gave up,
often a line after the mistake. This module reads the raw text around such an error and
names the usual culprits at the line they are on:

- a tab in the indentation (YAML allows spaces only);
- a line indented unlike the lines it goes with (or a ``- `` item like the fields of the
  item above, or a field like the ``-`` of its item);
- ``key:value`` without the space after the colon (a string, not a mapping);
- an unquoted value containing ``": "`` (which starts a mapping) or ``" #"`` (which
  starts a comment and silently cuts the value short).

It works on plain text and numbers (1-based lines and columns) and imports nothing of the
language, so that :mod:`agent.language.yaml_marks` can use it while it builds. A hint
about a line under ``secrets:`` never quotes what is written there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Hint", "colon_hint", "comment_hint", "syntax_hint"]

# key:value with no space after the colon; not a URL (http://...), nor a time (a key
# starts with a letter): a whole value, or where a line or a flow item ({a:1, b:2}) starts
_NO_SPACE = re.compile(r"^([A-Za-z_][\w.-]*):(?!//)(\S[^#]*?)\s*(?:\s#.*)?$")
_NO_SPACE_IN_LINE = re.compile(r"(?:^\s*(?:-\s+)?|[{,]\s*)([A-Za-z_][\w.-]*):(?!//)(?=[^\s:])")
_SEPARATOR = re.compile(r"[^\s:]:\s+")  # the ': ' after a key
_COMMENT_STARTED = re.compile(r"^\s*#([\w.-]\S*)")  # #pay, #123: a value, not a remark
_SECRETS = re.compile(r"^\s*(?:-\s+)?secrets\s*:")
_SPACE = "a space must follow ':' to make a mapping"
_TAB_MESSAGE = "YAML does not allow tabs for indentation; use spaces"


@dataclass(frozen=True, slots=True)
class Hint:
    """A likely mistake: where it is (1-based), what to do about it, and the line as it
    should be written (empty when the message says it all, or the line is a secret's)."""

    line: int
    column: int
    advice: str
    example: str = ""

    @property
    def message(self) -> str:
        return f"{self.advice}: write {self.example}" if self.example else self.advice


def colon_hint(value: Any) -> str | None:
    """For a string read where a mapping was expected: ``every:5m`` lacks its space."""
    match = _NO_SPACE.match(value) if isinstance(value, str) else None
    return f"{_SPACE}: write {match[1]}: {match[2]}" if match else None


def comment_hint(rest: str, value: Any, *, reveal: bool = True) -> str | None:
    """For an unquoted value followed on its line by ``rest``: the ``#`` that cut it.

    ``click: #pay`` is an empty value and a comment; ``title: Order #123`` is ``Order``.
    A comment whose ``#`` is followed by a space is taken as meant. With ``reveal`` false
    (a secret), neither the value nor the comment is quoted.
    """
    comment = _COMMENT_STARTED.match(rest)
    empty = value in (None, "")
    if comment is None or (not empty and not rest[:1].isspace()):
        return None
    written = f", '#{comment[1]}'" if reveal else ""
    if empty:
        return f"'#' starts a comment, so the value is empty: write it in quotes{written}"
    kept = f" to keep '#{comment[1]}'" if reveal else ""
    stops = f" at {value!r}" if reveal else " before it"
    return f"' #' starts a comment, so the value stops{stops}: write it in quotes{kept}"


def syntax_hint(lines: list[str], line: int, column: int, context_line: int | None) -> Hint | None:
    """The likely mistake behind a YAML syntax error reported at ``line``:``column``
    (``context_line``: where the construct the parser was reading began), or None."""
    if not lines:
        return None
    if line > len(lines):  # past the end: the culprit is on a line before
        hint = _tab(lines, len(lines)) or _missing_space(lines, len(lines), context_line)
    else:
        hint = (
            _tab(lines, line)
            or _missing_space(lines, line, line)
            or _colon_in_value(lines[line - 1], line, column)
            or _missing_space(lines, line, context_line)
            or _indentation(lines, line)
        )
    if hint is not None and _under_secrets(lines, hint.line):
        return Hint(hint.line, hint.column, hint.advice)
    return hint


def _under_secrets(lines: list[str], line: int) -> bool:
    """Whether ``line`` is, or is inside, a ``secrets:`` mapping."""
    numbers = [line, *(number for number, _ in _open_levels(lines, line).values())]
    return any(_SECRETS.match(lines[number - 1]) for number in numbers)


def _tab(lines: list[str], line: int) -> Hint | None:
    for number, text in enumerate(lines[:line], start=1):
        indent = text[: len(text) - len(text.lstrip(" \t-"))]
        if "\t" in indent:
            return Hint(number, indent.index("\t") + 1, _TAB_MESSAGE)
    return None


def _colon_in_value(text: str, line: int, column: int) -> Hint | None:
    """``title: Checkout: fast`` (block) or ``{title: Checkout: fast}`` (flow)."""
    at = column - 1
    if text[at : at + 1] != ":" or not (at + 1 == len(text) or text[at + 1].isspace()):
        return None
    separators = [m for m in _SEPARATOR.finditer(text, 0, at) if m.end() <= at]
    if not separators:
        return None
    start = separators[-1].end()
    # the key is the last flow item's, or the line's: `- key`, `{a: 1, key`
    key = text[: separators[-1].start() + 1].split("{")[-1].split(",")[-1].strip(" -")
    in_flow = "{" in text[:start]
    end = min((i for i in (text.find(c, at) for c in ",}") if i >= 0), default=len(text))
    value = text[start : end if in_flow else len(text)].split(" #")[0].strip()
    advice = "a value containing ': ' must be in quotes"
    return Hint(line, start + 1, advice, f'{key}: "{value}"')


def _missing_space(lines: list[str], line: int, context_line: int | None) -> Hint | None:
    """``every:5m`` (or ``{every:5m}``) on the error's line or the line(s) before it, back
    to ``context_line``, or to the line before when that is None."""
    first = min(context_line or line - 1, line) if line > 1 else 1
    for number in range(line, max(first, 1) - 1, -1):
        text = lines[number - 1]
        match = _NO_SPACE_IN_LINE.search(text)
        if match:
            in_flow = text[match.start()] in "{,"
            ends = [i for i in (text.find(c, match.end()) for c in ",}") if i >= 0]
            end = min(ends, default=len(text)) if in_flow else len(text)
            value = text[match.end() : end].split(" #")[0].strip()
            return Hint(number, match.end(), _SPACE, f"{match[1]}: {value}")  # at the ':'
    return None


def _indentation(lines: list[str], line: int) -> Hint | None:
    """A line whose indentation matches none of the lines it could belong with."""
    text = lines[line - 1]
    indent = len(text) - len(text.lstrip(" "))
    levels = _open_levels(lines, line)
    if not levels:
        return None
    is_item = text.lstrip(" ").startswith("-")
    if indent in levels:
        number, inner = levels[indent]
        if is_item and inner is None:
            return _item_like_a_field(line, indent, levels)
        if inner is None or is_item:
            return None  # it lines up: the parser's own message stands
        return Hint(
            line,
            indent + 1,
            f"line {line} is indented {_spaces(indent)} like the '-' of line {number}: "
            f"start a new item with '- ', or indent it {_spaces(inner)} to belong to the "
            "item above",
        )
    shown = [
        f"{level} (the '-' of line {number})" if inner else f"{level} (line {number})"
        for level, (number, inner) in levels.items()
    ]
    options = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    return Hint(
        line,
        indent + 1,
        f"line {line} is indented {_spaces(indent)}, but the lines above it are indented "
        f"{options}: indent it like the lines it goes with",
    )


def _item_like_a_field(
    line: int, indent: int, levels: dict[int, tuple[int, int | None]]
) -> Hint | None:
    """``- name: b`` indented like the fields of the item above, not like its '-'."""
    dashes = [(level, number) for level, (number, inner) in levels.items() if inner == indent]
    if not dashes:
        return None  # a list under a field, or another mistake: the parser's words stand
    level, number = dashes[0]
    return Hint(
        line,
        indent + 1,
        f"line {line} starts a new item indented {_spaces(indent)}, like the fields of the "
        f"item above: line its '-' up with the '-' of line {number} ({_spaces(level)})",
    )


def _open_levels(lines: list[str], line: int) -> dict[int, tuple[int, int | None]]:
    """The indentations a line at ``line`` could line up with, nearest first: the line
    before it, then each enclosing one; each with its line and, for the '-' of a list
    item, the indentation of the item's keys."""
    levels: dict[int, tuple[int, int | None]] = {}
    limit = None
    number = _previous(lines, line)
    while number is not None and limit != 0:
        text = lines[number - 1]
        indent = len(text) - len(text.lstrip(" "))
        if limit is None or indent < limit:
            item = re.match(r"^(\s*)-(\s+)\S", text)
            inner = len(item[1]) + 1 + len(item[2]) if item else None
            if inner is not None:
                levels.setdefault(inner, (number, None))
            levels.setdefault(indent, (number, inner))
            limit = indent
        number = _previous(lines, number)
    return levels


def _previous(lines: list[str], line: int) -> int | None:
    """The last line before ``line`` that holds content (not blank, not only a comment)."""
    for number in range(line - 1, 0, -1):
        stripped = lines[number - 1].strip()
        if stripped and not stripped.startswith("#") and stripped != "---":
            return number
    return None


def _spaces(count: int) -> str:
    return f"{count} space{'' if count == 1 else 's'}"
