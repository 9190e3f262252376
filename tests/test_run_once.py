"""`journeyman run --once` as a user runs it: the table, JUnit, exit statuses, and a
planted secret absent from every output."""

from __future__ import annotations

import asyncio
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SECRET = 'p@ss/"w0rd planted'

ECHO = """\
journey: echo-secret
business_process: order-to-cash
secrets: {pw: "${env.PLANTED}"}
steps:
  - name: send secret
    http:
      get: ${env.JOURNEY_BASE}/echo
      query: {password: "${secret.pw}"}
    expect: {body_contains: never-there}
"""

OK = """\
journey: healthy
business_process: order-to-cash
steps:
  - name: status
    http: {get: "${env.JOURNEY_BASE}/status/200"}
"""


async def run_once(*args: str, base: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        "run",
        "--once",
        *args,
        env={**os.environ, "JOURNEY_BASE": base, "PLANTED": SECRET},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_failed_journey_exits_1_and_the_secret_is_masked_everywhere(
    shop: str, tmp_path: Path
) -> None:
    """A target echoing the secret back: table, logs and JUnit show *** and never the secret."""
    (tmp_path / "echo.yaml").write_text(ECHO)
    (tmp_path / "ok.yaml").write_text(OK)
    junit = tmp_path / "report.xml"
    code, out, err = await run_once(str(tmp_path), "--junit", str(junit), base=shop)
    report = junit.read_text()
    assert code == 1
    for output in (out, err, report):
        assert "w0rd" not in output
        assert "p%40ss" not in output
    assert "***" in report
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["echo-secret"][1:3] == ["order-to-cash", "failure"]
    assert lines["echo-secret"][-3:] == ["send", "secret", "assertion"]
    assert lines["healthy"][2] == "success"
    cases = {case.get("name"): case for case in ET.fromstring(report).iter("testcase")}
    assert set(cases) == {"echo-secret", "healthy"}
    failure = cases["echo-secret"].find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith("assertion at step 'send secret'")
    assert cases["healthy"].find("failure") is None
    assert float(cases["healthy"].get("time", "-1")) >= 0


async def test_all_passing_exits_0(shop: str, tmp_path: Path) -> None:
    """Every journey passed: exit status 0 and a summary that says so."""
    (tmp_path / "ok.yaml").write_text(OK)
    code, out, _ = await run_once(str(tmp_path), base=shop)
    assert code == 0
    assert out.rstrip().endswith("1 of 1 journeys passed")


async def test_unusable_input_exits_2_but_the_good_journeys_still_run(
    shop: str, tmp_path: Path
) -> None:
    """A broken file is reported with file:line and exit 2; the valid journey still runs."""
    (tmp_path / "ok.yaml").write_text(OK)
    (tmp_path / "bad.yaml").write_text("journey: bad\nbusiness_process: x\nsteps: []\n")
    code, out, err = await run_once(str(tmp_path), base=shop)
    assert code == 2
    assert f"{tmp_path / 'bad.yaml'}:3:" in err
    assert "healthy" in out
