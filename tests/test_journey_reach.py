"""What a journey may reach, each rule provoked for real: the agent's environment
(--allow-env), local files (goto file:, uploads, CA bundles), hosts (the egress policy for
HTTP, TCP and browser steps), the time its regular expressions may take on a hostile
body, and secrets cut in half by a quoted excerpt.

Servers listen on 127.0.0.1 only. Names that stand for a metadata service
(``metadata.test``) resolve to 169.254.169.254 through the policy's resolver, a mapping
this file controls; :func:`no_link_local` fails any attempt to connect to a link-local
address, so a refusal is proven to happen before a connection, and a regression would
not send traffic off this machine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import ipaddress
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from browser_support import pool
from http_servers import TlsServerFiles, serve_app, serve_raw

from agent.app import Settings, run_once
from agent.cli import main
from agent.language.model import Journey
from agent.run.browser_pool import BrowserPool
from agent.run.context import RunEnvironment
from agent.run.egress import EgressPolicy, EgressRefused
from agent.run.results import FailureReason, RunResult
from agent.run.runner import run_journey

module_loop = pytest.mark.asyncio(loop_scope="module")  # the module's Chromium lives there

__all__ = ["pool"]  # the module's warm Chromium, from browser_support

SECRET = "s3cret-Straddles-the-Cut-9f2b"
NAMES = {
    "metadata.test": ["169.254.169.254"],  # what cloud metadata names resolve to
    "rebind.test": ["127.0.0.1", "169.254.169.254"],
    "shop.test": ["127.0.0.1"],
    "api.shop.test": ["127.0.0.1"],
    "other.test": ["127.0.0.1"],
}


async def resolve(host: str, port: int) -> Sequence[str]:
    """The test names above; any other name as the system resolves it."""
    if host in NAMES:
        return NAMES[host]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def policy(allow: Sequence[str] = (), deny: Sequence[str] = ()) -> EgressPolicy:
    return EgressPolicy.parse(allow, deny, resolver=resolve)


@pytest.fixture
def no_link_local(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every connection the event loop opens is checked first: one to a link-local address
    (or a test name) is recorded and refused, never attempted."""
    original = asyncio.base_events.BaseEventLoop.create_connection
    attempts: list[str] = []

    async def guarded(self: Any, factory: Any, host: Any = None, *args: Any, **kw: Any) -> Any:
        text = str(host or "")
        try:
            bad = ipaddress.ip_address(text.split("%")[0]).is_link_local
        except ValueError:
            bad = text.endswith(".test")
        if bad:
            attempts.append(text)
            raise AssertionError(f"a connection to {text} was attempted")
        return await original(self, factory, host, *args, **kw)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", guarded)
    yield attempts
    assert attempts == []


def journey(steps: list[dict[str, Any]], **fields: Any) -> Journey:
    data = {
        "journey": "reach",
        "business_process": "testing",
        "schedule": {"every": "1m", "timeout": "15s", "step_timeout": "10s"},
        "steps": steps,
    }
    return Journey.model_validate(data | fields)


async def run(
    steps: list[dict[str, Any]], environ: dict[str, str] | None = None, **env: Any
) -> RunResult:
    """Run the steps as the agent does: the environment as this journey may see it."""
    planned = journey(steps, secrets={"pw": "${env.PLANTED}"})
    base = RunEnvironment(environ={"PLANTED": SECRET, **(environ or {})}, **env)
    return await run_journey(planned, base.for_journey(planned))


def failed(result: RunResult, reason: FailureReason) -> str:
    assert (result.reason, result.ok) == (reason, False), result.message
    return result.message


@asynccontextmanager
async def site(pages: dict[str, str]) -> AsyncIterator[tuple[str, list[str]]]:
    """HTML pages on loopback: (base URL, the paths requested)."""
    seen: list[str] = []

    async def page(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        if request.path == "/to-metadata":
            raise web.HTTPFound("http://metadata.test/latest/meta-data/")
        if request.method == "POST":
            sent = await request.post()
            return web.Response(text=f"got {len(sent)} file(s)", content_type="text/html")
        body = pages.get(request.path)
        if body is None:
            return web.Response(status=404, text="no such page")
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    async with serve_app(app) as base:
        yield base, seen


# ---- the agent's environment ------------------------------------------------------------


@module_loop
async def test_run_refuses_an_env_variable_it_may_not_read_without_its_value() -> None:
    """At run time ${env.X} outside --allow-env and the journey's secrets fails the run as
    config, saying how to allow it and never showing the value; JOURNEY_* and what the
    journey's secrets read (masked) are allowed, through the agent's own run_once."""
    environ = {"JOURNEY_BASE": "x", "AGENT_TOKEN": "agent-credential-77", "PLANTED": SECRET}
    reads_token = journey(
        [{"name": "a", "tcp": {"connect": "127.0.0.1:1"}}],
        variables={"base": "${env.JOURNEY_BASE}", "token": "${env.AGENT_TOKEN}"},
    )
    settings = Settings(paths=())
    (refused,) = await run_once(settings, [reads_token], io.StringIO(), environ=environ)
    assert failed(refused, FailureReason.CONFIG) == (
        "environment variable AGENT_TOKEN is not allowed: journeys may read JOURNEY_* and the "
        "variables their secrets: read (allow it with --allow-env AGENT_TOKEN, or read it "
        "under secrets:, which masks it)"
    )
    async with serve_app(web.Application()) as base:
        reads = journey(
            [{"name": "a", "http": {"get": "${base}/${env.PLANTED}"}, "expect": {"status": 404}}],
            variables={"base": "${env.JOURNEY_BASE}"},
            secrets={"pw": "${env.PLANTED}"},
        )
        (passed,) = await run_once(
            settings, [reads], io.StringIO(), environ=environ | {"JOURNEY_BASE": base}
        )
        allowed = dataclasses.replace(settings, allow_env=("JOURNEY_*", "AGENT_*"))
        (also,) = await run_once(allowed, [reads_token], io.StringIO(), environ=environ)
    assert passed.ok, passed.message
    assert also.reason is FailureReason.CONNECT  # past the templates, to the closed port


def test_validate_takes_allow_env_from_the_flag_or_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`validate` refuses ${env.SHOP_URL} by default, with file:line:col and how to allow
    it; --allow-env or JOURNEYMAN_ALLOW_ENV (comma-separated) allows it."""
    (tmp_path / "a.yaml").write_text(
        'journey: a\nbusiness_process: b\nsteps:\n  - {name: s, http: {get: "${env.SHOP_URL}/"}}\n'
    )
    monkeypatch.setenv("SHOP_URL", "http://127.0.0.1:1")
    monkeypatch.delenv("JOURNEYMAN_ALLOW_ENV", raising=False)
    assert main(["validate", str(tmp_path)]) == 2
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{tmp_path}/a.yaml:4:22: steps[0].http.get: environment variable SHOP_URL is not "
        "allowed: journeys may read JOURNEY_* and the variables their secrets: read (allow it "
        "with --allow-env SHOP_URL, or read it under secrets:, which masks it)"
    )
    assert main(["validate", "--allow-env", "SHOP_*", str(tmp_path)]) == 0
    monkeypatch.setenv("JOURNEYMAN_ALLOW_ENV", "JOURNEY_*,SHOP_URL")
    assert main(["validate", str(tmp_path)]) == 0
    capsys.readouterr()


# ---- local files ------------------------------------------------------------------------


@module_loop
async def test_goto_opens_web_pages_only(pool: BrowserPool) -> None:
    """goto file:, data:, javascript:, chrome: and view-source: URLs (from a template, so
    validate could not see them) fail as config naming the rule; about:blank is fine."""
    urls = {
        "file:///etc/passwd": "a local file",
        "data:text/html,<h1>hi</h1>": "a data: URL",
        "javascript:alert(1)": "a javascript: URL",
        "chrome://version": "a chrome: URL",
        "view-source:http://127.0.0.1/": "a view-source: URL",
    }
    for url, what in urls.items():
        result = await run(
            [{"name": "open", "browser": [{"goto": "${env.JOURNEY_URL}"}]}],
            {"JOURNEY_URL": url},
            browser=pool,
        )
        assert failed(result, FailureReason.CONFIG) == (
            f"navigation to {url} refused: journeys open http and https pages and about:blank "
            f"only, not {what}"
        )
    blank = await run([{"name": "open", "browser": [{"goto": "about:blank"}]}], browser=pool)
    assert blank.ok, blank.message


@module_loop
async def test_uploads_come_only_from_the_uploads_dir(pool: BrowserPool, tmp_path: Path) -> None:
    """Without --uploads-dir an upload is refused; with it, a file inside is sent (a
    relative path is relative to it) and one outside, by path or by symlink, is refused."""
    uploads, outside = tmp_path / "uploads", tmp_path / "private.txt"
    uploads.mkdir()
    (uploads / "invoice.txt").write_text("invoice")
    outside.write_text("not for journeys")
    (uploads / "link.txt").symlink_to(outside)
    form = (
        '<form method="post" action="/sent" enctype="multipart/form-data">'
        '<input type="file" id="file" name="file"><button id="send">Send</button></form>'
    )
    async with site({"/form": form}) as (base, _):

        async def upload(path: str, folder: Path | None) -> RunResult:
            actions = [
                {"goto": f"{base}/form"},
                {"upload": {"#file": path}},
                {"click": "#send"},
                {"expect_text": "got 1 file(s)"},
            ]
            steps = [{"name": "upload", "browser": actions}]
            return await run(steps, browser=pool, uploads_dir=folder)

        none = await upload(str(uploads / "invoice.txt"), None)
        sent = await upload("invoice.txt", uploads)
        passwd = await upload("/etc/passwd", uploads)
        linked = await upload("link.txt", uploads)
    assert failed(none, FailureReason.CONFIG) == (
        f"upload {str(uploads / 'invoice.txt')!r} refused: journeys may upload files only from "
        "--uploads-dir, which this agent was not given (start it with --uploads-dir DIR)"
    )
    assert sent.ok, sent.message
    assert failed(passwd, FailureReason.CONFIG) == (
        f"upload '/etc/passwd' refused: journeys may upload files only from --uploads-dir "
        f"{uploads}, and it resolves to /etc/passwd, outside"
    )
    assert failed(linked, FailureReason.CONFIG) == (
        f"upload 'link.txt' refused: journeys may upload files only from --uploads-dir "
        f"{uploads}, and it resolves to {outside}, outside"
    )


@module_loop
async def test_ca_bundles_come_only_from_the_ca_dir(tmp_path: Path) -> None:
    """An HTTP or TCP step's verify: path is refused without --ca-dir and outside it, as
    config naming the flag, before anything is read; true and false are unaffected."""
    files = TlsServerFiles(tmp_path)
    cases: dict[str, Callable[[bool | str], dict[str, Any]]] = {
        "http": lambda verify: {"http": {"get": "https://127.0.0.1:1/", "verify": verify}},
        "tcp": lambda verify: {"tcp": {"connect": "127.0.0.1:1", "tls": True, "verify": verify}},
    }
    for kind, step in cases.items():
        none = await run([{"name": kind, **step(str(files.ca_path))}])
        assert failed(none, FailureReason.CONFIG) == (
            f"verify {str(files.ca_path)!r} refused: journeys may read CA bundles only from "
            "--ca-dir, which this agent was not given (start it with --ca-dir DIR)"
        )
        elsewhere = tmp_path / "cas"
        elsewhere.mkdir(exist_ok=True)
        outside = await run([{"name": kind, **step("../ca.pem")}], ca_dir=elsewhere)
        assert failed(outside, FailureReason.CONFIG) == (
            f"verify '../ca.pem' refused: journeys may read CA bundles only from --ca-dir "
            f"{elsewhere}, and it resolves to {files.ca_path}, outside"
        )
        inside = await run([{"name": kind, **step("ca.pem")}], ca_dir=tmp_path)
        off = await run([{"name": kind, **step(False)}])
        assert (inside.reason, off.reason) == (FailureReason.CONNECT, FailureReason.CONNECT)


# ---- hosts ------------------------------------------------------------------------------


METADATA = (
    "egress to metadata.test (169.254.169.254) refused by the default deny of link-local "
    "addresses (--allow-hosts 169.254.169.254 to allow)"
)


@module_loop
async def test_http_egress_to_a_metadata_address_is_refused_before_connecting(
    no_link_local: list[str],
) -> None:
    """A name resolving to 169.254.169.254, asked for or reached by a redirect, fails as
    config naming the default deny; no connection is attempted."""
    async with site({}) as (base, seen):
        direct = await run(
            [{"name": "m", "http": {"get": "http://metadata.test/latest/"}}], egress=policy()
        )
        redirected = await run(
            [{"name": "m", "http": {"get": f"{base}/to-metadata"}}], egress=policy()
        )
    assert failed(direct, FailureReason.CONFIG) == METADATA
    assert failed(redirected, FailureReason.CONFIG) == (
        f"{METADATA} (a redirect to http://metadata.test/latest/meta-data/ led there)"
    )
    assert seen == ["/to-metadata"]


@module_loop
async def test_http_egress_follows_deny_and_allow_rules(no_link_local: list[str]) -> None:
    """--deny-hosts refuses a CIDR or a host pattern, --allow-hosts allows only what it
    names; a name resolving to both an allowed and a refused address reaches the allowed."""
    async with site({"/": "home"}) as (base, seen):
        port = base.rsplit(":", 1)[1]

        async def get(host: str, rules: EgressPolicy) -> RunResult:
            return await run(
                [{"name": "g", "http": {"get": f"http://{host}:{port}/"}}], egress=rules
            )

        cidr = await get("127.0.0.1", policy(deny=["127.0.0.0/8"]))
        pattern = await get("api.shop.test", policy(deny=["*.shop.test"]))
        listed = await get("api.shop.test", policy(allow=["*.shop.test"]))
        unlisted = await get("other.test", policy(allow=["*.shop.test", "10.0.0.0/8"]))
        rebound = await get("rebind.test", policy())
        explicit = EgressPolicy.parse(["169.254.169.254/32"]).refusal(
            "metadata.test", "169.254.169.254"
        )
    assert (
        failed(cidr, FailureReason.CONFIG)
        == "egress to 127.0.0.1 refused by --deny-hosts 127.0.0.0/8"
    )
    assert failed(pattern, FailureReason.CONFIG) == (
        "egress to api.shop.test refused by --deny-hosts *.shop.test"
    )
    assert failed(unlisted, FailureReason.CONFIG) == (
        "egress to other.test (127.0.0.1) refused: not in --allow-hosts (*.shop.test, 10.0.0.0/8)"
    )
    assert (listed.ok, rebound.ok, explicit) == (True, True, None)
    assert seen == ["/", "/"]


def test_the_default_deny_covers_link_local_and_metadata_addresses() -> None:
    """fe80::/10, fd00:ec2::254 and IPv4-mapped 169.254.x.x are refused by default; an
    allow rule inside them lifts it, a broad one (0.0.0.0/0, ::/0) does not."""
    default, broad = EgressPolicy(), EgressPolicy.parse(["0.0.0.0/0", "::/0"])
    assert default.refusal("fe80::1", None) == (
        "egress to fe80::1 refused by the default deny of link-local addresses "
        "(--allow-hosts fe80::1 to allow)"
    )
    assert default.refusal("imds.test", "fd00:ec2::254") == (
        "egress to imds.test (fd00:ec2::254) refused by the default deny of the cloud "
        "metadata address fd00:ec2::254 (--allow-hosts fd00:ec2::254 to allow)"
    )
    assert default.refusal("[::ffff:169.254.169.254]", None) is not None
    assert broad.refusal("169.254.169.254", None) is not None
    assert EgressPolicy.parse(["169.254.0.0/16"]).refusal("169.254.1.2", None) is None
    assert EgressPolicy.parse(["metadata.test"]).refusal("metadata.test", "169.254.169.254") is None
    assert default.refusal("127.0.0.1", None) is None


async def test_an_address_is_its_own_lookup() -> None:
    """An IP literal is checked and connected to as written, without a lookup in the loop's
    thread pool (which set the tail of loopback connects); a name is still looked up."""
    looked_up: list[str] = []

    async def counting(host: str, port: int) -> Sequence[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    policy = EgressPolicy.parse([], [], resolver=counting)
    assert await policy.addresses("127.0.0.1", 80) == ["127.0.0.1"]
    assert await policy.addresses("[0:0::1]", 80) == ["::1"]
    with pytest.raises(EgressRefused):
        await policy.addresses("[::ffff:169.254.169.254]", 80)
    assert looked_up == []
    assert await policy.addresses("shop.test", 80) == ["127.0.0.1"]
    assert looked_up == ["shop.test"]


def test_a_bad_host_rule_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """`journeyman run` with a rule that is not a CIDR, address or host pattern stops with
    one line naming the flag, before anything runs."""
    assert main(["run", "--once", "--deny-hosts", "10.0.0.0/8,ex ample", "journeys"]) == 2
    assert capsys.readouterr().err == (
        "journeyman: --deny-hosts: 'ex ample' is not a CIDR (10.0.0.0/8), an address, a host "
        "name or a host pattern (*.example.com)\n"
    )
    assert main(["run", "--once", "--uploads-dir", "/no/such/folder", "journeys"]) == 2
    assert capsys.readouterr().err == "journeyman: --uploads-dir /no/such/folder: not a folder\n"


@module_loop
async def test_tcp_egress_is_checked_before_connecting(no_link_local: list[str]) -> None:
    """A TCP step to a metadata name, or to a denied address, fails as config naming the
    rule; the server never sees the connection."""
    connections: list[int] = []

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    async with serve_raw(greet) as url:
        address = url.removeprefix("http://")
        metadata = await run(
            [{"name": "t", "tcp": {"connect": "metadata.test:80"}}], egress=policy()
        )
        denied = await run(
            [{"name": "t", "tcp": {"connect": address}}], egress=policy(deny=["127.0.0.1"])
        )
        allowed = await run([{"name": "t", "tcp": {"connect": address}}])
    assert failed(metadata, FailureReason.CONFIG) == METADATA
    assert (
        failed(denied, FailureReason.CONFIG)
        == "egress to 127.0.0.1 refused by --deny-hosts 127.0.0.1"
    )
    assert (allowed.ok, connections) == (True, [1])


@module_loop
async def test_browser_egress_is_routed_for_pages_frames_and_resources(pool: BrowserPool) -> None:
    """In the browser, a goto, a subresource, a subframe and a navigation the page starts
    itself to a refused host are aborted and fail the step as config naming the rule."""
    pages = {
        "/": "<h1>home</h1>",
        "/img": '<h1>img</h1><img src="http://img.denied.test/pixel.png">',
        "/frame": '<h1>frame</h1><iframe src="http://frame.denied.test/"></iframe>',
        "/leave": "<h1>leave</h1><script>location.href='http://metadata.test/'</script>",
    }
    rules = policy(deny=["*.denied.test"])
    async with site(pages) as (base, seen):

        async def visit(path: str) -> RunResult:
            actions = [{"goto": f"{base}{path}"}, {"wait_for": {"network_idle": True}}]
            return await run([{"name": "v", "browser": actions}], browser=pool, egress=rules)

        metadata = await run(
            [{"name": "v", "browser": [{"goto": "http://metadata.test/"}]}],
            browser=pool,
            egress=rules,
        )
        img, frame, leave = await visit("/img"), await visit("/frame"), await visit("/leave")
        home = await visit("/")
    assert failed(metadata, FailureReason.CONFIG) == METADATA
    assert failed(img, FailureReason.CONFIG) == (
        "egress to img.denied.test refused by --deny-hosts *.denied.test"
    )
    assert failed(frame, FailureReason.CONFIG) == (
        "egress to frame.denied.test refused by --deny-hosts *.denied.test"
    )
    assert failed(leave, FailureReason.CONFIG) == METADATA
    assert home.ok, home.message
    assert [path for path in seen if path != "/favicon.ico"] == ["/img", "/frame", "/leave", "/"]


# ---- regular expressions on hostile bodies ------------------------------------------------


HOSTILE = "a" * 64 + "!"  # (a|aa)+$ tries every way to split the a's before failing


@asynccontextmanager
async def loop_lag() -> AsyncIterator[list[float]]:
    """The event loop's longest stall while the block runs (a 10 ms ticker)."""
    stalls: list[float] = [0.0]

    async def tick() -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            stalls[0] = max(stalls[0], loop.time() - before - 0.01)

    ticker = asyncio.create_task(tick())
    try:
        yield stalls
    finally:
        ticker.cancel()


@module_loop
async def test_a_backtracking_pattern_is_stopped_without_holding_the_loop() -> None:
    """body_matches, json_matches, header_matches and extract regex on a hostile body end
    within ~0.5 s as assertion (extraction) saying the pattern took too long, and the event
    loop is not held meanwhile; the tcp kind's matches and extract too."""

    async def hostile(request: web.Request) -> web.Response:
        return web.json_response({"name": HOSTILE}, headers={"X-Name": HOSTILE})

    app = web.Application()
    app.router.add_get("/", hostile)
    pattern = "(a|aa)+$"
    expectations: list[dict[str, Any]] = [
        {"expect": {"body_matches": pattern}},
        {"expect": {"json_matches": {"$.name": pattern}}},
        {"expect": {"header_matches": {"X-Name": pattern}}},
        {"extract": {"name": {"regex": pattern}}},
    ]

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HOSTILE.encode() + b"\n")
        await writer.drain()
        writer.close()

    results = []
    async with serve_app(app) as base, serve_raw(greet) as raw, loop_lag() as stalls:
        for fields in expectations:
            started = time.perf_counter()
            results.append(
                (
                    await run([{"name": "h", "http": {"get": base}, **fields}]),
                    time.perf_counter() - started,
                )
            )
        address = raw.removeprefix("http://")
        read = {"connect": address, "read": {"until": "\n"}}
        for fields in ({"expect": {"matches": pattern}}, {"extract": {"name": {"regex": pattern}}}):
            started = time.perf_counter()
            results.append(
                (await run([{"name": "t", "tcp": read, **fields}]), time.perf_counter() - started)
            )
    reasons = [result.reason for result, _ in results]
    assert reasons == [FailureReason.ASSERTION] * 3 + [FailureReason.EXTRACTION] + [
        FailureReason.ASSERTION,
        FailureReason.EXTRACTION,
    ]
    assert results[0][0].message == (
        f"expected the body to match, but the regular expression '(a|aa)+$' took more than "
        f"0.5s on {len(json.dumps({'name': HOSTILE}))} characters and was stopped (it "
        "backtracks: simplify it, e.g. no nested repetition such as (a+)+)"
    )
    for result, took in results:
        assert "took more than 0.5s" in result.message, result.message
        assert took < 5.0  # bounded: with re, each would run for hours
    assert stalls[0] < 0.3  # on the loop, each pattern would have stalled it for 0.5 s


# ---- secrets cut in half ----------------------------------------------------------------


@module_loop
async def test_a_secret_straddling_the_cut_of_a_quoted_excerpt_is_masked_whole(
    pool: BrowserPool,
) -> None:
    """A body, a JSON value, a TCP reply and page text that hold the secret across the
    200 (100) character cut of a failure message show *** and none of its characters."""
    body = "x " * 95 + SECRET + " tail"  # the secret starts at 190 of 200
    value = "y" * 90 + SECRET  # the secret starts at 91 of 100 (with the quote)

    async def echo(request: web.Request) -> web.Response:
        if request.path == "/json":
            return web.json_response({"value": value})
        return web.Response(
            text=f"<html><title>t</title><body>{body}</body></html>", content_type="text/html"
        )

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(body.encode() + b"\n")
        await writer.drain()
        writer.close()

    app = web.Application()
    app.router.add_get("/{tail:.*}", echo)
    async with serve_app(app) as base, serve_raw(greet) as raw:
        read = {"connect": raw.removeprefix("http://"), "read": {"until": "\n"}}
        results = [
            await run(
                [{"name": "b", "http": {"get": f"{base}/"}, "expect": {"body_contains": "nope"}}]
            ),
            await run(
                [
                    {
                        "name": "j",
                        "http": {"get": f"{base}/json"},
                        "expect": {"json": {"$.value": "nope"}},
                    }
                ]
            ),
            await run([{"name": "t", "tcp": read, "expect": {"contains": "nope"}}]),
            await run(
                [
                    {
                        "name": "p",
                        "timeout": "3s",
                        "browser": [{"goto": base}, {"expect_text": "no"}],
                    }
                ],
                browser=pool,
            ),
        ]
    for result in results:
        message = failed(result, result.reason or FailureReason.INTERNAL)
        assert "***" in message, message
        assert SECRET[:6] not in message, message
