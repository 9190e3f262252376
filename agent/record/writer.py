"""The journey file of a recording: our YAML vocabulary, with comments for the person.

The header says what to set before running it (the secrets' variables, the files to
upload); each step's notes (the JSON calls its page made) are comments above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from agent.language.fields import parse_duration
from agent.record.journal import Journal

__all__ = ["About", "render"]

_TIMEOUT = 30.0  # seconds: the language's default run timeout, cut to fit the interval
# A step is one page: one that takes longer has failed the person, and a broken page
# fails the run in 10 s instead of the whole run's 30.
_STEP_TIMEOUT = 10.0


@dataclass(frozen=True)
class About:
    """What the journey is, beyond its steps: asked for or given as flags."""

    journey: str
    business_process: str
    persona: str
    interval: str  # a duration as the language writes it, e.g. 5m


def render(journal: Journal, about: About, start_url: str, when: datetime) -> str:
    lines = [f"# Recorded by `journeyman record` from {start_url} on {when:%Y-%m-%d %H:%M} UTC."]
    if journal.secrets:
        names = ", ".join(s.env for s in journal.secrets)
        lines.append(
            f"# Before running it, set {names}: what was typed there (never written here)."
        )
    if journal.uploads:
        files = ", ".join(journal.uploads)
        lines.append(f"# Put {files} in the agent's --uploads-dir folder (paths are relative).")
    every = parse_duration(about.interval)
    header: dict[str, Any] = {
        "journey": about.journey,
        "title": f"Recorded at {journal.base}",
        "business_process": about.business_process,
        "persona": about.persona,
        "schedule": {
            "every": about.interval,
            "timeout": f"{_TIMEOUT:g}s" if every >= _TIMEOUT else about.interval,
            "step_timeout": f"{_STEP_TIMEOUT:g}s" if every >= _STEP_TIMEOUT else about.interval,
        },
        "variables": {"base": journal.base},
    }
    if journal.secrets:
        header["secrets"] = {s.name: f"${{env.{s.env}}}" for s in journal.secrets}
    lines.append(_dump(header).rstrip("\n"))
    lines.append("steps:")
    for step in journal.steps:
        lines += [f"  # {note}" for note in step.notes]
        item = _dump([{"name": step.name, "browser": step.actions}])
        lines += [f"  {line}" for line in item.splitlines()]
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as our journeys are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _dump(data: Any) -> str:
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1_000_000,
    )
