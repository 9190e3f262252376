"""`journeyman validate` and `journeyman schema`: output, exit statuses, an editor-ready schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from agent.cli import main

JOURNEY = """\
journey: {id}
business_process: order-to-cash
schedule: {{every: 5m, timeout: 30s}}
slo: {{availability: 99.5%, latency: {{threshold: 800ms, objective: 95%}}, window: 28d}}
variables:
  base: ${{env.JOURNEY_SHOP_URL}}
steps:
  - name: home page
    http: {{get: "${{base}}/", max_body: 1MB}}
    expect: {{status: 200, body_contains: Welcome, max_duration: 800ms}}
  - name: buy
    browser:
      - goto: ${{base}}/cart
"""


def journeys(folder: Path, *ids: str) -> Path:
    for journey_id in ids:
        (folder / f"{journey_id}.yaml").write_text(JOURNEY.format(id=journey_id))
    return folder


def test_console_script_reports_errors_and_exits_2(tmp_path: Path) -> None:
    """The installed `journeyman` prints each error as file:line:col: path: message, then the
    count of good journeys and bad files, and exits 2."""
    journeys(tmp_path, "a-good")
    (tmp_path / "b-bad.yaml").write_text(JOURNEY.format(id="b-bad").replace("200", "2000"))
    script = Path(sys.executable).parent / "journeyman"
    done = subprocess.run(
        [script, "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"JOURNEY_SHOP_URL": "http://127.0.0.1:1", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout.splitlines() == [
        f"{tmp_path}/b-bad.yaml:10:14: steps[0].expect.status: must be an HTTP status code "
        "(100-599), got 2000",
        "1 journey OK, 1 file with errors",
    ]


def test_good_journeys_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Valid files print only the count and exit 0."""
    monkeypatch.setenv("JOURNEY_SHOP_URL", "http://127.0.0.1:1")
    assert main(["validate", str(journeys(tmp_path, "one", "two"))]) == 0
    assert capsys.readouterr().out == "2 journeys OK\n"


def test_unset_env_warns_and_require_env_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset ${env.X} is a printed warning (exit 0); with --require-env an error (exit 2)."""
    monkeypatch.delenv("JOURNEY_SHOP_URL", raising=False)
    journeys(tmp_path, "one")
    where = f"{tmp_path}/one.yaml:6:3"
    assert main(["validate", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{where}: warning: variables.base: environment variable JOURNEY_SHOP_URL is not set",
        "1 journey OK",
    ]
    assert main(["validate", "--require-env", str(tmp_path)]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f"{where}: variables.base: environment variable JOURNEY_SHOP_URL is not set",
        "0 journeys OK, 1 file with errors",
    ]


def printed_schema(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["schema"]) == 0
    schema: dict[str, object] = json.loads(capsys.readouterr().out)
    return schema


def test_schema_is_draft7_with_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    """`journeyman schema` prints a valid draft-7 schema whose fields carry descriptions."""
    schema = printed_schema(capsys)
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    journey = schema["definitions"]["Journey"]  # type: ignore[index]
    assert journey["properties"]["secrets"]["description"]
    assert "steps" in journey["required"]


def test_schema_accepts_real_files_and_flags_typos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The schema accepts a journey and a list of journeys written with units (5m, 99.5%, 1MB),
    and rejects an unknown key, as an editor would show it."""
    validator = jsonschema.Draft7Validator(printed_schema(capsys))
    one = yaml.safe_load(JOURNEY.format(id="one"))
    assert list(validator.iter_errors(one)) == []
    assert list(validator.iter_errors([one, one])) == []
    one["steps"][0]["expct"] = {"status": 200}
    assert list(validator.iter_errors(one))
