"""A small Language Server Protocol client over stdio, enough to drive a real language
server as an editor would: requests, notifications, the server's own requests answered
(its settings from ``workspace/configuration``), and the diagnostics it publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["LanguageServer", "language_server"]

_DEADLINE = 60.0  # seconds for any one answer: a hung server fails the test, never hangs it


class LanguageServer:
    """One server process spoken to as an editor would speak to it.

    ``settings`` answers the server's ``workspace/configuration`` requests, section by
    section (``yaml``, ``http``...): servers pull their settings rather than read the
    ones a ``workspace/didChangeConfiguration`` carries.
    """

    def __init__(self, process: asyncio.subprocess.Process, settings: Mapping[str, Any]) -> None:
        self._process = process
        self._settings = settings
        self._ids = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._diagnostics: dict[str, asyncio.Queue[list[dict[str, Any]]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def request(self, method: str, params: Any) -> Any:
        self._ids += 1
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._ids] = answer
        await self._send({"id": self._ids, "method": method, "params": params})
        async with asyncio.timeout(_DEADLINE):
            return await answer

    async def notify(self, method: str, params: Any) -> None:
        await self._send({"method": method, "params": params})

    async def diagnostics(self, uri: str) -> list[dict[str, Any]]:
        """The next diagnostics the server publishes for ``uri``."""
        async with asyncio.timeout(_DEADLINE):
            return await self._queue(uri).get()

    async def open(self, path: Path, text: str) -> str:
        """``textDocument/didOpen`` of ``text`` as the file at ``path`` (absolute); its URI."""
        uri = path.as_uri()
        document = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
        await self.notify("textDocument/didOpen", {"textDocument": document})
        return uri

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await self.request("shutdown", None)
                await self.notify("exit", None)
                await self._process.wait()
        if self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    def _queue(self, uri: str) -> asyncio.Queue[list[dict[str, Any]]]:
        return self._diagnostics.setdefault(uri, asyncio.Queue())

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self._process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await self._process.stdin.drain()

    async def _read(self) -> None:
        assert self._process.stdout is not None
        stream = self._process.stdout
        with contextlib.suppress(asyncio.IncompleteReadError):  # the server exited
            while True:
                headers = (await stream.readuntil(b"\r\n\r\n")).decode("ascii")
                length = next(
                    int(line.split(":", 1)[1])
                    for line in headers.split("\r\n")
                    if line.lower().startswith("content-length:")
                )
                await self._dispatch(json.loads(await stream.readexactly(length)))
        for answer in self._pending.values():
            answer.set_exception(RuntimeError("the language server exited"))

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" not in message:  # an answer to one of ours
            answer = self._pending.pop(message["id"])
            if "error" in message:
                answer.set_exception(RuntimeError(f"LSP error: {message['error']}"))
            else:
                answer.set_result(message.get("result"))
        elif "id" in message:  # the server asks: settings, registrations, progress
            await self._send({"id": message["id"], "result": self._answer(message)})
        elif message["method"] == "textDocument/publishDiagnostics":
            params = message["params"]
            self._queue(params["uri"]).put_nowait(params["diagnostics"])

    def _answer(self, message: dict[str, Any]) -> Any:
        if message["method"] == "workspace/configuration":
            items = message["params"]["items"]
            return [self._settings.get(item.get("section", ""), None) for item in items]
        return None


@contextlib.asynccontextmanager
async def language_server(
    command: Sequence[str], root: Path, settings: Mapping[str, Any]
) -> AsyncIterator[LanguageServer]:
    """A server started with ``command``, initialized on the workspace ``root``."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        limit=16 * 1024 * 1024,  # one message can be large (a completion list)
    )
    server = LanguageServer(process, settings)
    try:
        uri = root.as_uri()
        await server.request(
            "initialize",
            {
                "processId": None,
                "rootUri": uri,
                "workspaceFolders": [{"uri": uri, "name": root.name}],
                "capabilities": {
                    "workspace": {"configuration": True, "didChangeConfiguration": {}},
                    "textDocument": {
                        "publishDiagnostics": {},
                        "completion": {"completionItem": {"snippetSupport": True}},
                    },
                },
            },
        )
        await server.notify("initialized", {})
        yield server
    finally:
        await server.close()
