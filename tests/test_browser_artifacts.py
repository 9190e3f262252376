"""The artifact store: files named by journey and run, pruned by age then by total size."""

from __future__ import annotations

import os
from pathlib import Path

from agent.run.artifacts import ArtifactStore


def _run(store: ArtifactStore, run_id: str, size: int, mtime: float) -> Path:
    path = store.path("checkout", run_id, "pay in the browser", "screenshot.png")
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_names_by_journey_run_and_step(tmp_path: Path) -> None:
    """A path is <root>/<journey>/<run>/<step slug>.<what>, its folder created."""
    store = ArtifactStore(tmp_path)
    path = store.path("checkout", "checkout-20261127T110000Z-a1b2c3", "pay / card", "trace.zip")
    assert path == tmp_path / "checkout/checkout-20261127T110000Z-a1b2c3/pay-card.trace.zip"
    assert path.parent.is_dir()


def test_prunes_expired_runs_then_oldest_beyond_size(tmp_path: Path) -> None:
    """Runs older than max_age go; then the oldest go until the total fits max_bytes."""
    store = ArtifactStore(tmp_path, max_age=3600, max_bytes=250)
    now = 1_800_000_000.0
    expired = _run(store, "r1", 10, now - 7200)
    oldest = _run(store, "r2", 100, now - 300)
    middle = _run(store, "r3", 100, now - 200)
    newest = _run(store, "r4", 100, now - 100)
    removed = store.prune(now)
    assert removed == [expired.parent, oldest.parent]
    assert not expired.exists()
    assert not oldest.exists()
    assert middle.exists()
    assert newest.exists()
