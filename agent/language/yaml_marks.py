"""Safe YAML that remembers where every value was written.

PyYAML's safe loader runs no code, but it forgets positions and silently keeps the last
of two equal keys. Here PyYAML only composes the node tree (with its C parser when
available); this module turns the nodes into plain data (dict, list, str, int, float,
bool, None) and a :class:`Marks` table from each value's path to its line and column.
Duplicate keys, tags that are not plain data, cyclic aliases and alias bombs are
reported as problems with their position instead of being loaded. A syntax error is
reported as the likely mistake behind it when :mod:`agent.language.yaml_hints` sees one,
and a value a ``#`` cut short keeps a hint in :attr:`Marks.hints`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from agent.language.yaml_hints import comment_hint, syntax_hint

__all__ = ["Document", "Key", "Marks", "Path", "Position", "YamlProblem", "parse"]

Key = str | int | float | bool | None
Path = tuple[Key, ...]

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_COLLECTION_TAGS = frozenset({_TAG + "seq", _TAG + "map"})
_MAX_REPEATS = 100_000  # values reached again through aliases; beyond this it is a bomb
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a file, 1-based as editors show it."""

    line: int
    column: int


@dataclass(frozen=True, slots=True)
class YamlProblem:
    position: Position
    message: str
    path: Path = ()  # the value it is about, within its document


@dataclass(slots=True)
class Marks:
    """Where each value and each mapping key of a document was written, by path."""

    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)  # path of the value it names
    broken: set[Path] = field(default_factory=set)  # not loaded as written (already reported)
    hints: dict[Path, str] = field(default_factory=dict)  # a value likely not as meant

    def at(self, path: Path) -> Position:
        """The position of ``path``: its key when it has one, else its value; a path that
        is not in the file (a missing field) falls back to its nearest ancestor."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return Position(1, 1)


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document (``---``) as plain data, with the marks of its values."""

    data: Any
    marks: Marks
    problems: tuple[YamlProblem, ...] = ()  # duplicate keys, foreign tags, cyclic aliases


class _AliasBomb(Exception):
    pass


def parse(text: str) -> tuple[list[Document], list[YamlProblem]]:
    """Every document in ``text``, and the problems that are not inside one document
    (a syntax error, which ends the file; an alias bomb)."""
    lines = text.splitlines()
    builder = _Builder(lines)
    documents: list[Document] = []
    loader = _Loader(text)
    try:
        while loader.check_node():
            marks = Marks()
            node = loader.get_node()
            data = builder.build(node, (), marks) if node is not None else None
            documents.append(Document(data, marks, tuple(builder.problems)))
            builder.problems.clear()
    except yaml.MarkedYAMLError as error:
        builder.problems.append(_syntax_problem(error, lines))
    except yaml.YAMLError as error:  # e.g. a control character: no mark to show
        builder.problems.append(YamlProblem(Position(1, 1), f"invalid YAML: {error}"))
    except _AliasBomb:
        builder.problems.append(
            YamlProblem(Position(1, 1), f"aliases expand to more than {_MAX_REPEATS} values")
        )
    except RecursionError:
        builder.problems.append(YamlProblem(Position(1, 1), "values are nested too deeply"))
    finally:
        loader.dispose()
    return documents, builder.problems


def _syntax_problem(error: yaml.MarkedYAMLError, lines: list[str]) -> YamlProblem:
    mark = error.problem_mark or error.context_mark
    position = _position(mark) if mark is not None else Position(1, 1)
    context = error.context_mark.line + 1 if error.context_mark is not None else None
    hint = syntax_hint(lines, position.line, position.column, context)
    if hint is not None:
        return YamlProblem(Position(hint.line, hint.column), f"invalid YAML: {hint.message}")
    message = f"invalid YAML: {error.problem or 'syntax error'}"
    if error.context and error.context_mark is not None:
        message += f" ({error.context} at line {error.context_mark.line + 1})"
    return YamlProblem(position, message)


def _position(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


class _Builder:
    """Nodes to plain data; one per file, so that alias counting spans its documents."""

    def __init__(self, lines: list[str]) -> None:
        self.problems: list[YamlProblem] = []
        self._lines = lines
        self._constructor = SafeConstructor()
        self._seen: set[int] = set()
        self._building: set[int] = set()  # an alias to one of these would be a cycle
        self._repeats = 0

    def build(self, node: Node, path: Path, marks: Marks) -> Any:
        marks.values[path] = _position(node.start_mark)
        if id(node) in self._seen:
            self._repeats += 1
            if self._repeats > _MAX_REPEATS:
                raise _AliasBomb
        self._seen.add(id(node))
        problem = self._not_plain(node)
        if problem:
            self._problem(node, problem, path)
            marks.broken.add(path)
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        self._building.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i), marks) for i, item in enumerate(node.value)]
            assert isinstance(node, MappingNode)  # the composer makes only the three kinds
            return self._mapping(node, path, marks)
        finally:
            self._building.discard(id(node))

    def _not_plain(self, node: Node) -> str | None:
        """Why ``node`` is not plain data (a foreign tag, a cyclic alias), or None."""
        allowed = _SCALAR_TAGS if isinstance(node, ScalarNode) else _COLLECTION_TAGS
        if node.tag not in allowed:
            tag = "!!" + node.tag.removeprefix(_TAG) if node.tag.startswith(_TAG) else node.tag
            return f"the tag {tag} is not allowed: journey files hold plain values"
        if id(node) in self._building:
            return "an alias refers to a value that contains it"
        return None

    def _scalar(self, node: ScalarNode) -> Any:
        tag = node.tag.removeprefix(_TAG)
        if tag in ("int", "float", "bool", "null"):
            return getattr(self._constructor, f"construct_yaml_{tag}")(node)
        return node.value  # str, and timestamps: dates stay text to survive JSON bodies

    def _mapping(self, node: MappingNode, path: Path, marks: Marks) -> dict[Key, Any]:
        merged = self._merged(node, path, marks)
        own: dict[Key, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            if not isinstance(key_node, ScalarNode) or self._not_plain(key_node):
                self._problem(key_node, "a key must be plain text or a number", path)
                continue
            key = self._scalar(key_node)
            key_path = (*path, key)
            if key in own:
                first = marks.keys[key_path].line
                self._problem(key_node, f"duplicate key (first written at line {first})", key_path)
                continue
            marks.keys[key_path] = _position(key_node.start_mark)
            own[key] = self.build(value_node, key_path, marks)
            hint = self._comment_hint(value_node, own[key], reveal="secrets" not in path[-1:])
            if hint:
                marks.hints[key_path] = hint
        return merged | own

    def _comment_hint(self, node: Node, value: Any, *, reveal: bool) -> str | None:
        """For a plain scalar, a ``#`` right after it on its line that likely cut it."""
        if not isinstance(node, ScalarNode) or node.style not in (None, ""):
            return None
        end = node.end_mark
        rest = self._lines[end.line][end.column :] if end.line < len(self._lines) else ""
        return comment_hint(rest, value, reveal=reveal)

    def _merged(self, node: MappingNode, path: Path, marks: Marks) -> dict[Key, Any]:
        """The values of ``<<: *anchor`` merge keys; the mapping's own keys override them."""
        merged: dict[Key, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self._problem(source, "<< merges a mapping or a list of mappings", path)
                    continue
                for key, value in self.build(source, path, marks).items():
                    merged.setdefault(key, value)
        marks.values[path] = _position(node.start_mark)  # building the sources moved it
        return merged

    def _problem(self, node: Node, message: str, path: Path) -> None:
        self.problems.append(YamlProblem(_position(node.start_mark), message, path))
