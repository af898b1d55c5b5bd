"""A run's ledger: its steps, appended and flushed to disk before and after each one."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
from pathlib import Path
from typing import Any

from ierkit._files import cache_dir
from ierkit.archive import ArchiveStore, utc_now
from ierkit.cleanup._errors import CleanupError

#: Environment variable naming a crash point ("<step>/started" or "<step>/finished") at which a
#: run kills itself with SIGKILL. For crash tests only.
CRASH_ENV = "IERKIT_CRASH_AT"


def _crash_point(name: str) -> None:
    """Kill this process with SIGKILL when ``$IERKIT_CRASH_AT`` names this point (tests only)."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Ledger:
    """A run's steps, one JSON object a line, appended and fsynced before and after each step.

    A line cut short by a kill is ignored when read. The file is locked while a run is going, so
    two processes cannot run the same run id at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[dict[str, Any]] = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    self.entries.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # the last line of a killed write
        self._handle: Any = None

    def open(self) -> None:
        """Create and lock the file for appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a+b")  # noqa: SIM115 - held open and locked until close()
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.close()
            raise CleanupError(f"{self.path}: another process is running this run") from None
        self._handle.seek(0, os.SEEK_END)
        if self._handle.tell() and not self.path.read_bytes().endswith(b"\n"):
            self._handle.write(b"\n")  # end the line a kill cut short

    def close(self) -> None:
        """Unlock and close."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def write(self, step: str, event: str, **fields: Any) -> dict[str, Any]:
        """Append one entry and make it durable."""
        entry = {"at": utc_now(), "step": step, "event": event, **fields}
        self._handle.write((json.dumps(entry, default=str) + "\n").encode())
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.entries.append(entry)
        return entry

    def last(self, step: str) -> dict[str, Any] | None:
        """The latest entry of ``step``."""
        for entry in self.entries[::-1]:
            if entry["step"] == step:
                return entry
        return None

    def state(self, step: str) -> str | None:
        """``"start"``, ``"done"``, ``"failed"``, ``"invalidated"`` or None (never run)."""
        entry = self.last(step)
        return entry["event"] if entry else None

    def begin(self, step: str, **fields: Any) -> None:
        """Record that ``step`` starts."""
        self.write(step, "start", **fields)
        _crash_point(f"{step}/started")

    def end(self, step: str, **fields: Any) -> dict[str, Any]:
        """Record that ``step`` finished."""
        _crash_point(f"{step}/finished")
        return self.write(step, "done", **fields)


def ledger_path(store: ArchiveStore, run_id: str) -> Path:
    """Where a run's ledger lives: in the archive folder, or for an archive in object storage
    (no appends there) in the local cache, copied to the archive when the run ends."""
    if store.is_local:
        return Path(store.path(store.run_dir(run_id))) / "ledger.jsonl"
    key = hashlib.sha256(store.location.encode()).hexdigest()[:16]
    return cache_dir() / "cleanup-ledgers" / key / run_id / "ledger.jsonl"
