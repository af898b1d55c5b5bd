"""A cleanup run's ledger (``ierkit._ledger.Ledger``) and where it lives."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ierkit import _ledger
from ierkit._files import CRASH_ENV, LockHeldError, cache_dir
from ierkit._ledger import LOCK_WAIT_SECONDS
from ierkit.archive import ArchiveStore
from ierkit.cleanup._errors import CleanupError

__all__ = ["CRASH_ENV", "LOCK_WAIT_SECONDS", "Ledger", "ledger_path"]


class Ledger(_ledger.Ledger):
    """A cleanup run's steps (see ``ierkit._ledger.Ledger``); a held lock is a ``CleanupError``."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, what="cleanup run")

    def open(self, *, wait: float = LOCK_WAIT_SECONDS) -> None:
        """Take the run's lock (waiting up to ``wait`` seconds), then read and open the ledger.

        Raises:
            CleanupError: Another process held the lock for all of ``wait``; the message names
                it (process id, host, since when).
        """
        try:
            super().open(wait=wait)
        except LockHeldError as error:
            raise CleanupError(str(error)) from None


def ledger_path(store: ArchiveStore, run_id: str) -> Path:
    """Where a run's ledger lives: in the archive folder, or for an archive in object storage
    (no appends there) in the local cache, copied to the archive when the run ends."""
    if store.is_local:
        return Path(store.path(store.run_dir(run_id))) / "ledger.jsonl"
    key = hashlib.sha256(store.location.encode()).hexdigest()[:16]
    return cache_dir() / "cleanup-ledgers" / key / run_id / "ledger.jsonl"
