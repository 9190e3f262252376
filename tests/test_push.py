"""`journeyman run --once --push URL` against Debian's Pushgateway on loopback: a group per
journey keyed job/journey/location, a PUT that replaces the group's old series, and a
failed push reported on stderr with its own exit status."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_server import free_port, pushgateway

from exporters.pushgateway import group_path

LOCATION = "eu-west/ci"  # a slash: the gateway gets it base64-encoded
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _journey(journey: str, *steps: tuple[str, int]) -> str:
    """A journey whose steps GET /status/<code> from the test shop."""
    lines = [f"journey: {journey}", "business_process: order-to-cash", "steps:"]
    for name, code in steps:
        lines += [f"  - name: {name}", f'    http: {{get: "${{env.JOURNEY_BASE}}/status/{code}"}}']
    return "\n".join(lines) + "\n"


async def _run_once(*args: str, base: str) -> tuple[int, str]:
    """`journeyman run --once ARGS` as a process: its exit status and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "--once", "--location", LOCATION, *args,
        env={**os.environ, "JOURNEY_BASE": base},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        _, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, err.decode()


async def _gateway_samples(url: str) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/metrics")
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _group(journey: str, **labels: str) -> frozenset[tuple[str, str]]:
    """The labels of a pushed series: the grouping key's (and the gateway's empty
    ``instance``), the agent's and ``labels``."""
    key = {"job": "journeyman", "journey": journey, "location": LOCATION, "instance": ""}
    process = {"business_process": "order-to-cash", "persona": "customer"}
    return frozenset({**key, **process, **labels}.items())


def test_grouping_values_a_path_cannot_hold_are_base64url() -> None:
    """Plain ids stay plain; a slash or an empty value is encoded as the gateway expects."""
    assert group_path("journeyman", "checkout", "eu-1") == (
        "/metrics/job/journeyman/journey/checkout/location/eu-1"
    )
    assert group_path("journeyman", "checkout", "eu-west/ci").endswith(
        "/location@base64/ZXUtd2VzdC9jaQ=="
    )
    assert group_path("journeyman", "checkout", "").endswith("/location@base64/=")


async def test_each_journey_is_pushed_as_its_own_group(shop: str, tmp_path: Path) -> None:
    """A passing and a failing journey: exit 1 (a journey failed), both groups on the
    gateway with their grouping labels and their run counted."""
    (tmp_path / "checkout.yaml").write_text(_journey("checkout", ("home", 200)))
    (tmp_path / "refund.yaml").write_text(_journey("refund", ("refund", 500)))
    async with pushgateway(tmp_path) as gateway:
        code, err = await _run_once(str(tmp_path), "--push", gateway, base=shop)
        samples = await _gateway_samples(gateway)
    assert code == 1, err
    assert "push of" not in err
    assert samples[("journey_runs_total", _group("checkout", outcome="success"))] == 1
    assert samples[("journey_runs_total", _group("checkout", outcome="failure"))] == 0
    assert samples[("journey_runs_total", _group("refund", outcome="failure"))] == 1
    assert samples[("journey_success", _group("refund"))] == 0
    for journey in ("checkout", "refund"):
        key = frozenset(
            {"job": "journeyman", "journey": journey, "location": LOCATION, "instance": ""}.items()
        )
        assert samples[("push_time_seconds", key)] > 0
        assert samples[("push_failure_time_seconds", key)] == 0


async def test_a_push_replaces_what_the_group_held(shop: str, tmp_path: Path) -> None:
    """PUT: after the journey lost its second step, that step's series are gone from the
    gateway, and the run counter is this run's, not a sum."""
    journey = tmp_path / "checkout.yaml"
    journey.write_text(_journey("checkout", ("home", 200), ("cart", 200)))
    async with pushgateway(tmp_path) as gateway:
        assert (await _run_once(str(journey), "--push", gateway, base=shop))[0] == 0
        before = await _gateway_samples(gateway)
        journey.write_text(_journey("checkout", ("home", 200)))
        assert (await _run_once(str(journey), "--push", gateway, base=shop))[0] == 0
        after = await _gateway_samples(gateway)

    def steps(samples: Samples) -> set[str]:
        return {
            dict(labels)["step"]
            for name, labels in samples
            if name == "journey_step_duration_seconds_count"
        }

    assert steps(before) == {"home", "cart"}
    assert steps(after) == {"home"}
    assert after[("journey_runs_total", _group("checkout", outcome="success"))] == 1


async def test_a_failed_push_exits_3_unless_a_journey_failed(shop: str, tmp_path: Path) -> None:
    """No gateway listening: each journey's push is reported on stderr; passing journeys
    exit 3, a failing journey still exits 1."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    ok, bad = tmp_path / "ok.yaml", tmp_path / "bad.yaml"
    ok.write_text(_journey("checkout", ("home", 200)))
    bad.write_text(_journey("refund", ("refund", 500)))
    code, err = await _run_once(str(ok), "--push", nowhere, base=shop)
    assert code == 3
    assert f"journeyman: push of checkout to {nowhere} failed: ConnectError" in err
    code, err = await _run_once(str(ok), str(bad), "--push", nowhere, base=shop)
    assert code == 1
    assert f"push of refund to {nowhere} failed" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--push", "http://127.0.0.1:9/"], "--push needs --once"),
        (["--once", "--push", "gateway:9091"], "must be an http:// or https:// URL"),
    ],
)
async def test_push_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    """--push without --once, or a URL that is not http(s), is refused before any run."""
    (tmp_path / "ok.yaml").write_text(_journey("checkout", ("home", 200)))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", str(tmp_path), *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        _, err = await process.communicate()
    assert process.returncode == 2
    assert message in err.decode()
