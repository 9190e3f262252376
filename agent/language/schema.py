"""The JSON Schema of journey files, for editors that validate YAML as it is typed.

VS Code's YAML extension (yaml-language-server) supports JSON Schema draft 7 and below,
so the schema is written as draft 7: definitions under ``definitions``.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from agent.language.model import Journey

__all__ = ["journey_file_schema"]

_DRAFT_7 = "http://json-schema.org/draft-07/schema#"


def journey_file_schema() -> dict[str, Any]:
    """The schema of one document of a journey file: a journey, or a list of journeys."""
    adapter: TypeAdapter[Journey | list[Journey]] = TypeAdapter(Journey | list[Journey])
    schema = adapter.json_schema(ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs")
    return {
        "$schema": _DRAFT_7,
        "title": "Journeyman journey file",
        "description": "A journey, or a list of journeys (see docs/journey-language.md)",
        **schema,
        "definitions": definitions,
    }
