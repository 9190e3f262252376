"""Small builders of Grafana's dashboard JSON model (schemaVersion 39, Grafana 10.3+).

Each function returns one plain dict: a panel of a kind, a Prometheus target, a template
variable. :class:`Layout` places panels left to right in rows of 24 columns and gives
each a stable id. Every query and variable reads the ``${datasource}`` variable, so the
file imports into any Grafana and asks for its Prometheus.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

__all__ = [
    "COLUMNS",
    "DATASOURCE",
    "Layout",
    "Look",
    "Panel",
    "datasource_variable",
    "query_variable",
    "stat",
    "table",
    "target",
    "text",
    "thresholds",
    "timeseries",
]

COLUMNS = 24  # Grafana's grid width
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_REDUCE = {"calcs": ["lastNotNull"], "fields": "", "values": False}

Panel = dict[str, Any]


def target(expr: str, legend: str = "__auto", *, instant: bool = False) -> dict[str, Any]:
    """One PromQL query of a panel (its refId is given when the panel is built)."""
    query: dict[str, Any] = {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
    }
    if instant:
        query["format"] = "table"
    return query


def thresholds(base: str, *steps: tuple[float, str]) -> dict[str, Any]:
    """Absolute thresholds: ``base`` colour below the first step, then each step's colour."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def _panel(
    kind: str,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    defaults: dict[str, Any],
    options: dict[str, Any],
) -> Panel:
    refs = [{**t, "refId": chr(ord("A") + i)} for i, t in enumerate(targets)]
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": refs,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }


class Look(TypedDict, total=False):
    """How a panel shows its numbers, beyond the unit."""

    limits: dict[str, Any]  # thresholds: colours, or dashed lines on a graph
    mappings: list[dict[str, Any]]  # values shown as words
    decimals: int
    min_max: tuple[float | None, float | None]


def _defaults(colour: str, unit: str, look: Look, plain: str) -> dict[str, Any]:
    """Field defaults; ``plain`` is the colour of a number without limits."""
    defaults: dict[str, Any] = {
        "color": {"mode": colour},
        "mappings": look.get("mappings", []),
        "thresholds": look.get("limits", thresholds(plain)),
        "unit": unit,
    }
    low, high = look.get("min_max", (None, None))
    bounds = {"min": low, "max": high, "decimals": look.get("decimals")}
    return defaults | {name: value for name, value in bounds.items() if value is not None}


def timeseries(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    unit: str,
    stack: bool = False,
    bars: bool = False,
    **look: Unpack[Look],
) -> Panel:
    """A graph over time; its limits (thresholds) are drawn as dashed lines."""
    defaults = _defaults("palette-classic", unit, look, "green")
    defaults["custom"] = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 60 if stack or bars else 10,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
        "thresholdsStyle": {"mode": "dashed" if "limits" in look else "off"},
    }
    options = {
        "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel("timeseries", title, description, targets, defaults, options)


def stat(
    title: str, description: str, targets: list[dict[str, Any]], *, unit: str, bars: bool = False,
    **look: Unpack[Look],
) -> Panel:  # fmt: skip
    """The last value of each series: a coloured figure, or with ``bars`` a horizontal bar
    (a bar gauge) for each."""
    defaults = _defaults("thresholds", unit, look, "text") | {"noValue": "no data"}
    options: dict[str, Any] = {"reduceOptions": _REDUCE}
    if bars:
        options |= {"displayMode": "gradient", "minVizHeight": 16, "orientation": "horizontal",
                    "showUnfilled": True, "valueMode": "color"}  # fmt: skip
    else:
        coloured = "limits" in look or "mappings" in look
        options |= {"colorMode": "background" if coloured else "none", "graphMode": "none",
                    "justifyMode": "auto", "orientation": "auto", "textMode": "value_and_name",
                    "wideLayout": True}  # fmt: skip
    return _panel("bargauge" if bars else "stat", title, description, targets, defaults, options)


def table(
    title: str,
    description: str,
    query: dict[str, Any],
    *,
    columns: list[str],
    value: str,
) -> Panel:
    """An instant query as a table: its ``columns`` (labels) then its value, largest first."""
    defaults: dict[str, Any] = {"custom": {"align": "auto"}, "decimals": 0, "unit": "short"}
    options = {"showHeader": True, "sortBy": [{"desc": True, "displayName": value}]}
    panel = _panel("table", title, description, [query], defaults, options)
    order = [*columns, "Value"]
    panel["transformations"] = [
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True},
                "indexByName": {name: i for i, name in enumerate(order)},
                "renameByName": {"Value": value},
            },
        }
    ]
    return panel


def text(title: str, markdown: str) -> Panel:
    """A static note (no query, so no datasource)."""
    return {
        "type": "text",
        "title": title,
        "options": {"content": markdown, "mode": "markdown"},
    }


def datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_variable(name: str, label: str, definition: str) -> dict[str, Any]:
    """A multi-value variable (with All) filled by ``label_values(...)`` on each time change."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": definition,
        "query": {"query": definition, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "current": {},
        "hide": 0,
        "includeAll": True,
        "multi": True,
        "options": [],
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
    }


@dataclass
class Layout:
    """Places panels in reading order and numbers them.

    Panels flow left to right and wrap at 24 columns; a row header takes a line of its own.
    A panel's id comes from its key (the row's and the panel's names), not its position,
    so adding a process or a journey leaves the other panels' ids (and links to them) as
    they were. The same input always gives the same ids.
    """

    panels: list[Panel] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _line: int = 0  # height of the current line
    _ids: set[int] = field(default_factory=set)

    def row(self, key: str, title: str) -> None:
        self._newline()
        self._place(key, {"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self._newline()

    def add(self, key: str, panel: Panel, width: int, height: int) -> None:
        if self._x + width > COLUMNS:
            self._newline()
        self._place(key, panel, width, height)

    def _place(self, key: str, panel: Panel, width: int, height: int) -> None:
        position = {"h": height, "w": width, "x": self._x, "y": self._y}
        self.panels.append({"id": self._id(key), "gridPos": position, **panel})
        self._x += width
        self._line = max(self._line, height)

    def _newline(self) -> None:
        self._y += self._line
        self._x = self._line = 0

    def _id(self, key: str) -> int:
        candidate = 1 + zlib.crc32(key.encode()) % 999_999
        while candidate in self._ids:  # a clash of two keys: the later one moves on
            candidate = candidate % 999_999 + 1
        self._ids.add(candidate)
        return candidate
