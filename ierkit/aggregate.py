"""Tracking events rolled up into Individual Email Results, as Marketing Cloud Connect does.

One IER per recipient per send: per (job_id, batch_id, subscriber_key). Rules, from the canonical
event table of ``ierkit.extract``:

- ``date_sent``: the Sent event's time (the earliest, should a send list a key twice).
- ``opened`` / ``date_opened``: a click implies an open even when the open pixel was blocked
  (images off), so ``opened`` is true when there is an Open or a Click, and ``date_opened`` is the
  first of them. ``open_count`` and ``last_opened`` (not stored by Salesforce) count Open events;
  an open implied only by clicks counts as one open at ``date_opened``.
- ``total_clicks``: all Click events; ``unique_clicks`` (Salesforce's "Links Clicked"): distinct
  links clicked, a link being its Marketing Cloud id (SendURLID, else URLID) where the extract
  has one and its URL where not; ``clicked`` = ``unique_clicks > 0`` (the package's formula).
- ``hard_bounce``: a bounce whose BounceCategory is Hard. ``soft_bounce``: any other bounce:
  Soft, **Block and Technical/Other count as soft**, and so does Unknown (Marketing Cloud Connect
  has only the two checkboxes). ``date_bounced``: the first bounce.
- ``unsubscribed`` / ``date_unsubscribed``: the first Unsub event.
- ``tracking_as_of``: the latest event of the IER (the last tracking update it received).
- Events of a send whose Sent row is missing (a subscriber deleted in Marketing Cloud keeps
  sending opens and clicks with a blank key; a partial extract) are kept, not dropped: the IER has
  ``date_sent`` null, and the frame ``aggregate_iers`` returns carries ``has_sent_row`` = false.
  The written table (schema ``individual_email_results``) keeps only canonical columns, where
  ``date_sent`` null is the flag. Rows with a blank Subscriber Key are told apart by
  SubscriberID: the grouping key is (job_id, batch_id, subscriber_key, subscriber_id), which is
  the same IER key because Marketing Cloud gives each Subscriber Key one SubscriberID.

Ids: tracking data has no Salesforce Ids, so ``id`` is a deterministic synthetic one,
``"<job_id>-<batch_id>-<subscriber_key>"`` (``#<subscriber_id>`` for a blank key); a link
detail's id appends ``"|<url>"``, and ``"|<link id>"`` when the link has one. ``contact_id`` /
``lead_id`` are set when the Subscriber Key is a valid 18-character Contact (003) or Lead (00Q)
Id, which is the only case in which Marketing Cloud Connect writes an IER at all.

Link details (``aggregate_links``): one row per IER per link clicked, with total clicks, last
click, the link name (Alias/LinkName) and ``exact_target_link_id`` (the link's SendURLID, else
URLID). Two links to the same URL in one email (a logo and a button) have two ids and stay two
link details; a link with an id is one link detail even should its URL vary between clicks.

- ``list_id``: the ListID of the Sent row (the list the email went to); an IER without a Sent
  row takes its first event's.

How (``_rollup_runs``): the event store keeps each send's events in store order
(``ierkit.store.EVENT_ORDER``: IER key, then time), so an IER's events are one contiguous
run and every figure is a position: the first Sent, the last Open, how many Clicks. There is
no ``group_by`` over the IER key (hashing that string key is most of what a plain query
costs) and no sort: the IERs come out in key order. Only the few Click rows are grouped, by
URL. Events reach the roll-up in chunks of ``CHUNK_EVENTS`` (an IER cut by a chunk's end is
held back for the next), so memory is bounded by the chunk, not by the number of IERs. The
order is checked on every row as it streams past (``StoreOrderError``), and
``aggregate_store`` sorts an out-of-order send in the store and runs again. ``aggregate_iers``
on arbitrary events sorts them first.

Incremental merge: see ``ierkit.store`` for why the state is the deduplicated event store.
``aggregate_store`` recomputes the IERs and link details of the sends an extract touched and
copies the rows of every other send from the previous output; each table is replaced
atomically.

Speed (``benchmarks/aggregate.py``): writing the canonical tables (33 columns, 9 of them empty
for tracking data, the Id strings ``id``, ``contact_id``/``lead_id``) costs more than the roll-up
itself; the Contact/Lead Id check is integer arithmetic and the files are zstd level 1.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from ierkit import _files, clock, extract, schema, signal
from ierkit import store as event_store
from ierkit._io_source import frames_source
from ierkit._link_details import LINK_TABLE, finish_links, link_rows
from ierkit._prefetch import prefetched
from ierkit.errors import IerkitError
from ierkit.orgs import LocalOrg

#: The IER key in the event table (see the module docstring on subscriber_id).
IER_KEY: Final = ("job_id", "batch_id", "subscriber_key", "subscriber_id")
# Key prefixes of the objects an IER can hang on (Salesforce standard key prefixes).
_CONTACT_PREFIX: Final = "003"
_LEAD_PREFIX: Final = "00Q"

IER_TABLE: Final = "individual_email_results"
#: Bad rows skipped by ``aggregate_extracts(skip_bad_rows=True)``, beside the tables.
REJECTED_FILE: Final = "rejected_rows.csv"

#: Parquet options of the output tables. Encoding the 33-column IER table is most of what an
#: aggregation costs: zstd level 1 takes about 1.4x less CPU than the default level for files
#: about 6% larger, and 1 MiB data pages a further ~15% (same size). Statistics stay: they
#: let reads of a few sends skip row groups, though they cost ~25% of the encoding.
_PARQUET: Final[dict[str, Any]] = {
    "compression": "zstd",
    "compression_level": 1,
    "data_page_size": 1 << 20,
}


def _word(key: pl.Expr, start: int) -> pl.Expr:
    """Characters ``start`` to ``start + 7`` of an ASCII string as a little-endian UInt64."""
    return (
        key.str.slice(start, 8)
        .cast(pl.Binary)
        .bin.reinterpret(dtype=pl.UInt64, endianness="little")
    )


def _u64(value: int) -> pl.Expr:
    return pl.lit(value, pl.UInt64)


_BYTES: Final = 0x0101010101010101


def _upper_bits(word: pl.Expr) -> pl.Expr:
    """Bit 7 of each byte set where that byte is A-Z (bytes below 0x80; SWAR, no carries)."""
    at_least_a = word + _u64((0x80 - ord("A")) * _BYTES)
    beyond_z = word + _u64((0x80 - ord("Z") - 1) * _BYTES)
    return at_least_a & ~beyond_z & _u64(0x80 * _BYTES)


#: Multiplier that gathers bit 7 of each of a word's eight bytes into its top byte (bit j from
#: byte j): the products never carry into each other, and the multiplication wraps at 2**64.
_GATHER_BYTE_BITS: Final = 0x0002040810204081


def _uppercase_mask(word: pl.Expr) -> pl.Expr:
    """Bit j set where byte j of the word is A-Z (0..255)."""
    return (_upper_bits(word) * _u64(_GATHER_BYTE_BITS)) // _u64(1 << 56)


def with_person_ids(frame: pl.LazyFrame, key: str = "subscriber_key") -> pl.LazyFrame:
    """Add ``contact_id`` / ``lead_id``: the key when it is a valid 18-char Contact/Lead Id.

    The case-encoding suffix (see ``ierkit.ids``) is checked with integer arithmetic on the
    bytes, eight characters at a time (computed once per row in helper columns): string
    operations per character would cost more than the whole aggregation.
    """
    k = pl.col(key)
    shape = k.str.contains(r"^(003|00Q)[0-9A-Za-z]{12}[A-Z0-5]{3}$")
    staged = frame.with_columns(
        _shape=shape,
        # Bit i set where character i of the 15-character Id is uppercase: characters 0-7
        # from the first word, 8-14 from bytes 1-7 of the word starting at character 7.
        _mask=_uppercase_mask(_word(k, 0)) + _uppercase_mask(_word(k, 7)) // _u64(2) * _u64(256),
        # Characters 15-17 are bytes 5-7 of the word starting at character 10.
        _suffix=_word(k, 10) // _u64(1 << 40),
    )
    expected = []
    for chunk in range(3):
        index = (pl.col("_mask") // _u64(1 << (5 * chunk))) & _u64(31)
        # Alphabet "A".."Z" then "0".."5": index 26 is "0" (ASCII 48 = 26 + 65 - 43).
        letter = index + _u64(ord("A")) - (index >= 26).cast(pl.UInt64) * _u64(43)
        expected.append(letter * _u64(1 << (8 * chunk)))
    valid = pl.col("_shape") & (pl.sum_horizontal(expected) == pl.col("_suffix"))
    prefix = k.str.slice(0, 3)
    return staged.with_columns(
        contact_id=pl.when(valid & (prefix == _CONTACT_PREFIX)).then(k),
        lead_id=pl.when(valid & (prefix == _LEAD_PREFIX)).then(k),
    ).drop("_shape", "_suffix", "_mask")


# --- the roll-up: events in store order, where each IER is one run of rows ------------------

#: Events held in memory at once by the roll-up (a chunk, its IERs and link rows).
CHUNK_EVENTS: Final = 1_000_000

_TIME: Final = pl.Datetime("us", "UTC")


class StoreOrderError(IerkitError):
    """Events were not in store order (``ierkit.store.EVENT_ORDER``) where they had to be."""


def _key_before_previous_row() -> pl.Expr:
    """True on a row whose IER key sorts before the row above it (store order, blanks last)."""
    later_rows = pl.int_range(pl.len()) > 0
    result = pl.lit(False)
    for column in reversed(IER_KEY):
        this, above = pl.col(column), pl.col(column).shift()
        smaller = (this < above).fill_null(False) | (above.is_null() & this.is_not_null())
        result = smaller | (this.eq_missing(above) & result)
    return later_rows & result


def _run_bounds(ids: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Positions of the first and the last element of each run of equal values."""
    firsts = ids.ne_missing(ids.shift()).arg_true()
    if ids.is_empty():
        return firsts, firsts
    lasts = pl.concat([firsts.slice(1) - 1, pl.Series([ids.len() - 1], dtype=firsts.dtype)])
    return firsts, lasts


@dataclass(frozen=True)
class _Runs:
    """Where the events matching a mask lie in each IER's run.

    Attributes:
        ier: The IERs (positions in the chunk's IER table) with at least one such event.
        first: Row of each one's first such event (the earliest: runs are in time order).
        last: Row of its last such event.
        count: How many such events it has.
    """

    ier: pl.Series
    first: pl.Series
    last: pl.Series
    count: pl.Series


def _runs(ier_of_row: pl.Series, mask: pl.Series) -> _Runs:
    rows = mask.arg_true()
    firsts, lasts = _run_bounds(ier_of_row.gather(rows))
    return _Runs(
        ier=ier_of_row.gather(rows.gather(firsts)),
        first=rows.gather(firsts),
        last=rows.gather(lasts),
        count=(lasts - firsts + 1).cast(schema.COUNT),
    )


def _spread(
    n_iers: int, at: pl.Series, values: pl.Series, default: int | bool | None = None
) -> pl.Series:
    """A column of ``n_iers`` values: ``values`` at positions ``at``, ``default`` elsewhere."""
    column = pl.repeat(default, n_iers, dtype=values.dtype, eager=True)
    return column.scatter(at, values) if at.len() else column


def _ier_ids(iers: pl.DataFrame) -> pl.Series:
    """Synthetic IER Ids ``"<job_id>-<batch_id>-<subscriber_key>"`` (``#<subscriber_id>`` for
    a blank key) of IERs in key order.

    job_id and batch_id change rarely in key order: their text is built once per run of one
    send batch and repeated, several times cheaper than turning every row's integers to text.
    """
    job, batch = iers.get_column("job_id"), iers.get_column("batch_id")
    new_batch = (job.ne_missing(job.shift()) | batch.ne_missing(batch.shift())).fill_null(True)
    firsts = new_batch.arg_true()
    texts = (
        pl.DataFrame({"job": job.gather(firsts), "batch": batch.gather(firsts)})
        .select(pl.concat_str("job", pl.lit("-"), pl.col("batch").fill_null(""), pl.lit("-")))
        .to_series()
    )
    prefix = texts.gather((new_batch.cum_sum() - 1).cast(pl.UInt32))
    key = iers.get_column("subscriber_key")
    blank = key.is_null().arg_true()
    if blank.len():
        subscriber_id = iers.get_column("subscriber_id").gather(blank).cast(pl.String)
        key = key.scatter(blank, ("#" + subscriber_id).fill_null("#"))
    return (prefix + key).alias("id")


def _ier_starts() -> pl.Expr:
    """True on the first row of each IER's run (the key differs from the row above)."""
    return ~pl.all_horizontal(pl.col(c).eq_missing(pl.col(c).shift()) for c in IER_KEY)


def _check_key_order(iers: pl.DataFrame, previous_key: pl.DataFrame | None) -> None:
    """Raise ``StoreOrderError`` unless the IER keys go up (after ``previous_key``, if any).

    IER keys that only go up mean that each IER's events were one run: checked once per IER,
    not once per event.
    """
    keys = iers.select(IER_KEY)
    if previous_key is not None:
        keys = pl.concat([previous_key, keys])
    back = keys.select(_key_before_previous_row()).to_series()
    if back.any():
        row = back.arg_true().item(0) - (previous_key is not None)
        raise StoreOrderError(f"IER {row} of a chunk has a key below the IER before it")


def _rollup_runs(
    events: pl.DataFrame,
    previous_key: pl.DataFrame | None = None,
    starts: pl.Series | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """IER figures and link rows of events in store order (every IER complete).

    In store order an IER's events are one contiguous run, in time order, so each figure is
    a position: the first Sent, the last Open, the number of Clicks. No hashing and no sort
    over the IERs; the few Click rows are grouped by URL. This is several times cheaper than
    a ``group_by`` on the (string) IER key, and keeps the IERs in key order.

    Args:
        events: Events in store order; every IER's events are all here.
        previous_key: The IER key (one row) of the IER before these events, if any: the
            order is checked across chunks too.
        starts: ``_ier_starts()`` of ``events``, when the caller has it already.

    Raises:
        StoreOrderError: When the events are not in store order.
    """
    start = events.select(_ier_starts()).to_series() if starts is None else starts
    # Within one IER (not a start), time must not go back.
    time = events.get_column("event_time")
    time_back = (time < time.shift()) & ~start
    if time_back.any():
        raise StoreOrderError(
            f"event {time_back.arg_true().item(0)} of a chunk is earlier than the event above "
            "it in the same IER"
        )
    ier_of_row = (start.cum_sum() - 1).cast(pl.UInt32)
    first_rows, last_rows = _run_bounds(ier_of_row)
    n_iers = first_rows.len()
    kind = events.get_column("event_type")
    list_id = events.get_column("list_id")

    def runs(mask: pl.Series) -> _Runs:
        return _runs(ier_of_row, mask)

    def first_time(r: _Runs) -> pl.Series:
        return _spread(n_iers, r.ier, time.gather(r.first))

    def count(r: _Runs) -> pl.Series:
        return _spread(n_iers, r.ier, r.count, default=0)

    sent, opens, clicks = runs(kind == "Sent"), runs(kind == "Open"), runs(kind == "Click")
    bounces = runs(kind == "Bounce")
    hard = runs((kind == "Bounce") & (events.get_column("bounce_category") == "Hard"))
    unsubs = runs(kind == "Unsub")
    links = link_rows(events, ier_of_row)
    per_link = _run_bounds(links.get_column("_ier"))
    iers = events.select(pl.col(IER_KEY).gather(first_rows)).with_columns(
        # The list the email was sent to; an IER without a Sent row takes its first event's.
        list_id=_spread(n_iers, sent.ier, list_id.gather(sent.first)).fill_null(
            list_id.gather(first_rows)
        ),
        date_sent=first_time(sent),
        opens=count(opens),
        last_open=_spread(n_iers, opens.ier, time.gather(opens.last)),
        total_clicks=count(clicks),
        unique_clicks=_spread(
            n_iers,
            links.get_column("_ier").gather(per_link[0]),
            (per_link[1] - per_link[0] + 1).cast(schema.COUNT),
            default=0,
        ),
        # A click implies an open: the first of either is when the email was opened.
        date_opened=pl.min_horizontal(first_time(opens), first_time(clicks)),
        hard_bounce=_spread(
            n_iers, hard.ier, pl.repeat(True, hard.ier.len(), eager=True), default=False
        ),
        date_bounced=first_time(bounces),
        date_unsubscribed=first_time(unsubs),
        tracking_as_of=time.gather(last_rows),
    )
    _check_key_order(iers, previous_key)
    iers = iers.with_columns(_ier_ids(iers))
    link_keys = iers.select(*IER_KEY, ier_id="id").lazy().with_row_index("_ier")
    linked = links.lazy().join(link_keys, on="_ier", how="left", maintain_order="left")
    return iers, linked.drop("_ier").collect(engine="in-memory")


#: Event columns the roll-up reads besides the IER key (email and is_unique are not read).
_ROLLUP_INPUTS: Final = (
    "list_id",
    "event_type",
    "event_time",
    "url",
    "link_name",
    "link_id",
    "bounce_category",
)


def _rolled_chunks(
    events: pl.LazyFrame, chunk_events: int = CHUNK_EVENTS
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """``_rollup_runs`` over events in store order, streamed in chunks of whole IERs.

    The last IER of a chunk may go on in the next one: its rows are held back and put in
    front of the next chunk.
    """
    held: pl.DataFrame | None = None
    previous_key: pl.DataFrame | None = None
    needed = events.select(*IER_KEY, *_ROLLUP_INPUTS)
    for batch in needed.collect_batches(chunk_size=chunk_events):
        # One contiguous buffer per column: gathers from many small chunks are slow.
        frame = (batch if held is None else pl.concat([held, batch])).rechunk()
        starts = frame.select(_ier_starts()).to_series()
        last_start = starts.arg_true().item(-1)
        if last_start:
            iers, links = _rollup_runs(
                frame.slice(0, last_start), previous_key, starts.slice(0, last_start)
            )
            previous_key = iers.select(IER_KEY).tail(1)
            yield iers, links
        held = frame.slice(last_start)
    if held is not None and held.height:
        yield _rollup_runs(held, previous_key)


_ROLLED_SCHEMA: Final[dict[str, pl.DataType]] = {
    **{name: extract.EVENT_SCHEMA[name] for name in IER_KEY},
    "list_id": schema.MC_KEY(),
    "date_sent": _TIME,
    "opens": schema.COUNT(),
    "last_open": _TIME,
    "total_clicks": schema.COUNT(),
    "unique_clicks": schema.COUNT(),
    "date_opened": _TIME,
    "hard_bounce": pl.Boolean(),
    "date_bounced": _TIME,
    "date_unsubscribed": _TIME,
    "tracking_as_of": _TIME,
    "id": pl.String(),
}
_LINK_SCHEMA: Final[dict[str, pl.DataType]] = {
    "link_id": extract.EVENT_SCHEMA["link_id"],
    "url": pl.String(),
    "link_name": pl.String(),
    "total_clicks": schema.COUNT(),
    "last_clicked": _TIME,
    "created_date": _TIME,
    **{name: extract.EVENT_SCHEMA[name] for name in IER_KEY},
    "ier_id": pl.String(),
}


def _in_store_order(events: pl.LazyFrame) -> pl.LazyFrame:
    return events.sort(event_store.EVENT_ORDER, nulls_last=True)


def _finish_iers(rolled: pl.LazyFrame, send_jobs: pl.LazyFrame | None) -> pl.LazyFrame:
    """The canonical IER columns from rolled-up figures (row order kept)."""
    implied = (pl.col("opens") == 0) & (pl.col("total_clicks") > 0)
    date_opened = pl.col("date_opened")
    frame = with_person_ids(rolled).with_columns(
        has_sent_row=pl.col("date_sent").is_not_null(),
        opened=(pl.col("opens") > 0) | (pl.col("total_clicks") > 0),
        open_count=pl.when(implied).then(pl.lit(1, schema.COUNT)).otherwise(pl.col("opens")),
        last_opened=pl.when(implied).then(date_opened).otherwise(pl.col("last_open")),
        clicked=pl.col("unique_clicks") > 0,
        soft_bounce=pl.col("date_bounced").is_not_null() & ~pl.col("hard_bounce"),
        unsubscribed=pl.col("date_unsubscribed").is_not_null(),
        # An IER is created when the send's result first reaches Sales Cloud: the send.
        created_date=pl.col("date_sent"),
    )
    if send_jobs is not None:
        # maintain_order: the rows are in key order (a small build side keeps this cheap).
        frame = frame.join(send_jobs, on="job_id", how="left", maintain_order="left").rename(
            {"email_name": "name"}
        )
    return schema.conform(IER_TABLE, frame, keep=["has_sent_row"])


def aggregate_iers(events: pl.LazyFrame, *, send_jobs: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Individual Email Results from canonical events.

    Args:
        events: Distinct events in ``ierkit.extract.EVENT_SCHEMA``, in any order (the event
            store, or one extract read with ``read_extract``; duplicated rows would be
            counted twice). They are sorted into store order first; ``aggregate_store``
            reads the store, which is in that order already.
        send_jobs: Optional send details (``ierkit.extract.read_send_jobs``) for the email
            name, from name/address and subject line.

    Returns:
        The columns of schema table ``individual_email_results`` in canonical order, plus
        ``has_sent_row`` (false when the extract holds no Sent event for the IER), sorted by
        the IER key (job_id, batch_id, subscriber_key, subscriber_id; blank keys last).
    """
    ordered = _in_store_order(events)
    rolled = frames_source(
        lambda: (iers for iers, _ in _rolled_chunks(ordered)),
        _ROLLED_SCHEMA,
        name="ierkit IERs",
        validate_schema=True,
    )
    return _finish_iers(rolled, send_jobs)


def aggregate_links(events: pl.LazyFrame) -> pl.LazyFrame:
    """Individual Link Level Details: one row per IER per link clicked (by id, else URL).

    Args:
        events: Distinct events in ``ierkit.extract.EVENT_SCHEMA``, in any order.

    Returns:
        The columns of schema table ``individual_links`` in canonical order, sorted by IER key,
        URL and link id. ``link_name`` is the link's Alias (the greatest, should it vary).
    """
    ordered = _in_store_order(events)
    rolled = frames_source(
        lambda: (links for _, links in _rolled_chunks(ordered)),
        _LINK_SCHEMA,
        name="ierkit links",
        validate_schema=True,
    )
    return finish_links(rolled)


# --- output tables: the sends an extract touched are recomputed, the others copied ----------


@dataclass(frozen=True)
class AggregateResult:
    """Counts after ``aggregate_store``.

    Attributes:
        job_ids: Sends whose results were recomputed.
        iers: IERs in the output table.
        links: Link detail rows in the output table.
        without_sent_row: IERs whose events have no Sent row (date_sent null).
        resorted: Whether some sends' events were out of store order and were sorted first.
    """

    job_ids: tuple[int, ...]
    iers: int
    links: int
    without_sent_row: int
    resorted: bool = False


def _segments(jobs: list[int], fresh: set[int]) -> list[tuple[bool, list[int]]]:
    """Runs of consecutive sends in JobID order: ``(True, run)`` to recompute, ``(False, run)``
    to copy from the previous output."""
    segments: list[tuple[bool, list[int]]] = []
    for job_id in jobs:
        recompute = job_id in fresh
        if segments and segments[-1][0] == recompute:
            segments[-1][1].append(job_id)
        else:
            segments.append((recompute, [job_id]))
    return segments


def _store_rollup(
    store: str | os.PathLike[str], group: list[int], links_dir: Path, chunk_events: int
) -> pl.LazyFrame:
    """Rolled-up IERs of some sends read from the store (in store order already).

    Link rows are written to ``links_dir`` as they come (one file per chunk, in order): they
    are few, and a second pass over the events for them would cost more than reading them back.
    """
    events = event_store.scan_events(store, job_ids=group)

    def frames() -> Iterator[pl.DataFrame]:
        links_dir.mkdir(parents=True, exist_ok=True)
        chunks = prefetched(_rolled_chunks(events, chunk_events))
        for number, (iers, links) in enumerate(chunks):
            links.write_parquet(links_dir / f"{number:08d}.parquet")
            yield iers

    return frames_source(
        frames, _ROLLED_SCHEMA, name="ierkit IERs from the event store", validate_schema=True
    )


def _write_segments(
    segments: list[tuple[bool, list[int]]],
    store: str | os.PathLike[str],
    previous: dict[str, Path],
    send_jobs: pl.LazyFrame | None,
    tmp: dict[str, Path],
    work: Path,
    chunk_events: int,
) -> None:
    """IERs and link details of the segments into one file per table: recomputed sends from
    the store, the others copied from the ``previous`` tables (sorted by IER key, so a run of
    whole sends stays sorted)."""

    def copied(name: str, group: list[int]) -> pl.LazyFrame:
        return pl.scan_parquet(previous[name]).filter(pl.col("job_id").is_in(group))

    spilled = {number: work / f"links-{number:05d}" for number in range(len(segments))}
    _sink(
        IER_TABLE,
        [
            _finish_iers(_store_rollup(store, group, spilled[number], chunk_events), send_jobs)
            if recompute
            else copied(IER_TABLE, group)
            for number, (recompute, group) in enumerate(segments)
        ],
        tmp[IER_TABLE],
    )
    # Writing the IERs wrote the link rows of the recomputed sends into the spill folders.
    _sink(
        LINK_TABLE,
        [
            finish_links(_spilled_links(spilled[number]))
            if recompute
            else copied(LINK_TABLE, group)
            for number, (recompute, group) in enumerate(segments)
        ],
        tmp[LINK_TABLE],
    )


def _spilled_links(folder: Path) -> pl.LazyFrame:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return pl.LazyFrame(schema=_LINK_SCHEMA)
    return pl.scan_parquet(files, schema=_LINK_SCHEMA)


def _sink(name: str, frames: list[pl.LazyFrame], target: Path) -> None:
    # Lazy validation: a cast to the canonical schema (dropping has_sent_row), fused into the
    # same pass, and the same columns in every part.
    checked = [schema.validate(name, frame) for frame in frames]
    spec = schema.table(name)
    frame = pl.concat(checked) if checked else pl.LazyFrame(schema=spec.polars_schema)
    frame.sink_parquet(target, **_PARQUET)


def _write_tables(
    segments: list[tuple[bool, list[int]]],
    store: str | os.PathLike[str],
    out: str | os.PathLike[str],
    targets: dict[str, Path],
    send_jobs: pl.LazyFrame | None,
    chunk_events: int,
) -> None:
    """Write both tables from ``segments`` to temporary files, then replace ``targets``."""
    out_path = Path(out)
    out_path.mkdir(parents=True, exist_ok=True)
    tmp = {name: out_path / f".{name}.{uuid.uuid4().hex}.tmp" for name in targets}
    work = out_path / f".aggregate-{uuid.uuid4().hex}"
    try:
        work.mkdir()
        _write_segments(segments, store, targets, send_jobs, tmp, work, chunk_events)
        _files.crash_point("aggregate/tables-written")
        for name, path in targets.items():
            _files.fsync_file(tmp[name])
            os.replace(tmp[name], path)
            _files.crash_point(f"aggregate/{name}-replaced")
        _files.fsync_dir(out_path)
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def aggregate_store(
    store: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    job_ids: Iterable[int] | None = None,
    send_jobs: pl.LazyFrame | None = None,
    limit: int = CHUNK_EVENTS,
    lock_wait: float = event_store.DEFAULT_LOCK_WAIT,
) -> AggregateResult:
    """Write the IER and link detail tables of the store's events into a local org folder.

    One streaming pass over the store, ``limit`` events at a time: the IERs go straight into
    their output file, in key order, and the link rows into small part files that are then
    copied into theirs. Sends not listed in ``job_ids`` are copied from the previous output
    tables, so an extract that touched a few sends costs little more than those sends; a send
    the previous output lacks, or one the store's journal still lists (a killed run's), is
    recomputed anyway. Each table is replaced atomically, under the store's and the output's
    locks (``ierkit.store.locked``). Sends whose stored events are out of store order (a folder
    not written by ``land_events``) are sorted in the store first (``AggregateResult.resorted``).

    Args:
        store: The event store folder (``ierkit.store.land_events``).
        out: The output folder; ``individual_email_results.parquet`` and
            ``individual_links.parquet`` are replaced. Refused when it is another org's folder.
        job_ids: Sends whose events changed; None recomputes every stored send.
        send_jobs: Send details for email name, from and subject; the store's when None.
        limit: Events held in memory at once (bounds peak memory, with the Parquet writer's
            buffers; one IER with more events than this is held whole).
        lock_wait: Seconds to wait for another run holding the store or the output folder.

    Returns:
        Counts of what was written.
    """
    with event_store.locked(store, out=out, wait=lock_wait) as journal:
        org = LocalOrg(out)
        targets = {name: org.table_path(name) for name in (IER_TABLE, LINK_TABLE)}
        jobs = event_store.stored_jobs(event_store.events_dir(store))
        fresh = set(jobs) if job_ids is None else set(job_ids) & set(jobs)
        fresh |= set(journal.pending) & set(jobs)  # changed, but a killed run wrote no table
        if job_ids is not None and all(path.is_file() for path in targets.values()):
            previous = set(
                pl.scan_parquet(targets[IER_TABLE])
                .select(pl.col("job_id").unique())
                .collect()
                .get_column("job_id")
                .to_list()
            )
            fresh |= set(jobs) - previous  # never written before: nothing to copy
        else:
            fresh = set(jobs)
        segments = _segments(jobs, fresh)
        if send_jobs is None:
            send_jobs = event_store.scan_send_jobs(store)
        try:
            _write_tables(segments, store, out, targets, send_jobs, limit)
            resorted = False
        except StoreOrderError:
            # A folder not written by the event store (copied in, or appended to): put its
            # sends in store order once, then aggregate again.
            event_store.sort_store(store, sorted(fresh))
            _write_tables(segments, store, out, targets, send_jobs, limit)
            resorted = True
        # Every send's rows now match its events: nothing is owed any more.
        event_store.write_journal(store, event_store.Journal())
        counts = (
            pl.scan_parquet(targets[IER_TABLE])
            .select(pl.len(), pl.col("date_sent").null_count())
            .collect()
        )
        links = pl.scan_parquet(targets[LINK_TABLE]).select(pl.len()).collect().item()
        # Per-send results kept in the store by earlier versions are no longer read.
        for stale in ("iers", "links"):
            shutil.rmtree(Path(store) / stale, ignore_errors=True)
    return AggregateResult(
        tuple(sorted(fresh)), counts.item(0, 0), links, counts.item(0, 1), resorted
    )


def aggregate_extracts(
    paths: Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    store: str | os.PathLike[str] | None = None,
    source_zone: str = clock.MC_TIME_ZONE,
    limit: int | None = None,
    lock_wait: float = event_store.DEFAULT_LOCK_WAIT,
    skip_bad_rows: bool = False,
    write_signal: bool = True,
) -> tuple[event_store.LandResult, AggregateResult]:
    """Land extracts in the event store, recompute the sends they touched, write the tables.

    Applying an extract again, or one whose window overlaps an earlier one, changes nothing
    that was already counted (see ``ierkit.store``). The whole run holds the store's and the
    output folder's locks, and first finishes what a killed run left (``ierkit.store.locked``).

    Args:
        paths: Extract zips, folders or tracking files, in any order.
        out: Output org folder for ``individual_email_results`` and ``individual_links``.
        store: Event store folder; ``<out>/event_store`` by default, so running again on the
            same output folder merges.
        source_zone: IANA zone of the extracts' dates (Marketing Cloud's UTC-6 by default).
        limit: Events per unit of work in landing and aggregation (bounds peak memory);
            ``ierkit.store.MAX_EVENTS_PER_GROUP`` and ``CHUNK_EVENTS`` when None.
        lock_wait: Seconds to wait for another run holding the store or the output folder.
        skip_bad_rows: Load the good rows of a file with bad ones and list the bad ones in
            ``<out>/rejected_rows.csv``; by default a bad row refuses everything.
        write_signal: Also write the engagement signal per recipient beside the tables
            (``ierkit.signal.write_engagement_signal``: ``<out>/engagement_signal.parquet``).

    Returns:
        What was landed, and the counts written.

    Raises:
        StoreError: When ``out`` or ``store`` is a file, or ``out`` another org's folder.
        LockHeldError: When another run holds them for longer than ``lock_wait``.
    """
    paths = list(paths)
    store_path = Path(out) / "event_store" if store is None else Path(store)
    with event_store.locked(store_path, out=out, wait=lock_wait):
        landed = event_store.land_events(
            paths,
            store_path,
            source_zone=source_zone,
            limit=event_store.MAX_EVENTS_PER_GROUP if limit is None else limit,
            rejected=Path(out) / REJECTED_FILE if skip_bad_rows else None,
        )
        written = aggregate_store(
            store_path,
            out,
            job_ids=landed.job_ids,
            limit=CHUNK_EVENTS if limit is None else limit,
        )
        if write_signal:
            signal.write_engagement_signal(store_path, out)
    return landed, written
