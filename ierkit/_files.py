"""Where ierkit keeps its files, and the one way it replaces a file or a folder on disk.

Every write that replaces something a reader may be looking at goes to a temporary name in the
same folder, is flushed to disk (``fsync``), renamed over the target, and the folder is flushed
too, so that a crash or a kill at any moment leaves the old version or the new, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from ierkit.errors import IerkitError


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
    os.replace(fresh, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


class LockHeldError(IerkitError):
    """Another process holds the lock; the message names it and the lock file."""


#: How often a waiting process tries the lock again, in seconds.
_LOCK_POLL_SECONDS = 0.2


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str], *, wait: float, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block; wait at most ``wait`` seconds for it.

    The lock is ``fcntl.flock`` on the file, so the operating system releases it when the
    holder exits or is killed: a lock is never left stale. While held, the file says who holds
    it (pid, host, start time in UTC), so a refused process can name the holder. The holder
    deletes the file when it is done; a process that locked a file which was deleted meanwhile
    tries again on the new one, so two processes never both hold "the" lock.

    Args:
        path: The lock file; created (mode 0600) with its folder when missing.
        wait: Seconds to wait for a holder to finish; 0 tries once.
        what: What the lock protects, in words, for the error ("the week 2026-W47 in outputs").

    Raises:
        LockHeldError: Still held by another process after ``wait`` seconds.
        ValueError: ``wait`` is negative or not a number.
    """
    if not wait >= 0:  # NaN fails this too, and would wait for ever
        raise ValueError(f"wait must be 0 or more seconds, not {wait!r}")
    lock = Path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            left = deadline - time.monotonic()
            if left <= 0:
                try:
                    holder = lock.read_text(errors="replace").strip()
                except FileNotFoundError:
                    holder = ""
                raise LockHeldError(
                    f"{what} is being written by {holder or 'another process'} (lock file "
                    f"{lock}); waited {wait:g} s. Run again once it has finished."
                ) from None
            time.sleep(min(_LOCK_POLL_SECONDS, left))
            continue
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder we waited for deleted this file: lock the current one
    try:
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {started}\n".encode(), 0)
        yield
    finally:
        # Deleted while still locked, so no one can lock this file and then find it gone.
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)  # closing the descriptor releases the lock


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
