"""``journeyman run --once`` as a process, its stdout and stderr piped, bounded in time."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping

__all__ = ["run_once_process"]


async def run_once_process(*argv: str, environ: Mapping[str, str]) -> tuple[int, str, str]:
    """``python -m agent run --once ARGV``: its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "--once", *argv, env=dict(environ),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
