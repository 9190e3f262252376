"""What the agent hides from the cyclic garbage collector after each load of journeys."""

from __future__ import annotations

import gc
import weakref

from agent.app import _freeze_loaded


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
