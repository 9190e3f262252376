"""A small JSON path subset for expectations and extractions: ``$.order.items[0]["unit price"]``.

Supported: the root ``$``, member names (``.name``, ``["any name"]`` or ``['any name']``)
and array indexes (``[0]``, ``[-1]`` for the last). No wildcards, filters or recursive
descent: a path names at most one value, so "expected X, got Y" always has one Y.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["Key", "find", "parse"]

Key = str | int

_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*)"""
    r"""|\[(?P<index>-?\d+)\]"""
    r"""|\[\s*"(?P<quoted>(?:[^"\\]|\\.)*)"\s*\]"""
    r"""|\[\s*'(?P<single>[^']*)'\s*\]"""
)


def parse(path: str) -> tuple[Key, ...]:
    """The keys of ``path``; a malformed path raises ValueError saying where."""
    if not path.startswith("$"):
        raise ValueError(f"a JSON path starts with $, got {path!r}")
    keys: list[Key] = []
    position = 1
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None:
            raise ValueError(
                f"invalid JSON path {path!r} at character {position + 1}: "
                'expected .name, [index] or ["name"]'
            )
        if match["index"] is not None:
            keys.append(int(match["index"]))
        elif match["quoted"] is not None:
            keys.append(json.loads(f'"{match["quoted"]}"'))
        else:
            keys.append(match["name"] if match["name"] is not None else match["single"])
        position = match.end()
    return tuple(keys)


def find(document: Any, path: str) -> tuple[bool, Any]:
    """``(True, value)`` at ``path`` in a parsed JSON document, or ``(False, None)``."""
    value = document
    for key in parse(path):
        if not _holds(value, key):
            return False, None
        value = value[key]
    return True, value


def _holds(value: Any, key: Key) -> bool:
    if isinstance(key, int):
        return isinstance(value, list) and -len(value) <= key < len(value)
    return isinstance(value, dict) and key in value
