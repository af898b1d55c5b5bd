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
``aggregate_store`` recomputes the IERs and link details of the sends an extract touched, one
group of sends at a time (IER keys start with job_id, so sends are independent): peak memory is
bounded by the group size, not by the number of IERs. Results are kept per send in the store
(``iers/job_id=<JobID>/``, ``links/job_id=<JobID>/``) and ``write_outputs`` streams them, in
JobID order, into the output org's two tables.
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
        _low=_upper_bits(_word(k, 0)),
        _high=_upper_bits(_word(k, 7)),
        _suffix=_word(k, 10),  # characters 15-17 are its bytes 5-7
    )
    # One bit per character of the 15-character Id: bit i set where character i is uppercase.
    bits = []
    for i in range(15):
        word, byte = ("_low", i) if i < 8 else ("_high", i - 7)
        bits.append((pl.col(word) // _u64(1 << (8 * byte + 7))) % _u64(2) * _u64(1 << i))
    staged = staged.with_columns(_mask=pl.sum_horizontal(bits))
    valid = pl.col("_shape")
    for chunk in range(3):
        index = (pl.col("_mask") // _u64(1 << (5 * chunk))) % _u64(32)
        # Alphabet "A".."Z" then "0".."5": index 26 is "0" (ASCII 48 = 26 + 65 - 43).
        expected = index + _u64(ord("A")) - (index >= 26).cast(pl.UInt64) * _u64(43)
        actual = (pl.col("_suffix") // _u64(1 << (8 * (5 + chunk)))) % _u64(256)
        valid = valid & (expected == actual)
    prefix = k.str.slice(0, 3)
    return staged.with_columns(
        contact_id=pl.when(valid & (prefix == _CONTACT_PREFIX)).then(k),
        lead_id=pl.when(valid & (prefix == _LEAD_PREFIX)).then(k),
    ).drop("_shape", "_low", "_high", "_suffix", "_mask")


def _rollup(events: pl.LazyFrame) -> pl.LazyFrame:
    """The single group_by: one row per IER key with every event-derived figure.

    Distinct links clicked are not counted here: ``n_unique`` inside a group_by costs more
    than everything else together; they come from the (small) link rollup instead.
    """
    kind = pl.col("event_type")
    time = pl.col("event_time")
    is_sent, is_open, is_click = kind == "Sent", kind == "Open", kind == "Click"
    is_bounce, is_unsub = kind == "Bounce", kind == "Unsub"
    # maintain_order: the store is sorted by the IER key, so first-seen order is sorted order,
    # and costs less than sorting afterwards.
    return events.group_by(IER_KEY, maintain_order=True).agg(
        list_id=pl.col("list_id").max(),
        date_sent=time.filter(is_sent).min(),
        opens=is_open.sum().cast(schema.COUNT),
        first_open=time.filter(is_open).min(),
        last_open=time.filter(is_open).max(),
        total_clicks=is_click.sum().cast(schema.COUNT),
        first_click=time.filter(is_click).min(),
        hard_bounce=(is_bounce & (pl.col("bounce_category") == "Hard")).any(),
        date_bounced=time.filter(is_bounce).min(),
        date_unsubscribed=time.filter(is_unsub).min(),
        tracking_as_of=time.max(),
    )


def _link_rollup(events: pl.LazyFrame) -> pl.LazyFrame:
    """One row per IER key and URL clicked."""
    return (
        events.filter(pl.col("event_type") == "Click")
        .group_by(*IER_KEY, "url", maintain_order=True)
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
        ``has_sent_row`` (false when the extract holds no Sent event for the IER). Rows come
        in the order each IER key first appears in ``events``: sorted when the events are
        sorted by key (the event store is); otherwise sort before showing or writing.
    """
    links_per_ier = (
        _link_rollup(events).group_by(IER_KEY).agg(unique_clicks=pl.len().cast(schema.COUNT))
    )
    rolled = (
        _rollup(events)
        .join(links_per_ier, on=IER_KEY, how="left", nulls_equal=True, maintain_order="left")
        .with_columns(pl.col("unique_clicks").fill_null(0))
    )
    implied = (pl.col("opens") == 0) & (pl.col("total_clicks") > 0)
    date_opened = pl.min_horizontal("first_open", "first_click")
    frame = with_person_ids(rolled).with_columns(
        id=_ier_id(),
        has_sent_row=pl.col("date_sent").is_not_null(),
        opened=(pl.col("opens") > 0) | (pl.col("total_clicks") > 0),
        date_opened=date_opened,
        open_count=pl.when(implied).then(pl.lit(1, schema.COUNT)).otherwise(pl.col("opens")),
        last_opened=pl.when(implied).then(date_opened).otherwise(pl.col("last_open")),
        clicked=pl.col("unique_clicks") > 0,
        soft_bounce=pl.col("date_bounced").is_not_null() & ~pl.col("hard_bounce"),
        unsubscribed=pl.col("date_unsubscribed").is_not_null(),
    )
    if send_jobs is not None:
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
        The columns of schema table ``individual_links`` in canonical order, rows in the order
        each (IER, URL) first appears in ``events``. ``link_name`` is the link's Alias (the
        greatest, should it vary).
    """
    rolled = _link_rollup(events)
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


# --- the store: per-send results, recomputed for the sends an extract touched ---------------


@dataclass(frozen=True)
class AggregateResult:
    """Counts after ``aggregate_store`` / ``write_outputs``.

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


def _results_dir(store: Path, table_name: str) -> Path:
    return store / ("iers" if table_name == IER_TABLE else "links")


def aggregate_store(
    store: str | os.PathLike[str],
    *,
    job_ids: Iterable[int] | None = None,
    send_jobs: pl.LazyFrame | None = None,
    limit: int = extract.MAX_EVENTS_PER_GROUP,
) -> list[int]:
    """Recompute IERs and link details of some sends from the event store.

    Args:
        store: The event store folder (``ierkit.extract.land_events``).
        job_ids: Sends to recompute; all stored sends when None.
        send_jobs: Optional send details for email name, from and subject.
        limit: Events per unit of work (bounds peak memory).

    Returns:
        The JobIDs recomputed, sorted.
    """
    store_path = Path(store)
    base = extract.events_dir(store_path)
    jobs = extract.stored_jobs(base) if job_ids is None else sorted(set(job_ids))
    counted = extract.rows_per_job(extract.job_files(base, jobs))
    sizes = {j: counted.get(j, 0) for j in jobs}
    work = store_path / f".work-{uuid.uuid4().hex}"
    try:
        for group in extract.plan_groups(sizes, limit=limit):
            events = extract.scan_events(store_path, job_ids=group)
            ier_root, link_root = work / "iers", work / "links"
            # Rows come out in the store's order (sorted by IER key): no sort needed.
            iers = aggregate_iers(events, send_jobs=send_jobs)
            links = aggregate_links(events)
            pl.collect_all(
                [
                    iers.sink_parquet(
                        pl.PartitionBy(ier_root, key="job_id", include_key=True),
                        mkdir=True,
                        lazy=True,
                        # A cache rewritten into the output: cheap compression.
                        compression="lz4",
                    ),
                    links.sink_parquet(
                        pl.PartitionBy(link_root, key="job_id", include_key=True),
                        mkdir=True,
                        lazy=True,
                        compression="lz4",
                    ),
                ]
            )
            for job_id in group:
                for table_name, root in ((IER_TABLE, ier_root), (LINK_TABLE, link_root)):
                    target = extract.job_folder(_results_dir(store_path, table_name), job_id)
                    fresh = extract.job_folder(root, job_id)
                    if fresh.exists():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        extract._replace_folder(fresh, target)
                    elif target.exists():
                        # No clicks any more for this send (cannot happen with a growing
                        # event set, but keep the store consistent).
                        shutil.rmtree(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return jobs


def scan_results(store: str | os.PathLike[str], table_name: str) -> pl.LazyFrame:
    """The stored IERs (``individual_email_results``) or link details, in JobID order."""
    spec = schema.table(table_name)
    root = _results_dir(Path(store), table_name)
    files = extract.job_files(root, extract.stored_jobs(root))
    if not files:
        extra = {"has_sent_row": pl.Boolean} if table_name == IER_TABLE else {}
        return pl.LazyFrame(schema={**spec.polars_schema, **extra})
    return pl.scan_parquet(files, hive_partitioning=False)


def write_outputs(store: str | os.PathLike[str], out: str | os.PathLike[str]) -> AggregateResult:
    """Write the store's IERs and link details into a local org folder (atomic per table).

    Args:
        store: The event store folder.
        out: The output folder; ``individual_email_results.parquet`` and
            ``individual_links.parquet`` are replaced.

    Returns:
        Counts of what was written.
    """
    org = LocalOrg(out)
    org.write_table(IER_TABLE, scan_results(store, IER_TABLE))
    org.write_table(LINK_TABLE, scan_results(store, LINK_TABLE))
    counts = scan_results(store, IER_TABLE).select(
        pl.len(), (~pl.col("has_sent_row")).sum()
    ).collect()
    links = scan_results(store, LINK_TABLE).select(pl.len()).collect().item()
    jobs = extract.stored_jobs(_results_dir(Path(store), IER_TABLE))
    return AggregateResult(tuple(jobs), counts.item(0, 0), links, counts.item(0, 1))


def aggregate_extracts(
    paths: Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    store: str | os.PathLike[str] | None = None,
    source_zone: str = extract.MC_SOURCE_ZONE,
    limit: int = extract.MAX_EVENTS_PER_GROUP,
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
        limit: Events per unit of work (bounds peak memory).

    Returns:
        What was landed, and the counts written.
    """
    paths = list(paths)
    store_path = Path(out) / "event_store" if store is None else Path(store)
    landed = extract.land_events(paths, store_path, source_zone=source_zone, limit=limit)
    send_jobs = _send_jobs(paths, store_path)
    aggregate_store(store_path, job_ids=landed.job_ids, send_jobs=send_jobs, limit=limit)
    return landed, write_outputs(store_path, out)


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
