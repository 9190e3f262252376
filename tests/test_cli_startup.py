"""What the command line does to start fast: it names the rules formats instead of
importing the generator, and loads the agent with the garbage collector paused."""

from __future__ import annotations

import argparse
import gc
import weakref

from agent import cli
from generators.rules import FORMATS


def test_rules_formats_are_the_generators() -> None:
    """`rules --format` offers exactly the formats the rules generator writes."""
    (commands,) = (a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    (fmt,) = (a for a in commands.choices["rules"]._actions if a.dest == "format")
    assert tuple(fmt.choices or ()) == cli._RULE_FORMATS == FORMATS


def test_the_agent_loads_with_the_collector_paused_then_frozen() -> None:
    """While the command line loads modules, automatic garbage collection is off; then
    their garbage is collected, what lives is frozen, and the collector is as before (on,
    unless it was off)."""
    gc.unfreeze()
    try:
        with cli._uncollected():
            assert not gc.isenabled()
            kept = _Module()
            garbage = weakref.ref(_Module())
        assert gc.isenabled()
        assert garbage() is None
        assert gc.get_freeze_count() > 0
        assert all(o is not kept for o in gc.get_objects())
        gc.disable()
        with cli._uncollected():
            pass
        assert not gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


class _Module:
    """Stands for what an import builds: in a cycle, so only the collector frees it."""

    def __init__(self) -> None:
        self.me = self
