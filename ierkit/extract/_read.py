"""Whole extracts: open one, read its events lazily with clear errors, check it, its SendJobs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import polars as pl

from ierkit import _files, clock
from ierkit._io_source import frames_source
from ierkit.extract._discover import (
    ExtractFile,
    ZipLimits,
    find_files,
    iter_files,
    new_unpack_dir,
)
from ierkit.extract._discover import remove_unpack_dir as _remove
from ierkit.extract._parse import (
    _NON_NEGATIVE,
    EVENT_SCHEMA,
    REJECTED_SCHEMA,
    REQUIRED_VALUES,
    check_file,
    check_header,
    scan_file,
    text_problem,
    text_scan,
    unreadable,
)

SFTP_SCHEME = "sftp://"


def local_path(path: str | os.PathLike[str]) -> Path:
    """The extract on this machine: an ``sftp://`` URL is picked up first (``ierkit.pickup``).

    For an SFTP URL this is the newest matching file, downloaded once and kept in the cache
    (``ierkit.pickup.fetch_latest``); a local path is returned as it is.
    """
    text = os.fspath(path)
    if text.startswith(SFTP_SCHEME):
        from ierkit import pickup

        return pickup.fetch_latest(text)
    return Path(text)


@contextlib.contextmanager
def open_extract(
    path: str | os.PathLike[str], *, limits: ZipLimits | None = None
) -> Iterator[list[ExtractFile]]:
    """The tracking files of an extract (zip, folder or file), unpacked for as long as needed.

    Args:
        path: A .zip file, a folder, a single tracking file, or an ``sftp://`` URL.
        limits: How large an unpacked zip member may be (``ZipLimits.from_env()`` by default).

    Yields:
        The recognised files, sorted by name (unknown files are ignored). Zip members and
        UTF-16 files are copied (as UTF-8) into a private temporary folder that is removed when
        the context ends, or after a crash by the next ierkit process that opens an extract.

    Raises:
        ExtractFormatError: When the path does not exist, is not a zip, holds no tracking
            file, or a member is too large.
    """
    tmp = new_unpack_dir()
    try:
        yield find_files(local_path(path), tmp, limits=limits)
    finally:
        _remove(tmp)


@contextlib.contextmanager
def unpacking(
    path: str | os.PathLike[str], *, limits: ZipLimits | None = None
) -> Iterator[Iterator[ExtractFile]]:
    """``open_extract``, each file as soon as it is unpacked (``ierkit.extract._discover``'s
    ``iter_files``: a zip's small members first), so that reading one overlaps unpacking the
    next. The order of the files is not their names'.
    """
    tmp = new_unpack_dir()
    try:
        yield iter_files(local_path(path), tmp, limits=limits)
    finally:
        _remove(tmp)


def scan_checked(file: ExtractFile, *, source_zone: str = clock.MC_TIME_ZONE) -> pl.LazyFrame:
    """``scan_file`` whose errors are ``ExtractFormatError`` naming the line, never polars'.

    Streams the file in batches through a polars IO source: a bad value, a blank SendID or
    EventDate or a negative id raises when the frame is collected, with the file and line.
    """
    if not file.header:
        return pl.LazyFrame(schema=EVENT_SCHEMA)
    check_header(file)  # a missing column is named now, not at collect time

    def batches() -> Iterator[pl.DataFrame]:
        try:
            for batch in scan_file(file, source_zone=source_zone).collect_batches():
                bad = batch.select(
                    pl.any_horizontal(
                        *[pl.col(c).is_null() for c in REQUIRED_VALUES],
                        *[(pl.col(c) < 0).fill_null(False) for c in _NON_NEGATIVE],
                    ).any()
                ).item()
                if bad:
                    check_file(file, source_zone=source_zone)
                yield batch
        except pl.exceptions.PolarsError as error:
            check_file(file, cause=error, source_zone=source_zone)
            raise

    return frames_source(batches, EVENT_SCHEMA, name=f"ierkit {file.name}")


def read_extract(
    path: str | os.PathLike[str], *, source_zone: str = clock.MC_TIME_ZONE
) -> pl.LazyFrame:
    """All events of a tracking extract or data-view export as one canonical event table.

    Args:
        path: A .zip, a folder, one tracking file, or an ``sftp://`` URL (its newest file).
        source_zone: IANA zone of zone-less dates; Marketing Cloud's UTC-6 by default.

    Returns:
        A LazyFrame in ``EVENT_SCHEMA`` (not deduplicated; row order not meaningful). A zip is
        unpacked into a private temporary folder that lives until the Python process exits;
        use ``open_extract`` with ``scan_file`` to control that, or ``ierkit.store.land_events``.
        Collecting it raises ``ExtractFormatError`` (file, line, column) on a bad value.

    Raises:
        ExtractFormatError: When the path holds no tracking file or a required column is
            missing.
    """
    # The LazyFrame reads the files later: the unpack folder stays until the process ends.
    tmp = new_unpack_dir()
    files = find_files(local_path(path), tmp)
    frames = [scan_checked(f, source_zone=source_zone) for f in files if f.kind != "jobs"]
    if not frames:
        return pl.LazyFrame(schema=EVENT_SCHEMA)
    return pl.concat(frames, how="vertical")


def check_extract(path: str | os.PathLike[str], *, source_zone: str = clock.MC_TIME_ZONE) -> int:
    """Read every event of an extract once and raise on the first malformed value.

    Returns:
        The number of events.

    Raises:
        ExtractFormatError: Naming the file, line and column of the first bad value.
    """
    total = 0
    with open_extract(path) as files:
        for file in files:
            if file.kind == "jobs":
                continue
            total += scan_checked(file, source_zone=source_zone).select(pl.len()).collect().item()
    return total


#: Columns of the send details (``read_send_jobs``).
SEND_JOBS_SCHEMA: Final = pl.Schema(
    {
        "job_id": pl.Int64(),
        "email_name": pl.String(),
        "from_name": pl.String(),
        "from_address": pl.String(),
        "subject_line": pl.String(),
    }
)
_SEND_JOBS_ALIASES: Final = {
    "job_id": ("sendid", "jobid"),
    "email_name": ("emailname",),
    "from_name": ("fromname",),
    "from_address": ("fromemail",),
    "subject_line": ("subject", "emailsubject"),
}


def read_send_jobs(path: str | os.PathLike[str]) -> pl.LazyFrame:
    """Send details from an extract's ``SendJobs`` (or ``_Job``) file.

    Returns:
        job_id, email_name, from_name, from_address, subject_line (one row per job; empty when
        the extract has no SendJobs file).
    """
    with open_extract(path) as files:
        return send_jobs_of(files).lazy()


def send_jobs_of(files: list[ExtractFile]) -> pl.DataFrame:
    """``read_send_jobs`` of files already open (``open_extract``): no second unpacking."""
    frames = []
    for file in files:
        if file.kind != "jobs" or not file.header:
            continue
        lowered = {h.lower(): h for h in file.header}
        exprs = {}
        for canonical, names in _SEND_JOBS_ALIASES.items():
            header = next((lowered[n] for n in names if n in lowered), None)
            dtype = SEND_JOBS_SCHEMA[canonical]
            exprs[canonical] = (
                pl.lit(None, dtype)
                if header is None
                else pl.col(header).str.strip_chars().cast(dtype, strict=False)
            )
        try:
            frames.append(text_scan(file).select(**exprs).collect(engine="in-memory"))
        except pl.exceptions.PolarsError as error:
            _jobs_unreadable(file, error)
    if not frames:
        return pl.DataFrame(schema=SEND_JOBS_SCHEMA)
    return (
        pl.concat(frames)
        .filter(pl.col("job_id").is_not_null())
        .unique("job_id", keep="first", maintain_order=True)
        .sort("job_id")
    )


def _jobs_unreadable(file: ExtractFile, error: BaseException) -> None:
    text_problem(file)
    raise unreadable(file, error) from None


def write_rejected(parts: list[Path], target: Path) -> int:
    """Bad rows from ``stage_file`` parts into one CSV for people (file, line, column, value, why).

    Sorted by file and line; a value that a spreadsheet would run as a formula (starting with
    ``=``, ``+``, ``-``, ``@``, tab or CR: OWASP's rule) is prefixed with ``'``. The file is
    readable by its owner only (values may be email addresses) and replaced in one step.

    Returns:
        Rows written.
    """
    frames = [pl.scan_parquet(part) for part in parts]
    rows = (pl.concat(frames).collect() if frames else pl.DataFrame(schema=REJECTED_SCHEMA)).sort(
        "file", "line"
    )
    risky = pl.col("value").str.contains(r"^[=+\-@\t\r]")
    rows = rows.with_columns(
        value=pl.when(risky).then(pl.lit("'") + pl.col("value")).otherwise(pl.col("value"))
    )
    with _files.atomic_path(target) as tmp:
        rows.write_csv(tmp)
        os.chmod(tmp, 0o600)
    return rows.height
