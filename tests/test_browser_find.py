"""Finding the browser: configured path, JOURNEYMAN_BROWSER, Playwright's download, then
the system's Chromium, with a message naming what was tried."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.run.browser_pool import BrowserUnavailable, find_browser


def _executable(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_find_browser_order(tmp_path: Path) -> None:
    """Configured path first, then JOURNEYMAN_BROWSER, Playwright's download, then PATH."""
    configured = _executable(tmp_path, "configured")
    env_path = _executable(tmp_path, "from-env")
    download = _executable(tmp_path, "download")
    system = _executable(tmp_path, "chromium")
    environ = {"JOURNEYMAN_BROWSER": str(env_path), "PATH": str(tmp_path)}
    assert find_browser(str(configured), environ, str(download)) == str(configured)
    assert find_browser(None, environ, str(download)) == str(env_path)
    assert find_browser(None, {"PATH": str(tmp_path)}, str(download)) == str(download)
    assert find_browser(None, {"PATH": str(tmp_path)}, None) == str(system)


def test_find_browser_says_what_it_tried(tmp_path: Path) -> None:
    """With nothing installed the error names every place looked at and how to fix it."""
    with pytest.raises(BrowserUnavailable) as error:
        find_browser(None, {"PATH": str(tmp_path)}, str(tmp_path / "ms-playwright/chrome"))
    message = str(error.value)
    assert "ms-playwright/chrome" in message
    assert "chromium" in message
    assert "JOURNEYMAN_BROWSER" in message
