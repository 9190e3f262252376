"""No secret in any byte the agent writes, in any encoding.

One distinctive secret (space, ``&``, ``+``, ``/``, ``"``, ``<``, ``é``) is planted in
every place a journey can use one, the journeys run for real against a loopback server
that echoes what it receives, and every byte the agent wrote (stdout, the logs at debug,
JUnit, /metrics, the status page, every artifact with zips and gzip streams unpacked) is
scanned for every form of it. The Masker's forms are tested one by one below that.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import os
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml
from agent_process import running_agent, value, wait_for
from aiohttp import web
from browser_support import require_chromium
from http_servers import serve_app
from secret_servers import (
    HEADER_SECRET,
    RECEIVED,
    SECRET,
    USER,
    artifact_files,
    echo_app,
    forms,
    leaks,
    masked_pixels,
)

from agent.language.model import Journey
from agent.language.templating import MASK, Masker
from agent.run.artifacts import ArtifactStore, TraceMode
from agent.run.browser_pool import BrowserPool
from agent.run.context import RunEnvironment
from agent.run.results import FailureReason
from agent.run.runner import run_journey

SECRETS = {"secret": SECRET, "header secret": HEADER_SECRET}

JOURNEY = """\
journey: {id}
business_process: secrets
schedule: {{every: 8s, timeout: 7s}}
variables: {{base: "${{env.JOURNEY_ECHO}}"}}
secrets: {{pw: "${{env.PLANTED}}", header: "${{env.PLANTED_ASCII}}"}}
steps:
{steps}"""

NEVER = "    expect: {body_contains: never-there}\n"

# One journey per place a secret can go; each fails, so its message quotes the echo.
PLACES = {
    "http-header": (
        '  - name: header\n    http: {get: "${base}/echo/json/header", '
        'headers: {X-Secret: "${secret.header}"}}\n' + NEVER
    ),
    "http-header-utf8": (
        '  - name: header\n    http: {get: "${base}/echo/json/header", '
        'headers: {X-Secret: "${secret.pw}"}}\n' + NEVER
    ),
    "http-form": (
        '  - name: form\n    http: {post: "${base}/echo/html/form", '
        'form: {user: alice, password: "${secret.pw}"}}\n' + NEVER
    ),
    "http-query": (
        '  - name: query\n    http: {get: "${base}/echo/json/query", '
        'query: {q: "${secret.pw}"}}\n' + NEVER
    ),
    "http-path": '  - name: path\n    http: {get: "${base}/echo/nested/${secret.pw}"}\n' + NEVER,
    "http-basic": (
        '  - name: basic\n    http: {get: "${base}/echo/json/basic", '
        'auth: {basic: {user: alice, password: "${secret.pw}"}}}\n' + NEVER
    ),
    "http-bearer": (
        '  - name: bearer\n    http: {get: "${base}/echo/html/bearer", '
        'auth: {bearer: "${secret.header}"}}\n' + NEVER
    ),
    "http-json": (
        '  - name: json\n    http: {post: "${base}/echo/nested/json", '
        'json: {user: alice, password: "${secret.pw}"}}\n' + NEVER
    ),
    "browser-fill": (
        "  - name: type\n    artifacts: always\n    browser:\n"
        '      - goto: "${base}/form"\n'
        '      - fill: {"#user": "${secret.pw}", "#password": "${secret.pw}"}\n'
        "  - name: submit\n    artifacts: always\n    timeout: 2.5s\n    browser:\n"
        '      - click: "#go"\n      - expect_text: never-there\n'
    ),
    "browser-goto": (
        "  - name: goto\n    artifacts: always\n    timeout: 2.5s\n    browser:\n"
        '      - goto: "${base}/echo/html/goto?token=${secret.pw}"\n'
        "      - expect_text: never-there\n"
    ),
    "browser-headers": (
        "  - name: headers\n    artifacts: always\n    timeout: 2.5s\n"
        '    headers: {X-Secret: "${secret.header}"}\n    browser:\n'
        '      - goto: "${base}/echo/html/headers"\n      - expect_text: never-there\n'
    ),
}


BROWSER = tuple(journey for journey in PLACES if journey.startswith("browser-"))


@pytest.fixture
async def echo() -> AsyncIterator[tuple[str, web.Application]]:
    app = echo_app()
    async with serve_app(app) as base:
        yield base, app


def _journeys(folder: Path) -> Path:
    folder.mkdir()
    for journey, steps in PLACES.items():
        (folder / f"{journey}.yaml").write_text(JOURNEY.format(id=journey, steps=steps))
    return folder


def _environ(base: str) -> dict[str, str]:
    return {"JOURNEY_ECHO": base, "PLANTED": SECRET, "PLANTED_ASCII": HEADER_SECRET}


def _assert_planted(app: web.Application) -> None:
    """The echo server received each secret, in every place it was planted."""
    seen = [json.dumps(item, ensure_ascii=False) for item in app[RECEIVED]]
    tags = {
        "/echo/json/header": HEADER_SECRET, "/echo/html/form": SECRET,
        "/echo/json/query": SECRET, "/echo/nested/Zk4Qv8": SECRET,
        "/echo/json/basic": f"{USER}:{SECRET}", "/echo/html/bearer": HEADER_SECRET,
        "/echo/nested/json": SECRET, "/echo/html/goto": SECRET,
        "/echo/html/headers": HEADER_SECRET,
    }  # fmt: skip
    for tag, secret in tags.items():
        carried = [item for item in seen if tag in item]
        assert carried, f"nothing reached {tag}"
        assert any(json.dumps(secret, ensure_ascii=False)[1:-1] in item for item in carried), tag


def _assert_clean(
    outputs: dict[str, bytes], artifacts: Path, browser_journeys: Iterable[str] = BROWSER
) -> None:
    """No form of any secret in ``outputs`` nor in any file under ``artifacts``, where
    each of ``browser_journeys`` left a trace with no screencast frame."""
    found = [leak for name, data in outputs.items() for leak in leaks(name, data, SECRETS)]
    files = list(artifact_files(artifacts))
    for journey in browser_journeys:
        traced = [name for name, _ in files if name.startswith(journey) and name.endswith(".trace")]
        assert traced, f"{journey} left no trace"
    frames = [name for name, _ in files if "|screencast/" in name]
    assert not frames, "a run holding a secret recorded screencast frames"
    for name, data in files:
        found += leaks(name, data, SECRETS)
    assert not found, f"{len(found)} leaks:\n" + "\n".join(found)


async def test_run_once_writes_no_secret_in_any_form(
    echo: tuple[str, web.Application], tmp_path: Path
) -> None:
    """`run --once` with a secret in every place: stdout, the debug log, JUnit and every
    artifact (zips unpacked) hold none of its forms, while the echo came back masked."""
    require_chromium()
    base, app = echo
    journeys = _journeys(tmp_path / "journeys")
    junit, artifacts = tmp_path / "report.xml", tmp_path / "artifacts"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "--once", str(journeys), "--junit", str(junit),
        "--artifacts-dir", str(artifacts), "--browser-trace", "full", "--log-level", "debug",
        "--max-browsers", "3",
        env={**os.environ, **_environ(base)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 1, err.decode()[-3000:]
    _assert_planted(app)
    report = junit.read_bytes()
    outputs = {"stdout": out, "stderr": err, "junit": report}
    _assert_clean(outputs, artifacts)
    cases = {case.get("name"): case for case in ET.fromstring(report).iter("testcase")}
    assert set(cases) == set(PLACES)
    for journey, case in cases.items():
        failure = case.find("failure")
        assert failure is not None, journey
        if journey != "http-header-utf8":  # refused before sending: nothing to echo
            assert MASK in failure.get("message", ""), (journey, failure.get("message"))


async def test_serving_agent_writes_no_secret_in_any_form(
    echo: tuple[str, web.Application], tmp_path: Path
) -> None:
    """The agent serving /metrics and the status page, journeys run on schedule with a
    secret in every place: its log at debug, /metrics, the page and every artifact hold
    none of its forms."""
    require_chromium()
    base, app = echo
    journeys = _journeys(tmp_path / "journeys")
    artifacts = tmp_path / "artifacts"
    args = ("--artifacts-dir", str(artifacts), "--browser-trace", "full",
            "--log-level", "debug", "--max-browsers", "3")  # fmt: skip
    async with running_agent([journeys], *args, environ=_environ(base)) as agent:

        def all_ran(samples: dict) -> bool:  # type: ignore[type-arg]
            return all(
                value(samples, "journey_runs_total", journey=journey, outcome="failure") >= 1
                for journey in PLACES
            )

        await wait_for(agent, all_ran, within=40)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{agent.url}/metrics")).content
            page = (await client.get(f"{agent.url}/")).content
    _assert_planted(app)
    outputs = {"log": agent.stderr.encode(), "metrics": metrics, "status page": page}
    _assert_clean(outputs, artifacts)


SHOWN = """
- name: show
  artifacts: always
  timeout: 3s
  emulation: {viewport: {width: 480, height: 240}}
  browser:
    - goto: "${base}/form"
    - fill: {"#user": "VALUE"}
    - goto: "${base}/echo/html/shown?token=VALUE"
    - expect_text: never-there
"""


@pytest.mark.parametrize("secret", [True, False], ids=["secret", "plain"])
async def test_browser_evidence_pictures_no_secret(
    echo: tuple[str, web.Application], tmp_path: Path, secret: bool
) -> None:
    """A run holding a secret is traced without screencast frames, and its screenshot
    masks what shows the secret (the echoed query and field); a run without secrets
    keeps its frames and an unmasked screenshot."""
    require_chromium()
    value = "${secret.pw}" if secret else "${pw}"
    data = {
        "journey": "shown",
        "business_process": "secrets",
        "schedule": {"every": "1m", "timeout": "10s"},
        "variables": {"base": "${env.JOURNEY_ECHO}"} | ({} if secret else {"pw": "${env.PLANTED}"}),
        "secrets": {"pw": "${env.PLANTED}"} if secret else {},
        "steps": yaml.safe_load(SHOWN.replace("VALUE", value)),
    }
    store = ArtifactStore(tmp_path, trace=TraceMode.FULL)
    async with BrowserPool() as pool:
        env = RunEnvironment(environ=_environ(echo[0]), browser=pool, artifacts=store)
        result = await run_journey(Journey.model_validate(data), env)
    assert result.reason is FailureReason.ASSERTION, result.message
    files = {Path(p).name.split(".", 1)[1]: Path(p) for p in result.artifacts}
    with zipfile.ZipFile(files["trace.zip"]) as trace:
        frames = [name for name in trace.namelist() if name.startswith("screencast/")]
    masked = masked_pixels(files["screenshot.png"].read_bytes())
    if secret:
        assert (frames, masked > 0) == ([], True)
    else:
        assert (bool(frames), masked) == (True, 0)


LEARNT = """
- name: learn
  browser:
    - goto: "${base}/echo/html/learn?token=${env.PLANTED_ASCII}"
    - extract: {token: {selector: "#echoed", attribute: value, regex: "token=(.+)", secret: true}}
- name: use
  artifacts: always
  timeout: 3s
  emulation: {viewport: {width: 480, height: 240}}
  browser:
    - goto: "${base}/echo/html/use?t=${token}"
    - expect_text: never-there
"""


async def test_a_secret_learnt_during_the_run_stops_the_screencast(
    echo: tuple[str, web.Application], tmp_path: Path
) -> None:
    """A run with no declared secret keeps its screencast until a step extracts a secret:
    the next step is traced without frames, and its evidence masks the value."""
    require_chromium()
    data = {
        "journey": "learnt",
        "business_process": "secrets",
        "schedule": {"every": "1m", "timeout": "10s"},
        "variables": {"base": "${env.JOURNEY_ECHO}"},
        "steps": yaml.safe_load(LEARNT),
    }
    async with BrowserPool() as pool:
        env = RunEnvironment(
            environ=_environ(echo[0]),
            browser=pool,
            artifacts=ArtifactStore(tmp_path, trace=TraceMode.FULL),
        )
        result = await run_journey(Journey.model_validate(data), env)
    assert (result.failed_step, result.reason) == ("use", FailureReason.ASSERTION), result.message
    files = {Path(p).name.split(".", 1)[1]: Path(p) for p in result.artifacts}
    with zipfile.ZipFile(files["trace.zip"]) as trace:
        assert not [name for name in trace.namelist() if name.startswith("screencast/")]
    assert masked_pixels(files["screenshot.png"].read_bytes()) > 0
    _assert_clean({"message": result.message.encode()}, tmp_path, browser_journeys=())


# The Masker, form by form.


def test_masker_hides_every_form_the_scan_knows() -> None:
    """Each scanned form of a secret (URL, query, lower-case hex, JSON once and twice,
    HTML, entities, repr, base64) is masked, alone and inside text."""
    masker = Masker([SECRET])
    masker.add_form(base64.b64encode(f"{USER}:{SECRET}".encode()).decode())
    for name, form in forms(SECRET).items():
        if name == "fragment":
            continue
        text = f"before {form.decode()} after"
        assert masker(text) == f"before {MASK} after", name


@pytest.mark.parametrize(
    "form",
    [
        # as httpx and Chromium keep a URL: some characters left as they are
        "Zk4Qv8%20p&+/%22%3C%C3%A9%3E'w",
        "Zk4Qv8+p%26%2B%2F%22%3C%C3%A9%3E%27w",
        "Zk4Qv8%20p%26%2b%2f%22%3c%c3%a9%3e%27w",
        # URL-encoded twice, HTML-escaped twice, JSON inside HTML, repr of UTF-8 bytes
        quote(quote(SECRET, safe=""), safe=""),
        html.escape(html.escape(SECRET)),
        html.escape(json.dumps(SECRET)[1:-1]),
        repr(SECRET.encode())[2:-1],
        # JavaScript's escapes of < and non-ASCII; hexadecimal entities
        "Zk4Qv8 p&+\\/\\\"\\u003c\\u00E9>'w",
        "".join(f"&#x{ord(c):x};" for c in SECRET),
    ],
)
def test_masker_hides_mixed_encodings(form: str) -> None:
    """Encodings that differ character by character from quote/quote_plus/json are masked."""
    assert Masker([SECRET])(f"<{form}>") == f"<{MASK}>"


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("pass  word\tx1", "pass word x1"),  # whitespace collapsed by a message snippet
        ("k\U0001f600y-secret", json.dumps("k\U0001f600y-secret")[1:-1]),  # \ud83d\ude00
        ("k\U0001f600y-secret", repr("k\U0001f600y-secret".encode())[2:-1]),
    ],
)
def test_masker_hides_collapsed_whitespace_and_astral_escapes(secret: str, shown: str) -> None:
    """Whitespace runs match any whitespace run; JSON surrogate pairs and UTF-8 byte
    escapes of a character beyond the BMP are masked."""
    assert Masker([secret])(f"got '{shown}'") == f"got '{MASK}'"


def test_masker_hides_base64_of_text_that_contains_the_secret() -> None:
    """In the base64 of a text holding the secret, at any alignment, the characters that
    encode the secret are masked, but for at most 4 at each end."""
    masker = Masker([SECRET])
    for prefix in ("", "a", "ab", "user:", "token="):
        encoded = base64.b64encode(f"{prefix}{SECRET} and more".encode()).decode()
        masked = masker(encoded)
        removed = len(encoded) - len(masked) + len(MASK)
        assert removed >= len(base64.b64encode(SECRET.encode())) - 8, (prefix, masked)


def test_masker_keeps_unrelated_text_and_is_fast() -> None:
    """Text without the secret comes back unchanged, and a 2 KB message costs little."""
    masker = Masker([SECRET, HEADER_SECRET, "tok-4f1d2c"])
    text = ('{"status": "ok", "path": "/api/v1/items?x=1&y=2", "note": "caf\\u00e9"} ' * 30)[:2000]
    assert masker(text) == text
    started = time.perf_counter()
    for _ in range(200):
        masker(text)
    assert (time.perf_counter() - started) / 200 < 0.002
