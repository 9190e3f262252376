"""Sharding: --shard I/N and --shard auto parsing, and N replicas splitting journeys with
no coordination."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from prometheus_client import CollectorRegistry

from agent.language.model import Journey
from agent.run.results import RunIds, RunResult
from agent.schedule.scheduler import Scheduler
from agent.schedule.sharding import COUNT_VAR, ORDINAL_VAR, Shard, parse_shard, stable_hash


def test_two_shards_partition_100_ids() -> None:
    """1/2 and 2/2 together own every id exactly once, each a fair share."""
    ids = [f"journey-{n}" for n in range(100)]
    first = {i for i in ids if parse_shard("1/2").owns(i)}
    second = {i for i in ids if parse_shard("2/2").owns(i)}
    assert first | second == set(ids)
    assert not first & second
    assert 30 <= len(first) <= 70


def test_three_shards_partition_without_gaps() -> None:
    """With N=3 every id lands in exactly one shard."""
    shards = [Shard(i, 3) for i in (1, 2, 3)]
    for n in range(300):
        assert sum(shard.owns(f"j{n}") for shard in shards) == 1


def test_hash_is_stable_across_processes() -> None:
    """The hash is sha256-based (pinned), not Python's per-process hash()."""
    assert stable_hash("checkout") == 14372708626632507101


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0/2", "1 <= I <= N, got 0/2"),
        ("3/2", "1 <= I <= N, got 3/2"),
        ("1/0", "1 <= I <= N, got 1/0"),
        ("a/b", r"--shard must be I/N such as 1/3 \(this replica's share\) or auto, got 'a/b'"),
        ("2", "--shard must be I/N such as 1/3"),
    ],
)
def test_bad_shard_is_a_clear_error(text: str, message: str) -> None:
    """A malformed or out-of-range --shard says what is expected and what was given."""
    with pytest.raises(ValueError, match=message):
        parse_shard(text)


async def test_scheduler_keeps_only_its_shard() -> None:
    """update() schedules only the journeys the scheduler's shard owns."""
    journeys = [
        Journey.model_validate(
            {
                "journey": f"j{n}",
                "business_process": "order-to-cash",
                "steps": [{"name": "home", "http": {"get": "http://127.0.0.1:9/"}}],
            }
        )
        for n in range(20)
    ]

    async def never(journey: Journey, ids: RunIds) -> RunResult:
        raise AssertionError("no run is due within this test")

    def export(result: RunResult) -> None:
        raise AssertionError("nothing to export")

    logger = structlog.wrap_logger(
        structlog.testing.CapturingLogger(),
        processors=[],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    scheduler = Scheduler(
        run=never,
        export=export,
        registry=CollectorRegistry(),
        logger=logger,
        shard=Shard(2, 2),
    )
    update = scheduler.update(journeys)
    owned = {j.journey for j in journeys if Shard(2, 2).owns(j.journey)}
    assert set(update.added) == owned
    assert {j.journey for j in update.journeys} == owned
    await scheduler.shutdown(0)


@pytest.mark.parametrize(
    ("environ", "hostname", "shard"),
    [
        ({COUNT_VAR: "3"}, "journeyman-0", Shard(1, 3)),
        ({COUNT_VAR: "3"}, "journeyman-eu-west-1-2", Shard(3, 3)),
        ({COUNT_VAR: " 2 "}, "agent-1.agent.journeyman.svc.cluster.local", Shard(2, 2)),
        ({COUNT_VAR: "2", ORDINAL_VAR: "1"}, "not-a-pod-name", Shard(2, 2)),
        ({COUNT_VAR: "2", ORDINAL_VAR: "0"}, "journeyman-1", Shard(1, 2)),  # the env wins
        ({COUNT_VAR: "1", ORDINAL_VAR: ""}, "journeyman-0", Shard(1, 1)),  # empty: hostname
    ],
)
def test_shard_auto_reads_the_pod_ordinal_and_the_count(
    environ: dict[str, str], hostname: str, shard: Shard
) -> None:
    """auto: I is the ordinal + 1 (JOURNEYMAN_SHARD_ORDINAL, else the hostname NAME-ORDINAL,
    FQDN or not); N is JOURNEYMAN_SHARD_COUNT."""
    assert parse_shard("auto", environ, hostname) == shard
    assert parse_shard(" AUTO ", environ, hostname) == shard


@pytest.mark.parametrize(
    ("environ", "hostname", "message"),
    [
        ({}, "journeyman-0", f"--shard auto needs {COUNT_VAR} (the StatefulSet's replicas) as "
         "a whole number; it is not set"),
        ({COUNT_VAR: "three"}, "journeyman-0", "as a whole number; got 'three'"),
        ({COUNT_VAR: "0"}, "journeyman-0", f"{COUNT_VAR} must be at least 1, got 0"),
        ({COUNT_VAR: "2"}, "laptop", f"--shard auto cannot tell this pod's ordinal: {ORDINAL_VAR} "
         "is not set and the hostname 'laptop' is not a StatefulSet pod's NAME-ORDINAL"),
        ({COUNT_VAR: "2"}, "", "the hostname '' is not"),
        ({COUNT_VAR: "2", ORDINAL_VAR: "-1"}, "journeyman-0", f"needs {ORDINAL_VAR} (this pod's "
         "ordinal: 0, 1, ...) as a whole number; got '-1'"),
        ({COUNT_VAR: "2"}, "journeyman-2", "--shard auto: ordinal 2 (from the hostname "
         f"'journeyman-2') is not below {COUNT_VAR}=2; set it to the StatefulSet's replicas"),
        ({COUNT_VAR: "2", ORDINAL_VAR: "5"}, "x", f"ordinal 5 (from {ORDINAL_VAR}) is not below"),
    ],
)  # fmt: skip
def test_shard_auto_says_why_it_cannot_tell(
    environ: dict[str, str], hostname: str, message: str
) -> None:
    """When auto cannot tell the ordinal or the count, one ValueError says which and why."""
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_shard("auto", environ, hostname)


def _run_once(folder: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "journeyman"
    return subprocess.run(
        [script, "run", "--once", str(folder), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "JOURNEYMAN_SHARD": "auto"} | environ,
        check=False,
    )


def test_shard_auto_runs_this_pods_share(tmp_path: Path) -> None:
    """`journeyman run --once` with JOURNEYMAN_SHARD=auto runs exactly the journeys of
    ordinal + 1 of N; when it cannot tell, one line on stderr and exit 2, no traceback."""
    ids = [f"j{n}" for n in range(8)]
    for journey_id in ids:
        (tmp_path / f"{journey_id}.yaml").write_text(
            f"journey: {journey_id}\nbusiness_process: order-to-cash\n"
            "steps: [{name: home, http: {get: 'http://127.0.0.1:9/'}}]\n"
        )
    done = _run_once(tmp_path, {COUNT_VAR: "2", ORDINAL_VAR: "1"})
    ran = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("j")}
    assert ran == {i for i in ids if Shard(2, 2).owns(i)}, done.stdout + done.stderr
    done = _run_once(tmp_path, {COUNT_VAR: "2"})
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"journeyman: --shard auto cannot tell this pod's ordinal: {ORDINAL_VAR} is not set and "
        f"the hostname {os.uname().nodename!r} is not a StatefulSet pod's NAME-ORDINAL"
    ]
