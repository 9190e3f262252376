"""The agent image, built with podman and run as in production: uid 10001, a read-only
root filesystem, podman's default seccomp profile, journeys mounted read-only, against
the demo shop on the host (host network; everything on 127.0.0.1).

The image is built once per session by scripts/build-image (what `make image` runs),
tagged with a hash of its inputs, so a rerun with nothing changed reuses it. podman, runc
and mmdebstrap come from scripts/image-deps; without them (or without root) these tests
skip, except under CI=true where that is a failure. The tests of the running agent share
one container; the stop test ends it, so it comes last in this file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from agent_process import Samples, value
from prometheus_client.parser import text_string_to_metric_families

from agent.demo import Credentials, start_shop

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ("podman", "--runtime", "/usr/sbin/runc", "--cgroup-manager=cgroupfs")
LIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
# Everything the build reads: the build context (.dockerignore's list) and the script.
INPUTS = ("Dockerfile", ".dockerignore", "scripts/build-image", "pyproject.toml", "README.md",
          "agent", "exporters", "generators")  # fmt: skip
REPOSITORY = "localhost/journeyman"
BUILD_TIMEOUT = 1500.0  # a cold build on a busy 2-core machine, base included
MAX_SIZE = 1.3e9
STOP_TIMEOUT = 10.0  # podman's and docker's default for `stop`
SLOW = 3.0  # seconds the slow server takes to answer: a run in flight at SIGTERM

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT + 300)


@dataclass(frozen=True)
class Image:
    tag: str
    build_seconds: float | None  # None: built by an earlier session and reused


@dataclass
class Agent:
    name: str  # the container's
    url: str


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``podman ARGS`` with this machine's runtime flags; asserts success when ``check``."""
    done = subprocess.run([*ENGINE, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"podman {' '.join(args[:2])}: {done.stderr[-3000:]}"
    return done


def _require_engine() -> None:
    """Skip without podman, runc, mmdebstrap or root, except under CI=true: then fail."""
    missing = [name for name in ("podman", "mmdebstrap") if shutil.which(name) is None]
    if not os.access("/usr/sbin/runc", os.X_OK):
        missing.append("runc")
    why = f"missing {', '.join(missing)} (scripts/image-deps installs them)" if missing else ""
    if not why and os.geteuid() != 0:
        why = "the image tests run podman as root"
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)


def _inputs_digest() -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        path = ROOT / name
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                digest.update(f"{file.relative_to(ROOT)}\0".encode() + file.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The image of this tree, built once (scripts/build-image) unless already there."""
    _require_engine()
    tag = f"{REPOSITORY}:test-{_inputs_digest()}"
    if podman("image", "exists", tag, check=False).returncode == 0:
        return Image(tag, None)
    log = tmp_path_factory.mktemp("image") / "build.log"
    began = time.monotonic()
    with log.open("w") as out:
        build = subprocess.run(
            [str(ROOT / "scripts" / "build-image"), tag],
            stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT, check=False,
        )  # fmt: skip
    assert build.returncode == 0, log.read_text()[-5000:]
    listed = podman(
        "images", "--format", "{{.Repository}}:{{.Tag}}", f"--filter=reference={REPOSITORY}"
    )
    for old in set(listed.stdout.split()) - {tag}:
        if old.startswith(f"{REPOSITORY}:test-"):  # superseded by this build
            podman("rmi", old, check=False)
    return Image(tag, time.monotonic() - began)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def shop() -> Iterator[dict[str, str]]:
    """The demo shop on the host's loopback, served by a thread of its own, with fresh
    credentials: the environment its journeys read (``RunningShop.environ``)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    credentials = Credentials(password=secrets.token_hex(8), partner_secret=secrets.token_hex(8))
    try:
        started = asyncio.run_coroutine_threadsafe(start_shop(credentials=credentials), loop)
        running = started.result(30)
        try:
            yield running.environ()
        finally:
            asyncio.run_coroutine_threadsafe(running.close(), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _env_flags(environ: dict[str, str]) -> list[str]:
    return [flag for name, text in environ.items() for flag in ("-e", f"{name}={text}")]


def _run_flags(journeys: Path) -> list[str]:
    """How production runs it: uid 10001, a read-only root with a tmpfs at /tmp only (as
    with Docker's --read-only), default seccomp, journeys read-only, host network. No
    health-check timer: podman needs systemd for one (`podman healthcheck run` works)."""
    return [*LIMITS, "--network", "host", "--user", "10001", "--read-only", "--tmpfs", "/tmp",
            "--read-only-tmpfs=false", "-v", f"{journeys}:/journeys:ro",
            "--health-interval=disable"]  # fmt: skip


@pytest.fixture(scope="module")
def slow_server() -> Iterator[tuple[str, threading.Event]]:
    """A loopback server answering after SLOW seconds; the event is set when asked."""
    arrived = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            arrived.set()
            time.sleep(SLOW)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/slow", arrived
    server.shutdown()
    server.server_close()


def _journeys_for_the_agent(folder: Path, slow_url: str) -> Path:
    """The demo's HTTP and browser checkouts every 20 s, a slow journey every 5 s, the
    catalog, and a broken file."""
    folder.chmod(0o755)  # the container's user reads it
    shutil.copy(ROOT / "journeys" / "catalog.yaml", folder)
    for name, timeout in (("customer-checkout", "10s"), ("checkout-browser", "20s")):
        journey = yaml.safe_load((ROOT / "journeys" / f"{name}.yaml").read_text())
        journey["schedule"] = {"every": "20s", "timeout": timeout}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(journey, sort_keys=False))
    (folder / "slow.yaml").write_text(
        "journey: slow-shutdown\nbusiness_process: order-to-cash\n"
        "schedule: {every: 5s, timeout: 5s}\n"
        f"steps: [{{name: slow answer, http: {{get: '{slow_url}'}}, expect: {{status: 200}}}}]\n"
    )
    broken = "journey: broken\nbusiness_process: order-to-cash\nsteps: [{name: s, colour: red}]\n"
    (folder / "broken.yaml").write_text(broken)
    for file in folder.iterdir():
        file.chmod(0o644)
    return folder


def _logs(name: str) -> str:
    logs = podman("logs", name, check=False)
    return logs.stdout + logs.stderr


def _events(name: str) -> list[dict[str, Any]]:
    """The agent's JSON log events so far, in order."""
    events = []
    for line in podman("logs", name, check=False).stderr.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def _wait(what: str, check: Callable[[], bool], within: float, name: str) -> None:
    """Poll ``check`` until true; fail after ``within`` seconds with the container's logs."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within:g} s; logs:\n{_logs(name)[-4000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def agent(
    image: Image,
    shop: dict[str, str],
    slow_server: tuple[str, threading.Event],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Agent]:
    """The image's default command (`run /journeys`), detached, on a free loopback port."""
    journeys = _journeys_for_the_agent(tmp_path_factory.mktemp("journeys"), slow_server[0])
    name = f"journeyman-test-{secrets.token_hex(4)}"
    port = _free_port()
    environ = shop | {"JOURNEYMAN_LISTEN": f"127.0.0.1:{port}", "JOURNEYMAN_LOG_LEVEL": "info"}
    try:
        podman("run", "--detach", "--name", name, *_run_flags(journeys), *_env_flags(environ),
               image.tag)  # fmt: skip
        running = Agent(name, f"http://127.0.0.1:{port}")
        _wait("/healthz answers", lambda: _answers(f"{running.url}/healthz"), 60, name)
        yield running
    finally:
        podman("rm", "--force", "--volumes", "--time", "2", name, check=False)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _samples(agent: Agent) -> Samples:
    text = httpx.get(f"{agent.url}/metrics", timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _succeeded(agent: Agent, *journeys: str) -> Callable[[], bool]:
    def check() -> bool:
        samples = _samples(agent)
        return all(
            value(samples, "journey_runs_total", journey=j, outcome="success") >= 1
            for j in journeys
        )

    return check


def _inspect(image: Image) -> dict[str, Any]:
    found: list[dict[str, Any]] = json.loads(podman("image", "inspect", image.tag).stdout)
    return found[0]


def test_image_size_is_reported_and_bounded(
    image: Image, capsys: pytest.CaptureFixture[str]
) -> None:
    """The image's size and its largest layers go to the test log; it stays under 1.3 GB."""
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image.tag).stdout)
    history = podman("history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", image.tag)
    layers = [line[:100] for line in history.stdout.splitlines() if not line.startswith("0 B")]
    built = f"built in {image.build_seconds:.0f} s" if image.build_seconds else "reused"
    with capsys.disabled():
        print(f"\nimage {image.tag}: {size / 1e6:.0f} MB ({built})")
        for layer in layers:
            print(f"  {layer}")
    assert size < MAX_SIZE


def test_image_declares_user_volumes_health_and_stop(image: Image) -> None:
    """uid 10001, the three volumes, a HEALTHCHECK, SIGTERM, tini as init, the grace that
    fits the stop timeout; no build CA path, pip, compiler or apt lists inside."""
    inspected = _inspect(image)
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert set(config["Volumes"]) == {"/journeys", "/artifacts", "/data"}
    assert config["StopSignal"] == "SIGTERM"
    assert config["Entrypoint"][:2] == ["tini", "--"]
    assert "/healthz" in " ".join(inspected["Healthcheck"]["Test"])  # podman: top level
    environ = dict(item.split("=", 1) for item in config["Env"])
    assert float(environ["JOURNEYMAN_GRACE"]) + 3 <= STOP_TIMEOUT
    assert "PIP_CERT" not in environ
    assert "PIP_CERT" not in podman("history", "--no-trunc", image.tag).stdout
    leftovers = (
        "ls -A /var/lib/apt/lists; ls /var/cache/apt/archives/*.deb /root/.cache; ls /opt/*/bin"
        " | grep pip; find / -xdev -name host-ca.crt; command -v gcc cc g++ make pip pip3; true"
    )
    inside = podman("run", "--rm", *LIMITS, "--user", "0", "--entrypoint", "sh", image.tag,
                    "-c", leftovers)  # fmt: skip
    assert inside.stdout.strip() == "", inside.stdout


def test_run_once_passes_the_http_and_browser_journeys_inside(
    image: Image, shop: dict[str, str]
) -> None:
    """`journeyman run --once /journeys` with the repository's journeys: every one passes,
    the browser checkout included, as uid 10001 on a read-only root; exit status 0."""
    done = podman("run", "--rm", *_run_flags(ROOT / "journeys"), *_env_flags(shop), image.tag,
                  "run", "--once", "/journeys", timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    rows = {line.split()[0]: line.split()[2] for line in done.stdout.splitlines()[1:] if line}
    assert rows["checkout-browser"] == "success"
    assert rows["customer-checkout"] == "success"
    assert "4 of 4 journeys passed" in done.stdout


def test_agent_runs_as_10001_under_seccomp_with_a_read_only_root(agent: Agent) -> None:
    """PID 1 is tini as uid 10001 under a seccomp filter; the root filesystem refuses writes."""
    status = podman("exec", agent.name, "cat", "/proc/1/status").stdout
    fields = dict(line.split(":", 1) for line in status.splitlines())
    assert fields["Uid"].split()[:2] == ["10001", "10001"]
    assert fields["Seccomp"].strip() == "2"  # filter mode: podman's default profile
    assert "tini" in podman("exec", agent.name, "cat", "/proc/1/cmdline").stdout
    write = podman("exec", agent.name, "touch", "/opt/journeyman/x", check=False)
    assert "Read-only file system" in write.stderr


def test_health_ready_and_metrics_answer(agent: Agent) -> None:
    """/healthz, /readyz and /metrics answer on the host, and the image's HEALTHCHECK passes."""
    assert _answers(f"{agent.url}/healthz")
    assert _answers(f"{agent.url}/readyz")
    assert "journey_info{" in httpx.get(f"{agent.url}/metrics", timeout=5).text
    assert podman("healthcheck", "run", agent.name, check=False).returncode == 0


def test_http_and_browser_journeys_pass_in_the_running_agent(agent: Agent) -> None:
    """The agent's /metrics counts successful runs of the HTTP and the browser checkout."""
    journeys = ("customer-checkout", "checkout-browser")
    _wait("both checkouts succeed", _succeeded(agent, *journeys), 120, agent.name)


def test_a_broken_journey_file_is_reported_and_the_others_run(agent: Agent) -> None:
    """A broken file mounted in is logged as rejected, and the other journeys still run."""
    _wait("the HTTP checkout succeeds", _succeeded(agent, "customer-checkout"), 60, agent.name)
    rejected = [e for e in _events(agent.name) if e["event"] == "journey_file_rejected"]
    assert rejected, _logs(agent.name)[-3000:]
    assert rejected[0]["file"] == "/journeys/broken.yaml"
    assert "colour" in rejected[0]["error"]


def test_sigterm_stops_within_the_grace_with_the_last_results_flushed(
    agent: Agent, slow_server: tuple[str, threading.Event], capsys: pytest.CaptureFixture[str]
) -> None:
    """`podman stop` (SIGTERM, default timeout) while a run is in flight: the run finishes
    and is exported, the agent logs its stop and exits 0 before the engine would kill it."""
    arrived = slow_server[1]
    arrived.clear()
    assert arrived.wait(15), "the slow journey did not run"
    began = time.monotonic()
    podman("stop", agent.name, timeout=STOP_TIMEOUT + 20)
    took = time.monotonic() - began
    with capsys.disabled():
        print(f"\npodman stop with a run in flight: {took:.1f} s")
    state = _inspect_container(agent.name)["State"]
    assert state["ExitCode"] == 0, _logs(agent.name)[-3000:]
    assert took < STOP_TIMEOUT
    events = [e["event"] for e in _events(agent.name)]
    stopping = events.index("agent_stopping")
    assert events[-1] == "agent_stopped"
    after = _events(agent.name)[stopping:]
    flushed = [e for e in after if e["event"] == "journey_run" and e["journey"] == "slow-shutdown"]
    assert flushed
    assert flushed[0]["outcome"] == "success"


def _inspect_container(name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = json.loads(podman("container", "inspect", name).stdout)
    return found[0]
