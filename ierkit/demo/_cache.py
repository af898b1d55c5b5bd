"""The cache of generated demos: one folder per fingerprint, generated once, under a lock.

The fingerprint covers the source of the demo package and of every ierkit module it imports
(``DEPENDENCIES``; a test keeps that list complete), the polars version and the parameters, so
a changed generator, schema or Id rule never serves a stale demo.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import polars as pl

from ierkit import _files
from ierkit.demo._generate import check_scale, generate_into, is_demo_folder
from ierkit.demo._params import DEMO_AS_OF, DEMO_SEED, Params

#: The ierkit modules outside the demo package that the demo imports, directly or not.
DEPENDENCIES: Final = (
    "ierkit._files",
    "ierkit.clock",
    "ierkit.errors",
    "ierkit.ids",
    "ierkit.reasons",
    "ierkit.schema",
)

_PACKAGE: Final = Path(__file__).parent
_IERKIT: Final = _PACKAGE.parent


def source_files() -> list[Path]:
    """The files the fingerprint hashes: the demo package, then its ierkit dependencies."""
    package = sorted(_PACKAGE.glob("*.py"))
    dependencies = [
        _IERKIT.joinpath(*name.split(".")[1:]).with_suffix(".py") for name in DEPENDENCIES
    ]
    return [*package, *dependencies]


def fingerprint(*, scale: float = 1.0, seed: int = DEMO_SEED, as_of: dt.date = DEMO_AS_OF) -> str:
    """Hash of the generator's source (and its dependencies'), the polars version and parameters."""
    digest = hashlib.sha256()
    for source in source_files():
        digest.update(source.relative_to(_IERKIT).as_posix().encode())
        digest.update(source.read_bytes())
    digest.update(f"{pl.__version__}|{scale!r}|{seed}|{as_of.isoformat()}".encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_demo(*, scale: float = 1.0, seed: int = DEMO_SEED, as_of: dt.date = DEMO_AS_OF) -> Path:
    """The folder of a cached demo org, generated on first use.

    Cached under ``ierkit._files.cache_dir() / f"demo-{fingerprint}"``; the fingerprint covers the
    generator's source and the ierkit modules it uses, so a changed generator never serves a
    stale cache. Safe when several processes ask at once: one generates (others wait on a lock
    file), and the result is generated into a temporary folder and renamed into place.
    """
    check_scale(scale)
    root = _files.cache_dir()
    final = root / f"demo-{fingerprint(scale=scale, seed=seed, as_of=as_of)}"
    if is_demo_folder(final):
        return final
    with _locked(root / f".{final.name}.lock"):
        if is_demo_folder(final):
            return final
        tmp = root / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            generate_into(tmp, Params(scale=scale, seed=seed, as_of=as_of))
            _files.fsync_dir(tmp)
            try:
                os.rename(tmp, final)
            except OSError:
                # Another process (without the lock, e.g. on another host) won: keep theirs.
                if not is_demo_folder(final):
                    raise
            _files.fsync_dir(root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
