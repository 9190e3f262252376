"""Stable hashing of journey ids: which replica runs a journey, and when in its interval.

``--shard I/N`` keeps the journeys whose hash modulo N is I-1, so N replicas started
with 1/N .. N/N split the journeys with none missing or doubled, and no coordination.
The hash is sha256 of the id (Python's ``hash()`` changes from process to process).

``--shard auto`` is for a StatefulSet's pods: I is the pod's ordinal plus one, from
``JOURNEYMAN_SHARD_ORDINAL`` when set (the manifests fill it from the pod-index label
through the downward API), else from the hostname ``NAME-ORDINAL``; N comes from
``JOURNEYMAN_SHARD_COUNT``, which the manifest sets to the replicas (a pod cannot see
its StatefulSet's). When it cannot tell, it says why in one line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["COUNT_VAR", "ORDINAL_VAR", "Shard", "parse_shard", "phase", "pod_shard", "stable_hash"]

COUNT_VAR = "JOURNEYMAN_SHARD_COUNT"  # N: the StatefulSet's replicas, set by the manifest
ORDINAL_VAR = "JOURNEYMAN_SHARD_ORDINAL"  # the pod's ordinal, 0-based, as Kubernetes counts

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_WHOLE = re.compile(r"[0-9]+")
_POD_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?-([0-9]+)$")
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


def parse_shard(text: str, environ: Mapping[str, str] | None = None, hostname: str = "") -> Shard:
    """``"2/3"`` -> Shard(2, 3); ``"auto"`` -> :func:`pod_shard` of ``environ`` and
    ``hostname``; anything else raises ValueError saying what is expected."""
    if text.strip().lower() == "auto":
        return pod_shard(environ or {}, hostname)
    match = _SHARD.match(text)
    if match is None:
        raise ValueError(
            f"--shard must be I/N such as 1/3 (this replica's share) or auto, got {text!r}"
        )
    return Shard(int(match.group(1)), int(match.group(2)))


def pod_shard(environ: Mapping[str, str], hostname: str) -> Shard:
    """This StatefulSet pod's shard: ordinal + 1 of ``COUNT_VAR``; ValueError if unknown."""
    count = _whole(environ.get(COUNT_VAR, ""), COUNT_VAR, "the StatefulSet's replicas")
    if count < 1:
        raise ValueError(f"--shard auto: {COUNT_VAR} must be at least 1, got {count}")
    if environ.get(ORDINAL_VAR, "").strip():
        ordinal = _whole(environ[ORDINAL_VAR], ORDINAL_VAR, "this pod's ordinal: 0, 1, ...")
        source = ORDINAL_VAR
    else:
        name = hostname.split(".", 1)[0]  # a pod with setHostnameAsFQDN has dots
        match = _POD_NAME.match(name)
        if match is None:
            raise ValueError(
                f"--shard auto cannot tell this pod's ordinal: {ORDINAL_VAR} is not set and "
                f"the hostname {hostname!r} is not a StatefulSet pod's NAME-ORDINAL"
            )
        ordinal, source = int(match.group(1)), f"the hostname {hostname!r}"
    if ordinal >= count:
        raise ValueError(
            f"--shard auto: ordinal {ordinal} (from {source}) is not below {COUNT_VAR}={count}; "
            "set it to the StatefulSet's replicas"
        )
    return Shard(ordinal + 1, count)


def _whole(text: str, name: str, meaning: str) -> int:
    if not _WHOLE.fullmatch(text.strip()):
        got = f"got {text!r}" if text.strip() else "it is not set"
        raise ValueError(f"--shard auto needs {name} ({meaning}) as a whole number; {got}")
    return int(text)
