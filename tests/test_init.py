"""`journeyman init`: the scaffold it writes validates, runs green against the demo shop,
carries its editor wiring, and nothing is overwritten without --force."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest
from browser_support import require_chromium

from agent.cli import main
from agent.demo import start_shop
from agent.language.schema import catalog_file_schema, journey_file_schema

MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


def init(*args: str) -> int:
    return main(["init", *args])


def test_init_writes_the_default_folder_and_says_what_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a folder, init writes journeys/ and prints each file and the next commands."""
    monkeypatch.chdir(tmp_path)
    assert init() == 0
    out = capsys.readouterr().out
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == [
        "journeys/.journeyman/catalog.schema.json",
        "journeys/.journeyman/journey.schema.json",
        "journeys/.vscode/settings.json",
        "journeys/catalog.yaml",
        "journeys/shop-browse.yaml",
        "journeys/shop-checkout.yaml",
    ]
    assert all(f"  {name}\n" in out for name in written)
    for command in ("validate journeys", "run --once journeys", "demo journeys"):
        assert f"journeyman {command}" in out


def test_existing_files_are_kept_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second init writes nothing and exits 2 naming the file; --force overwrites."""
    folder = tmp_path / "mine"
    assert init(str(folder)) == 0
    (folder / "catalog.yaml").write_text("# my own\n")
    capsys.readouterr()
    assert init(str(folder)) == 2
    err = capsys.readouterr().err
    assert err.startswith("journeyman init: would overwrite ")
    assert f"{folder / 'catalog.yaml'}," in err
    assert "(--force overwrites them)" in err
    assert err.count("\n") == 1
    assert (folder / "catalog.yaml").read_text() == "# my own\n"
    assert init(str(folder), "--force") == 0
    assert "business_processes:" in (folder / "catalog.yaml").read_text()


@pytest.mark.parametrize(
    ("in_the_way", "message"),
    [
        ("journeys", "journeys exists and is not a folder"),
        ("journeys/.vscode", "journeys/.vscode exists and is not a folder"),
        ("journeys/catalog.yaml/", "journeys/catalog.yaml is a folder, where init writes a file"),
    ],
)
def test_something_in_the_way_is_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    in_the_way: str,
    message: str,
) -> None:
    """A file where a folder goes, or a folder where a file goes, even with --force:
    exit 2, one line, nothing written."""
    monkeypatch.chdir(tmp_path)
    if in_the_way != "journeys":
        Path("journeys").mkdir()
    if in_the_way.endswith("/"):
        Path(in_the_way).mkdir()
    else:
        Path(in_the_way).write_text("in the way")
    assert init("journeys", "--force") == 2
    assert capsys.readouterr().err == f"journeyman init: {message}\n"
    assert not Path("journeys/shop-browse.yaml").exists()


def test_the_scaffold_validates_without_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`validate --require-env` passes the scaffold (catalog included) with no message."""
    monkeypatch.setenv("JOURNEY_SHOP_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("SHOP_PASSWORD", "tea-for-two")
    assert init(str(tmp_path / "journeys")) == 0
    capsys.readouterr()
    assert main(["validate", "--require-env", str(tmp_path / "journeys")]) == 0
    assert capsys.readouterr().out == "2 journeys OK\n"


def test_editor_wiring_names_the_written_schemas(tmp_path: Path) -> None:
    """Each YAML file's modeline and the VS Code settings name schema files that exist and
    hold what `journeyman schema` (and `schema --catalog`) print."""
    folder = tmp_path / "journeys"
    assert init(str(folder)) == 0
    journey, catalog = journey_file_schema(), catalog_file_schema()
    settings = json.loads((folder / ".vscode" / "settings.json").read_text())
    assert settings["yaml.schemas"] == {
        "./.journeyman/journey.schema.json": ["*.yaml", "*.yml", "!catalog.yaml"],
        "./.journeyman/catalog.schema.json": ["catalog.yaml"],
    }
    expected = {"shop-browse.yaml": journey, "shop-checkout.yaml": journey, "catalog.yaml": catalog}
    for name, schema in expected.items():
        first = (folder / name).read_text().splitlines()[0]
        modeline = MODELINE.match(first)
        assert modeline, f"{name} starts with a yaml-language-server modeline"
        assert json.loads((folder / modeline.group(1)).read_text()) == schema, name


async def test_the_scaffold_runs_green_against_the_demo_shop(tmp_path: Path) -> None:
    """`run --once` on the scaffold passes both journeys, HTTP and browser, on the demo shop."""
    require_chromium()
    folder = tmp_path / "journeys"
    assert init(str(folder)) == 0
    async with await start_shop() as shop:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", "--once", str(folder), "--log-level", "error",
            env={**os.environ, **shop.environ()},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
    assert process.returncode == 0, out.decode() + err.decode()
    table = out.decode()
    assert re.search(r"^shop-browse +order-to-cash +success ", table, re.MULTILINE)
    assert re.search(r"^shop-checkout +order-to-cash +success ", table, re.MULTILINE)
    assert "2 of 2 journeys passed" in table
