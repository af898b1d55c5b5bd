"""Where ierkit keeps its files, and the one way it replaces a file or a folder on disk.

Every write that replaces something a reader may be looking at goes to a temporary name in the
same folder, is flushed to disk (``fsync``), renamed over the target, and the folder is flushed
too, so that a crash or a kill at any moment leaves the old version or the new, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl


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
