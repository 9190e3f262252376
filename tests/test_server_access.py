"""Access to the agent's endpoints: the exporter web config (TLS, client certificates, basic
auth, reloads), the headers of every response, gzip on /metrics, and bad config files."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import trustme
from agent_process import running_agent
from browser_support import require_chromium
from prometheus_client import CollectorRegistry
from test_prometheus_samples import catalog, checkout, partner_order, results

from agent.serve.server import RunningServer, start_server
from agent.serve.web_config import WebAccess
from exporters.prometheus import PrometheusExporter
from exporters.status import StatusBoard

PASSWORD = "c0rrect-h0rse"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()  # cost 4: fast tests
TLS = "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
MTLS = TLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n"
USERS = f"basic_auth_users:\n  alice: {HASH}\n"
JOURNEY = """\
journey: closed-port
business_process: order-to-cash
schedule: {every: 60s, timeout: 5s}
steps:
  - name: home
    http: {get: "http://127.0.0.1:9/"}
"""


class Events:
    """A logger that keeps what it was told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.seen.append((event, fields))

    error = info


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def write_config(folder: Path, ca: trustme.CA, text: str) -> Path:
    """``text`` as web.yml in ``folder``, beside a server certificate, its key and the CA."""
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return replace_file(folder / "web.yml", text)


def replace_file(path: Path, text: str) -> Path:
    """Write ``path`` anew (a new inode, as an editor or a Kubernetes secret update does)."""
    staged = path.with_suffix(".new")
    staged.write_text(text)
    os.replace(staged, path)
    return path


class FixedMetrics:
    """A metrics source that renders the same bytes every time."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def render(self, openmetrics: bool = False) -> bytes:
        return self.body


@asynccontextmanager
async def serve(
    config: Path | None, *, protect_probes: bool = False, metrics: Any = None
) -> AsyncIterator[tuple[RunningServer, WebAccess | None, Events]]:
    """The agent's server on loopback over sample runs, with ``config`` as its web config."""
    events = Events()
    access = WebAccess(config, protect_probes=protect_probes, logger=events) if config else None
    if metrics is None:
        metrics = PrometheusExporter(CollectorRegistry(), "eu-west-1")
        metrics.set_inventory([checkout(), partner_order()], catalog())
        for result in results():
            metrics.export(result)
    board = StatusBoard()
    board.set_inventory([checkout(), partner_order()], catalog())
    server = await start_server(
        "127.0.0.1:0", metrics=metrics, board=board, ready=lambda: True, access=access
    )
    try:
        yield server, access, events
    finally:
        await server.close()


def client(
    server: RunningServer,
    ca: trustme.CA | None = None,
    cert: trustme.LeafCert | None = None,
    tls_max: ssl.TLSVersion | None = None,
) -> httpx.AsyncClient:
    """An HTTP client of ``server`` trusting ``ca``, presenting ``cert`` if given."""
    context = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(context)
    if cert is not None:
        cert.configure_cert(context)
    if tls_max is not None:
        context.maximum_version = tls_max
    return httpx.AsyncClient(base_url=server.url, verify=context, timeout=5)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        (basic("alice", "wrong"), 401),
        (basic("mallory", PASSWORD), 401),
        (basic("alice", PASSWORD.upper()), 401),
        ("Basic not-base64!", 401),
        ("Bearer " + PASSWORD, 401),
        (basic("alice", PASSWORD), 200),
    ],
)
async def test_metrics_need_the_right_user_and_password(
    tmp_path: Path, ca: trustme.CA, authorization: str | None, status: int
) -> None:
    """Over TLS, /metrics answers 200 to alice's password only; anything else is 401 with
    a Basic challenge."""
    config = write_config(tmp_path, ca, TLS + USERS)
    async with serve(config) as (server, _, _), client(server, ca) as http:
        headers = {"Authorization": authorization} if authorization else {}
        response = await http.get("/metrics", headers=headers)
    assert server.url.startswith("https://127.0.0.1:")
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Basic realm="journeyman"'
        assert "journey_runs_total" not in response.text
    else:
        assert "journey_runs_total{" in response.text


async def test_probes_stay_open_while_everything_else_needs_credentials(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """/healthz and /readyz answer without credentials; /metrics, the page and unknown
    paths (which must not reveal that they do not exist) are 401."""
    config = write_config(tmp_path, ca, TLS + USERS)
    async with serve(config) as (server, _, _), client(server, ca) as http:
        statuses = {path: (await http.get(path)).status_code
                    for path in ("/healthz", "/readyz", "/metrics", "/", "/nope")}  # fmt: skip
        authorized = await http.get("/nope", headers={"Authorization": basic("alice", PASSWORD)})
    assert statuses == {"/healthz": 200, "/readyz": 200, "/metrics": 401, "/": 401, "/nope": 401}
    assert authorized.status_code == 404


async def test_protected_probes_need_credentials_too(tmp_path: Path, ca: trustme.CA) -> None:
    """With protect_probes, /healthz is 401 without credentials and 200 with them."""
    config = write_config(tmp_path, ca, TLS + USERS)
    async with serve(config, protect_probes=True) as (server, _, _), client(server, ca) as http:
        anonymous = await http.get("/healthz")
        known = await http.get("/healthz", headers={"Authorization": basic("alice", PASSWORD)})
    assert (anonymous.status_code, known.status_code) == (401, 200)


async def test_client_certificates_are_required_and_verified(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """RequireAndVerifyClientCert: a certificate from the client CA is served; none, or
    one from another CA, ends the connection before any HTTP."""
    config = write_config(tmp_path, ca, MTLS)
    stranger = trustme.CA().issue_cert("client@example.test")
    async with serve(config) as (server, _, _):
        async with client(server, ca, ca.issue_cert("client@example.test")) as http:
            assert (await http.get("/metrics")).status_code == 200
        for cert in (None, stranger):
            async with client(server, ca, cert) as http:
                with pytest.raises(httpx.TransportError):
                    await http.get("/healthz")


async def test_min_version_refuses_older_clients(tmp_path: Path, ca: trustme.CA) -> None:
    """min_version TLS13 refuses a client that stops at TLS 1.2; the default accepts it."""
    tls12 = ssl.TLSVersion.TLSv1_2
    strict = write_config(tmp_path, ca, TLS + "  min_version: TLS13\n")
    async with serve(strict) as (server, _, _), client(server, ca, tls_max=tls12) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/healthz")
    default = replace_file(strict, TLS)
    async with serve(default) as (server, _, _), client(server, ca, tls_max=tls12) as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_verified_passwords_are_remembered_and_wrong_ones_always_checked(
    tmp_path: Path, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three scrapes with the right password cost one bcrypt check; each wrong password,
    and each unknown user (against a decoy of the same cost), costs one."""
    checked: list[bytes] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    config = write_config(tmp_path, ca, TLS + USERS)
    async with serve(config) as (server, _, _), client(server, ca) as http:
        for authorization in [basic("alice", PASSWORD)] * 3 + [basic("alice", "no")] * 2:
            await http.get("/metrics", headers={"Authorization": authorization})
        assert len(checked) == 3
        unknown = await http.get("/", headers={"Authorization": basic("bob", "x")})
    assert unknown.status_code == 401
    assert checked[:3] == [HASH.encode()] * 3
    assert len(checked) == 4
    assert checked[3] != HASH.encode()
    assert checked[3].startswith(b"$2b$04$")  # the decoy costs what alice's hash costs


async def test_a_changed_file_applies_at_once_and_a_broken_one_keeps_the_last_good(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """Replacing the file's users takes effect on the next request; a broken rewrite is
    logged and the last good users stay."""
    config = write_config(tmp_path, ca, TLS + USERS)
    bob = bcrypt.hashpw(b"bob-pass", bcrypt.gensalt(4)).decode()
    async with serve(config) as (server, _, events), client(server, ca) as http:

        async def status(user: str, password: str) -> int:
            response = await http.get("/metrics", headers={"Authorization": basic(user, password)})
            return response.status_code

        assert await status("alice", PASSWORD) == 200
        replace_file(config, TLS + f"basic_auth_users:\n  bob: {bob}\n")
        assert (await status("alice", PASSWORD), await status("bob", "bob-pass")) == (401, 200)
        replace_file(config, TLS + "basic_auth_users:\n  bob: plain-text\n")
        assert (await status("alice", PASSWORD), await status("bob", "bob-pass")) == (401, 200)
    failures = [fields["error"] for event, fields in events.seen
                if event == "web_config_reload_failed"]  # fmt: skip
    assert failures == [
        f"{config}:5:3: basic_auth_users.bob: not a bcrypt hash (make one with "
        "htpasswd -nBC 10 '' | tr -d ':\\n')"
    ]


async def test_a_rotated_certificate_is_served_at_the_next_handshake(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """New cert_file and key_file contents (the web config unchanged) are served to the next
    connection, without a restart."""
    config = write_config(tmp_path, ca, TLS)
    other = trustme.CA()
    async with serve(config) as (server, _, _):
        async with client(server, ca) as http:
            assert (await http.get("/healthz")).status_code == 200
        rotated = other.issue_cert("127.0.0.1")
        replace_file(tmp_path / "key.pem", rotated.private_key_pem.bytes().decode())
        replace_file(tmp_path / "cert.pem", rotated.cert_chain_pems[0].bytes().decode())
        async with client(server, other) as http:
            assert (await http.get("/healthz")).status_code == 200
        async with client(server, ca) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get("/healthz")


async def test_requiring_client_certificates_holds_open_connections_to_it(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """Once the file requires client certificates, a connection opened before gets 403 at
    its next request and a new one without a certificate is refused at the handshake."""
    config = write_config(tmp_path, ca, TLS)
    async with serve(config) as (server, _, _), client(server, ca) as before:
        assert (await before.get("/healthz")).status_code == 200
        replace_file(config, MTLS)
        refused = await before.get("/metrics")
        async with client(server, ca) as after:
            with pytest.raises(httpx.TransportError):
                await after.get("/metrics")
        async with client(server, ca, ca.issue_cert("client@example.test")) as holder:
            assert (await holder.get("/metrics")).status_code == 200
    assert (refused.status_code, refused.text) == (
        403,
        "a verified client certificate is required\n",
    )


async def test_every_response_has_safe_headers_and_no_server_banner(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """200, 401 and 404 answers carry nosniff, no-referrer, a CSP and the web config's
    headers, and never a Server header."""
    config = write_config(
        tmp_path, ca, TLS + USERS + "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
    )
    async with serve(config) as (server, _, _), client(server, ca) as http:
        auth = {"Authorization": basic("alice", PASSWORD)}
        asked = [
            ("/healthz", {}),
            ("/metrics", {}),
            ("/metrics", auth),
            ("/nope", auth),
            ("/", auth),
        ]
        responses = [await http.get(path, headers=headers) for path, headers in asked]
    assert [r.status_code for r in responses] == [200, 401, 200, 404, 200]
    for response in responses:
        assert "server" not in response.headers
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "deny"
        assert response.headers["content-security-policy"].startswith("default-src 'none';")


async def test_the_status_page_policy_allows_its_own_style_and_nothing_else() -> None:
    """The page's CSP has default-src 'none', and style-src and script-src with the hash of
    its one inline style and its one inline script (the live update): no 'unsafe-inline';
    plain HTTP has no banner either."""
    async with serve(None) as (server, _, _), client(server) as http:
        page = await http.get("/")
    policy = page.headers["content-security-policy"]
    styles = re.findall(r"<style>(.*?)</style>", page.text, re.DOTALL)
    scripts = re.findall(r'<script type="module">(.*?)</script>', page.text, re.DOTALL)
    style, script = (
        base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        for text in (*styles, *scripts)
    )
    assert policy == (
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
        f"style-src 'sha256-{style}'; script-src 'sha256-{script}'; connect-src 'self'"
    )
    assert page.text.count("<script") == 1
    assert "server" not in page.headers


@pytest.mark.browser
async def test_chromium_applies_the_status_page_style_under_its_policy() -> None:
    """In Chromium the page's style applies (the hash is right) and the policy reports no
    violation."""
    require_chromium()
    from playwright.async_api import async_playwright

    from agent.run.browser_pool import find_browser

    async with serve(None) as (server, _, _), async_playwright() as playwright:
        path = find_browser(None, os.environ, playwright.chromium.executable_path)
        browser = await playwright.chromium.launch(
            executable_path=path, headless=True, chromium_sandbox=os.geteuid() != 0
        )
        try:
            page = await browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            await page.goto(f"{server.url}/", timeout=10_000)
            collapse = await page.evaluate(
                "getComputedStyle(document.querySelector('table')).borderCollapse"
            )
        finally:
            await browser.close()
    assert collapse == "collapse"
    assert not [text for text in console if "Content Security Policy" in text]


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [("gzip", True), ("deflate, gzip;q=0.5", True), ("*", True), ("identity", False),
     ("gzip;q=0", False), ("br", False), ("", False)],
)  # fmt: skip
async def test_metrics_are_gzipped_when_asked_and_identical_once_inflated(
    accept_encoding: str, gzipped: bool
) -> None:
    """Accept-Encoding taking gzip gets Content-Encoding gzip, whose inflated bytes are the
    plain body; otherwise the plain body. Both vary on Accept-Encoding."""
    async with serve(None) as (server, _, _), client(server) as http:
        plain = await http.get("/metrics", headers={"Accept-Encoding": "identity"})
        headers = {"Accept-Encoding": accept_encoding}
        async with http.stream("GET", "/metrics", headers=headers) as response:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == response.headers["vary"] == "Accept-Encoding"
    assert response.headers.get("content-encoding") == ("gzip" if gzipped else None)
    assert (gzip.decompress(raw) if gzipped else raw) == plain.content
    assert b"journey_runs_total{" in plain.content


async def test_large_metrics_are_gzipped_too() -> None:
    """A 2 MB exposition (compressed off the event loop) inflates to the same bytes."""
    body = b"".join(b"journey_step_seconds_total{step=\"%d\"} %d.5\n" % (i, i)
                    for i in range(50_000))  # fmt: skip
    assert len(body) > 2_000_000
    async with (
        serve(None, metrics=FixedMetrics(body)) as (server, _, _),
        client(server) as http,
        http.stream("GET", "/metrics", headers={"Accept-Encoding": "gzip"}) as response,
    ):
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.headers["content-encoding"] == "gzip"
    assert len(raw) < len(body) / 4
    assert gzip.decompress(raw) == body


BAD_CONFIGS = {  # why: (file text, the line expected, with {file} and {folder})
    "unknown key": (
        TLS.replace("cert_file", "cert_fil"),
        "{file}:2:3: tls_server_config.cert_fil: unknown field 'cert_fil' "
        "(did you mean 'cert_file'?)",
    ),
    "unreadable certificate": (
        TLS.replace("cert.pem", "missing.pem"),
        "{file}:2:3: tls_server_config.cert_file: cannot read {folder}/missing.pem: "
        "No such file or directory",
    ),
    "bad bcrypt hash": (
        "basic_auth_users:\n  alice: hunter2\n",
        "{file}:2:3: basic_auth_users.alice: not a bcrypt hash (make one with "
        "htpasswd -nBC 10 '' | tr -d ':\\n')",
    ),
    "toolkit key not implemented": (
        "rate_limit: {interval: 1s, burst: 5}\n",
        "{file}:1:1: rate_limit: an exporter-toolkit key journeyman does not support: "
        "rate limiting is not implemented",
    ),
}


@pytest.mark.parametrize("why", BAD_CONFIGS)
def test_a_bad_web_config_stops_journeyman_run_with_one_line_and_exit_2(
    tmp_path: Path, ca: trustme.CA, why: str
) -> None:
    """`journeyman run --web.config.file BAD` prints one line naming the file, the line and
    the key, and exits 2 before serving anything."""
    text, expected = BAD_CONFIGS[why]
    config = write_config(tmp_path, ca, text)
    (tmp_path / "closed-port.yaml").write_text(JOURNEY)
    done = subprocess.run(
        [sys.executable, "-m", "agent", "run", str(tmp_path / "closed-port.yaml"),
         "--listen", "127.0.0.1:0", "--web.config.file", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    line = "journeyman: " + expected.format(file=config, folder=tmp_path)
    assert (done.returncode, done.stderr.splitlines()) == (2, [line])


async def test_the_agent_process_reads_the_web_config_from_its_environment(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """`journeyman run` with JOURNEYMAN_WEB_CONFIG_FILE serves HTTPS: probes open, /metrics
    with alice's password only."""
    config = write_config(tmp_path, ca, TLS + USERS)
    (tmp_path / "journeys").mkdir()
    (tmp_path / "journeys" / "closed-port.yaml").write_text(JOURNEY)
    environ = {"JOURNEYMAN_WEB_CONFIG_FILE": str(config)}
    async with running_agent([tmp_path / "journeys"], environ=environ) as agent:
        assert agent.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        async with httpx.AsyncClient(base_url=agent.url, verify=context, timeout=5) as http:
            health = await http.get("/healthz")
            anonymous = await http.get("/metrics")
            known = await http.get("/metrics", headers={"Authorization": basic("alice", PASSWORD)})
    assert (health.status_code, anonymous.status_code, known.status_code) == (200, 401, 200)
    assert "journey_info{" in known.text
