"""Every result to every exporter, each in isolation, and their start and close.

One exporter that raises (a bug, a full disk, a gateway that is down) never starves the
others: each call is made on its own; an error is logged with its traceback, the
exporter's name (and the journey, for an export) and counted in
``journeyman_exporter_errors_total{exporter, operation}`` on the registry given.

Exporters start in the order given and close in the reverse order. Each ``start`` and
``close`` is bounded by ``timeout``; closing runs to its end (within those bounds) even
when the task closing is cancelled, and the cancellation then goes on. As with
``async with``, an exporter whose ``start`` failed was never open: it is handed no
result and not closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter
from structlog.typing import FilteringBoundLogger

from agent.run.results import RunResult
from exporters.base import Exporter

__all__ = ["Fanout"]

Operation = Literal["start", "export", "close"]
_OPERATIONS: tuple[Operation, ...] = ("start", "export", "close")


class Fanout:
    """The exporters as one: itself an :class:`~exporters.base.Exporter`, and an async
    context manager (``async with fanout:`` starts them, then closes them)."""

    def __init__(
        self,
        exporters: Mapping[str, Exporter],
        *,
        registry: CollectorRegistry,
        logger: FilteringBoundLogger,
        timeout: float = 10.0,
    ) -> None:
        self._exporters = dict(exporters)
        self._open: dict[str, Exporter] = {}  # started and not closed, in start order
        self._timeout = timeout
        self._log = logger.bind(component="exporters")
        self._errors = Counter(
            "journeyman_exporter_errors",
            "Exporter calls that raised or timed out, by exporter and operation; "
            "the other exporters still got the result",
            ["exporter", "operation"],
            registry=registry,
        )
        for name in self._exporters:
            for operation in _OPERATIONS:
                self._errors.labels(name, operation)  # exported at 0, so rate() works

    @property
    def started(self) -> tuple[str, ...]:
        """The names of the exporters started and not yet closed."""
        return tuple(self._open)

    async def start(self) -> None:
        """Start each exporter in turn; one that fails or hangs is left out, not the rest."""
        for name, exporter in self._exporters.items():
            if name not in self._open and await self._bounded(name, "start", exporter.start):
                self._open[name] = exporter
        self._log.info("exporters_started", started=list(self._open), failed=self._unopened())

    def export(self, result: RunResult) -> None:
        """Hand ``result`` to every open exporter; never raises for an exporter's error."""
        if not self._open:
            self._log.warning("result_not_exported", journey=result.journey, run_id=result.run_id)
        for name, exporter in self._open.items():
            try:
                exporter.export(result)
            except Exception as error:
                self._failed(name, "export", error, journey=result.journey, run_id=result.run_id)

    async def close(self) -> None:
        """Close the open exporters, last started first; finish even if cancelled meanwhile."""
        closing = asyncio.ensure_future(self._close_all())
        cancelled: asyncio.CancelledError | None = None
        while not closing.done():
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError as error:  # ours: closing goes on, bounded
                cancelled = error
        closing.result()
        if cancelled is not None:
            raise cancelled

    async def __aenter__(self) -> Fanout:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _close_all(self) -> None:
        for name in reversed(list(self._open)):
            await self._bounded(name, "close", self._open.pop(name).close)
        self._log.info("exporters_closed")

    async def _bounded(
        self, name: str, operation: Operation, call: Callable[[], Awaitable[None]]
    ) -> bool:
        """Await ``call()`` within the timeout; False (logged, counted) if it raised or hung."""
        bound = asyncio.timeout(self._timeout)
        try:
            async with bound:
                await call()
        except Exception as error:
            self._failed(name, operation, error, hung=bound.expired())
            return False
        return True

    def _failed(
        self,
        name: str,
        operation: Operation,
        error: Exception,
        *,
        hung: bool = False,
        **fields: Any,
    ) -> None:
        self._errors.labels(name, operation).inc()
        text = f"no answer within {self._timeout} s" if hung else f"{type(error).__name__}: {error}"
        self._log.error(
            "exporter_failed",
            exporter=name,
            operation=operation,
            error=text,
            exc_info=error,
            **fields,
        )

    def _unopened(self) -> list[str]:
        return [name for name in self._exporters if name not in self._open]
