"""Each browser failure reason provoked for real, with a message that says what was
expected, what the page showed and where; evidence written and secrets kept out of it."""

from __future__ import annotations

import socket
import zipfile
from pathlib import Path

import pytest
from browser_support import PASSWORD, Site, environment, journey, pool, site

from agent.run.artifacts import ArtifactStore, TraceMode
from agent.run.browser_pool import BrowserPool
from agent.run.context import RunEnvironment
from agent.run.results import FailureReason
from agent.run.runner import run_journey

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["pool", "site"]  # fixtures, imported for pytest


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


CASES = {
    "navigation": (
        f'- {{name: s, browser: [{{goto: "http://127.0.0.1:{_closed_port()}/"}}]}}',
        FailureReason.NAVIGATION,
        "net::ERR_CONNECTION_REFUSED",
    ),
    "element_not_found": (
        '- {name: s, browser: [{goto: "${base}/"}, {click: "#nope"}]}',
        FailureReason.ELEMENT_NOT_FOUND,
        "click '#nope': no element matched within",
    ),
    "assertion_text": (
        '- {name: s, browser: [{goto: "${base}/"}, {expect_text: {selector: "#welcome", '
        "text: Goodbye}}]}",
        FailureReason.ASSERTION,
        "expected text 'Goodbye' in '#welcome', the page showed 'Welcome' (page: http://",
    ),
    "assertion_visible": (
        '- {name: s, browser: [{goto: "${base}/form"}, {expect_visible: "#ghost"}]}',
        FailureReason.ASSERTION,
        "expected '#ghost' to be visible, 1 matched, none visible",
    ),
    "assertion_url": (
        '- {name: s, browser: [{goto: "${base}/"}, {expect_url: /checkout}]}',
        FailureReason.ASSERTION,
        "expected the URL to contain '/checkout', it was 'http://127.0.0.1",
    ),
    "assertion_count": (
        '- {name: s, browser: [{goto: "${base}/form"}, {expect_count: {selector: .item, '
        "count: 3}}]}",
        FailureReason.ASSERTION,
        "expected 3 element(s) matching '.item', found 2",
    ),
    "extraction": (
        '- {name: s, browser: [{goto: "${base}/form"}, {extract: {x: {selector: "#doc", '
        "attribute: data-missing}}}]}",
        FailureReason.EXTRACTION,
        "extract x: '#doc' has no attribute 'data-missing'",
    ),
    "timeout": (
        '- {name: s, browser: [{goto: "${base}/hang"}]}',
        FailureReason.TIMEOUT,
        "goto '${base}/hang': not done within",
    ),
    "http_error_page": (
        '- {name: s, browser: [{goto: "${base}/error"}]}',
        FailureReason.HTTP_ERROR,
        "got HTTP 500",
    ),
    "http_error_resource": (
        '- {name: s, fail_on_http_error: true, browser: [{goto: "${base}/missing-asset"}, '
        '{goto: {url: "${base}/missing-asset", wait_until: networkidle}}]}',
        FailureReason.HTTP_ERROR,
        "/nope.png: HTTP 404",
    ),
    "console_error": (
        '- {name: s, fail_on_console_error: true, browser: [{goto: "${base}/console-error"}]}',
        FailureReason.CONSOLE_ERROR,
        "boom happened",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_failure_reasons(case: str, pool: BrowserPool, site: Site) -> None:
    """The provoked failure gets its reason and a message naming expected and actual."""
    steps, reason, message = CASES[case]
    async with pool.context():  # (re)launched now, not inside the 2 s under test
        pass
    result = await run_journey(journey(steps, step_timeout="2s"), environment(site, pool))
    assert result.reason is reason, result.message
    assert message.replace("${base}", site.url) in result.message


async def test_counts_console_errors_and_failed_requests_without_failing(
    pool: BrowserPool, site: Site
) -> None:
    """Without fail_on_*, console errors and failed requests are counted and the step passes."""
    counted = journey(
        """
        - name: s
          browser:
            - goto: ${base}/console-error
            - goto: {url: "${base}/missing-asset", wait_until: networkidle}
        """
    )
    result = await run_journey(counted, environment(site, pool))
    assert result.ok, result.message
    assert result.steps[0].value("console_errors") == 1
    assert result.steps[0].value("failed_requests") == 1


async def test_no_browser_is_a_failure_never_a_pass(site: Site) -> None:
    """An agent without a browser, or with a browser path that is not one, fails the run
    with reason browser_unavailable."""
    step = '- {name: s, browser: [{goto: "${base}/"}]}'
    result = await run_journey(journey(step), environment(site, None))
    assert result.reason is FailureReason.BROWSER_UNAVAILABLE
    async with BrowserPool(executable="/nonexistent/chromium") as broken:
        result = await run_journey(journey(step), environment(site, broken))
    assert result.reason is FailureReason.BROWSER_UNAVAILABLE
    assert "/nonexistent/chromium" in result.message


async def test_planted_secret_never_leaves_the_run(
    pool: BrowserPool, site: Site, tmp_path: Path
) -> None:
    """A password typed into a field is absent from messages, HTML, console log and every
    file of the full Playwright trace (DOM snapshots), while the evidence exists and the
    login happened."""
    store = ArtifactStore(tmp_path, trace=TraceMode.FULL)
    leaky = journey(
        """
        - name: log in
          artifacts: always
          browser:
            - goto: ${base}/login
            - fill: {"#user": alice, "#password": "${secret.password}"}
            - click: "#go"
            - expect_text: {selector: "#hello", text: Hello alice}
            - expect_text: "${secret.password}"
        """
    )
    env = RunEnvironment(
        environ={"BASE": site.url, "PASSWORD": PASSWORD}, browser=pool, artifacts=store
    )
    result = await run_journey(leaky, env)
    assert result.reason is FailureReason.ASSERTION
    assert PASSWORD not in result.message
    assert "***" in result.message
    files = {Path(p).name.split(".", 1)[1] for p in result.artifacts}
    assert files == {"screenshot.png", "html", "console.log", "trace.zip"}
    for path in map(Path, result.artifacts):
        assert PASSWORD.encode() not in path.read_bytes(), path
    trace = next(Path(p) for p in result.artifacts if p.endswith("trace.zip"))
    with zipfile.ZipFile(trace) as archive:
        names = archive.namelist()
        assert any(name.endswith(".trace") for name in names)
        for name in names:
            assert PASSWORD.encode() not in archive.read(name), name
            assert b"s3cr3t" not in archive.read(name), name
    html = next(Path(p) for p in result.artifacts if p.endswith(".html"))
    assert "Hello alice" in html.read_text()


@pytest.mark.parametrize("mode", list(TraceMode))
async def test_the_trace_records_what_its_mode_says(
    pool: BrowserPool, site: Site, tmp_path: Path, mode: TraceMode
) -> None:
    """A light trace (the default) keeps the failed step's actions and their error but no
    DOM snapshot nor the page's resources; a full one keeps those too; off keeps no trace;
    the screenshot, HTML and console log are kept all the same."""
    failing = journey(
        '- {name: s, timeout: 1s, browser: [{goto: "${base}/"}, {expect_text: '
        '{selector: "#welcome", text: Goodbye}}]}'
    )
    env = environment(site, pool, ArtifactStore(tmp_path, trace=mode))
    result = await run_journey(failing, env)
    assert result.reason is FailureReason.ASSERTION, result.message
    files = {Path(p).name.split(".", 1)[1]: Path(p) for p in result.artifacts}
    assert {"screenshot.png", "html", "console.log"} <= files.keys()
    if mode is TraceMode.OFF:
        assert "trace.zip" not in files
        return
    with zipfile.ZipFile(files["trace.zip"]) as archive:
        events = b"".join(archive.read(n) for n in archive.namelist() if n.endswith(".trace"))
        resources = [name for name in archive.namelist() if name.startswith("resources/")]
    assert b"Goodbye" in events  # the action, with what it expected
    full = mode is TraceMode.FULL
    assert (b'"frame-snapshot"' in events, bool(resources)) == (full, full)
