"""Debian's Prometheus binaries for the tests: skipped when missing, unless CI.

`scripts/system-deps` installs every package named here.
"""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["required_binary"]

# The Debian package of each binary the tests run.
PACKAGES = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "prometheus-pushgateway": "prometheus-pushgateway",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
}


def required_binary(name: str) -> str:
    """The path of ``name`` (promtool, prometheus, ...); under CI=true a missing one fails."""
    found = shutil.which(name)
    if found is None:
        why = f"{name} is missing (Debian package {PACKAGES.get(name, 'prometheus')})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; CI must have it (scripts/system-deps)")
        pytest.skip(why)
    return found
