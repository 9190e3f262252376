"""The logging setup: JSON lines carry tracebacks, never frame locals."""

from __future__ import annotations

import io
import json

import structlog

from agent.logconfig import configure_logging


def _fail(password: str) -> None:
    raise RuntimeError("exporter bug")


def test_json_logs_carry_the_traceback_but_no_locals() -> None:
    """An exception logged as JSON names its frames and type, and no local variable's value."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    try:
        _fail("planted-local-value")
    except RuntimeError as error:
        structlog.get_logger().error("export_failed", exc_info=error)
    line = json.loads(stream.getvalue().splitlines()[-1])
    frames = line["exception"][0]["frames"]
    assert line["exception"][0]["exc_type"] == "RuntimeError"
    assert [frame["name"] for frame in frames][-1] == "_fail"
    assert "planted-local-value" not in stream.getvalue()
