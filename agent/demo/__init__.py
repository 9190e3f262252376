"""The bundled demo shop: a storefront, a partner API and a chaos switch, on loopback.

``start_shop()`` serves a fresh shop for tests and ``journeyman demo``;
``python -m agent.demo`` serves one alone. See docs/demo.md.
"""

from agent.demo.chaos import TARGETS, ChaosMode, ChaosSetting, parse_chaos_spec
from agent.demo.server import RunningShop, build_app, start_shop
from agent.demo.state import Credentials, Limits

__all__ = [
    "TARGETS",
    "ChaosMode",
    "ChaosSetting",
    "Credentials",
    "Limits",
    "RunningShop",
    "build_app",
    "parse_chaos_spec",
    "start_shop",
]
