"""A run's ledger: its steps, one JSON object a line, appended and fsynced before and after each.

Shared by the runs that change an org (``ierkit.cleanup``, ``ierkit.writeback``): each keeps
its ledger in its run folder, under the run's lock, and reads it back to resume after a kill.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from ierkit._files import LockHeldError, crash_point, exclusive_lock
from ierkit.archive import make_private_dirs, utc_now

__all__ = ["LOCK_WAIT_SECONDS", "Ledger"]

#: Seconds a second run with the same run id waits for the first to finish before it stops.
LOCK_WAIT_SECONDS = 30.0


class Ledger:
    """A run's steps, one JSON object a line, appended and fsynced before and after each step.

    A line cut short by a kill is ignored when read. ``open`` takes the run's lock (the file
    ``ledger.lock`` beside the ledger, which names its holder) before it reads a single entry,
    and the lock is held until ``close``: two processes never run the same run id at once, and
    none acts on entries another process has since added to.
    """

    def __init__(self, path: Path, *, what: str = "run") -> None:
        self.path = path
        self.what = what
        self.lock_path = path.with_name("ledger.lock")
        self.entries: list[dict[str, Any]] = []
        self._handle: Any = None
        self._lock: contextlib.ExitStack | None = None

    def open(self, *, wait: float = LOCK_WAIT_SECONDS) -> None:
        """Take the run's lock (waiting up to ``wait`` seconds), then read and open the ledger.

        Raises:
            LockHeldError: Another process held the lock for all of ``wait``; the message
                names it (process id, host, since when).
        """
        make_private_dirs(self.path.parent)
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(
                exclusive_lock(
                    self.lock_path, wait=wait, what=f"{self.what} {self.path.parent.name}"
                )
            )
        except LockHeldError as error:
            raise LockHeldError(
                f"{error} With the same run id it then resumes, or reports the finished run."
            ) from None
        self._lock = stack
        # Read only now, under the lock: entries a run that just finished wrote are all here.
        self.entries = _read_entries(self.path)
        self._handle = os.fdopen(
            os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+b"
        )
        self._handle.seek(0, os.SEEK_END)
        if self._handle.tell() and not self.path.read_bytes().endswith(b"\n"):
            self._handle.write(b"\n")  # end the line a kill cut short

    def close(self) -> None:
        """Close the ledger and release the lock."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

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
        crash_point(f"{step}/started")

    def end(self, step: str, **fields: Any) -> dict[str, Any]:
        """Record that ``step`` finished."""
        crash_point(f"{step}/finished")
        return self.write(step, "done", **fields)


def _read_entries(path: Path) -> list[dict[str, Any]]:
    """The ledger's entries; a line a kill cut short is skipped."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the last line of a killed write
    return entries
