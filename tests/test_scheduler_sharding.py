"""Sharding: --shard I/N parsing, and N replicas splitting journeys with no coordination."""

from __future__ import annotations

import logging

import pytest
import structlog
from prometheus_client import CollectorRegistry

from agent.language.model import Journey
from agent.run.results import RunIds, RunResult
from agent.schedule.scheduler import Scheduler
from agent.schedule.sharding import Shard, parse_shard, stable_hash


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
        ("a/b", "--shard must be I/N such as 1/3"),
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
