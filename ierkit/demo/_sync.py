"""The hourly tracking sync: cycles, a first-come-first-served queue and a per-cycle throughput.

``Sync`` is the clock (when cycles run, how many IERs each writes, the last one before "now");
``SyncQueue`` is how full each cycle already is. ``allocate`` returns the new queue with its
result instead of filling a shared one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Final

import polars as pl

from ierkit import schema
from ierkit.clock import UTC
from ierkit.demo._params import (
    ENGINE,
    SYNC_LAG,
    SYNC_MINUTE,
    SYNC_THROUGHPUT,
    SYNC_WRITE_MINUTES,
    Params,
    secs,
)

#: Cycle 0; every cycle is a whole number of hours after it.
_BASE: Final = dt.datetime(2000, 1, 1, 0, SYNC_MINUTE, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Sync:
    """The sync's clock: hourly cycles, ``throughput`` IERs per cycle, nothing after ``now``."""

    throughput: int
    now: dt.datetime

    @classmethod
    def for_params(cls, params: Params) -> Sync:
        """The sync of a demo: throughput scales with the demo (at least 200 per cycle)."""
        return cls(max(200, round(SYNC_THROUGHPUT * params.scale)), params.now)

    @staticmethod
    def cycle_index(t: dt.datetime) -> int:
        """Index of the first cycle at or after ``t``."""
        seconds = (t - _BASE).total_seconds()
        return int(-(-seconds // 3600))

    @staticmethod
    def cycle_time(index: int) -> dt.datetime:
        """When cycle ``index`` runs."""
        return _BASE + dt.timedelta(hours=index)

    @property
    def last_index(self) -> int:
        """Index of the last cycle at or before ``now``."""
        last = self.cycle_index(self.now)
        if self.cycle_time(last) > self.now:
            last -= 1
        return last

    @property
    def cutoff(self) -> dt.datetime:
        """The last cycle before "now": events after it have not happened yet in this demo."""
        return self.cycle_time(self.last_index)

    def ceil_expr(self, t: pl.Expr) -> pl.Expr:
        """The first cycle at or after each time (when the sync picks an update up)."""
        base = pl.lit(_BASE)
        seconds = (t - base).dt.total_seconds()
        hours = (seconds + 3599) // 3600
        return base + pl.duration(hours=hours)


@dataclasses.dataclass(frozen=True)
class SyncQueue:
    """IERs already taken per cycle index."""

    used: Mapping[int, int] = dataclasses.field(default_factory=dict)


_ALLOCATION_SCHEMA: Final = pl.Schema(
    {"start": pl.Int64(), "cycle": schema.UTC_DATETIME, "slot": pl.Int64(), "count": pl.Int64()}
)


def allocate(
    sync: Sync, queue: SyncQueue, sent: dt.datetime, n: int
) -> tuple[pl.DataFrame, SyncQueue]:
    """Assign ``n`` IERs of a send to cycles.

    Returns:
        One row per cycle used: ``start`` (first IER ordinal in it), ``cycle`` (time), ``slot``
        (position of the first of them in the cycle), ``count``; and the queue with them taken.
        IERs whose cycle would come after the cutoff are not allocated: they are still in the
        sync window.
    """
    used = dict(queue.used)
    starts, cycles, slots, counts = [], [], [], []
    c = sync.cycle_index(sent + SYNC_LAG)
    done = 0
    last = sync.last_index
    while done < n and c <= last:
        taken = used.get(c, 0)
        take = min(sync.throughput - taken, n - done)
        if take > 0:
            starts.append(done)
            cycles.append(sync.cycle_time(c))
            slots.append(taken)
            counts.append(take)
            used[c] = taken + take
            done += take
        c += 1
    frame = pl.DataFrame(
        {"start": starts, "cycle": cycles, "slot": slots, "count": counts},
        schema=_ALLOCATION_SCHEMA,
    )
    return frame, SyncQueue(used)


def allocate_batches(
    sync: Sync, queue: SyncQueue, rows: pl.DataFrame
) -> tuple[pl.DataFrame, SyncQueue]:
    """Sync allocation for a triggered send: each daily batch joins the queue when sent."""
    batches = (
        rows.lazy()
        .filter(pl.col("would_have_ier"))
        .group_by("batch_id")
        .agg(pl.col("date_sent").first(), pl.col("sync_ordinal").min().alias("first"), pl.len())
        .sort("batch_id")
        .collect(engine=ENGINE)
    )
    frames = []
    for first, sent, n in zip(batches["first"], batches["date_sent"], batches["len"], strict=True):
        part, queue = allocate(sync, queue, sent, n)
        frames.append(part.with_columns(pl.col("start") + first))
    if not frames:
        return allocate(sync, queue, sync.now, 0)
    return pl.concat(frames), queue


def sync_created(sync: Sync, allocation: pl.DataFrame) -> pl.Expr:
    """``ier_created`` per row from its sync ordinal; null where no cycle took it yet."""
    if allocation.height == 0:
        return pl.lit(None, dtype=schema.UTC_DATETIME)
    starts = allocation["start"]
    ordinal = pl.col("sync_ordinal")
    idx = (pl.lit(starts).search_sorted(ordinal, side="right").cast(pl.Int64) - 1).clip(0)
    within = ordinal - pl.lit(starts).gather(idx)
    slot = pl.lit(allocation["slot"]).gather(idx) + within
    cycle = pl.lit(allocation["cycle"]).gather(idx)
    in_range = ordinal.is_not_null() & (within < pl.lit(allocation["count"]).gather(idx))
    per_record = SYNC_WRITE_MINUTES * 60.0 / sync.throughput
    created = cycle + secs(slot.cast(pl.Float64) * per_record)
    return pl.when(in_range).then(created)
