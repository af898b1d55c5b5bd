"""Where ierkit keeps its files, the one way it replaces a file or a folder on disk, and locks.

Every write that replaces something a reader may be looking at goes to a temporary name in the
same folder, is flushed to disk (``fsync``), renamed over the target, and the folder is flushed
too, so that a crash or a kill at any moment leaves the old version or the new, never half of one.

One writer at a time: ``exclusive_lock`` holds an advisory lock (``fcntl.flock``) on a lock file
and writes who holds it into the file, so a second run can wait a bounded time and then say who
is in the way. The kernel releases the lock when its process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import polars as pl

from ierkit import clock
from ierkit.errors import IerkitError

#: Environment variable naming a crash point at which a run kills itself with SIGKILL (crash
#: tests only; the same variable ``ierkit.cleanup`` reads).
CRASH_ENV: Final = "IERKIT_CRASH_AT"


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL when ``$IERKIT_CRASH_AT`` names this point (tests only)."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def cache_dir() -> Path:
    """Where ierkit keeps generated data: ``$IERKIT_CACHE_DIR``, else ``~/.cache/ierkit``."""
    configured = os.environ.get("IERKIT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ierkit"


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames into it) to disk; a no-op where the OS cannot."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        # Some filesystems refuse to fsync a directory; the rename has still happened.
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a written file's contents to disk."""
    with open(path, "rb") as written:
        os.fsync(written.fileno())


def fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` and every folder's entries (``folder`` included)."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            fsync_file(Path(root) / name)
        fsync_dir(Path(root))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path to write; on success it replaces ``path`` in one step.

    The temporary file sits in the target's folder (a rename never crosses filesystems) and is
    removed when the block fails.

    Args:
        path: The file to write or replace; its folder is created.

    Yields:
        The temporary path to write the new contents to.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_parquet(
    frame: pl.DataFrame | pl.LazyFrame, path: str | os.PathLike[str], **options: Any
) -> None:
    """Replace ``path`` with ``frame`` as Parquet atomically; a LazyFrame is streamed to disk.

    Args:
        frame: The table to write.
        path: The Parquet file to write or replace.
        **options: Passed to ``sink_parquet`` / ``write_parquet`` (compression, statistics, ...).
    """
    with atomic_path(path) as tmp:
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp, **options)
        else:
            frame.write_parquet(tmp, **options)


def replace_folder(fresh: Path, target: Path) -> None:
    """Put the folder ``fresh`` where ``target`` is, flushed to disk.

    The old folder is renamed away first and removed after, so ``target`` is at every moment
    either the complete old folder or the complete new one (or, between the two renames, absent:
    a reader retries; the old copy is still on disk under a hidden name until the end).
    Both must be on one filesystem.
    """
    fsync_dir(fresh)
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
    if target.exists():
        os.replace(target, old)
        fsync_dir(target.parent)
    crash_point("replace_folder/between-renames")
    os.replace(fresh, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


_OLD_FOLDER = re.compile(r"\.(?P<name>.+)\.old-[0-9a-f]{32}")


def recover_replaced(parent: Path, *, name: str | None = None) -> list[str]:
    """Finish the folder replacements (``replace_folder``) a killed process left in ``parent``.

    A kill between the two renames leaves the target absent and the complete old folder under
    its hidden name: it is put back. A kill after them leaves the old folder beside the new one:
    it is removed. Call it only while holding the lock of whatever writes into ``parent`` (or,
    with ``name``, into that one folder of it).

    Args:
        parent: The folder holding the replaced folders.
        name: Only the replacements of this folder; every one in ``parent`` when None.

    Returns:
        The names of the folders that were put back.
    """
    restored: list[str] = []
    if not parent.is_dir():
        return restored
    for old in sorted(parent.iterdir()):
        match = _OLD_FOLDER.fullmatch(old.name)
        if not match or not old.is_dir() or name not in (None, match.group("name")):
            continue
        target = parent / match.group("name")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, target)
            restored.append(target.name)
    fsync_dir(parent)
    return restored


class LockHeldError(IerkitError):
    """Another process holds the lock of a folder this run must change."""


#: How often a waiting process tries the lock again, in seconds.
_LOCK_POLL_SECONDS: Final = 0.05

#: Lock files this process holds, and how deeply (a lock taken again inside is not re-locked:
#: ``flock`` would block on a second descriptor of the same file in the same process).
_HELD: dict[Path, int] = {}


def _holder(fd: int) -> str:
    """Who holds a lock, from what its holder wrote into the lock file."""
    try:
        written = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {written['pid']} on host {written['host']}, started {written['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said who it is yet"


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str], *, wait: float, what: str) -> Iterator[bool]:
    """Hold the exclusive lock on the file ``path`` for one writer at a time.

    The lock is ``fcntl.flock``, so the operating system releases it when the holder exits or is
    killed: it is never left stale. The holder's pid, host and start time are written into the
    file while it is held, and the file is removed on release. Taking a lock this process
    already holds succeeds at once (the outer holder keeps it).

    Args:
        path: The lock file (created, mode 0600, with its folder when missing).
        wait: Seconds to wait for another holder to finish before giving up.
        what: What the lock protects, for the error message ("the event store /data/store").

    Yields:
        True when this call took the lock, False when this process already held it (so the
        caller knows whether it is the outermost holder, e.g. to clean up after crashed runs).

    Raises:
        LockHeldError: When another process still holds it after ``wait`` seconds, naming it.
    """
    if not math.isfinite(wait) or wait < 0:
        raise IerkitError(f"lock wait {wait!r}: give a number of seconds, 0 or more")
    key = Path(path).resolve()
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield False
        finally:
            _HELD[key] -= 1
        return
    key.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockHeldError(
                    f"{what} is in use by another run ({holder}; lock file {key}); "
                    f"waited {wait:g} s. Run again when it has finished."
                ) from None
            time.sleep(min(_LOCK_POLL_SECONDS, left))
            continue
        # The holder we waited for removes its file when done: a lock on that unlinked file
        # would exclude no one, so lock the file that is there now.
        try:
            current = os.fstat(fd).st_ino == os.stat(key).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": clock.now().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        os.fsync(fd)
        _HELD[key] = 1
        try:
            yield True
        finally:
            del _HELD[key]
            # Removed while still locked, so no one can lock this file and then find it gone.
            with contextlib.suppress(FileNotFoundError):
                key.unlink()
    finally:
        os.close(fd)  # releases the lock


def make_private(folder: Path) -> None:
    """Make ``folder`` and everything in it readable by its owner only (folders 0700, files 0600).

    For outputs that hold personal data (worklists, email messages): written inside a private
    staging folder, then narrowed before they are published.
    """
    folder.chmod(0o700)
    for path in folder.rglob("*"):
        if path.is_symlink():
            continue  # chmod would follow it out of the folder
        path.chmod(0o700 if path.is_dir() else 0o600)
