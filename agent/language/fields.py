"""Value types of the journey language: durations, percentages, byte sizes.

Each accepts the forms a product owner writes (``800ms``, ``99.5%``, ``10MB``) and
normalises them to base units (seconds, fractions, bytes), so the rest of the code
never parses units again.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = ["ByteSize", "Duration", "Fraction", "StrictModel", "error_at", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_BYTES = {
    "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
}  # fmt: skip


class StrictModel(BaseModel):
    """Base of every model in the language: immutable, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def error_at(message: str, *at: str | int) -> PydanticCustomError:
    """A model validator's error about one of the model's fields (``at``: its relative path,
    such as ``"steps", 2, "name"``), so that the loader points at the line it is on."""
    return PydanticCustomError("value_error", message, {"at": at})


def parse_duration(value: Any) -> float:
    """``"800ms"``, ``"30s"``, ``"5m"``, ``"1h"``, ``"28d"`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"must be a duration such as 30s or 5m, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _SECONDS[match.group(2)]
    raise ValueError(f"must be a duration such as 800ms, 30s, 5m, 1h or 28d, got {value!r}")


def _parse_fraction(value: Any) -> float:
    """``"99.5%"`` or ``99.5`` -> 0.995; ``0.995`` stays 0.995."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"must be a percentage such as 99.5%, got {value!r}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool) and 1 < value <= 100:
        value = value / 100
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a percentage such as 99.5%, got {value!r}")
    if not 0 < value < 1:
        raise ValueError(f"must be between 0% and 100% (exclusive), got {value!r}")
    return float(value)


def _parse_size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(float(match.group(1)) * _BYTES[(match.group(2) or "b").lower()])
    raise ValueError(f"must be a size such as 512KB or 10MB, got {value!r}")


def _number_or_text(pattern: str, example: str) -> WithJsonSchema:
    """The JSON Schema of a value written as a number or as text with a unit, for editors."""
    text = {"type": "string", "pattern": pattern, "examples": [example]}
    return WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0}, text]})


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(gt=0),
    _number_or_text(_DURATION.pattern, "30s"),
]
"""Seconds, written as 800ms, 30s, 5m, 1h, 28d (or a plain number of seconds)."""

Fraction = Annotated[
    float, BeforeValidator(_parse_fraction), _number_or_text(r"^\s*\d+(\.\d+)?\s*%\s*$", "99.5%")
]
"""A share in (0, 1), written as 99.5% (or 0.995)."""

ByteSize = Annotated[
    int,
    BeforeValidator(_parse_size),
    Field(gt=0),
    _number_or_text(r"^\s*\d+(\.\d+)?\s*([Bb]|[KkMmGg][Ii]?[Bb])?\s*$", "10MB"),  # JS regex
]
"""Bytes, written as 512KB, 10MB, 1MiB (or a plain number of bytes)."""
