"""The generated Grafana dashboard: a valid, byte-stable JSON model whose every query,
with its template variables filled in as Grafana would, returns data from a real
Prometheus that scrapes a real agent monitoring the demo shop (some of it broken)."""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_process import running_agent
from browser_support import require_chromium
from prometheus_server import Prometheus, prometheus
from test_import_rules import ROOT, RUNTIME

from agent.cli import main
from agent.demo.chaos import ChaosMode, ChaosSetting
from agent.demo.server import RunningShop, start_shop
from agent.language.loader import load
from generators import dashboard
from generators import rules as rules_generator
from generators.dashboard_json import COLUMNS, DATASOURCE

JOURNEYS = ROOT / "journeys"
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__range": "10m"}
MAY_BE_EMPTY = {
    # Only with data of that kind: the demo shop speaks plain HTTP, so no step sees a
    # certificate. Everything else must return data.
    "All business processes / Certificates expire in": "no https or TLS step",
}
FAST = {  # the example journeys' schedules, shortened so a minute holds several runs
    "http": "schedule: {every: 2s, timeout: 1s, retries: 1}",
    "browser": "schedule: {every: 6s, timeout: 6s, step_timeout: 5s}",
}
TCP_JOURNEY = """\
journey: shop-port
title: The shop's port answers a raw request
business_process: inventory-sync
persona: partner
schedule: {{every: 2s, timeout: 1s}}
steps:
  - name: health over tcp
    tcp:
      connect: "{host_port}"
      send: "GET /healthz HTTP/1.0\\r\\n\\r\\n"
      read: {{until_close: true}}
    expect: {{contains: "200 OK"}}
"""
BREAK = {  # chaos targets that fail one journey of each process (the TCP one stays up)
    "checkout": ChaosMode.ERROR,  # customer-checkout's checkout page, the browser's pay
    "partner-orders": ChaosMode.ERROR,
    "partner-inventory": ChaosMode.WRONG,
}


def _built(paths: list[Path]) -> dict[str, Any]:
    loaded = load(paths)
    assert loaded.journeys
    assert not loaded.errors
    return dashboard.build((j.journey for j in loaded.journeys), loaded.catalog)


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``node``, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _queries(model: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expr) of every PromQL expression: panel targets and annotations."""
    found, row = [], ""
    for panel in model["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
        found += [(f"{row} / {panel['title']}", t["expr"]) for t in panel.get("targets", [])]
    found += [(f"annotation {a['name']}", a["expr"]) for a in model["annotations"]["list"]]
    return found


def test_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    """Two runs of `journeyman dashboard` on the examples write byte-identical files."""
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["dashboard", str(JOURNEYS), "-o", str(first)]) == 0
    assert main(["dashboard", str(JOURNEYS), "-o", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert first.read_text() == dashboard.render(_built([JOURNEYS]))


def test_model_has_what_grafana_requires() -> None:
    """Required fields, unique ids, panels inside 24 columns and not overlapping, refIds,
    and every datasource reference is the ${datasource} variable."""
    model = _built([JOURNEYS])
    for name in ("uid", "title", "panels", "templating", "time", "annotations"):
        assert model[name], name
    assert model["schemaVersion"] >= 36
    assert model["id"] is None
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))
    assert all(isinstance(i, int) and i > 0 for i in ids)
    cells: dict[tuple[int, int], str] = {}
    for panel in model["panels"]:
        pos = panel["gridPos"]
        assert min(pos["x"], pos["w"] - 1, pos["h"] - 1) >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= COLUMNS, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[x, y] = panel["title"]
        assert panel["type"] in {"row", "stat", "timeseries", "bargauge", "table", "text"}
        if panel["type"] == "row":
            assert pos["w"] == COLUMNS
            assert not panel["collapsed"]
        elif panel["type"] != "text":
            refs = [t["refId"] for t in panel["targets"]]
            assert refs, panel["title"]
            assert len(refs) == len(set(refs)), panel["title"]
            assert all(t["expr"] for t in panel["targets"])
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert list(variables) == ["datasource", "business_process", "journey", "location"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    references = [o["datasource"] for o in _walk(model) if "datasource" in o]
    assert references
    assert all(ref == DATASOURCE for ref in references)
    used = {name for _, expr in _queries(model) for name in re.findall(r"\$(\w+)", expr)}
    assert used <= set(variables) | set(GRAFANA_BUILTINS)


def test_recorded_series_are_those_journeyman_rules_writes() -> None:
    """Every recording-rule series the dashboard reads is recorded by `journeyman rules`."""
    loaded = load([JOURNEYS])
    rules = rules_generator.build((j.journey for j in loaded.journeys), loaded.catalog)
    recorded = {rule["record"] for group in rules.groups for rule in group["rules"]
                if "record" in rule}  # fmt: skip
    exprs = " ".join(expr for _, expr in _queries(_built([JOURNEYS])))
    read = set(re.findall(r"\b[a-z_]+:[a-z_0-9]+:[a-z_0-9]+\b", exprs))
    assert read == set(dashboard.RECORDED)
    assert read <= recorded


def test_rows_follow_the_processes_and_their_step_kinds() -> None:
    """A row per process with journeys, in catalog order; web vitals only where a browser
    step is, value at risk only where the catalog gives a value."""
    model = _built([JOURNEYS])
    rows: dict[str, list[str]] = {}
    for panel in model["panels"]:
        if panel["type"] == "row":
            rows[panel["title"]] = titles = []
        else:
            titles.append(panel["title"])
    assert list(rows) == [
        "All business processes",
        "Order to cash (web shop) · order-to-cash",
        "Partner fulfilment · partner-fulfilment",
        "Inventory sync for partners · inventory-sync",
        "Agents",
    ]
    assert "Web vitals p75" in rows["Order to cash (web shop) · order-to-cash"]
    partner = rows["Partner fulfilment · partner-fulfilment"]
    assert "Web vitals p75" not in partner
    assert "HTTP time by step and phase" in partner
    inventory = rows["Inventory sync for partners · inventory-sync"]
    assert "Value at risk per hour" not in inventory
    assert "Transactions at risk per hour" in inventory


def test_panel_ids_survive_adding_a_process() -> None:
    """A panel keeps its id when other processes and journeys are added."""

    def ids(model: dict[str, Any]) -> dict[tuple[str, str], int]:
        found, row = {}, ""
        for panel in model["panels"]:
            row = panel["title"] if panel["type"] == "row" else row
            found[row, panel["title"]] = panel["id"]
        return found

    alone = ids(_built([JOURNEYS / "partner-order.yaml", JOURNEYS / "catalog.yaml"]))
    together = ids(_built([JOURNEYS]))
    assert alone.items() <= together.items()


def test_markup_in_a_title_stays_text(tmp_path: Path) -> None:
    """A journey title with markdown or HTML is escaped in the row's note."""
    (tmp_path / "j.yaml").write_text(
        "journey: j\ntitle: '<img src=x onerror=alert(1)> [click](http://evil)'\n"
        "business_process: p\nsteps: [{name: s, http: {get: 'http://127.0.0.1/'}}]\n"
    )
    [note] = [p for p in _built([tmp_path])["panels"] if p["type"] == "text"]
    content = note["options"]["content"]
    assert r"\<img src=x onerror=alert(1)\> \[click\](http://evil)" in content
    assert not re.search(r"(?<!\\)[<\[]", content)


def test_bad_journey_file_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A journey file with an error: exit 2, the error on stderr, no file."""
    (tmp_path / "bad.yaml").write_text("journey: Bad Id\nsteps: []\n")
    out = tmp_path / "dashboard.json"
    assert main(["dashboard", str(tmp_path), "-o", str(out)]) == 2
    assert "bad.yaml:1:" in capsys.readouterr().err
    assert not out.exists()


def test_generating_imports_no_runtime_library(tmp_path: Path) -> None:
    """`journeyman dashboard` in a fresh interpreter loads no httpx, Playwright, aiohttp
    or prometheus-client."""
    script = f"""
import json, sys
from agent.cli import main
status = main(["dashboard", "journeys/", "-o", {str(tmp_path / "d.json")!r}])
print(json.dumps([status, sorted(m for m in sys.modules if m.split(".")[0] in {RUNTIME!r})]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [0, []]


# --- against a real Prometheus -------------------------------------------------------


@pytest.fixture
async def shop() -> AsyncIterator[RunningShop]:
    async with await start_shop() as running:
        yield running


def _chromium() -> bool:
    """Whether Chromium is here; under CI=true it must be (``require_chromium`` fails)."""
    try:
        require_chromium()
    except pytest.skip.Exception:
        return False
    return True


def _fast_journeys(folder: Path, shop: RunningShop, browser: bool) -> None:
    """The example journeys and catalog on short schedules, plus a TCP journey."""
    folder.mkdir()
    shutil.copy(JOURNEYS / "catalog.yaml", folder)
    for path in sorted(JOURNEYS.glob("*.yaml")):
        text = path.read_text()
        kind = "browser" if re.search(r"^\s+browser:", text, re.M) else "http"
        if path.name == "catalog.yaml" or (kind == "browser" and not browser):
            continue
        (folder / path.name).write_text(re.sub(r"^schedule: .*$", FAST[kind], text, flags=re.M))
    host_port = shop.url.removeprefix("http://")
    (folder / "shop-port.yaml").write_text(TCP_JOURNEY.format(host_port=host_port))


class Grafana:
    """Fills template variables as Grafana does, from the variables' own queries."""

    def __init__(self, prom: Prometheus, model: dict[str, Any]) -> None:
        self.prom = prom
        self.variables = [v for v in model["templating"]["list"] if v["type"] == "query"]
        self.values: dict[str, str] = dict(GRAFANA_BUILTINS)

    def fill(self, expr: str) -> str:
        return re.sub(r"\$(\w+)", lambda m: self.values[m.group(1)], expr)

    async def resolve(self) -> dict[str, list[str]]:
        """Each variable's values (label_values through the label API); All selected."""
        found = {}
        for variable in self.variables:
            selector, label = re.fullmatch(
                r"label_values\((.+), (\w+)\)", variable["definition"]
            ).groups()  # type: ignore[union-attr]
            response = await self.prom.client.get(
                f"{self.prom.url}/api/v1/label/{label}/values",
                params={"match[]": self.fill(selector)},
            )
            body = response.json()
            assert body["status"] == "success", f"{variable['name']}: {body.get('error')}"
            values = body["data"]
            found[variable["name"]] = values
            self.values[variable["name"]] = "(" + "|".join(map(_regex_escape, values)) + ")"
        return found

    async def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        response = await self.prom.client.get(
            f"{self.prom.url}/api/v1/query", params={"query": self.fill(expr), "time": at}
        )
        body = response.json()
        assert body["status"] == "success", f"{body.get('error')}\n{self.fill(expr)}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def _regex_escape(value: str) -> str:
    """A value as Grafana puts it in a PromQL regex (the backslash doubled for the string)."""
    return re.sub(r"([\\^$*+?.()|{}\[\]'])", r"\\\\\1", value)


def _has_data(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(item["value"][1])) for item in result)


@pytest.mark.promtool
@pytest.mark.timeout(170)
async def test_every_query_returns_data_from_a_real_prometheus(
    shop: RunningShop, tmp_path: Path
) -> None:
    """Rules and dashboard from the examples (fast schedules, a TCP journey, the browser
    journey when Chromium is here); healthy runs, then the chaos switch breaks one journey
    of each process; every panel query, variables filled, returns data without error."""
    browser = _chromium()
    journeys, rules, out = tmp_path / "journeys", tmp_path / "rules.yml", tmp_path / "d.json"
    _fast_journeys(journeys, shop, browser)
    assert main(["rules", str(journeys), "-o", str(rules)]) == 0
    assert main(["dashboard", str(journeys), "-o", str(out)]) == 0
    model = json.loads(out.read_text())
    count = len(list(journeys.glob("*.yaml"))) - 1
    started = time.monotonic()

    async with (
        asyncio.timeout(150),
        running_agent([journeys], "--location", "lab-1", environ=shop.environ()) as agent,
        prometheus(tmp_path, rules, agent.url.removeprefix("http://")) as prom,
    ):
        # Two successful runs of each journey inside the last minute: the histograms move.
        moved = 'count(increase(journey_duration_seconds_count{location="lab-1"}[1m]) > 0)'
        await prom.until(moved, lambda v: v == [count])
        for target, mode in BREAK.items():
            shop.chaos.set(target, ChaosSetting(mode))
        broken = time.monotonic()

        grafana = Grafana(prom, model)
        missing: list[str] = []
        while True:  # the failures reach Prometheus within a run or two
            values = await grafana.resolve()
            at = (await prom.query("vector(time())"))[0]
            missing = [
                f"{where}: {expr}"
                for where, expr in _queries(model)
                if where not in MAY_BE_EMPTY and not _has_data(await grafana.query(expr, at))
            ]
            if not missing or time.monotonic() - broken > 40:
                break
            await asyncio.sleep(1)
        took = time.monotonic() - broken
        print(f"healthy after {broken - started:.1f}s, all data {took:.1f}s after the break")

    assert values["business_process"] == ["inventory-sync", "order-to-cash", "partner-fulfilment"]
    assert values["location"] == ["lab-1"]
    assert len(values["journey"]) == count
    assert not missing, "queries without data:\n" + "\n".join(missing)
