"""The event store: the events of many tracking extracts, deduplicated, one folder per send.

Why events, and not IER totals, are the state. An IER holds counts (open_count, total_clicks).
Merging counts from two extracts is idempotent only if one knows which events both extracts
contained: rolling 7-day extracts taken every day overlap by six days, and summing would count each
open up to seven times, while taking the maximum would lose opens that fall in different windows.
Dates alone (max, min) merge idempotently, counts do not. So the store keeps the events themselves,
deduplicated on all event columns, one folder per send (``events/job_id=<JobID>/``): merging an
extract is a union, so applying the same extract twice, or overlapping windows, changes nothing,
and the IERs of the sends an extract touched are recomputed from their complete event sets
(``ierkit.aggregate``). Marketing Cloud writes times to the second, so one file can hold two
identical rows that are two real events (two clicks on one link within a second): the union is a
multiset union (each row kept as often as the one source that holds it most often), which keeps
them both. Each send's events are written in store order (``EVENT_ORDER``: IER key, then time), so
that ``ierkit.aggregate`` finds each IER's events as one run without sorting or hashing;
``sort_store`` puts a folder that was written some other way back in that order.

Reading and checking the tracking files themselves is ``ierkit.extract``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from ierkit import _files, clock
from ierkit.extract import EVENT_SCHEMA, open_extract, stage_file, write_rejected

#: Events per unit of work when the store is merged or aggregated: bounds peak memory (a group
#: of sends is processed at once; one send larger than this is processed alone).
MAX_EVENTS_PER_GROUP: Final = 4_000_000

#: Order of the events of a send inside the store (blanks last): deterministic files, and each
#: IER's events one contiguous run in time order, which ``ierkit.aggregate`` relies on.
EVENT_ORDER: Final = (
    "job_id",
    "batch_id",
    "subscriber_key",
    "subscriber_id",
    "event_time",
    "event_type",
    "url",
)


@dataclass(frozen=True)
class LandResult:
    """What ``land_events`` did.

    Attributes:
        files: Event files read.
        events_read: Rows read from them.
        job_ids: Sends (JobIDs) whose events changed or were touched, sorted.
        events_in_store: Events now stored for those sends (each counted once).
        rejected: Bad rows skipped (only with ``rejected``; listed in that file).
        notes: One line per file read other than plainly (kind from its columns, UTF-16, ...).
    """

    files: int
    events_read: int
    job_ids: tuple[int, ...]
    events_in_store: int
    rejected: int = 0
    notes: tuple[str, ...] = ()


def events_dir(store: str | os.PathLike[str]) -> Path:
    """The folder of deduplicated events inside a store (``events/job_id=<JobID>/``)."""
    return Path(store) / "events"


def job_folder(base: Path, job_id: int) -> Path:
    """The folder of one send inside a partitioned folder (hive style ``job_id=<JobID>``)."""
    return base / f"job_id={job_id}"


def stored_jobs(base: Path) -> list[int]:
    """The JobIDs that have a folder under ``base``, sorted."""
    if not base.is_dir():
        return []
    jobs = []
    for child in base.iterdir():
        match = re.fullmatch(r"job_id=(-?\d+)", child.name)
        if match and child.is_dir():
            jobs.append(int(match.group(1)))
    return sorted(jobs)


def job_files(base: Path, job_ids: Iterable[int]) -> list[Path]:
    """Parquet files of the given sends under ``base``, in JobID order."""
    files: list[Path] = []
    for job_id in sorted(job_ids):
        files.extend(sorted(job_folder(base, job_id).glob("*.parquet")))
    return files


def scan_events(
    store: str | os.PathLike[str], *, job_ids: Iterable[int] | None = None
) -> pl.LazyFrame:
    """The stored events (all sends, or only ``job_ids``) in ``EVENT_SCHEMA``, in JobID order."""
    base = events_dir(store)
    jobs = stored_jobs(base) if job_ids is None else job_ids
    files = job_files(base, jobs)
    if not files:
        return pl.LazyFrame(schema=EVENT_SCHEMA)
    return pl.scan_parquet(
        files, hive_partitioning=False, schema=EVENT_SCHEMA, missing_columns="insert"
    )


def rows_per_job(files: Sequence[Path]) -> dict[int, int]:
    """Events per JobID in Parquet files of events (one cheap pass over the job_id column)."""
    if not files:
        return {}
    counts = (
        pl.scan_parquet(list(files), hive_partitioning=False).group_by("job_id").len().collect()
    )
    return dict(
        zip(counts.get_column("job_id").to_list(), counts.get_column("len").to_list(), strict=True)
    )


def plan_groups(sizes: dict[int, int], *, limit: int = MAX_EVENTS_PER_GROUP) -> list[list[int]]:
    """Consecutive sends (in JobID order) packed into groups of at most ``limit`` events.

    A send with more events than ``limit`` forms a group of its own.
    """
    groups: list[list[int]] = []
    current: list[int] = []
    current_size = 0
    for job_id in sorted(sizes):
        size = sizes[job_id]
        if current and current_size + size > limit:
            groups.append(current)
            current, current_size = [], 0
        current.append(job_id)
        current_size += size
    if current:
        groups.append(current)
    return groups


def merge_events(
    staged: Path, store: str | os.PathLike[str], *, limit: int = MAX_EVENTS_PER_GROUP
) -> tuple[list[int], int]:
    """Union staged events into the store, one group of sends at a time.

    Each staged source (one tracking file) and the store itself count how often each event row
    occurs; the merged store holds every event row as often as the source that holds it most
    often. So the same extract twice, or overlapping windows, add nothing, while two clicks on
    the same link in the same second (identical rows within one file) stay two clicks.

    Args:
        staged: A folder of Parquet files partitioned as ``<source>/job_id=<JobID>/*.parquet``.
        store: The store folder.
        limit: Events per group (bounds memory).

    Returns:
        The JobIDs touched (sorted) and the number of events now stored for them.
    """
    base = events_dir(store)
    base.mkdir(parents=True, exist_ok=True)
    staged_by_job: dict[int, list[list[Path]]] = {}
    kinds_by_job: dict[int, list[str]] = {}
    for folder in sorted(staged.glob("*/job_id=*")):
        job_id = int(folder.name.split("=", 1)[1])
        staged_by_job.setdefault(job_id, []).append(sorted(folder.glob("*.parquet")))
        # Source folders are named "<n>-<event type>" by land_events; others may overlap.
        kinds_by_job.setdefault(job_id, []).append(folder.parent.name.partition("-")[2] or "?")
    staged_rows = rows_per_job(
        [f for sources in staged_by_job.values() for files in sources for f in files]
    )
    stored_rows = rows_per_job(job_files(base, staged_by_job))
    sizes = {j: staged_rows.get(j, 0) + stored_rows.get(j, 0) for j in staged_by_job}
    columns = list(EVENT_SCHEMA)
    stored = 0
    for group in plan_groups(sizes, limit=limit):
        sources = [files for job_id in group for files in staged_by_job[job_id]]
        existing = job_files(base, group)
        kinds = [kind for job_id in group for kind in kinds_by_job[job_id]]
        merged_root = staged / f"merged-{uuid.uuid4().hex}"
        if existing or "?" in kinds or len(set(kinds)) < len(kinds):
            counted = [
                pl.scan_parquet(
                    files, hive_partitioning=False, schema=EVENT_SCHEMA, missing_columns="insert"
                )
                .group_by(columns)
                .agg(_n=pl.len())
                for files in [*sources, existing]
                if files
            ]
            union = (
                pl.concat(counted)
                .group_by(columns)
                .agg(pl.col("_n").max())
                .with_columns(_copy=pl.int_ranges(pl.col("_n")))
                .explode("_copy")
                .drop("_n", "_copy")
            )
        else:
            # New sends, one file per event type: no row can occur in two sources.
            union = pl.scan_parquet(
                [f for files in sources for f in files],
                hive_partitioning=False,
                schema=EVENT_SCHEMA,
            )
        stored += _write_sorted(union, group, base, merged_root)
    return sorted(staged_by_job), stored


def _write_sorted(events: pl.LazyFrame, group: list[int], base: Path, work: Path) -> int:
    """Replace the folders of ``group`` under ``base`` with ``events`` in store order."""
    events.sort(EVENT_ORDER, nulls_last=True).sink_parquet(
        pl.PartitionBy(work, key="job_id", include_key=True), mkdir=True
    )
    written = sum(rows_per_job(sorted(work.glob("job_id=*/*.parquet"))).values())
    for job_id in group:
        _files.replace_folder(job_folder(work, job_id), job_folder(base, job_id))
    return written


def sort_store(
    store: str | os.PathLike[str],
    job_ids: Iterable[int],
    *,
    limit: int = MAX_EVENTS_PER_GROUP,
) -> None:
    """Rewrite the events of some sends in store order (``EVENT_ORDER``), one group at a time.

    The store is written in that order; this repairs folders written some other way (copied
    in by hand, or by a tool that appended files). ``ierkit.aggregate`` calls it when it meets
    such a folder.
    """
    base = events_dir(store)
    sizes = rows_per_job(job_files(base, job_ids))
    for group in plan_groups(sizes, limit=limit):
        work = Path(store) / f".sorting-{uuid.uuid4().hex}"
        try:
            _write_sorted(scan_events(store, job_ids=group), group, base, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def land_events(
    paths: Sequence[str | os.PathLike[str]],
    store: str | os.PathLike[str],
    *,
    source_zone: str = clock.MC_TIME_ZONE,
    limit: int = MAX_EVENTS_PER_GROUP,
    rejected: Path | None = None,
) -> LandResult:
    """Read extracts and merge their events into the store (deduplicated, idempotent).

    Every event file is parsed once, strictly, and streamed to Parquet split by send; then each
    touched send's events are unioned with what the store held (see ``merge_events``).

    Args:
        paths: Extract zips, folders or single tracking files.
        store: The event store folder (created when missing).
        source_zone: IANA zone of the extracts' dates (Marketing Cloud's UTC-6 by default).
        limit: Events per unit of work in the merge (bounds memory).
        rejected: With a path, bad rows are skipped and listed in this CSV (file, line, column,
            value, why; ``--skip-bad-rows``); without one, a bad row refuses everything.

    Returns:
        What was read and which sends changed.

    Raises:
        ExtractFormatError: For the first malformed file, naming line and column. Nothing is
            merged into the store when any file is malformed (or, with ``rejected``, when one
            cannot be read at all: not text, an unclosed quote).
    """
    store_path = Path(store)
    store_path.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".staging-", dir=store_path))
    try:
        files_read = events_read = rejected_rows = 0
        notes: list[str] = []
        for path in paths:
            with open_extract(path) as files:
                for file in files:
                    notes.extend([file.note] if file.note else [])
                    if file.kind == "jobs":
                        continue
                    files_read += 1
                    bad = (
                        None if rejected is None else staged / f"rejected-{files_read:05d}.parquet"
                    )
                    result = stage_file(
                        file,
                        staged / f"{files_read:05d}-{file.kind}",
                        source_zone=source_zone,
                        rejected=bad,
                    )
                    events_read += result.events
                    rejected_rows += result.rejected
        if rejected is not None:
            write_rejected(sorted(staged.glob("rejected-*.parquet")), rejected)
        job_ids, stored = merge_events(staged, store_path, limit=limit)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return LandResult(files_read, events_read, tuple(job_ids), stored, rejected_rows, tuple(notes))
