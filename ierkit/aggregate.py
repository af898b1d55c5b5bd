"""Tracking events rolled up into Individual Email Results, as Marketing Cloud Connect does.

One IER per recipient per send: per (job_id, batch_id, subscriber_key). Rules, from the canonical
event table of ``ierkit.extract``:

- ``date_sent``: the Sent event's time (the earliest, should a send list a key twice).
- ``opened`` / ``date_opened``: a click implies an open even when the open pixel was blocked
  (images off), so ``opened`` is true when there is an Open or a Click, and ``date_opened`` is the
  first of them. ``open_count`` and ``last_opened`` (not stored by Salesforce) count Open events;
  an open implied only by clicks counts as one open at ``date_opened``.
- ``total_clicks``: all Click events; ``unique_clicks`` (Salesforce's "Links Clicked"): distinct
  URLs clicked; ``clicked`` = ``unique_clicks > 0`` (the package's formula).
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
detail's id appends ``"|<url>"``. ``contact_id`` / ``lead_id`` are set when the Subscriber Key is
a valid 18-character Contact (003) or Lead (00Q) Id, which is the only case in which Marketing
Cloud Connect writes an IER at all.

Link details (``aggregate_links``): one row per IER per URL clicked, with total clicks, last
click and the link name (Alias/LinkName).

Incremental merge: see ``ierkit.extract`` for why the state is the deduplicated event store.
``aggregate_store`` writes both output tables in one streaming pass: the IERs and link details
of the sends an extract touched are recomputed, one group of sends at a time (IER keys start
with job_id, so sends are independent: peak memory is bounded by the group size, not by the
number of IERs), and the rows of every other send are copied from the previous output. Each
table is sorted by IER key and replaced atomically. Up to ``ONE_PASS_EVENTS`` events go
straight into the tables; beyond that each pass goes to a part file first (the engine holds a
pass's results in memory), then one streaming copy joins the parts.

Speed (``benchmarks/aggregate.py``): the cost beyond a bare ``group_by`` count is the sort (for
deterministic files), the Id strings (``id``, ``contact_id``/``lead_id``) and the wider output;
the group_by itself avoids ``n_unique`` and per-type ``filter`` aggregations, and the Contact/Lead
Id check is integer arithmetic.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from ierkit import extract, schema
from ierkit.orgs import LocalOrg

#: The IER key in the event table (see the module docstring on subscriber_id).
IER_KEY: Final = ("job_id", "batch_id", "subscriber_key", "subscriber_id")
# Key prefixes of the objects an IER can hang on (Salesforce standard key prefixes).
_CONTACT_PREFIX: Final = "003"
_LEAD_PREFIX: Final = "00Q"

#: Events per group of sends when aggregating. Measured on 11.6M events (2 cores,
#: benchmarks/aggregate.py): 2M per group ran in 9.6-11.1 s at 1.6 GiB peak, 4M in 11.3-12.2 s
#: (1.8 GiB), 8M in 14.9 s (2.5 GiB): the sort per group grows faster than linearly.
EVENTS_PER_GROUP: Final = 2_000_000

IER_TABLE: Final = "individual_email_results"
LINK_TABLE: Final = "individual_links"


def _ier_id() -> pl.Expr:
    key = pl.coalesce(
        pl.col("subscriber_key"), pl.lit("#") + pl.col("subscriber_id").cast(pl.String)
    )
    return pl.concat_str(
        [pl.col("job_id"), pl.col("batch_id"), pl.coalesce(key, pl.lit("#"))],
        separator="-",
    )


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
        _mask=_uppercase_mask(_word(k, 0))
        + _uppercase_mask(_word(k, 7)) // _u64(2) * _u64(256),
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


def _rollup(events: pl.LazyFrame) -> pl.LazyFrame:
    """The single group_by: one row per IER key with every event-derived figure.

    Distinct links clicked are not counted here: ``n_unique`` inside a group_by costs more
    than everything else together; they come from the (small) link rollup instead. Times of
    one event type are taken as ``when(type).then(time)`` rather than ``time.filter(type)``:
    an elementwise mask keeps every aggregation on the engine's fast path. Rows come out in
    no particular order (keeping first-seen order costs more than sorting afterwards).
    """
    kind = pl.col("event_type")
    time = pl.col("event_time")
    is_sent, is_open, is_click = kind == "Sent", kind == "Open", kind == "Click"
    is_bounce, is_unsub = kind == "Bounce", kind == "Unsub"

    def at(mask: pl.Expr) -> pl.Expr:
        return pl.when(mask).then(time)

    return events.with_row_index("_row").group_by(IER_KEY).agg(
        # The IER's first row in the input: sorting by it restores input order cheaply.
        _first_row=pl.col("_row").min(),
        list_id=pl.col("list_id").max(),
        date_sent=at(is_sent).min(),
        opens=is_open.sum().cast(schema.COUNT),
        last_open=at(is_open).max(),
        total_clicks=is_click.sum().cast(schema.COUNT),
        # A click implies an open: the first of either is when the email was opened.
        date_opened=at(is_open | is_click).min(),
        hard_bounce=(is_bounce & (pl.col("bounce_category") == "Hard")).any(),
        date_bounced=at(is_bounce).min(),
        date_unsubscribed=at(is_unsub).min(),
        tracking_as_of=time.max(),
    )


def _link_rollup(events: pl.LazyFrame) -> pl.LazyFrame:
    """One row per IER key and URL clicked."""
    return (
        events.filter(pl.col("event_type") == "Click")
        .group_by(*IER_KEY, "url")
        .agg(
            link_name=pl.col("link_name").max(),
            total_clicks=pl.len().cast(schema.COUNT),
            last_clicked=pl.col("event_time").max(),
            created_date=pl.col("event_time").min(),
        )
    )


def aggregate_iers(
    events: pl.LazyFrame, *, send_jobs: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """Individual Email Results from canonical events.

    Args:
        events: Distinct events in ``ierkit.extract.EVENT_SCHEMA`` (the event store, or one
            extract read with ``read_extract``; duplicated rows would be counted twice).
        send_jobs: Optional send details (``ierkit.extract.read_send_jobs``) for the email
            name, from name/address and subject line.

    Returns:
        The columns of schema table ``individual_email_results`` in canonical order, plus
        ``has_sent_row`` (false when the extract holds no Sent event for the IER), in the
        order of each IER's first event. The event store keeps events sorted by IER key
        (job_id, batch_id, subscriber_key, subscriber_id; blanks last), so its IERs come out
        sorted by IER key without a sort on the (wide, string) key.
    """
    links_per_ier = (
        _link_rollup(events).group_by(IER_KEY).agg(unique_clicks=pl.len().cast(schema.COUNT))
    )
    rolled = _rollup(events)
    # Only the few IERs with a click can have link rows: joining just those is much cheaper
    # than probing the join with every IER.
    clicked = rolled.filter(pl.col("total_clicks") > 0).join(
        links_per_ier, on=IER_KEY, how="left", nulls_equal=True
    )
    unclicked = rolled.filter(pl.col("total_clicks") == 0).with_columns(
        unique_clicks=pl.lit(0, schema.COUNT)
    )
    rolled = (
        pl.concat([clicked, unclicked])
        .with_columns(pl.col("unique_clicks").fill_null(0))
        .sort("_first_row")
        .drop("_first_row")
    )
    implied = (pl.col("opens") == 0) & (pl.col("total_clicks") > 0)
    date_opened = pl.col("date_opened")
    frame = with_person_ids(rolled).with_columns(
        id=_ier_id(),
        has_sent_row=pl.col("date_sent").is_not_null(),
        opened=(pl.col("opens") > 0) | (pl.col("total_clicks") > 0),
        open_count=pl.when(implied).then(pl.lit(1, schema.COUNT)).otherwise(pl.col("opens")),
        last_opened=pl.when(implied).then(date_opened).otherwise(pl.col("last_open")),
        clicked=pl.col("unique_clicks") > 0,
        soft_bounce=pl.col("date_bounced").is_not_null() & ~pl.col("hard_bounce"),
        unsubscribed=pl.col("date_unsubscribed").is_not_null(),
    )
    if send_jobs is not None:
        # maintain_order: the rows are already sorted (a small build side keeps this cheap).
        frame = frame.join(send_jobs, on="job_id", how="left", maintain_order="left")
    else:
        frame = frame.with_columns(
            email_name=pl.lit(None, pl.String),
            from_name=pl.lit(None, pl.String),
            from_address=pl.lit(None, pl.String),
            subject_line=pl.lit(None, pl.String),
        )
    spec = schema.table(IER_TABLE)
    present = set(frame.collect_schema())
    columns = []
    for column in spec.columns:
        if column.name == "name":
            columns.append(pl.col("email_name").alias("name"))
        elif column.name == "created_date":
            # An IER is created when the send's result first reaches Sales Cloud: the send.
            columns.append(pl.col("date_sent").alias("created_date"))
        elif column.name in present:
            columns.append(pl.col(column.name).cast(column.dtype))
        else:
            columns.append(pl.lit(None, column.dtype).alias(column.name))
    return frame.select(*columns, "has_sent_row")


def aggregate_links(events: pl.LazyFrame) -> pl.LazyFrame:
    """Individual Link Level Details: one row per IER per URL clicked.

    Args:
        events: Distinct events in ``ierkit.extract.EVENT_SCHEMA``.

    Returns:
        The columns of schema table ``individual_links`` in canonical order, sorted by IER key
        and URL. ``link_name`` is the link's Alias (the greatest, should it vary).
    """
    rolled = _link_rollup(events).sort(*IER_KEY, "url", nulls_last=True)
    ier_id = _ier_id()
    frame = rolled.with_columns(
        individual_email_result_id=ier_id,
        id=pl.concat_str([ier_id, pl.coalesce(pl.col("url"), pl.lit(""))], separator="|"),
        link_url=pl.col("url"),
    ).with_columns(unique_link_id=pl.col("id"))
    spec = schema.table(LINK_TABLE)
    present = set(frame.collect_schema())
    return frame.select(
        pl.col(c.name).cast(c.dtype) if c.name in present else pl.lit(None, c.dtype).alias(c.name)
        for c in spec.columns
    )


# --- output tables: the sends an extract touched are recomputed, the others copied ----------


@dataclass(frozen=True)
class AggregateResult:
    """Counts after ``aggregate_store``.

    Attributes:
        job_ids: Sends whose results were recomputed.
        iers: IERs in the output table.
        links: Link detail rows in the output table.
        without_sent_row: IERs whose events have no Sent row (date_sent null).
    """

    job_ids: tuple[int, ...]
    iers: int
    links: int
    without_sent_row: int


def _segments(
    jobs: list[int], fresh: set[int], sizes: dict[int, int], limit: int
) -> list[tuple[bool, list[int]]]:
    """Runs of consecutive sends in JobID order: ``(True, group)`` to recompute (groups of at
    most ``limit`` events), ``(False, run)`` to copy from the previous output."""
    segments: list[tuple[bool, list[int]]] = []
    run: list[int] = []
    for position, job_id in enumerate(jobs):
        run.append(job_id)
        last = position == len(jobs) - 1
        if last or (jobs[position + 1] in fresh) != (job_id in fresh):
            if job_id in fresh:
                groups = extract.plan_groups({j: sizes.get(j, 0) for j in run}, limit=limit)
                segments.extend((True, group) for group in groups)
            else:
                segments.append((False, run))
            run = []
    return segments


#: Events (or copied rows) written in one pass: the streaming engine holds a pass's results in
#: memory before writing them (about 1.6 GiB at 11.6M events; 11 GB at 116M), so larger runs
#: go through part files and one extra streaming copy.
ONE_PASS_EVENTS: Final = 20_000_000


#: Parquet options of the output tables: zstd at level 1 writes the wide IER table about 1.4x
#: faster than the default level for files about 6% larger (benchmarks/aggregate.py).
_PARQUET: Final = {"compression": "zstd", "compression_level": 1}


def _rows_per_job(path: Path) -> dict[int, int]:
    counts = pl.scan_parquet(path).group_by("job_id").len().collect()
    return dict(zip(counts.get_column("job_id").to_list(), counts.get_column("len").to_list()))


def _batches(
    segments: list[tuple[bool, list[int]]], sizes: dict[int, int]
) -> list[list[tuple[bool, list[int]]]]:
    """Consecutive segments packed into passes of at most ``ONE_PASS_EVENTS``."""
    batches: list[list[tuple[bool, list[int]]]] = []
    current: list[tuple[bool, list[int]]] = []
    used = 0
    for segment in segments:
        weight = sum(sizes.get(job_id, 0) for job_id in segment[1])
        if current and used + weight > ONE_PASS_EVENTS:
            batches.append(current)
            current, used = [], 0
        current.append(segment)
        used += weight
    if current:
        batches.append(current)
    return batches


def _write_batch(
    segments: list[tuple[bool, list[int]]],
    store: str | os.PathLike[str],
    previous: dict[str, Path],
    send_jobs: pl.LazyFrame | None,
    targets: dict[str, Path],
) -> None:
    """IERs and link details of some segments into one file per table, in one pass."""
    parts: dict[str, list[pl.LazyFrame]] = {IER_TABLE: [], LINK_TABLE: []}
    for recompute, group in segments:
        if recompute:
            events = extract.scan_events(store, job_ids=group)
            parts[IER_TABLE].append(aggregate_iers(events, send_jobs=send_jobs))
            parts[LINK_TABLE].append(aggregate_links(events))
        else:
            for name, path in previous.items():
                # The previous output is sorted by IER key: a run of whole sends stays sorted.
                parts[name].append(pl.scan_parquet(path).filter(pl.col("job_id").is_in(group)))
    sinks = []
    for name, frames in parts.items():
        # Lazy validation: a cast to the canonical schema (dropping has_sent_row), fused into
        # the same pass, and the same columns in every part.
        checked = [schema.validate(name, frame) for frame in frames]
        spec = schema.table(name)
        frame = pl.concat(checked) if checked else pl.LazyFrame(schema=spec.polars_schema)
        sinks.append(frame.sink_parquet(targets[name], lazy=True, **_PARQUET))
    # Both tables from one pass: the plans share each group's scan.
    pl.collect_all(sinks)


def aggregate_store(
    store: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    job_ids: Iterable[int] | None = None,
    send_jobs: pl.LazyFrame | None = None,
    limit: int = EVENTS_PER_GROUP,
) -> AggregateResult:
    """Write the IER and link detail tables of the store's events into a local org folder.

    One streaming pass: the events of each group of sends are scanned once, and their IERs and
    link details go straight into the two output files (each sorted by IER key). Sends not
    listed in ``job_ids`` are copied from the previous output tables, so an extract that
    touched a few sends costs little more than those sends; a send the previous output lacks
    is recomputed anyway. Each table is replaced atomically.

    Args:
        store: The event store folder (``ierkit.extract.land_events``).
        out: The output folder; ``individual_email_results.parquet`` and
            ``individual_links.parquet`` are replaced.
        job_ids: Sends whose events changed; None recomputes every stored send.
        send_jobs: Optional send details for email name, from and subject.
        limit: Events per group of sends (bounds peak memory; IER keys start with the
            send's JobID, so groups are independent).

    Returns:
        Counts of what was written.
    """
    org = LocalOrg(out)
    targets = {name: org.table_path(name) for name in (IER_TABLE, LINK_TABLE)}
    base = extract.events_dir(store)
    jobs = extract.stored_jobs(base)
    fresh = set(jobs) if job_ids is None else set(job_ids) & set(jobs)
    if job_ids is not None and all(path.is_file() for path in targets.values()):
        previous = set(
            pl.scan_parquet(targets[IER_TABLE]).select(pl.col("job_id").unique())
            .collect().get_column("job_id").to_list()
        )  # fmt: skip
        fresh |= set(jobs) - previous  # never written before: nothing to copy
    else:
        fresh = set(jobs)
    sizes = extract.rows_per_job(extract.job_files(base, sorted(fresh)))
    if fresh != set(jobs):
        # Rows per copied send weigh like events in the memory budget below.
        sizes |= _rows_per_job(targets[IER_TABLE])
    out_path = Path(out)
    out_path.mkdir(parents=True, exist_ok=True)
    tmp = {name: out_path / f".{name}.{uuid.uuid4().hex}.tmp" for name in targets}
    work = out_path / f".aggregate-{uuid.uuid4().hex}"
    try:
        batches = _batches(_segments(jobs, fresh, sizes, limit), sizes)
        if len(batches) <= 1:
            _write_batch(batches[0] if batches else [], store, targets, send_jobs, tmp)
        else:
            # Too many events for one pass in memory: each batch to part files, then one
            # streaming copy of the parts into each table (sorted order is kept).
            work.mkdir()
            written = []
            for number, batch in enumerate(batches):
                part = {name: work / f"{name}-{number:05d}.parquet" for name in targets}
                _write_batch(batch, store, targets, send_jobs, part)
                written.append(part)
            pl.collect_all(
                [
                    pl.scan_parquet([part[name] for part in written]).sink_parquet(
                        tmp[name], lazy=True, **_PARQUET
                    )
                    for name in targets
                ]
            )
        for name, path in targets.items():
            with open(tmp[name], "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp[name], path)
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    counts = (
        pl.scan_parquet(targets[IER_TABLE])
        .select(pl.len(), pl.col("date_sent").null_count())
        .collect()
    )
    links = pl.scan_parquet(targets[LINK_TABLE]).select(pl.len()).collect().item()
    # Per-send results kept in the store by earlier versions are no longer read.
    for stale in ("iers", "links"):
        shutil.rmtree(Path(store) / stale, ignore_errors=True)
    return AggregateResult(tuple(sorted(fresh)), counts.item(0, 0), links, counts.item(0, 1))


def aggregate_extracts(
    paths: Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    store: str | os.PathLike[str] | None = None,
    source_zone: str = extract.MC_SOURCE_ZONE,
    limit: int | None = None,
) -> tuple[extract.LandResult, AggregateResult]:
    """Land extracts in the event store, recompute the sends they touched, write the tables.

    Applying an extract again, or one whose window overlaps an earlier one, changes nothing
    that was already counted (see ``ierkit.extract`` on the event store).

    Args:
        paths: Extract zips, folders or tracking files, in any order.
        out: Output org folder for ``individual_email_results`` and ``individual_links``.
        store: Event store folder; ``<out>/event_store`` by default, so running again on the
            same output folder merges.
        source_zone: IANA zone of the extracts' dates (Marketing Cloud's UTC-6 by default).
        limit: Events per unit of work in landing and aggregation (bounds peak memory);
            ``extract.MAX_EVENTS_PER_GROUP`` and ``EVENTS_PER_GROUP`` when None.

    Returns:
        What was landed, and the counts written.
    """
    paths = list(paths)
    store_path = Path(out) / "event_store" if store is None else Path(store)
    landed = extract.land_events(
        paths, store_path, source_zone=source_zone,
        limit=extract.MAX_EVENTS_PER_GROUP if limit is None else limit,
    )  # fmt: skip
    send_jobs = _send_jobs(paths, store_path)
    written = aggregate_store(
        store_path, out, job_ids=landed.job_ids, send_jobs=send_jobs,
        limit=EVENTS_PER_GROUP if limit is None else limit,
    )  # fmt: skip
    return landed, written


def _send_jobs(paths: list[str | os.PathLike[str]], store: Path) -> pl.LazyFrame:
    """Send details from these extracts merged with those kept in the store from earlier ones."""
    kept = store / "send_jobs.parquet"
    frames = [extract.read_send_jobs(p) for p in paths]
    if kept.exists():
        frames.append(pl.scan_parquet(kept))
    merged = (
        pl.concat(frames)
        .collect()
        .unique("job_id", keep="first", maintain_order=True)
        .sort("job_id")
    )
    from ierkit.orgs.local import atomic_write_parquet

    atomic_write_parquet(merged, kept)
    return merged.lazy()
