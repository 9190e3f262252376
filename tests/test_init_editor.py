"""The editor wiring `journeyman init` writes, checked with the real YAML language server
(the one VS Code's YAML extension runs) spoken to over stdio as an editor would: a
misspelt field is flagged at its line while typing, a correct journey is clean, and
completion at a step offers the step kinds.

The server comes from the npm registry, pinned, into .cache/ (the Makefile's test
prerequisite fetches it; this module fetches it itself when missing). Without node or
npm the tests skip, except under CI=true, where that is a failure. The server is told
never to fetch the public schema store: no traffic leaves the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lsp_client import LanguageServer, language_server

from agent.cli import main
from agent.language.loader import load

ROOT = Path(__file__).resolve().parent.parent
YAML_LS_VERSION = "1.25.0"  # the Makefile's YAML_LS_VERSION
YAML_LS_CACHE = ROOT / ".cache" / f"yaml-language-server-{YAML_LS_VERSION}"
YAML_LS = YAML_LS_CACHE / "node_modules" / ".bin" / "yaml-language-server"


def yaml_language_server() -> Path:
    """The pinned server: from the cache the Makefile fills, else installed there now."""
    if not YAML_LS.exists():
        npm = shutil.which("npm")
        why = "npm is not installed (scripts/system-deps installs it)"
        if npm is not None:
            YAML_LS_CACHE.mkdir(parents=True, exist_ok=True)
            installed = subprocess.run(
                [npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix",
                 str(YAML_LS_CACHE), f"yaml-language-server@{YAML_LS_VERSION}"],
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            why = f"npm install failed: {installed.stderr.strip()[-300:]}"
    if YAML_LS.exists() and shutil.which("node"):
        return YAML_LS
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and no yaml-language-server {YAML_LS_VERSION}: {why}")
    pytest.skip(f"no yaml-language-server {YAML_LS_VERSION}: {why}")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder scaffolded by `journeyman init`."""
    journeys = tmp_path / "journeys"
    assert main(["init", str(journeys)]) == 0
    return journeys


def editor_settings(folder: Path) -> dict[str, Any]:
    """The `yaml` settings VS Code would send: the scaffold's yaml.schemas, no schema store."""
    written = json.loads((folder / ".vscode" / "settings.json").read_text())
    return {
        "schemas": written["yaml.schemas"],
        "validate": True,
        "completion": True,
        "schemaStore": {"enable": False},  # the public catalog is fetched from the internet
    }


@pytest.fixture
async def server(folder: Path) -> AsyncIterator[LanguageServer]:
    """The server on the scaffolded folder as workspace, configured from its settings."""
    command = [str(yaml_language_server()), "--stdio"]
    settings = editor_settings(folder)
    async with language_server(command, folder, {"yaml": settings, "http": {}}) as running:
        await running.notify("workspace/didChangeConfiguration", {"settings": {"yaml": settings}})
        # The server pulls its settings on that notification; it answers a code lens
        # request only once they are applied, so files opened next are checked with them.
        await running.request("textDocument/codeLens", {"textDocument": {"uri": folder.as_uri()}})
        yield running


def misspell(text: str, right: str, wrong: str) -> tuple[str, int]:
    """``text`` with the first ``right`` on a line made ``wrong``, and that line (0-based)."""
    lines = text.splitlines(keepends=True)
    line = next(i for i, content in enumerate(lines) if content.lstrip().startswith(right))
    lines[line] = lines[line].replace(right, wrong, 1)
    return "".join(lines), line


async def test_a_misspelt_field_is_flagged_at_its_line(
    server: LanguageServer, folder: Path
) -> None:
    """`expct:` for `expect:` in a scaffolded journey: one error naming it, on the line the
    loader reports; the untouched browser journey and the catalog get none."""
    path = folder / "shop-browse.yaml"
    text, line = misspell(path.read_text(), "expect:", "expct:")
    path.write_text(text)
    (problem,) = load([path]).files[path].errors
    assert problem.line == line + 1  # the loader counts from 1, LSP from 0

    diagnostics = await server.diagnostics(await server.open(path, text))
    assert [(d["range"]["start"]["line"], d["message"]) for d in diagnostics] == [
        (line, "Property expct is not allowed.")
    ]
    for clean in ("shop-checkout.yaml", "catalog.yaml"):
        uri = await server.open(folder / clean, (folder / clean).read_text())
        assert await server.diagnostics(uri) == [], clean


async def test_the_catalog_is_checked_against_its_own_schema(
    server: LanguageServer, folder: Path
) -> None:
    """`volum:` for `volume:` in catalog.yaml: one error naming it, at its line."""
    text, line = misspell((folder / "catalog.yaml").read_text(), "volume:", "volum:")
    diagnostics = await server.diagnostics(await server.open(folder / "catalog.yaml", text))
    assert [(d["range"]["start"]["line"], d["message"]) for d in diagnostics] == [
        (line, "Property volum is not allowed.")
    ]


async def test_a_new_file_gets_the_schema_from_the_settings(
    server: LanguageServer, folder: Path
) -> None:
    """A journey written later, without a modeline, is checked through yaml.schemas."""
    text = """\
journey: refund
business_process: order-to-cash
titel: Refund
steps:
  - name: orders page
    http: {get: "${env.JOURNEY_SHOP_URL}/orders"}
"""
    diagnostics = await server.diagnostics(await server.open(folder / "refund.yaml", text))
    assert [(d["range"]["start"]["line"], d["message"]) for d in diagnostics] == [
        (2, "Property titel is not allowed.")
    ]


async def test_completion_at_a_step_offers_the_step_kinds_then_their_fields(
    server: LanguageServer, folder: Path
) -> None:
    """Completion in a new step lists the step kinds; once it is an HTTP step, `expect`."""
    scaffolded = (folder / "shop-browse.yaml").read_text()
    new_step = scaffolded + "  - name: new step\n    \n"
    assert await completion(server, folder / "new-step.yaml", new_step) >= {
        "http",
        "browser",
        "tcp",
    }
    http_step = scaffolded + '  - name: new step\n    http: {get: "${base}/cart"}\n    \n'
    assert await completion(server, folder / "http-step.yaml", http_step) >= {"expect", "extract"}


async def completion(server: LanguageServer, path: Path, text: str) -> set[str]:
    """The labels offered at the start of ``text``'s last line, indented as a step field."""
    uri = await server.open(path, text)
    line = len(text.splitlines()) - 1
    offered = await server.request(
        "textDocument/completion",
        {"textDocument": {"uri": uri}, "position": {"line": line, "character": 4}},
    )
    items = offered["items"] if isinstance(offered, dict) else offered
    return {item["label"] for item in items}
