"""Evidence has a budget of its own after the step's deadline: a page that spins its
script or never finishes loading, under a 2 s journey, still leaves a screenshot (and
its trace, HTML and console log), readable by the agent's user only."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from browser_support import require_chromium
from http_servers import serve_app

from agent.app import Settings, run_environment
from agent.language.model import Journey
from agent.run.results import FailureReason, Outcome
from agent.run.runner import EVIDENCE_BUDGET, run_journey

pytestmark = pytest.mark.browser


def _html(body: str) -> web.Response:
    return web.Response(text=f"<title>Stuck</title>{body}", content_type="text/html")


async def _spins(request: web.Request) -> web.Response:
    """A page whose script never yields while it is parsed: no load, no answer."""
    return _html("<p id=p>spinning</p><script>while (true) {}</script>")


async def _spins_later(request: web.Request) -> web.Response:
    """A page that loads, then spins: the next action waits on a page that cannot answer."""
    return _html("<p id=p>loaded</p><script>setTimeout(() => { while (true) {} }, 100)</script>")


async def _never_loads(request: web.Request) -> web.Response:
    """A page that shows, with an image that never arrives: its load event never fires."""
    return _html('<p id=p>almost there</p><img src="/image-that-hangs">')


async def _hangs(request: web.Request) -> web.Response:
    """Never answers (a page, or the image of one)."""
    await asyncio.sleep(3600)
    return _html("")


ROUTES = {
    "/spins": _spins,
    "/spins-later": _spins_later,
    "/never-loads": _never_loads,
    "/image-that-hangs": _hangs,
    "/hangs": _hangs,
}


@pytest.fixture
async def pages() -> AsyncIterator[str]:
    """The stuck pages, on loopback."""
    app = web.Application()
    for path, handler in ROUTES.items():
        app.router.add_get(path, handler)
    async with serve_app(app) as base:
        yield base


def _journey(actions: list[dict[str, str]]) -> Journey:
    return Journey.model_validate(
        {
            "journey": "stuck-page",
            "business_process": "testing",
            "schedule": {"every": "1m", "timeout": "2s"},
            "variables": {"base": "${env.BASE}"},
            "steps": [{"name": "open", "browser": actions}],
        }
    )


CASES = {
    "script-spins-while-parsed": [{"goto": "${base}/spins"}],
    "script-spins-after-load": [{"goto": "${base}/spins-later"}, {"click": "#never"}],
    "never-finishes-loading": [{"goto": "${base}/never-loads"}],
    "never-answers": [{"goto": "${base}/hangs"}],
}


@pytest.mark.parametrize("case", CASES)
async def test_a_stuck_page_under_a_short_journey_leaves_a_screenshot(
    case: str, pages: str, tmp_path: Path
) -> None:
    """A 2 s journey on a page that spins or never loads fails as timeout, with its own
    message, and its evidence written after the deadline on its own budget: a screenshot
    (a PNG), the page HTML, the trace and the console log, each recorded in the result,
    in folders and files of the agent's user only (before: evidence shared the step's
    deadline, and such a page left none)."""
    require_chromium()
    artifacts = tmp_path / "evidence"
    settings = Settings(paths=(), max_browsers=1, artifacts_dir=artifacts)
    async with run_environment(settings, {"BASE": pages}) as env:
        assert env.browser is not None
        async with env.browser.context():  # launched now, not inside the 2 s under test
            pass
        result = await run_journey(_journey(CASES[case]), env)
    assert result.reason is FailureReason.TIMEOUT, result.message
    if case == "script-spins-after-load":  # Playwright gave up on a page that froze
        assert "the page stopped answering" in result.message, result.message
    written = {Path(path).name: Path(path) for path in result.steps[0].artifacts}
    assert "open.screenshot.png" in written, (result.message, written)
    assert written["open.screenshot.png"].read_bytes().startswith(b"\x89PNG")
    assert {"open.html", "open.console.log"} <= set(written), written
    if case in ("script-spins-after-load", "never-finishes-loading"):  # the page it showed
        assert 'id="p"' in written["open.html"].read_text()
    for path in written.values():
        assert path.is_file(), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        folder = path.parent
        while folder != tmp_path:
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
            folder = folder.parent
    assert EVIDENCE_BUDGET <= 5  # small: the agent's time, spent only on failures


async def test_time_spent_on_evidence_is_not_taken_from_the_next_step(
    pages: str, tmp_path: Path
) -> None:
    """A step that fails on its own timeout, may continue, and keeps its evidence: the
    next step still runs, on the target's time left in the journey (the evidence moved
    the journey's deadline and the agent's allowance by as much), and the run is a
    failure of the target, never not_started."""
    require_chromium()
    journey = Journey.model_validate(
        {
            "journey": "stuck-then-more",
            "business_process": "testing",
            "schedule": {"every": "1m", "timeout": "3s"},
            "variables": {"base": "${env.BASE}"},
            "steps": [
                {"name": "stuck", "timeout": "1s", "continue_on_failure": True,
                 "browser": [{"goto": "${base}/hangs"}]},
                {"name": "next", "browser": [{"goto": "${base}/never-loads"}]},
            ],
        }
    )  # fmt: skip
    settings = Settings(paths=(), max_browsers=1, artifacts_dir=tmp_path)
    async with run_environment(settings, {"BASE": pages}) as env:
        assert env.browser is not None
        async with env.browser.context():  # launched now, not inside the 3 s under test
            pass
        result = await run_journey(journey, env)
    assert result.outcome is Outcome.FAILURE, result.message
    stuck, following = result.steps
    assert any(path.endswith("stuck.screenshot.png") for path in stuck.artifacts), stuck
    assert following.reason is FailureReason.TIMEOUT, following
    assert following.message.startswith("goto "), following.message  # it ran, and timed out
