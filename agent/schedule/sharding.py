"""Stable hashing of journey ids: which replica runs a journey, and when in its interval.

``--shard I/N`` keeps the journeys whose hash modulo N is I-1, so N replicas started
with 1/N .. N/N split the journeys with none missing or doubled, and no coordination.
The hash is sha256 of the id (Python's ``hash()`` changes from process to process).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["Shard", "parse_shard", "phase", "stable_hash"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_SPAN = 2**64


def stable_hash(journey_id: str) -> int:
    """A 64-bit number from the id, the same in every process and on every machine."""
    return int.from_bytes(hashlib.sha256(journey_id.encode()).digest()[:8], "big")


def phase(journey_id: str) -> float:
    """Where in its interval a journey first runs, as a share in [0, 1)."""
    return stable_hash(journey_id) / _SPAN


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``; the default 1/1 keeps every journey."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ValueError(f"shard must be I/N with 1 <= I <= N, got {self.index}/{self.count}")

    def owns(self, journey_id: str) -> bool:
        return stable_hash(journey_id) % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"2/3"`` -> Shard(2, 3); anything else raises ValueError saying what is expected."""
    match = _SHARD.match(text)
    if match is None:
        raise ValueError(f"--shard must be I/N such as 1/3 (this replica's share), got {text!r}")
    return Shard(int(match.group(1)), int(match.group(2)))
