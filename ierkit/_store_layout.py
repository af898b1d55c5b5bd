"""Which folder of the event store holds each send: its own folder, or a pack of small sends.

A send has its own folder, ``events/job_id=<JobID>/``, unless it is one of many small sends
landed together: those share a pack, ``events/jobs=<first>..<last>/``, one file of their events
in store order and ``jobs.json`` naming them. Why packs (issue 17): every Parquet file costs a
fixed 1-2 ms to write, flush, rename and open again, so 1,000 sends of 1,000 events each cost
more in files than in events. Why not one pack for everything: a send's late events rewrite
its whole folder, so a pack stays small (``PACK_EVENTS``) and a large send keeps its own.

This module also reads the folders (``scan_events`` and its kin, named by ``ierkit.store`` as
its own). The rules that keep the store's guarantees (``ierkit.store``):

- Folders cover disjoint JobID ranges (a send folder its JobID, a pack its first to its last
  JobID), so folders read in range order give events in JobID order: store order.
- A pack is replaced whole, like a send folder (``ierkit._files.replace_folder``), and keeps its
  name: its range never changes. A new send whose JobID lies inside a pack's range joins it.
- A send is in one folder only.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from ierkit.errors import IerkitError
from ierkit.extract import EVENT_SCHEMA

#: Events of a send from which it keeps its own folder (its files' fixed cost is small beside it).
SMALL_SEND_EVENTS: Final = 100_000
#: Events of a pack at most when it is written: bounds what a late event in one of its sends
#: makes the next landing rewrite.
PACK_EVENTS: Final = 1_000_000
#: Fewer small sends than this in a run keep a folder each: their files cost a few milliseconds.
PACK_MIN_SENDS: Final = 8
#: The file of a pack naming its sends.
PACK_MEMBERS: Final = "jobs.json"

_SEND_FOLDER: Final = re.compile(r"job_id=(-?\d+)")
_PACK_FOLDER: Final = re.compile(r"jobs=(-?\d+)\.\.(-?\d+)")


class StoreLayoutError(IerkitError):
    """An events folder whose send folders contradict each other (edited or copied by hand)."""


@dataclass(frozen=True)
class Folder:
    """One folder of the store's events.

    Attributes:
        name: Its name under ``events/`` (``job_id=<JobID>`` or ``jobs=<first>..<last>``).
        jobs: The sends it holds, sorted.
    """

    name: str
    jobs: tuple[int, ...]

    @property
    def packed(self) -> bool:
        """Whether it is a pack of several sends."""
        return self.name.startswith("jobs=")

    @property
    def first(self) -> int:
        """The lowest JobID of its range."""
        match = _PACK_FOLDER.fullmatch(self.name)
        return int(match.group(1)) if match else self.jobs[0]

    @property
    def last(self) -> int:
        """The highest JobID of its range."""
        match = _PACK_FOLDER.fullmatch(self.name)
        return int(match.group(2)) if match else self.jobs[-1]


def send_folder(job_id: int) -> Folder:
    """The folder of one send of its own."""
    return Folder(f"job_id={job_id}", (job_id,))


def pack_folder(jobs: Iterable[int]) -> Folder:
    """A pack holding ``jobs`` (at least one), named by its range."""
    members = tuple(sorted(jobs))
    return Folder(f"jobs={members[0]}..{members[-1]}", members)


def folder_files(base: Path, folder: Folder) -> list[Path]:
    """The Parquet files of a folder, sorted."""
    return sorted((base / folder.name).glob("*.parquet"))


def write_members(path: Path, folder: Folder) -> None:
    """Write a pack's ``jobs.json`` into the folder being built at ``path``."""
    (path / PACK_MEMBERS).write_text(json.dumps({"jobs": list(folder.jobs)}) + "\n")


def _pack_members(base: Path, name: str, first: int, last: int) -> tuple[int, ...]:
    """The sends of a pack: its ``jobs.json``, else (lost or edited) the JobIDs in its files."""
    folder = base / name
    try:
        jobs = tuple(
            sorted(int(job) for job in json.loads((folder / PACK_MEMBERS).read_text())["jobs"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        found = rows_per_job(sorted(folder.glob("*.parquet")))
        jobs = tuple(sorted(found))
    outside = [job for job in jobs if not first <= job <= last]
    if outside:
        raise StoreLayoutError(
            f"{folder}: holds send {outside[0]}, outside the JobIDs {first}..{last} its name "
            "gives; move that send's events to a folder job_id=<JobID> of its own"
        )
    return jobs


def read_layout(base: Path) -> list[Folder]:
    """The folders of sends under ``base``, in JobID order.

    Raises:
        StoreLayoutError: When two folders hold the same send or their ranges overlap, naming
            both.
    """
    if not base.is_dir():
        return []
    folders = []
    for child in base.iterdir():
        if not child.is_dir():
            continue
        if match := _SEND_FOLDER.fullmatch(child.name):
            folders.append(send_folder(int(match.group(1))))
        elif match := _PACK_FOLDER.fullmatch(child.name):
            first, last = int(match.group(1)), int(match.group(2))
            jobs = _pack_members(base, child.name, first, last)
            if jobs:
                folders.append(Folder(child.name, jobs))
    folders.sort(key=lambda folder: (folder.first, folder.last))
    for before, after in itertools.pairwise(folders):
        if after.first <= before.last:
            raise StoreLayoutError(
                f"{base}: the folders {before.name} and {after.name} both cover JobID "
                f"{after.first}; a send's events belong in one folder. Move them into one and "
                "remove the other"
            )
    return folders


def holders(folders: Iterable[Folder]) -> dict[int, Folder]:
    """The folder holding each send."""
    return {job: folder for folder in folders for job in folder.jobs}


def plan_folders(
    landing: dict[int, int],
    folders: list[Folder],
    stored: dict[int, int],
    *,
    pack_limit: int = PACK_EVENTS,
) -> list[tuple[Folder, bool, int]]:
    """The folders a landing writes: ``(folder, exists, events)`` in JobID order.

    A send the store holds is written with its whole folder (a pack's other sends included); a
    new send inside a pack's range joins that pack; other new sends get a folder each, except
    runs of small ones (``SMALL_SEND_EVENTS``) between two existing folders, packed by JobID
    into packs of at most ``pack_limit`` events when at least ``PACK_MIN_SENDS`` fit in one.

    Args:
        landing: Events landing per send.
        folders: The store's folders (``read_layout``).
        stored: Events stored per send of the folders the landing touches.
        pack_limit: Events of a new pack at most.
    """
    held = holders(folders)
    packs = [folder for folder in folders if folder.packed]
    pack_firsts = [pack.first for pack in packs]
    firsts = [folder.first for folder in folders]
    touched: dict[str, Folder] = {}
    fresh: list[int] = []
    for job_id in sorted(landing):
        if job_id in held:
            touched.setdefault(held[job_id].name, held[job_id])
            continue
        at = bisect.bisect_right(pack_firsts, job_id) - 1
        if at >= 0 and packs[at].last >= job_id:
            pack = touched.get(packs[at].name, packs[at])
            touched[pack.name] = Folder(pack.name, tuple(sorted((*pack.jobs, job_id))))
        else:
            fresh.append(job_id)
    planned = [(folder, True) for folder in touched.values()]
    run: list[int] = []
    for job_id in fresh:
        # A run of new sends ends where an existing folder lies between two of them.
        if run and bisect.bisect_right(firsts, run[-1]) != bisect.bisect_right(firsts, job_id):
            planned.extend((folder, False) for folder in _pack_run(run, landing, pack_limit))
            run = []
        run.append(job_id)
    planned.extend((folder, False) for folder in _pack_run(run, landing, pack_limit))
    planned.sort(key=lambda item: item[0].first)
    return [
        (folder, exists, sum(landing.get(job, 0) + stored.get(job, 0) for job in folder.jobs))
        for folder, exists in planned
    ]


def _pack_run(run: list[int], landing: dict[int, int], pack_limit: int) -> list[Folder]:
    """Folders for a run of new sends in JobID order (see ``plan_folders``).

    Small sends between two large ones are shared out evenly over as few packs as hold them,
    so no pack is left with a handful of sends.
    """
    folders: list[Folder] = []
    small: list[int] = []

    def share_out() -> None:
        total = sum(landing[job_id] for job_id in small)
        count = max(1, math.ceil(total / pack_limit))
        chunks: list[list[int]] = [[] for _ in range(count)]
        before = 0
        for job_id in small:
            # A send goes to the pack in whose share of the events it starts.
            chunks[min(count - 1, before * count // max(total, 1))].append(job_id)
            before += landing[job_id]
        for chunk in chunks:
            if len(chunk) >= PACK_MIN_SENDS:
                folders.append(pack_folder(chunk))
            else:
                folders.extend(send_folder(job_id) for job_id in chunk)
        small.clear()

    for job_id in run:
        if landing[job_id] >= SMALL_SEND_EVENTS or landing[job_id] > pack_limit:
            share_out()
            folders.append(send_folder(job_id))
        else:
            small.append(job_id)
    share_out()
    return folders


def events_dir(store: str | os.PathLike[str]) -> Path:
    """The folder of deduplicated events inside a store (layout: ``ierkit._store_layout``)."""
    return Path(store) / "events"


def job_folder(base: Path, job_id: int) -> Path:
    """The folder of one send of its own inside a partitioned folder (``job_id=<JobID>``)."""
    return base / send_folder(job_id).name


def stored_folders(base: Path) -> list[Folder]:
    """The folders of sends under ``base`` (a send's own, or a pack), in JobID order.

    Raises:
        ierkit._store_layout.StoreLayoutError: When two folders claim the same sends.
    """
    return read_layout(base)


def stored_jobs(base: Path) -> list[int]:
    """The JobIDs stored under ``base``, sorted."""
    return sorted(holders(read_layout(base)))


def folders_of(base: Path, job_ids: Iterable[int]) -> tuple[list[Folder], bool]:
    """The folders holding some sends, in JobID order, and whether they hold other sends too."""
    wanted = set(job_ids)
    folders = [folder for folder in read_layout(base) if wanted.intersection(folder.jobs)]
    return folders, any(not wanted.issuperset(folder.jobs) for folder in folders)


def job_files(base: Path, job_ids: Iterable[int]) -> list[Path]:
    """Parquet files holding the given sends under ``base``, in JobID order.

    A pack's file holds other sends too: filter on ``job_id`` (``scan_events`` does).
    """
    folders, _ = folders_of(base, job_ids)
    return [file for folder in folders for file in folder_files(base, folder)]


def scan_events(
    store: str | os.PathLike[str], *, job_ids: Iterable[int] | None = None
) -> pl.LazyFrame:
    """The stored events (all sends, or only ``job_ids``) in ``EVENT_SCHEMA``, in JobID order."""
    base = events_dir(store)
    if job_ids is None:
        folders, others = read_layout(base), False
    else:
        job_ids = set(job_ids)
        folders, others = folders_of(base, job_ids)
    files = [file for folder in folders for file in folder_files(base, folder)]
    if not files:
        return pl.LazyFrame(schema=EVENT_SCHEMA)
    events = pl.scan_parquet(
        files, hive_partitioning=False, schema=EVENT_SCHEMA, missing_columns="insert"
    )
    return events.filter(pl.col("job_id").is_in(sorted(job_ids or ()))) if others else events


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


def plan_groups(sizes: dict[int, int], *, limit: int) -> list[list[int]]:
    """Consecutive sends or folders (by JobID) put into groups of at most ``limit`` events.

    Args:
        sizes: Events per send, or per folder keyed by its first JobID.
        limit: Events of a group at most; a send or folder larger than that is a group alone.
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
