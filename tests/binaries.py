"""Debian's prometheus binaries for the rules tests: skipped when missing, unless CI."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["required_binary"]


def required_binary(name: str) -> str:
    """The path of ``name`` (promtool, prometheus); under CI=true a missing one fails."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing (Debian package prometheus); CI must have it")
        pytest.skip(f"{name} is missing (Debian package prometheus)")
    return found
