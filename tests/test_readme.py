"""The README's example journey is valid and passes against the demo shop in a real
browser, and the README's quick start is what the Makefile and CI run."""

from __future__ import annotations

import re
from pathlib import Path

from browser_support import require_chromium

from agent.demo.server import start_shop
from agent.language.loader import load
from agent.run.browser_pool import BrowserPool
from agent.run.context import RunEnvironment
from agent.run.runner import run_journey

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _example_journey() -> str:
    section = README[README.index("## A journey") :]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


async def test_readme_journey_is_valid_and_passes_against_the_demo_shop(tmp_path: Path) -> None:
    """The example loads without a problem and its HTTP and browser steps all pass."""
    require_chromium()
    path = tmp_path / "example.yaml"
    path.write_text(_example_journey())
    loaded = load([path], environ={"JOURNEY_SHOP_URL": "x", "SHOP_PASSWORD": "y"})
    assert [str(p) for p in loaded.errors + loaded.warnings] == []
    (example,) = loaded.journeys
    async with await start_shop() as shop, BrowserPool(max_contexts=1) as browser:
        env = RunEnvironment(environ=shop.environ(), browser=browser)
        result = await run_journey(example.journey, env)
    assert result.ok, f"{result.failed_step}: {result.reason}: {result.message}"
    assert [step.kind for step in result.steps] == ["http", "http", "http", "browser"]


def test_quick_start_commands_are_the_makefile_and_ci() -> None:
    """`make demo` and `make test` are the README's quick start, targets of the Makefile,
    and `make test` is what .ci/run runs."""
    quick_start = README[README.index("## Quick start") : README.index("## How it works")]
    assert "make demo" in quick_start
    assert "make test" in quick_start
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M)
    assert re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
