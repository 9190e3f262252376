"""What the agent hides from the cyclic garbage collector after each load of journeys."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

from agent.app import YOUNG_COLLECTION_THRESHOLD, Settings, _freeze_loaded, run_agent


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_the_first_load_freezes_without_collecting_and_a_reload_collects() -> None:
    """The first load freezes without a collection (~15 ms of the start); a reload
    collects the garbage frozen before, then freezes again."""
    gc.unfreeze()
    gc.disable()
    try:
        node = _Node()
        alive = weakref.ref(node)
        del node
        _freeze_loaded(reload=False)
        assert alive() is not None
        assert gc.get_freeze_count() > 0
        _freeze_loaded(reload=True)
        assert alive() is None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()


async def test_the_agent_collects_young_objects_less_often_while_it_runs(tmp_path: Path) -> None:
    """While an agent runs, young collections wait for 10,000 allocations instead of 700
    (each one promoted the objects of runs in flight, soon causing full collections that
    delayed runs); when it stops, the process gets its own thresholds back."""
    before = gc.get_threshold()
    stop = asyncio.Event()
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    settings = Settings(paths=(tmp_path,), listen="127.0.0.1:0")
    agent = asyncio.create_task(
        run_agent(settings, stop, environ={}, on_listening=listening.set_result)
    )
    await listening
    assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
    stop.set()
    await agent
    assert gc.get_threshold() == before
