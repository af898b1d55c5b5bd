"""The event store: the events of many tracking extracts, deduplicated, a folder per send or pack.

Why events, and not IER totals, are the state. An IER holds counts (open_count, total_clicks).
Merging counts from two extracts is idempotent only if one knows which events both extracts
contained: rolling 7-day extracts taken every day overlap by six days, and summing would count each
open up to seven times, while taking the maximum would lose opens that fall in different windows.
Dates alone (max, min) merge idempotently, counts do not. So the store keeps the events themselves,
deduplicated on all event columns, each send in one folder: its own (``events/job_id=<JobID>/``),
or a pack of small sends landed together (``events/jobs=<first>..<last>/``; the rules are in
``ierkit._store_layout``). Merging an extract is a union, so applying the same extract twice, or
overlapping windows, changes nothing, and the IERs of the sends an extract touched are recomputed
from their complete event sets (``ierkit.aggregate``). Marketing Cloud writes times to the second,
so one file can hold two identical rows that are two real events (two clicks on one link within
a second): the union is a multiset union (each row kept as often as the one source that holds it
most often), which keeps them both. Events are written in store order (``EVENT_ORDER``: JobID,
IER key, then time), so that ``ierkit.aggregate`` finds each IER's events as one run without
sorting or hashing; ``sort_store`` puts a folder that was written some other way back in that
order.

Nothing lost, nothing mixed (``locked``, ``Journal``). One writer at a time: every run that
changes the store, or the tables it feeds, holds the store's lock (and the output folder's), and
a second run waits a bounded time, then stops naming the holder. Landing an extract is staged
first (parsed, written, flushed), then committed by the journal (``journal.json``), which names
the staged folder and the sends whose tables must be rebuilt; only then is the store changed. A
run killed at any point leaves either nothing committed (its staging is debris, removed by the
next run) or a journal that the next run finishes before doing its own work: it merges the
staged folder again (a union: what was merged already changes nothing), puts back a folder
a kill caught between two renames (``ierkit._files.recover_replaced``), and rebuilds the tables
of every pending send. Only a completed table rewrite clears the pending sends.

What a landing costs (issue 17). Each tracking file is parsed once into one staged Parquet
file (not one per send: a file's fixed cost paid per send made 1,000 small sends cost more than
their events), and small sends are stored in packs for the same reason. Rows are counted for
deduplication only for a send that can overlap: one the store holds already, or one that an event
type reaches from two sources; a new send from one extract is taken as it is. A group of folders
is read from the staged files by JobID range, sorted in memory, written (one polars call for all
the sends of their own, one file per pack) and flushed from a thread pool.

Reading and checking the tracking files themselves is ``ierkit.extract``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from ierkit import _files, clock, schema

# The store's folders and reading them live in ``ierkit._store_layout``; named here as the
# store's own (``store.scan_events``, ...), which is how the rest of ierkit reads the store.
from ierkit._store_layout import (
    PACK_EVENTS,
    Folder,
    folder_files,
    folders_of,
    holders,
    plan_folders,
    read_layout,
    write_members,
)
from ierkit._store_layout import events_dir as events_dir
from ierkit._store_layout import job_files as job_files
from ierkit._store_layout import job_folder as job_folder
from ierkit._store_layout import plan_groups as plan_groups
from ierkit._store_layout import rows_per_job as rows_per_job
from ierkit._store_layout import scan_events as scan_events
from ierkit._store_layout import stored_folders as stored_folders
from ierkit._store_layout import stored_jobs as stored_jobs
from ierkit.errors import IerkitError
from ierkit.extract import (
    EVENT_SCHEMA,
    ExtractFile,
    StageResult,
    send_jobs_of,
    stage_file,
    unpacking,
    write_rejected,
)
from ierkit.orgs.local import DEMO_MANIFEST, SNAPSHOT_MANIFEST
from ierkit.orgs.local import LOCK_FILE as LOCAL_ORG_LOCK_FILE

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


#: Tracking files parsed at once by ``land_events`` (this machine class has two cores).
_STAGE_THREADS: Final = 2
#: Threads that write and flush a group's send files at once (see ``_write_sorted``).
_FLUSH_THREADS: Final = 16

#: Parquet options of the store's files: zstd level 1 costs about half the CPU of the default
#: level for files a few percent larger (they are read at every aggregation).
STORE_PARQUET: Final[dict[str, Any]] = {"compression": "zstd", "compression_level": 1}


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


def _staged_sources(staged: Path) -> list[tuple[str, list[Path], dict[int, int]]]:
    """The staged sources of a landing: (event type, files, events per JobID) per tracking file.

    Source folders are named ``<n>-<event type>`` by ``land_events``; a source of unknown kind
    ("?") may overlap any other. Files nested per send (``job_id=<JobID>/``, as earlier versions
    staged them) are read the same way.
    """
    sources = []
    for folder in sorted(staged.iterdir()):
        if not folder.is_dir() or folder.name.startswith("merged-"):
            continue
        files = sorted(folder.rglob("*.parquet"))
        if files:
            sources.append((folder.name.partition("-")[2] or "?", files, rows_per_job(files)))
    return sources


def staged_jobs(staged: Path) -> set[int]:
    """The JobIDs a staged landing touches."""
    return {job for _, _, counts in _staged_sources(staged) for job in counts}


def merge_events(
    staged: Path, store: str | os.PathLike[str], *, limit: int = MAX_EVENTS_PER_GROUP
) -> tuple[list[int], int]:
    """Union staged events into the store, one group of folders at a time.

    Each staged source (one tracking file) and the store itself count how often each event row
    occurs; the merged store holds every event row as often as the source that holds it most
    often. So the same extract twice, or overlapping windows, add nothing, while two clicks on
    the same link in the same second (identical rows within one file) stay two clicks. A send
    that the store does not hold yet and that each event type reaches from one source only
    (the usual weekly extract) cannot hold a row twice: its events are taken as they are, with
    no counting. Which folder each send goes to is ``ierkit._store_layout.plan_folders``: a
    pack's sends that the landing does not touch are carried over as they are.

    Args:
        staged: A folder of staged sources, ``<n>-<event type>/*.parquet`` (``land_events``).
        store: The store folder.
        limit: Events per group (bounds memory).

    Returns:
        The JobIDs touched (sorted) and the number of events now stored for them.
    """
    base = events_dir(store)
    base.mkdir(parents=True, exist_ok=True)
    sources = _staged_sources(staged)
    kinds_by_job: dict[int, list[str]] = {}
    landing: dict[int, int] = {}
    for kind, _, counts in sources:
        for job_id, rows in counts.items():
            kinds_by_job.setdefault(job_id, []).append(kind)
            landing[job_id] = landing.get(job_id, 0) + rows
    layout = read_layout(base)
    held = holders(layout)
    touched_folders = {held[job_id].name: held[job_id] for job_id in landing if job_id in held}
    existing_files = {name: folder_files(base, folder) for name, folder in touched_folders.items()}
    stored_rows = rows_per_job([file for files in existing_files.values() for file in files])
    planned = plan_folders(landing, layout, stored_rows, pack_limit=min(limit, PACK_EVENTS))
    columns = list(EVENT_SCHEMA)
    stored = 0
    sizes = {folder.first: events for folder, _, events in planned}
    groups = plan_groups(sizes, limit=limit)
    by_first = {folder.first: (folder, exists) for folder, exists, _ in planned}
    for group in groups:
        targets = [by_first[first] for first in group]
        jobs = sorted(job for folder, _ in targets for job in folder.jobs)
        # Groups are runs of consecutive folders: a range filter skips the row groups of the
        # staged files that hold other sends (their statistics), and none when there is one.
        in_group = pl.col("job_id").is_between(jobs[0], jobs[-1])
        scans = [
            _scan_staged(files).filter(in_group) if len(groups) > 1 else _scan_staged(files)
            for _, files, counts in sources
            if any(job_id in counts for job_id in jobs)
        ]
        overlapping = [
            job_id
            for job_id in jobs
            if job_id in landing
            and (
                job_id in held
                or "?" in kinds_by_job[job_id]
                or len(set(kinds_by_job[job_id])) < len(kinds_by_job[job_id])
            )
        ]
        carried = [job_id for job_id in jobs if job_id in held and job_id not in landing]
        existing = [
            file for folder, exists in targets if exists for file in existing_files[folder.name]
        ]
        parts = []
        if len(overlapping) < sum(job_id in landing for job_id in jobs):
            plain = pl.concat(scans)
            parts.append(
                plain.filter(~pl.col("job_id").is_in(overlapping)) if overlapping else plain
            )
        if overlapping:
            counted = [
                frame.filter(pl.col("job_id").is_in(overlapping)).group_by(columns).agg(_n=pl.len())
                for frame in [*scans, *([_scan_staged(existing)] if existing else [])]
            ]
            parts.append(
                pl.concat(counted)
                .group_by(columns)
                .agg(pl.col("_n").max())
                .with_columns(_copy=pl.int_ranges(pl.col("_n")))
                .explode("_copy")
                .drop("_n", "_copy")
            )
        if carried:
            # A pack's sends this landing does not touch: rewritten with it, as they are.
            parts.append(_scan_staged(existing).filter(pl.col("job_id").is_in(carried)))
        written = _write_sorted(
            pl.concat(parts),
            [folder for folder, _ in targets],
            base,
            staged / f"merged-{uuid.uuid4().hex}",
            size=sum(sizes[first] for first in group),
            limit=limit,
        )
        stored += sum(written.get(job_id, 0) for job_id in jobs if job_id in landing)
    return sorted(landing), stored


def _scan_staged(files: list[Path]) -> pl.LazyFrame:
    return pl.scan_parquet(
        files, hive_partitioning=False, schema=EVENT_SCHEMA, missing_columns="insert"
    )


def _write_sorted(
    events: pl.LazyFrame,
    folders: list[Folder],
    base: Path,
    work: Path,
    *,
    size: int = 0,
    limit: int = MAX_EVENTS_PER_GROUP,
) -> dict[int, int]:
    """Replace ``folders`` under ``base`` with ``events`` (all of their sends) in store order.

    The group is sorted in memory (it is at most ``limit`` events; one folder larger than that,
    alone in its group, by polars' streaming sort). A send of its own gets one file in its
    folder, a pack one file for all its sends and ``jobs.json``. A folder the store did not hold
    is renamed into place and the store's folder flushed once for the group; one it held is
    replaced through ``ierkit._files.replace_folder`` (the old folder stays whole until the new
    one is in).

    Returns:
        Events written per send.
    """
    own = [folder.jobs[0] for folder in folders if not folder.packed]
    packs = [folder for folder in folders if folder.packed]
    partition = pl.PartitionBy(work, key="job_id", include_key=True)
    work.mkdir(parents=True, exist_ok=True)
    if size > limit:
        [folder] = folders
        # One folder larger than a group: polars' streaming sort, whose memory stays below
        # twice the events held (a copy sorted in memory beside them went past 4 GiB at 100M).
        in_order = events.sort(EVENT_ORDER, nulls_last=True)
        if folder.packed:
            (work / folder.name).mkdir()
            in_order.sink_parquet(work / folder.name / "part-0.parquet", **STORE_PARQUET)
        else:
            in_order.sink_parquet(partition, mkdir=True, **STORE_PARQUET)
        written = rows_per_job(sorted(work.glob("*/*.parquet")))
    else:
        frame = events.collect(engine="in-memory")
        # Below a million rows a sort on one thread takes less CPU than on several (the
        # threads' hand-offs cost more than they save) and about the same time.
        frame = frame.sort(EVENT_ORDER, nulls_last=True, multithreaded=frame.height > 1_000_000)
        if own:
            # One polars call writes every own folder's file (hive folders job_id=<JobID>/):
            # a write per send from Python cost more than the events of a small send.
            alone = frame if not packs else frame.filter(pl.col("job_id").is_in(own))
            alone.lazy().sink_parquet(partition, mkdir=True, **STORE_PARQUET)
        for pack in packs:
            (work / pack.name).mkdir()
            frame.filter(pl.col("job_id").is_between(pack.first, pack.last)).write_parquet(
                work / pack.name / "part-0.parquet", **STORE_PARQUET
            )
        counts = frame.group_by("job_id").len()
        written = dict(zip(counts["job_id"].to_list(), counts["len"].to_list(), strict=True))
        del frame
    for pack in packs:
        write_members(work / pack.name, pack)
    files = sorted(path for path in work.glob("*/*") if path.is_file())
    # Many threads: an fsync waits on the disk, not the CPU, and the filesystem commits
    # concurrent ones together (a flush per send, one at a time, made 1,000 small sends cost
    # seconds). Files first, then the folders that name them.
    with ThreadPoolExecutor(max_workers=_FLUSH_THREADS) as pool:
        list(pool.map(_files.fsync_file, files))
        list(pool.map(_files.fsync_dir, sorted({file.parent for file in files})))
    _files.fsync_dir(work)
    _files.crash_point("aggregate/merge-written")
    for folder in folders:
        fresh, target = work / folder.name, base / folder.name
        if not fresh.is_dir():
            continue
        if target.exists():
            _files.replace_folder(fresh, target)
        else:
            os.replace(fresh, target)
    _files.fsync_dir(base)
    return written


def sort_store(
    store: str | os.PathLike[str],
    job_ids: Iterable[int],
    *,
    limit: int = MAX_EVENTS_PER_GROUP,
) -> None:
    """Rewrite the folders holding some sends in store order (``EVENT_ORDER``), a group at a time.

    The store is written in that order; this repairs folders written some other way (copied
    in by hand, or by a tool that appended files). ``ierkit.aggregate`` calls it when it meets
    such a folder. A pack is rewritten whole.
    """
    base = events_dir(store)
    folders, _ = folders_of(base, job_ids)
    sizes = {
        folder.first: sum(rows_per_job(folder_files(base, folder)).values()) for folder in folders
    }
    by_first = {folder.first: folder for folder in folders}
    for group in plan_groups(sizes, limit=limit):
        targets = [by_first[first] for first in group]
        work = Path(store) / f".sorting-{uuid.uuid4().hex}"
        try:
            _write_sorted(
                _scan_staged([file for folder in targets for file in folder_files(base, folder)]),
                targets,
                base,
                work,
                size=sum(sizes[first] for first in group),
                limit=limit,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)


#: Seconds a run waits for another run to release the store before it gives up (a weekly
#: cron job that overlaps the previous one waits for it instead of failing at once).
DEFAULT_LOCK_WAIT: Final = 600.0

#: Files of a store: its lock, its journal and the send details of every extract landed.
LOCK_FILE: Final = ".lock"
JOURNAL_FILE: Final = "journal.json"
SEND_JOBS_FILE: Final = "send_jobs.parquet"
#: The file that marks a folder as an event store from its first use (the lock file is removed
#: when released, and a store may hold nothing else yet, e.g. only a pickup ledger).
STORE_MARKER: Final = ".ierkit-event-store.json"

#: Files ``ierkit.aggregate`` keeps in the output folder it writes: its marker, and the local
#: org's own lock (``LocalOrg.lock``), so a restore or a cleanup of that folder waits for it.
OUTPUT_MARKER: Final = ".ierkit-aggregate.json"
OUTPUT_LOCK: Final = LOCAL_ORG_LOCK_FILE

#: The tables ``ierkit.aggregate`` writes into its output folder.
OUTPUT_TABLES: Final = ("individual_email_results", "individual_links")

#: Names of the temporary files and folders runs write, removed when a later run holds the
#: lock (their writer is gone). In the output folder only the names aggregate itself gives
#: (a uuid), never another writer's temporary files.
_STORE_DEBRIS: Final = re.compile(
    rf"\.staging-.+|\.sorting-[0-9a-f]{{32}}"
    rf"|\.({re.escape(JOURNAL_FILE)}|{re.escape(SEND_JOBS_FILE)})\..+\.tmp"
)
#: The engagement signal file ``aggregate`` writes beside the tables (``ierkit.signal``).
SIGNAL_FILE: Final = "engagement_signal.parquet"
_OUTPUT_DEBRIS: Final = re.compile(
    rf"\.aggregate-[0-9a-f]{{32}}|\.({'|'.join(OUTPUT_TABLES)})\.[0-9a-f]{{32}}\.tmp"
    # Only aggregate writes the signal file (atomic_path's temporary name), under the lock.
    rf"|\.{re.escape(SIGNAL_FILE)}\.\w+\.tmp"
)


class StoreError(IerkitError):
    """A store or output folder that cannot be used as given."""


@dataclass(frozen=True)
class Journal:
    """What the store still owes the tables it feeds (``journal.json``).

    Attributes:
        landing: A staged folder (in the store) whose events are committed but perhaps not yet
            all merged; the next run merges it again.
        pending: Sends whose events changed since the tables were last rebuilt for them.
    """

    landing: str | None = None
    pending: tuple[int, ...] = ()


def read_journal(store: str | os.PathLike[str]) -> Journal:
    """The store's journal; an empty one when there is none yet.

    A journal that cannot be read (edited by hand) makes every stored send pending, so the next
    table rewrite recomputes everything rather than trusting tables it cannot vouch for.
    """
    path = Path(store) / JOURNAL_FILE
    if not path.is_file():
        return Journal()
    try:
        data = json.loads(path.read_text())
        landing = data["landing"]
        # Only a staging folder of this store: a run removes it once merged.
        if landing is not None and not re.fullmatch(r"\.staging-[A-Za-z0-9_]+", landing):
            raise ValueError(landing)
        return Journal(landing, tuple(int(job) for job in data["pending"]))
    except (ValueError, KeyError, TypeError):
        return Journal(None, tuple(stored_jobs(events_dir(store))))


def write_journal(store: str | os.PathLike[str], journal: Journal) -> None:
    """Replace the journal atomically and durably (the commit point of each step)."""
    text = json.dumps({"landing": journal.landing, "pending": sorted(set(journal.pending))})
    _files.write_text(Path(store) / JOURNAL_FILE, text + "\n")


def _require_folder(path: Path, option: str) -> None:
    """Refuse a path that is, or lies under, a file."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise StoreError(
                    f"{option} {path}: {candidate} is a file, not a folder; give a folder path"
                )
            return


def check_store(store: str | os.PathLike[str]) -> Path:
    """The store folder, refused when it is a file or a folder with other contents.

    Raises:
        StoreError: Naming the path and what to do.
    """
    path = Path(store)
    _require_folder(path, "--store")
    if path.is_dir() and any(path.iterdir()):
        signs = (
            path / STORE_MARKER,
            events_dir(path),
            path / JOURNAL_FILE,
            path / SEND_JOBS_FILE,
            path / LOCK_FILE,
        )
        if not any(sign.exists() for sign in signs):
            raise StoreError(
                f"--store {path}: this folder holds other files and is not an event store "
                "(no events folder or journal.json); give a new or empty folder"
            )
    return path


def check_output(out: str | os.PathLike[str]) -> Path:
    """The output folder, refused when it is a file, or another org's folder.

    A folder ``ierkit aggregate`` wrote carries its marker file. Earlier versions wrote none:
    a folder holding only the aggregate's two tables and its default event store is theirs.

    Raises:
        StoreError: Naming the folder, what it holds and what to do.
    """
    path = Path(out)
    _require_folder(path, "--out")
    if not path.is_dir() or (path / OUTPUT_MARKER).is_file():
        return path
    tables = sorted(
        child.name
        for child in path.iterdir()
        if child.suffix == ".parquet" and child.stem in schema.TABLES
    )
    manifests = [m for m in (DEMO_MANIFEST, SNAPSHOT_MANIFEST) if (path / m).exists()]
    legacy = (
        not manifests
        and set(tables) <= {f"{name}.parquet" for name in OUTPUT_TABLES}
        and events_dir(path / "event_store").is_dir()
    )
    if (tables or manifests) and not legacy:
        held = ", ".join([*manifests, *tables[:4]]) + (" ..." if len(tables) > 4 else "")
        raise StoreError(
            f"--out {path}: this folder is not an output of ierkit aggregate (it holds {held} "
            f"and no {OUTPUT_MARKER}); aggregate would replace its tables. Give a new or empty "
            "folder for --out"
        )
    return path


@contextlib.contextmanager
def locked(
    store: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    wait: float = DEFAULT_LOCK_WAIT,
) -> Iterator[Journal]:
    """Hold the store's lock (and ``out``'s), after finishing what a killed run left.

    The outermost holder in a process first repairs the store (``recover``) and removes the
    temporary files a killed run left in the output folder: no one else can be writing them.

    Args:
        store: The event store folder (created when missing).
        out: The output folder whose tables the holder rewrites (created and marked), if any.
        wait: Seconds to wait for another run to finish.

    Yields:
        The journal after recovery.

    Raises:
        StoreError: When ``store`` or ``out`` cannot be used (see ``check_store``,
            ``check_output``).
        LockHeldError: When another run still holds a lock after ``wait`` seconds.
    """
    store_path = check_store(store)
    out_path = None if out is None else check_output(out)
    with contextlib.ExitStack() as stack:
        store_path.mkdir(parents=True, exist_ok=True)
        first = stack.enter_context(
            _files.exclusive_lock(
                store_path / LOCK_FILE, wait=wait, what=f"the event store {store_path}"
            )
        )
        if not (store_path / STORE_MARKER).is_file():
            _files.write_text(
                store_path / STORE_MARKER, json.dumps({"written_by": "ierkit aggregate"}) + "\n"
            )
        if out_path is not None:
            out_path.mkdir(parents=True, exist_ok=True)
            first_out = stack.enter_context(
                _files.exclusive_lock(
                    out_path / OUTPUT_LOCK, wait=wait, what=f"the output folder {out_path}"
                )
            )
            if first_out:
                _remove(out_path, _OUTPUT_DEBRIS)
            if not (out_path / OUTPUT_MARKER).is_file():
                marker = {"written_by": "ierkit aggregate", "store": str(store_path.resolve())}
                _files.write_text(out_path / OUTPUT_MARKER, json.dumps(marker) + "\n")
        yield recover(store_path) if first else read_journal(store_path)


def _remove(folder: Path, debris: re.Pattern[str]) -> None:
    for path in folder.iterdir():
        if not debris.fullmatch(path.name):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def recover(store: str | os.PathLike[str], *, limit: int = MAX_EVENTS_PER_GROUP) -> Journal:
    """Finish what a killed run left in the store; call it only while holding its lock.

    Puts back a folder a kill caught between two renames, merges a committed staging
    folder again (idempotent), and removes the temporary files and folders of killed runs.

    Returns:
        The journal afterwards: the sends whose tables still need rebuilding.
    """
    path = Path(store)
    _files.recover_replaced(events_dir(path))
    journal = read_journal(path)
    if journal.landing is not None and (path / journal.landing).is_dir():
        _finish_landing(path / journal.landing, path, limit=limit)
        journal = read_journal(path)
    elif journal.landing is not None:
        journal = Journal(None, journal.pending)
        write_journal(path, journal)
    _remove(path, _STORE_DEBRIS)
    return journal


def scan_send_jobs(store: str | os.PathLike[str]) -> pl.LazyFrame | None:
    """Send details (email name, from, subject) kept from every extract landed, if any."""
    kept = Path(store) / SEND_JOBS_FILE
    return pl.scan_parquet(kept) if kept.is_file() else None


def _merge_send_jobs(staged: Path, store: Path) -> None:
    """Send details of a landing merged into the store's: the newer extract's wins."""
    if not staged.is_file():
        return
    kept = store / SEND_JOBS_FILE
    frames = [pl.scan_parquet(staged)] + ([pl.scan_parquet(kept)] if kept.is_file() else [])
    merged = (
        pl.concat(frames)
        .collect()
        .unique("job_id", keep="first", maintain_order=True)
        .sort("job_id")
    )
    _files.write_parquet(merged, kept)


def _finish_landing(staged: Path, store: Path, *, limit: int) -> tuple[list[int], int]:
    """Merge a committed staging folder into the store, then clear it from the journal."""
    for partial in staged.glob("merged-*"):
        shutil.rmtree(partial)  # a merge a kill interrupted: its sources are all still here
    job_ids, stored = merge_events(staged, store, limit=limit)
    _files.crash_point("aggregate/merged")
    _merge_send_jobs(staged / SEND_JOBS_FILE, store)
    # The touched sends were pending since the commit; listed again in case the tables were
    # rebuilt meanwhile (a failed run whose landing is finished only now).
    write_journal(store, Journal(None, (*read_journal(store).pending, *job_ids)))
    _files.crash_point("aggregate/landed")
    shutil.rmtree(staged, ignore_errors=True)
    return job_ids, stored


def land_events(
    paths: Sequence[str | os.PathLike[str]],
    store: str | os.PathLike[str],
    *,
    source_zone: str = clock.MC_TIME_ZONE,
    limit: int = MAX_EVENTS_PER_GROUP,
    lock_wait: float = DEFAULT_LOCK_WAIT,
    rejected: Path | None = None,
) -> LandResult:
    """Read extracts and merge their events into the store (deduplicated, idempotent).

    Every event file is parsed once, strictly, and streamed to Parquet split by send, with the
    send details; the staged folder is flushed and committed in the journal; then each touched
    send's events are unioned with what the store held (see ``merge_events``). A run killed
    after the commit is finished by the next one (``recover``).

    Args:
        paths: Extract zips, folders or single tracking files.
        store: The event store folder (created when missing).
        source_zone: IANA zone of the extracts' dates (Marketing Cloud's UTC-6 by default).
        limit: Events per unit of work in the merge (bounds memory).
        lock_wait: Seconds to wait for another run holding the store.
        rejected: With a path, bad rows are skipped and listed in this CSV (file, line, column,
            value, why; ``--skip-bad-rows``); without one, a bad row refuses everything.

    Returns:
        What was read and which sends changed.

    Raises:
        ExtractFormatError: For the first malformed file, naming line and column. Nothing is
            merged into the store when any file is malformed (or, with ``rejected``, when one
            cannot be read at all: not text, an unclosed quote).
        LockHeldError: When another run holds the store for longer than ``lock_wait``.
    """
    with locked(store, wait=lock_wait):
        store_path = Path(store)
        staged = Path(tempfile.mkdtemp(prefix=".staging-", dir=store_path))
        committed = False
        try:
            files_read = events_read = rejected_rows = 0
            notes: list[str] = []
            send_jobs: list[pl.DataFrame] = []
            for path in paths:
                # Each file as soon as it is unpacked: parsing overlaps unpacking the next,
                # and two files are parsed at once (polars releases the GIL; small files use
                # one core each).
                with unpacking(path) as files, ThreadPoolExecutor(_STAGE_THREADS) as pool:
                    seen: list[ExtractFile] = []
                    staging: list[tuple[str, Future[StageResult]]] = []
                    for file in files:
                        seen.append(file)
                        if file.kind == "jobs":
                            continue
                        files_read += 1
                        bad = (
                            None
                            if rejected is None
                            else staged / f"rejected-{files_read:05d}.parquet"
                        )
                        staging.append(
                            (
                                file.name,
                                pool.submit(
                                    stage_file,
                                    file,
                                    staged / f"{files_read:05d}-{file.kind}",
                                    source_zone=source_zone,
                                    rejected=bad,
                                ),
                            )
                        )
                    # The first bad file by name is the one named, whatever finished first.
                    for _, future in sorted(staging, key=lambda item: item[0]):
                        result = future.result()
                        events_read += result.events
                        rejected_rows += result.rejected
                    seen.sort(key=lambda f: f.name)  # notes and send details in name order
                    notes.extend(file.note for file in seen if file.note)
                    send_jobs.append(send_jobs_of(seen))
            if rejected is not None:
                write_rejected(sorted(staged.glob("rejected-*.parquet")), rejected)
            if send_jobs:
                # The first extract listing a send wins.
                pl.concat(send_jobs).unique("job_id", keep="first", maintain_order=True).sort(
                    "job_id"
                ).write_parquet(staged / SEND_JOBS_FILE)
            _files.fsync_tree(staged)
            _files.crash_point("aggregate/staged")
            touched = staged_jobs(staged)
            pending = set(read_journal(store_path).pending) | touched
            write_journal(store_path, Journal(staged.name, tuple(pending)))
            committed = True
            _files.crash_point("aggregate/committed")
            job_ids, stored = _finish_landing(staged, store_path, limit=limit)
        finally:
            if not committed:
                shutil.rmtree(staged, ignore_errors=True)
    return LandResult(files_read, events_read, tuple(job_ids), stored, rejected_rows, tuple(notes))
