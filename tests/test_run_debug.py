"""`journeyman run --once --debug` as a person debugging a journey runs it: each step as
it runs, with its request and response, the failing body up to the limit with secrets
masked, `--step` ending the journey after a step, a browser failure's page text and
evidence, and `--headed` refused in one line without a display."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from browser_support import require_chromium
from http_servers import serve_app
from once_process import run_once_process

SECRET = "tok-3141-planted"
FILLER = "filler " * 2000  # past any limit the tests set
JOURNEY = """\
journey: debug-me
business_process: testing
secrets: {token: "${env.PLANTED}"}
steps:
  - name: home
    http: {get: "${env.JOURNEY_BASE}/ok"}
  - name: break
    http:
      get: "${env.JOURNEY_BASE}/broken?key=${secret.token}"
      headers: {X-Token: "${secret.token}"}
    expect: {status: 200}
  - name: never reached
    http: {get: "${env.JOURNEY_BASE}/ok"}
"""
BROWSER = """\
journey: debug-page
business_process: testing
steps:
  - name: buy
    timeout: 3s
    browser:
      - goto: ${env.JOURNEY_BASE}/page
      - expect_text: Thank you
"""
PAGE = "<!doctype html><html><title>Basket</title><body><h1>Out of stock</h1></body></html>"


async def _broken(request: web.Request) -> web.Response:
    """A 500 whose body echoes the token it was sent, then a long filler, then a tail."""
    body = f"error for token {request.headers.get('X-Token')}\n{FILLER}\nTAIL-NOT-SHOWN"
    return web.Response(status=500, text=body)


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="welcome")


async def _page(_: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


@pytest.fixture
async def base() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/ok", _ok)
    app.router.add_get("/broken", _broken)
    app.router.add_get("/page", _page)
    async with serve_app(app) as url:
        yield url


async def journeyman(*argv: str, base: str, drop: tuple[str, ...] = ()) -> tuple[int, str, str]:
    """``python -m agent run --once ARGV``, stdout and stderr piped; ``drop`` leaves
    those variables out of its environment."""
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    return await run_once_process(
        *argv, environ={**environ, "JOURNEY_BASE": base, "PLANTED": SECRET}
    )


async def test_debug_shows_each_step_and_the_failing_body_masked_and_cut(
    base: str, tmp_path: Path
) -> None:
    """Each step's line, its request and response, the failing body up to the limit, the
    secret masked in the URL and the echoing body; the step after the failure never
    starts; exit 1."""
    (tmp_path / "j.yaml").write_text(JOURNEY)
    code, out, err = await journeyman(
        str(tmp_path / "j.yaml"), "--debug", "--debug-body-limit", "600", base=base
    )
    assert code == 1, err
    assert SECRET not in out + err
    assert "journey debug-me" in out
    assert "  step 'home' (http) ..." in out
    assert f"    GET {base}/ok -> 200, text/plain; charset=utf-8, 7 bytes" in out
    assert "  step 'home': ok in " in out
    assert f"    GET {base}/broken?key=*** -> 500, text/plain; charset=utf-8, " in out
    assert "  step 'break': FAILED (http_status) in " in out
    body_size = len(f"error for token {SECRET}\n{FILLER}\nTAIL-NOT-SHOWN")
    assert f"    response body (first 600 of {body_size} bytes):" in out
    assert "    | error for token ***" in out
    shown = [line[6:] for line in out.splitlines() if line.startswith("    | ")]
    assert len("\n".join(shown).encode()) == 600
    assert "TAIL-NOT-SHOWN" not in out
    assert "never reached" not in out.split("JOURNEY")[0]  # not started (the table names it not)
    assert re.search(r"^journey debug-me: failure in \d+\.\d{3}s$", out, re.M)
    assert out.rstrip().endswith("0 of 1 journeys passed")


async def test_step_ends_the_journey_after_the_named_step(base: str, tmp_path: Path) -> None:
    """--step home runs home only, says the journey stopped there and what did not run,
    and exits 0 since what ran passed."""
    (tmp_path / "j.yaml").write_text(JOURNEY)
    code, out, err = await journeyman(str(tmp_path / "j.yaml"), "--step", "home", base=base)
    assert code == 0, err
    assert "  step 'home': ok in " in out
    assert "step 'break'" not in out
    assert "  stopped there as asked (--step); not run: break, never reached" in out
    assert out.rstrip().endswith("1 of 1 journeys passed")


async def test_step_that_no_journey_has_is_one_line(base: str, tmp_path: Path) -> None:
    """An unknown --step is refused before anything runs, naming the journey's steps."""
    (tmp_path / "j.yaml").write_text(JOURNEY)
    code, out, err = await journeyman(str(tmp_path / "j.yaml"), "--step", "pay", base=base)
    assert code == 2
    *warnings, said = err.splitlines()  # the file's warning: the secret in a URL
    assert said == (
        "journeyman: --step 'pay': journey 'debug-me' has no such step (its steps: 'home', "
        "'break', 'never reached')"
    )
    assert all(": warning: " in line for line in warnings)
    assert "step 'home'" not in out


async def test_headed_without_a_display_is_one_line(base: str, tmp_path: Path) -> None:
    """--headed with no $DISPLAY: one line saying why, exit 2, no traceback, nothing run."""
    (tmp_path / "j.yaml").write_text(BROWSER)
    code, out, err = await journeyman(
        str(tmp_path / "j.yaml"), "--headed", base=base, drop=("DISPLAY", "WAYLAND_DISPLAY")
    )
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith("journeyman: --headed needs a display")
    assert out == ""


async def test_debug_of_a_browser_step_shows_the_page_text_and_the_evidence(
    base: str, tmp_path: Path
) -> None:
    """A browser step that fails under --debug (slowed down by --slow-mo) shows what the
    page said and lists the evidence files it kept, which exist."""
    require_chromium()
    (tmp_path / "j.yaml").write_text(BROWSER)
    evidence = tmp_path / "evidence"
    code, out, err = await journeyman(
        str(tmp_path / "j.yaml"), "--debug", "--slow-mo", "50",
        "--artifacts-dir", str(evidence), base=base,
    )  # fmt: skip
    assert code == 1, err
    assert "  step 'buy': FAILED (assertion) in " in out
    assert "    page text: a page titled 'Basket' showing 'Out of stock'" in out
    kept = [line.split("evidence: ", 1)[1] for line in out.splitlines() if "  evidence: " in line]
    assert any(path.endswith("buy.screenshot.png") for path in kept)
    assert all(Path(path).is_relative_to(evidence) for path in kept)
    written = {str(path) for path in await asyncio.to_thread(lambda: list(evidence.rglob("*.*")))}
    assert set(kept) <= written
    assert f"evidence of these runs: {evidence}" in out
