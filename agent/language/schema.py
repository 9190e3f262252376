"""The JSON Schemas of journey files and of ``catalog.yaml``, for editors that validate
YAML as it is typed (``journeyman schema``, ``journeyman schema --catalog``).

VS Code's YAML extension (yaml-language-server) supports JSON Schema draft 7 and below,
so the schemas are written as draft 7: definitions under ``definitions``.

Pydantic writes a union as ``oneOf``/``anyOf``, and a validator that finds no branch
valid reports only "is not valid under any of the given schemas": a typo inside an HTTP
step would be reported against every step kind. So each union is rewritten as the
choice a person makes. A union of models told apart by a key (the step kinds, the
browser actions) becomes one ``if``/``then`` per key: the step that has ``http:`` is
checked as an HTTP step only, and the error names the field. A union of different JSON
types (``str | GotoOptions``, a duration written as a number or as text) becomes an
``if``/``then``/``else`` chain on the type. Other unions are left as they are.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from agent.language.catalog import Catalog
from agent.language.model import Journey

__all__ = ["catalog_file_schema", "journey_file_schema"]

_DRAFT_7 = "http://json-schema.org/draft-07/schema#"
_REF = "#/definitions/"


def journey_file_schema() -> dict[str, Any]:
    """The schema of one document of a journey file: a journey, or a list of journeys."""
    return _schema(
        TypeAdapter(Journey | list[Journey]),
        "Journeyman journey file",
        "A journey, or a list of journeys (see docs/journey-language.md)",
    )


def catalog_file_schema() -> dict[str, Any]:
    """The schema of ``catalog.yaml``: the business processes journeys belong to."""
    return _schema(
        TypeAdapter(Catalog),
        "Journeyman catalog",
        "The business processes, their volume and value (see docs/journey-language.md)",
    )


def _schema(adapter: TypeAdapter[Any], title: str, description: str) -> dict[str, Any]:
    schema = adapter.json_schema(ref_template=_REF + "{model}")
    definitions = schema.pop("$defs", {})
    schema.pop("title", None)
    schema.pop("description", None)
    rewritten = _Rewriter(definitions)
    return {
        "$schema": _DRAFT_7,
        "title": title,
        "description": description,
        **rewritten.node(schema),
        "definitions": {name: rewritten.node(node) for name, node in definitions.items()},
    }


class _Rewriter:
    """Rewrites the unions of a schema (see the module's docstring), bottom up."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self._definitions = definitions

    def node(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.node(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = {key: self.node(value) for key, value in node.items()}
        word = next((w for w in ("oneOf", "anyOf") if w in node), None)
        if word is None:
            return node
        branches = self._flat(node.pop(word))
        choice = self._by_key(branches) or self._by_type(branches) or {word: branches}
        return choice | node  # the field's own description and title win

    def _flat(self, branches: list[Any]) -> list[Any]:
        """``A | (B | C)`` as ``A | B | C``: a branch that is itself only a union."""
        flat = []
        for branch in branches:
            inner = next((branch[w] for w in ("anyOf", "oneOf") if [w] == list(branch)), None)
            flat += self._flat(inner) if inner is not None else [branch]
        return flat

    def _by_key(self, branches: list[Any]) -> dict[str, Any] | None:
        """Models each told apart by a required key that no other branch has."""
        models = [self._definition(branch) for branch in branches]
        if len(branches) < 2 or any(model is None for model in models):
            return None
        keys = []
        for model in models:
            assert model is not None  # checked above
            others = {p for m in models if m is not model for p in (m or {}).get("properties", {})}
            own = [key for key in model.get("required", []) if key not in others]
            if not own:
                return None
            keys.append(own[0])
        known = [p for m in models for p in (m or {}).get("properties", {})]
        names = {"propertyNames": {"enum": list(dict.fromkeys(keys + known))}}
        return {
            "type": "object",
            "description": f"Has exactly one of: {', '.join(keys)}",
            "properties": self._proposals(keys, models),
            # with none of the keys: name a stray (misspelt) key, or else say one is missing
            "if": {"anyOf": [{"required": [key]} for key in keys]},
            "else": {
                "if": names,
                "then": {"anyOf": [{"required": [key]} for key in keys]},
                "else": names,
            },
            "allOf": [
                {"if": {"type": "object", "required": [key]}, "then": branch}
                for key, branch in zip(keys, branches, strict=True)
            ],
        }

    @staticmethod
    def _proposals(keys: list[str], models: list[dict[str, Any] | None]) -> dict[str, Any]:
        """What an editor proposes in an item that has no key yet: each key, and the fields
        every branch has (descriptions only: the chosen branch validates them)."""
        described = [m for m in models if m is not None]
        proposals = {
            key: {"description": model.get("description") or model.get("title", key)}
            for key, model in zip(keys, described, strict=True)
        }
        common = [
            (name, field)
            for name, field in described[0].get("properties", {}).items()
            if all(name in m.get("properties", {}) for m in described[1:])
        ]
        for name, field in common:
            proposals[name] = {k: v for k, v in field.items() if k in ("title", "description")}
        return proposals

    def _by_type(self, branches: list[Any]) -> dict[str, Any] | None:
        """Branches of different JSON types: an if/then/else chain on the type."""
        types = [self._type(branch) for branch in branches]
        if len(branches) < 2 or None in types or len(set(types)) < len(types):
            return None
        chain: dict[str, Any] = {"type": list(dict.fromkeys(types))}
        for kind, branch in reversed(list(zip(types, branches, strict=True))):
            chain = {"if": {"type": kind}, "then": branch, "else": chain}
        return chain

    def _type(self, branch: Any) -> str | None:
        if not isinstance(branch, dict):
            return None
        model = self._definition(branch)
        kind = (model or branch).get("type")
        return kind if isinstance(kind, str) else None

    def _definition(self, branch: Any) -> dict[str, Any] | None:
        """The definition a ``{"$ref": ...}`` branch names, if it is an object's."""
        ref = branch.get("$ref", "") if isinstance(branch, dict) else ""
        if not ref.startswith(_REF) or len(branch) != 1:
            return None
        found = self._definitions.get(ref.removeprefix(_REF))
        return found if isinstance(found, dict) and found.get("type") == "object" else None
