"""What ``journeyman init`` writes: a catalog, two journeys against the demo shop, the
JSON Schemas, and the editor settings that attach the schemas to the YAML files.

The YAML language server (VS Code's YAML extension, and the Neovim, Helix, Emacs and
JetBrains clients of the same server) completes and checks a file against the schema a
``# yaml-language-server: $schema=`` modeline names, relative to the file; VS Code also
reads ``yaml.schemas`` in ``.vscode/settings.json``, which covers files created later.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.language.schema import catalog_file_schema, journey_file_schema

__all__ = ["CATALOG_SCHEMA", "JOURNEY_SCHEMA", "SCHEMAS", "SHOP_URL", "SchemaFile", "scaffold"]

SHOP_URL = "http://127.0.0.1:8080"  # where `journeyman demo` and `python -m agent.demo` serve
SCHEMA_DIR = ".journeyman"


@dataclass(frozen=True)
class SchemaFile:
    """One JSON Schema written into the folder, and the YAML files it describes."""

    path: str  # relative to the scaffolded folder
    build: Callable[[], dict[str, Any]]
    globs: tuple[str, ...]  # yaml-language-server fileMatch: each matches at any depth


JOURNEY_SCHEMA = SchemaFile(
    f"{SCHEMA_DIR}/journey.schema.json", journey_file_schema, ("*.yaml", "*.yml", "!catalog.yaml")
)
CATALOG_SCHEMA = SchemaFile(
    f"{SCHEMA_DIR}/catalog.schema.json", catalog_file_schema, ("catalog.yaml",)
)
SCHEMAS = (JOURNEY_SCHEMA, CATALOG_SCHEMA)


def _modeline(schema: str) -> str:
    return f"# yaml-language-server: $schema={schema}\n"


CATALOG = """\
# The business processes your journeys belong to: every journey names one, and the
# agent's metrics, status page and reports speak in them (docs/journey-language.md).
timezone: UTC
business_processes:
  - id: order-to-cash
    name: Order to cash (web shop)
    owner: web-team
    description: Customers find a product, pay by card and get an order confirmation.
    volume: {per_hour: 40}          # checkouts per hour: what a failure puts at risk
    value_per_transaction: 42.50
    currency: EUR
    services: [storefront]
"""

HTTP_JOURNEY = """\
# A customer looks around the shop over HTTP: the home page, a product, a search.
# Reads JOURNEY_SHOP_URL, the shop to watch (the demo shop: http://127.0.0.1:8080).
journey: shop-browse
title: Customer browses the shop
business_process: order-to-cash
persona: customer
service: storefront
owner: web-team
schedule: {every: 30s, timeout: 10s, retries: 1}
slo:
  availability: 99.5%
  latency: {threshold: 2s, objective: 95%}
variables:
  base: ${env.JOURNEY_SHOP_URL}
steps:
  - name: home page
    http: {get: "${base}/"}
    expect: {status: 200, body_contains: Welcome, max_duration: 1s}

  - name: product page
    http: {get: "${base}/products/teapot"}
    expect: {status: 200, body_contains: Blue teapot}

  - name: search
    http: {get: "${base}/search?q=strainer"}
    expect: {status: 200, body_contains: Tea strainer}
"""

BROWSER_JOURNEY = """\
# A customer buys a teapot in a real browser: log in, add to cart, pay, see the thanks.
# Reads JOURNEY_SHOP_URL and the secret SHOP_PASSWORD (the demo shop's: tea-for-two).
journey: shop-checkout
title: Customer buys a teapot in the browser
business_process: order-to-cash
persona: customer
service: storefront
owner: web-team
criticality: high
schedule: {every: 2m, timeout: 30s, step_timeout: 10s}
slo:
  availability: 99%
  latency: {threshold: 8s, objective: 95%}
variables:
  base: ${env.JOURNEY_SHOP_URL}
secrets:
  password: ${env.SHOP_PASSWORD}
steps:
  - name: log in
    browser:
      - goto: ${base}/login
      - fill: {"#username": alice, "#password": "${secret.password}"}
      - click: "#login-button"
      - expect_text: {selector: "#nav-user", text: alice}

  - name: add to cart
    browser:
      - goto: ${base}/products/teapot
      - click: "#add-to-cart"
      - expect_text: {selector: "#cart-count", text: "1"}

  - name: pay
    browser:
      - goto: ${base}/checkout
      - fill: {"#card": "4242 4242 4242 4242"}
      - click: "#pay"
      - expect_visible: "#thank-you"
"""


def scaffold() -> dict[str, str]:
    """Each file's path relative to the folder, and its text, in the order written."""
    yaml_files = (
        ("catalog.yaml", CATALOG_SCHEMA, CATALOG),
        ("shop-browse.yaml", JOURNEY_SCHEMA, HTTP_JOURNEY),
        ("shop-checkout.yaml", JOURNEY_SCHEMA, BROWSER_JOURNEY),
    )
    files = {name: _modeline(schema.path) + text for name, schema, text in yaml_files}
    for schema in SCHEMAS:
        files[schema.path] = json.dumps(schema.build(), indent=2) + "\n"
    files[".vscode/settings.json"] = _vscode_settings()
    return files


def _vscode_settings() -> str:
    """``yaml.schemas``: schema path (from the workspace root, the folder) to file globs."""
    schemas = {f"./{schema.path}": list(schema.globs) for schema in SCHEMAS}
    return json.dumps({"yaml.schemas": schemas}, indent=2) + "\n"
