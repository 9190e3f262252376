"""docs/first-journey.md stays true: its journeys validate beside the scaffold's catalog
and pass against the demo shop, its `journeyman` command lines parse, and the output of
`journeyman init` it shows is what init prints."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from browser_support import require_chromium

from agent.cli import _parser, main
from agent.demo.server import start_shop
from agent.language.loader import load
from agent.run.browser_pool import BrowserPool
from agent.run.context import RunEnvironment
from agent.run.runner import run_journey

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "first-journey.md").read_text()
DEMO_SHOP = "http://127.0.0.1:8080"  # where the doc's shop listens
ENVIRON = {"JOURNEY_SHOP_URL": DEMO_SHOP, "SHOP_PASSWORD": "tea-for-two"}


def blocks(language: str) -> list[str]:
    """The doc's fenced blocks of ``language`` ("" for the unmarked ones)."""
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC, re.MULTILINE | re.DOTALL)


def commands() -> list[list[str]]:
    """Every `journeyman` command line of the doc's shell blocks, split as a shell would,
    without its comment, output redirection or pipe."""
    joined = (block.replace("\\\n", " ") for block in blocks("sh"))  # continued lines
    lines = (re.split(r" [#>|] ", line)[0] for block in joined for line in block.splitlines())
    return [shlex.split(line) for line in lines if line.startswith("journeyman ")]


@pytest.fixture
def scaffold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`journeyman init` run in an empty folder, as the doc runs it."""
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    return tmp_path / "journeys"


def test_the_doc_shows_what_init_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The block after `journeyman init` is init's output, word for word."""
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert capsys.readouterr().out in blocks("")


def test_every_command_line_parses() -> None:
    """Each `journeyman ...` line in the doc is a command and options the CLI accepts."""
    lines = commands()
    assert {line[1] for line in lines} >= {"init", "validate", "run", "schema", "record"}
    for line in lines:
        _parser().parse_args(line[1:])


async def test_the_doc_journeys_validate_and_pass_against_the_demo_shop(scaffold: Path) -> None:
    """Each YAML block is a journey file that loads without a problem beside the
    scaffold's catalog, and runs green against the demo shop (the recording as written
    names the demo shop's own address: here the shop listens on another port)."""
    require_chromium()
    journeys = []
    for number, text in enumerate(blocks("yaml")):
        path = scaffold / f"doc-{number}.yaml"
        path.write_text(text)
        loaded = load([scaffold / "catalog.yaml", path], environ=ENVIRON)
        assert [str(p) for p in loaded.errors + loaded.warnings] == [], text
        (loaded_journey,) = loaded.journeys
        journeys.append(loaded_journey.journey)
    assert len(journeys) == 3
    async with await start_shop() as shop, BrowserPool(max_contexts=1) as browser:
        env = RunEnvironment(environ=shop.environ(), browser=browser)
        for journey in journeys:
            if journey.variables.get("base") == DEMO_SHOP:
                journey = journey.model_copy(update={"variables": {"base": shop.url}})
            result = await run_journey(journey, env)
            assert result.ok, f"{result.journey}: {result.failed_step}: {result.message}"
