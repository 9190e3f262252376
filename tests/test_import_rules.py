"""Which side may import which: the journey language never reaches the runtime, exporters
read only the results contract, generators read journeys and never runs.

One test imports for real in a fresh interpreter (what ``journeyman validate`` loads);
the others read every source file's imports with ``ast`` (``import`` and ``from``
statements anywhere in the file, ``TYPE_CHECKING`` blocks and functions included).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ("httpx", "httpcore", "playwright", "aiohttp", "prometheus_client")
AGENT_SIDE = ("agent.run", "agent.schedule", "agent.serve", "agent.app", "exporters", "generators")


def imports(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """(line, module or module.name) of every import in the file, relative ones resolved."""
    package = path.relative_to(root).parent.parts  # a module's, or an __init__'s own
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x, from ..y import z
                parent = ".".join(package[: len(package) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                yield node.lineno, base if alias.name == "*" else f"{base}.{alias.name}"


def within(name: str, modules: Iterable[str]) -> bool:
    return any(name == module or name.startswith(f"{module}.") for module in modules)


def violations(
    files: Iterable[Path], forbidden: Iterable[str], allowed: Iterable[str] = ()
) -> list[str]:
    """``file:line: name`` for each import of a forbidden module not explicitly allowed."""
    return [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in files
        for line, name in imports(path)
        if within(name, forbidden) and not within(name, allowed)
    ]


def language_side() -> list[Path]:
    """The journey language and the language side of each step kind."""
    steps = ROOT / "agent" / "steps"
    return [
        *sorted((ROOT / "agent" / "language").rglob("*.py")),
        *sorted(steps.glob("*/model.py")),
        steps / "kind.py",
        steps / "__init__.py",
    ]


def test_imports_sees_every_form(tmp_path: Path) -> None:
    """The checker sees plain, from, relative, nested and TYPE_CHECKING imports."""
    probe = tmp_path / "exporters" / "sub" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "import httpx.trace\n"
        "from agent.run import runner, results\n"
        "from . import base\n"
        "from ..table import format_table\n"
        "if TYPE_CHECKING:\n    from playwright.async_api import Page\n"
        "def later():\n    import aiohttp\n"
    )
    assert sorted(name for _, name in imports(probe, root=tmp_path)) == [
        "agent.run.results",
        "agent.run.runner",
        "aiohttp",
        "exporters.sub.base",
        "exporters.table.format_table",
        "httpx.trace",
        "playwright.async_api.Page",
    ]


def test_validating_imports_no_browser_or_http_stack() -> None:
    """Loading journeys/, building the schema and `journeyman validate journeys/` in a
    fresh interpreter leave httpx, httpcore, Playwright, aiohttp, prometheus-client out."""
    script = f"""
import contextlib, io, json, os, sys
from agent.language.loader import load
from agent.language.schema import journey_file_schema
from agent.cli import main
loaded = load(["journeys"], environ=os.environ)
assert loaded.journeys and all(file.ok for file in loaded.files.values())
journey_file_schema()
with contextlib.redirect_stdout(io.StringIO()):
    status = main(["validate", "journeys/"])
print(json.dumps([status, sorted(m for m in sys.modules if m.split(".")[0] in {RUNTIME!r})]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    status, loaded = json.loads(done.stdout.splitlines()[-1])
    assert status == 0
    assert loaded == []


def test_an_idle_agent_leaves_playwright_and_cryptography_unloaded() -> None:
    """The agent and its HTTP and TCP kinds import neither Playwright's API (it loads with
    the first browser run), nor cryptography (only for unverified certificates), nor the
    CJK codecs (only for a page in one): start-up time and idle memory
    (docs/performance.md)."""
    script = """
import json, sys
import agent.app, agent.steps.http.run, agent.steps.tcp.run
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("playwright.async_api",
      "cryptography", "_codecs_")))))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_an_agent_start_leaves_what_it_does_not_use_unloaded() -> None:
    """`journeyman run` imports neither the web config (bcrypt; only with
    --web.config.file), nor the generators, nor run --once's JUnit writer and table, nor
    the HTTP client (with the first HTTP or TCP step: a browser-only agent never loads it,
    ~3 MB), nor aiohttp (the demo's; the endpoint has its own server, 12 MB less):
    start-up time and memory (docs/performance.md)."""
    script = """
import json, sys
import agent.app, agent.cli
agent.cli._parser()
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("agent.serve.web_config",
      "bcrypt", "generators", "exporters.junit", "exporters.table", "httpx", "aiohttp")))))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_a_load_imports_the_run_side_of_the_kinds_it_uses_and_only_those(
    tmp_path: Path,
) -> None:
    """Once journeys are loaded the agent imports their kinds' run side, so that no first
    run starts late for an import; a kind no journey uses stays unloaded."""
    (tmp_path / "shop.yaml").write_text(
        "journey: shop\nbusiness_process: p\nschedule: {every: 60s}\n"
        "steps:\n  - name: home\n    http: {get: 'http://127.0.0.1:9/'}\n"
    )
    script = f"""
import json, os, sys
from agent.language.loader import load
from agent.run.runner import import_kinds
before = set(sys.modules)
import_kinds([each.journey for each in load([{str(tmp_path)!r}], environ=os.environ).journeys])
print(json.dumps(sorted(m for m in set(sys.modules) - before if m.startswith(("agent.steps.",
      "playwright")))))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout)
    assert "agent.steps.http.run" in imported
    assert [m for m in imported if "browser" in m or "tcp" in m or "playwright" in m] == []


def test_language_side_imports_nothing_of_the_runtime() -> None:
    """agent/language/, each kind's model.py, kind.py and the registry import no runner,
    scheduler, server, app, exporter, generator, nor httpx/httpcore/Playwright/aiohttp/
    prometheus-client."""
    assert violations(language_side(), AGENT_SIDE + RUNTIME) == []


def test_exporters_read_only_the_results_contract() -> None:
    """Exporters import agent.run.results and nothing else of agent.run (no runner,
    context or browser pool)."""
    files = sorted((ROOT / "exporters").rglob("*.py"))
    assert violations(files, ["agent.run"], allowed=["agent.run.results"]) == []


def test_generators_read_journeys_not_runs() -> None:
    """Generators build from journeys alone: nothing of agent.run or exporters."""
    files = sorted((ROOT / "generators").rglob("*.py"))
    assert violations(files, ["agent.run", "exporters"]) == []
