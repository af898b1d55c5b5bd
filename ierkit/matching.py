"""Sync-matching: what Marketing Cloud sent against the Individual Email Results the org holds.

Every Sent row of a tracking extract (one per recipient per send and batch) is matched to the
org's IER for the same send and recipient, and every recipient without one gets exactly one
reason from ``ierkit.reasons``. IERs from an org carry no Subscriber Key, so a Sent row
(``job_id``, ``batch_id``, ``subscriber_key``) matches an IER with the same ``job_id`` and
``batch_id`` whose Contact or Lead is the key (in its 18-character form).

Reasons, in order of precedence (the first that applies wins):

1. The IER exists: ``healthy``, or ``lead_converted`` when the key is a Lead that has since been
   converted (the IER stays on the Lead; counted as matched, reported apart).
2. Send level: ``not_salesforce_audience`` (the send has no Email Send record and no IER in the
   org: an imported audience), ``tracking_off`` (the send's individual tracking is switched off).
3. Key level: ``email_key``, ``id15_key`` (the 18-character form is a Contact or Lead of the
   org), ``unknown_id`` (an Id of no Contact or Lead in the org).
4. ``in_sync_window``: the send (or triggered-send batch) is younger than the grace period, or
   the sync model says its IERs cannot all have arrived yet.
5. ``unexplained``.

The sync model: the Marketing Cloud Connect sync runs in cycles (hourly or daily, a package
setting) and writes at most so many IERs per cycle. The throughput is estimated from the org's
own IERs (``estimate_throughput``): IER ``created_date`` is bucketed into cycles, and a cycle
counts as a full one when some send still had IERs left for a later cycle. A send younger than
the grace period (default 2 hours) is never called broken.

Subscribers deleted in Marketing Cloud have no Sent row, and their later opens and clicks come
with a blank Subscriber Key: they are counted per send as unattributable events
(``deleted_in_marketing_cloud``), never turned into recipients.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

import polars as pl

from ierkit import clock, extract, ids, reasons, schema
from ierkit.errors import IerkitError
from ierkit.orgs import source_instant
from ierkit.orgs.base import Org

if TYPE_CHECKING:
    import altair as alt

#: The Connect sync frequencies (package setting ``Frequency``: Hourly or Daily).
CYCLES: Final[dict[str, dt.timedelta]] = {
    "hourly": dt.timedelta(hours=1),
    "daily": dt.timedelta(days=1),
}
Cycle = Literal["hourly", "daily"]

# Bins of a cycle used to find when in the cycle the sync writes (its phase).
_PHASE_BINS: Final = 60

#: Recipient statuses in ``match_recipients``.
MATCHED: Final = "matched"
ON_CONVERTED_LEAD: Final = "on_converted_lead"
MISSING: Final = "missing"

#: Send statuses in ``send_coverage``.
SEND_COMPLETE: Final = "complete"
SEND_SYNCING: Final = "syncing"
SEND_INCOMPLETE: Final = "incomplete"
SEND_TRACKING_OFF: Final = "tracking off"
SEND_NOT_SALESFORCE: Final = "not from Salesforce"

#: Reasons a RevOps lead fixes on the records themselves (the Subscriber Key in the audience).
KEY_REASONS: Final = (reasons.EMAIL_KEY, reasons.ID15_KEY, reasons.UNKNOWN_ID)

#: Columns of ``match_recipients``.
RECIPIENT_SCHEMA: Final = pl.Schema(
    {
        "job_id": pl.Int64,
        "batch_id": pl.Int64,
        "subscriber_key": pl.String,
        "email": pl.String,
        "sent_at": schema.UTC_DATETIME,
        "key_kind": pl.String,
        "recipient_id": pl.String,
        "repaired_key": pl.String,
        "ier_id": pl.String,
        "has_ier": pl.Boolean,
        "status": pl.String,
        "reason": pl.String,
    }
)


class MatchingError(IerkitError):
    """The data cannot be matched (missing columns, unknown cycle); the message says which."""


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncTables:
    """The org tables the matching reads (lazy, canonical columns).

    Attributes:
        iers: Individual email results.
        contacts: Contacts (``id``, ``email``).
        leads: Leads (``id``, ``email``, ``is_converted``, ``converted_contact_id``).
        email_sends: Email Sends (``job_id``, ``email_name``, ``date_sent``, tracking switch).
        triggered_sends: Triggered Sends (``id``, ``name``, tracking switch).
    """

    iers: pl.LazyFrame
    contacts: pl.LazyFrame
    leads: pl.LazyFrame
    email_sends: pl.LazyFrame
    triggered_sends: pl.LazyFrame

    @classmethod
    def from_org(cls, org: Org) -> SyncTables:
        """The tables of an org; a table the org lacks is empty."""

        def get(name: str) -> pl.LazyFrame:
            if org.has_table(name):
                return org.table(name)
            return schema.table(name).empty().lazy()

        return cls(
            iers=get("individual_email_results"),
            contacts=get("contacts"),
            leads=get("leads"),
            email_sends=get("email_sends"),
            triggered_sends=get("triggered_sends"),
        )


def _cycle_length(cycle: str) -> dt.timedelta:
    try:
        return CYCLES[cycle]
    except KeyError:
        raise MatchingError(
            f"sync cycle {cycle!r} is not one of {', '.join(CYCLES)} "
            "(the Connect Frequency setting)"
        ) from None


def _utc(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


# --- throughput --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThroughputEstimate:
    """How fast the org's tracking sync writes IERs, estimated from its own IERs.

    Attributes:
        cycle: ``hourly`` or ``daily``.
        per_cycle_median: IERs a full cycle writes (median over full cycles); None with no IERs.
        per_cycle_p10: 10th percentile of the same.
        per_cycle_p90: 90th percentile of the same.
        full_cycles: Cycles the estimate rests on (cycles after which a send still had IERs
            waiting). 0 means no send ever needed two cycles: the figures are then the largest
            cycle seen, a lower bound (``lower_bound`` True).
        lower_bound: True when the real throughput may be higher than the figures.
        phase: Where in the cycle the sync writes, as an offset from the top of the hour (hourly)
            or from midnight UTC (daily).
        delay_median: Median time from a send to its IERs (``created_date - date_sent``).
        delay_p90: 90th percentile of the same.
        iers: IERs the estimate looked at.
    """

    cycle: str
    per_cycle_median: float | None
    per_cycle_p10: float | None
    per_cycle_p90: float | None
    full_cycles: int
    lower_bound: bool
    phase: dt.timedelta
    delay_median: dt.timedelta | None
    delay_p90: dt.timedelta | None
    iers: int

    @property
    def cycle_length(self) -> dt.timedelta:
        """The length of one sync cycle."""
        return _cycle_length(self.cycle)

    def next_cycle(self, after: dt.datetime) -> dt.datetime:
        """The start of the first sync cycle at or after ``after``."""
        length = self.cycle_length.total_seconds()
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + self.phase
        cycles = math.ceil((_utc(after) - epoch).total_seconds() / length)
        return epoch + dt.timedelta(seconds=cycles * length)

    def __str__(self) -> str:
        if self.per_cycle_median is None:
            return f"Sync throughput: no IERs to estimate it from ({self.cycle} cycles assumed)."
        unit = "hour" if self.cycle == "hourly" else "day"
        if self.lower_bound:
            text = (
                f"Sync throughput: at least {self.per_cycle_median:,.0f} IERs per {unit} (no send "
                "has needed more than one cycle, so this is the largest cycle seen)."
            )
        else:
            text = (
                f"Sync throughput: about {self.per_cycle_median:,.0f} IERs per {unit} "
                f"(10th-90th percentile {self.per_cycle_p10:,.0f}-{self.per_cycle_p90:,.0f}, "
                f"from {self.full_cycles:,} full cycles)."
            )
        if self.delay_median is not None and self.delay_p90 is not None:
            text += (
                f" Time from send to IER: median {_duration_text(self.delay_median)}, "
                f"90% within {_duration_text(self.delay_p90)}."
            )
        return text


def _duration_text(value: dt.timedelta) -> str:
    minutes = value.total_seconds() / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def _ier_send_key(iers: pl.LazyFrame) -> pl.LazyFrame:
    """IERs with ``send_key``: the send and batch they belong to, for any package version."""
    return iers.with_columns(
        send_key=pl.concat_str(
            [
                pl.coalesce(
                    pl.col("job_id").cast(pl.String),
                    pl.col("email_send_id"),
                    pl.col("triggered_send_id"),
                ),
                pl.col("batch_id").fill_null(0).cast(pl.String),
            ],
            separator="/",
        )
    )


def estimate_throughput(
    iers: pl.LazyFrame, *, cycle: Cycle = "hourly", as_of: dt.datetime | None = None
) -> ThroughputEstimate:
    """Estimate the sync's IERs per cycle from the org's own IERs.

    IER ``created_date`` values are bucketed into sync cycles (the phase, when in the hour or day
    the sync writes, is found as the end of the longest quiet stretch of the cycle). A cycle is
    full when some send or batch written in it still had IERs left for a later cycle: the sync
    wrote all it could. The IERs written in full cycles give the throughput and its spread.

    Args:
        iers: Individual email results (``created_date``, ``date_sent``, ``job_id``,
            ``batch_id``, ``email_send_id``, ``triggered_send_id``).
        cycle: The Connect sync frequency.
        as_of: Ignore IERs created after this instant (UTC); all when None.

    Returns:
        The estimate; its fields are None when there are no IERs.
    """
    length = _cycle_length(cycle)
    seconds = int(length.total_seconds())
    frame = _ier_send_key(iers).filter(pl.col("created_date").is_not_null())
    if as_of is not None:
        frame = frame.filter(pl.col("created_date") <= _utc(as_of))
    frame = frame.select(
        "send_key",
        t=pl.col("created_date").dt.epoch("s"),
        delay=(pl.col("created_date") - pl.col("date_sent")).dt.total_seconds(),
    ).collect()
    empty = ThroughputEstimate(cycle, None, None, None, 0, True, dt.timedelta(0), None, None, 0)
    if frame.height == 0:
        return empty
    bin_seconds = seconds // _PHASE_BINS
    bins = (
        frame.group_by(b=(pl.col("t") % seconds) // bin_seconds)
        .len()
        .sort("b")
        .get_column("b")
        .to_list()
    )
    phase_bin = _phase_bin(set(bins))
    phase = phase_bin * bin_seconds
    per_send_cycle = (
        frame.lazy()
        .with_columns(c=(pl.col("t") - phase) // seconds)
        .group_by("send_key", "c")
        .agg(n=pl.len())
        .with_columns(last=pl.col("c").max().over("send_key"))
    )
    per_cycle = (
        per_send_cycle.group_by("c")
        .agg(n=pl.col("n").sum(), full=(pl.col("c") < pl.col("last")).any())
        .collect()
    )
    full = per_cycle.filter(pl.col("full")).get_column("n").cast(pl.Float64)
    delays = frame.get_column("delay").drop_nulls()

    def delay_at(q: float) -> dt.timedelta | None:
        value = delays.quantile(q, "nearest") if delays.len() else None
        return None if value is None else dt.timedelta(seconds=max(0.0, float(value)))

    if full.len():
        median, p10, p90 = (float(full.quantile(q, "linear")) for q in (0.5, 0.1, 0.9))
        lower = False
    else:
        median = p10 = p90 = float(per_cycle.get_column("n").max())
        lower = True
    return ThroughputEstimate(
        cycle=cycle,
        per_cycle_median=median,
        per_cycle_p10=p10,
        per_cycle_p90=p90,
        full_cycles=int(full.len()),
        lower_bound=lower,
        phase=dt.timedelta(seconds=phase),
        delay_median=delay_at(0.5),
        delay_p90=delay_at(0.9),
        iers=frame.height,
    )


def _phase_bin(occupied: set[int]) -> int:
    """The bin after the longest circular run of empty bins (0 when every bin is used).

    A sync cycle writes in a burst, so the quiet stretch before the burst marks its start.
    """
    if len(occupied) >= _PHASE_BINS or not occupied:
        return 0
    best_start, best_len = 0, -1
    for start in range(_PHASE_BINS):
        if start in occupied or (start - 1) % _PHASE_BINS not in occupied:
            continue  # runs start right after an occupied bin
        length = 0
        while (start + length) % _PHASE_BINS not in occupied:
            length += 1
        if length > best_len:
            best_start, best_len = start, length
    return (best_start + best_len) % _PHASE_BINS


# --- matching ----------------------------------------------------------------------------------


def sent_rows(events: pl.LazyFrame) -> pl.LazyFrame:
    """One row per recipient per send and batch from the Sent events of an extract.

    Returns:
        job_id, batch_id (0 when blank), subscriber_key, email, sent_at. Sent rows with a blank
        key are dropped (they cannot be attributed to anyone).
    """
    return (
        events.filter(
            (pl.col("event_type") == "Sent")
            & pl.col("subscriber_key").is_not_null()
            & (pl.col("subscriber_key").str.strip_chars() != "")
        )
        .group_by(pl.col("job_id"), pl.col("batch_id").fill_null(0), pl.col("subscriber_key"))
        .agg(pl.col("email").first(), sent_at=pl.col("event_time").min())
    )


def unattributable_events(events: pl.LazyFrame) -> pl.LazyFrame:
    """Opens and clicks with a blank Subscriber Key (subscribers deleted in Marketing Cloud).

    Returns:
        Per send: job_id, unattributable_opens, unattributable_clicks, unattributable_events;
        only sends that have some; sorted by job_id.
    """
    blank = pl.col("subscriber_key").is_null() | (pl.col("subscriber_key").str.strip_chars() == "")
    return (
        events.filter(blank & pl.col("event_type").is_in(["Open", "Click"]))
        .group_by("job_id")
        .agg(
            unattributable_opens=(pl.col("event_type") == "Open").sum().cast(pl.Int64),
            unattributable_clicks=(pl.col("event_type") == "Click").sum().cast(pl.Int64),
        )
        .with_columns(
            unattributable_events=pl.col("unattributable_opens") + pl.col("unattributable_clicks")
        )
        .sort("job_id")
    )


def _ier_keys(tables: SyncTables, as_of: dt.datetime) -> pl.LazyFrame:
    """(job_id, batch_id, person_id) -> ier_id for IERs that existed at ``as_of``."""
    iers = tables.iers.filter(
        pl.col("created_date").is_null() | (pl.col("created_date") <= as_of)
    ).join(
        # Package versions before 2023 lack the IER's JobID: take it from its Email Send.
        tables.email_sends.select(pl.col("id").alias("email_send_id"), send_job_id="job_id"),
        on="email_send_id",
        how="left",
    )
    base = iers.select(
        ier_id="id",
        job_id=pl.coalesce("job_id", "send_job_id"),
        batch_id=pl.col("batch_id").fill_null(0),
        contact_id="contact_id",
        lead_id="lead_id",
    )
    # An IER names a Contact or a Lead; either can be the Subscriber Key.
    return (
        pl.concat(
            [
                base.select("ier_id", "job_id", "batch_id", person_id="contact_id"),
                base.select("ier_id", "job_id", "batch_id", person_id="lead_id"),
            ]
        )
        .filter(pl.col("person_id").is_not_null() & pl.col("job_id").is_not_null())
        .group_by("job_id", "batch_id", "person_id")
        .agg(pl.col("ier_id").min())
    )


def _people(tables: SyncTables) -> pl.LazyFrame:
    """Contacts and Leads: person_id, email, is_converted_lead."""
    contacts = tables.contacts.select(
        person_id="id", person_email="email", is_converted_lead=pl.lit(False)
    )
    leads = tables.leads.select(
        person_id="id",
        person_email="email",
        is_converted_lead=pl.col("is_converted").fill_null(False)
        & pl.col("converted_contact_id").is_not_null(),
    )
    return pl.concat([contacts, leads]).unique("person_id", keep="first")


def _send_facts(
    tables: SyncTables, send_jobs: pl.LazyFrame | None, ier_keys: pl.LazyFrame
) -> pl.LazyFrame:
    """Per job_id: whether the org knows the send, and whether its tracking is off."""
    sends = tables.email_sends.group_by("job_id").agg(
        in_email_sends=pl.lit(True),
        tracking_disabled=pl.col("individual_tracking_disabled").fill_null(False).any(),
    )
    with_iers = ier_keys.select("job_id").unique().with_columns(has_iers=pl.lit(True))
    parts = [sends.select("job_id"), with_iers.select("job_id")]
    triggered = pl.LazyFrame(schema={"job_id": pl.Int64, "triggered_off": pl.Boolean})
    if send_jobs is not None:
        # A triggered send with tracking off writes no IER and has no Email Send record: find it
        # by the email name the extract's SendJobs gives it.
        off = tables.triggered_sends.filter(
            pl.col("individual_tracking_disabled").fill_null(False)
        ).select(email_name="name", triggered_off=pl.lit(True))
        triggered = (
            send_jobs.select("job_id", "email_name")
            .join(off.unique("email_name"), on="email_name", how="inner")
            .group_by("job_id")
            .agg(pl.col("triggered_off").any())
        )
        parts.append(triggered.select("job_id"))
    facts = (
        pl.concat(parts)
        .unique()
        .join(sends, on="job_id", how="left")
        .join(with_iers, on="job_id", how="left")
        .join(triggered, on="job_id", how="left")
    )
    return facts.select(
        "job_id",
        send_known=pl.col("in_email_sends").fill_null(False)
        | pl.col("has_iers").fill_null(False)
        | pl.col("triggered_off").fill_null(False),
        tracking_disabled=pl.col("tracking_disabled").fill_null(False)
        | pl.col("triggered_off").fill_null(False),
    )


def match_recipients(
    sent_events: pl.LazyFrame,
    tables: SyncTables,
    *,
    as_of: dt.datetime,
    grace: dt.timedelta = clock.SYNC_GRACE,
    cycle: Cycle = "hourly",
    throughput: ThroughputEstimate | None = None,
    send_jobs: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Match every sent recipient to its IER and give each one without an IER a reason.

    Args:
        sent_events: Tracking events in ``ierkit.extract.EVENT_SCHEMA`` (only Sent rows are used;
            other event types may be present).
        tables: The org's tables (``SyncTables.from_org``).
        as_of: The moment to judge from (UTC): later Sent rows are left out and later IERs do
            not count as existing yet.
        grace: A send (or batch) younger than this is never called broken.
        cycle: The Connect sync frequency.
        throughput: The sync's throughput; estimated from ``tables.iers`` when None.
        send_jobs: The extract's SendJobs (``extract.read_send_jobs``): finds triggered sends
            with tracking off by name. Optional.

    Returns:
        One row per sent recipient (``RECIPIENT_SCHEMA``): job_id, batch_id, subscriber_key,
        email, sent_at, key_kind (``ierkit.ids`` kinds), recipient_id (the Contact or Lead the
        key points to, where the org has one; for an email key, the only Contact or Lead with
        that address), repaired_key (the 18-character Id for a 15-character key; the record Id
        for an email key, where one record has the address), ier_id, has_ier, status
        (``matched``, ``on_converted_lead``, ``missing``) and reason (``ierkit.reasons``).
        Sorted by job_id, batch_id, subscriber_key.
    """
    as_of = _utc(as_of)
    length = _cycle_length(cycle)
    if throughput is None:
        throughput = estimate_throughput(tables.iers, cycle=cycle, as_of=as_of)
    ier_keys = _ier_keys(tables, as_of)
    people = _people(tables)
    key = pl.col("subscriber_key")
    kind = ids.classify_subscriber_key_expr(key)
    id_like = key.str.contains(r"^[0-9A-Za-z]{15}([0-9A-Za-z]{3})?$")
    # Email addresses that belong to exactly one Contact or Lead: an email key's likely owner.
    by_email = (
        people.filter(pl.col("person_email").is_not_null())
        .with_columns(address=pl.col("person_email").str.to_lowercase())
        .group_by("address")
        .agg(pl.col("person_id").first(), n=pl.len())
        .filter(pl.col("n") == 1)
        .select("address", email_owner="person_id")
    )
    rows = (
        sent_rows(sent_events)
        .filter(pl.col("sent_at") <= as_of)
        .with_columns(key_kind=kind)
        .with_columns(
            # Ids match in their 18-character form.
            match_key=pl.when(pl.col("key_kind").is_in([ids.KEY_CONTACT_OR_LEAD_ID, ids.KEY_ID15]))
            .then(ids.to_18_expr(key))
            .when(id_like)
            .then(ids.to_18_expr(key)),
            address=pl.when(pl.col("key_kind") == ids.KEY_EMAIL).then(key.str.to_lowercase()),
        )
        .join(
            ier_keys,
            left_on=["job_id", "batch_id", "match_key"],
            right_on=["job_id", "batch_id", "person_id"],
            how="left",
        )
        .join(people, left_on="match_key", right_on="person_id", how="left")
        .with_columns(in_org=pl.col("is_converted_lead").is_not_null())
        .join(by_email, on="address", how="left")
        .join(_send_facts(tables, send_jobs, ier_keys), on="job_id", how="left")
        .with_columns(
            pl.col("send_known").fill_null(False),
            pl.col("tracking_disabled").fill_null(False),
            has_ier=pl.col("ier_id").is_not_null(),
        )
    )
    structural = (
        pl.when(~pl.col("send_known"))
        .then(pl.lit(reasons.NOT_SALESFORCE_AUDIENCE))
        .when(pl.col("tracking_disabled"))
        .then(pl.lit(reasons.TRACKING_OFF))
        .when(pl.col("key_kind") == ids.KEY_EMAIL)
        .then(pl.lit(reasons.EMAIL_KEY))
        .when((pl.col("key_kind") == ids.KEY_ID15) & pl.col("in_org"))
        .then(pl.lit(reasons.ID15_KEY))
        .when(id_like & ~pl.col("in_org"))
        .then(pl.lit(reasons.UNKNOWN_ID))
    )
    rows = rows.with_columns(structural=pl.when(~pl.col("has_ier")).then(structural))
    # The sync model, per send and batch: IERs that should come, and whether they still can.
    expected = (pl.col("structural").is_null() & (pl.col("key_kind") != ids.KEY_OTHER)) | pl.col(
        "has_ier"
    )
    batches = rows.group_by("job_id", "batch_id").agg(
        batch_sent=pl.col("sent_at").min(),
        expected=expected.sum(),
        arrived=pl.col("has_ier").sum(),
    )
    per_cycle = throughput.per_cycle_p10 or 0.0
    if per_cycle > 0:
        cycles_needed = (pl.col("expected").cast(pl.Float64) / per_cycle).ceil()
        # One cycle to wait for the first sync after the send, then the cycles the send needs.
        model_done = pl.col("batch_sent") + pl.duration(
            seconds=((cycles_needed + 1) * length.total_seconds()).cast(pl.Int64)
        )
    else:
        model_done = pl.col("batch_sent")
    young = pl.col("batch_sent") > pl.lit(as_of - grace)
    batches = batches.with_columns(
        syncing=young | ((pl.col("arrived") < pl.col("expected")) & (model_done > pl.lit(as_of)))
    ).select("job_id", "batch_id", "syncing")
    rows = rows.join(batches, on=["job_id", "batch_id"], how="left")
    reason = (
        pl.when(pl.col("has_ier") & pl.col("is_converted_lead").fill_null(False))
        .then(pl.lit(reasons.LEAD_CONVERTED))
        .when(pl.col("has_ier"))
        .then(pl.lit(reasons.HEALTHY))
        .when(pl.col("structural").is_not_null())
        .then(pl.col("structural"))
        .when(pl.col("syncing"))
        .then(pl.lit(reasons.IN_SYNC_WINDOW))
        .otherwise(pl.lit(reasons.UNEXPLAINED))
    )
    status = (
        pl.when(pl.col("reason") == reasons.LEAD_CONVERTED)
        .then(pl.lit(ON_CONVERTED_LEAD))
        .when(pl.col("has_ier"))
        .then(pl.lit(MATCHED))
        .otherwise(pl.lit(MISSING))
    )
    recipient = pl.when(pl.col("in_org")).then(pl.col("match_key")).otherwise(pl.col("email_owner"))
    repaired = (
        pl.when((pl.col("key_kind") == ids.KEY_ID15) & pl.col("in_org"))
        .then(pl.col("match_key"))
        .when(pl.col("key_kind") == ids.KEY_EMAIL)
        .then(pl.col("email_owner"))
    )
    return (
        rows.with_columns(reason=reason)
        .with_columns(status=status, recipient_id=recipient, repaired_key=repaired)
        .select(RECIPIENT_SCHEMA.names())
        .cast(dict(RECIPIENT_SCHEMA))
        .sort("job_id", "batch_id", "subscriber_key")
    )


# --- per send ----------------------------------------------------------------------------------


def _send_names(tables: SyncTables, send_jobs: pl.LazyFrame | None) -> pl.LazyFrame:
    """job_id -> email_name: Email Sends first, then the extract's SendJobs, then IER names."""
    frames = [
        tables.email_sends.select("job_id", "email_name").with_columns(rank=pl.lit(0)),
        tables.iers.select("job_id", email_name="name").with_columns(rank=pl.lit(2)),
    ]
    if send_jobs is not None:
        frames.append(send_jobs.select("job_id", "email_name").with_columns(rank=pl.lit(1)))
    return (
        pl.concat(frames)
        .filter(pl.col("job_id").is_not_null() & pl.col("email_name").is_not_null())
        .sort("job_id", "rank", "email_name")
        .group_by("job_id")
        .agg(pl.col("email_name").first())
    )


def send_coverage(
    recipients: pl.LazyFrame,
    tables: SyncTables,
    *,
    throughput: ThroughputEstimate,
    as_of: dt.datetime,
    send_jobs: pl.LazyFrame | None = None,
    unattributable: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Per send: sent, IERs, coverage, status, and when a send still syncing should be done.

    Args:
        recipients: ``match_recipients`` output.
        tables: The org's tables (for email names).
        throughput: The sync's throughput (``estimate_throughput``).
        as_of: The moment the matching judged from (UTC).
        send_jobs: The extract's SendJobs, for names of sends the org does not know.
        unattributable: ``unattributable_events`` output, joined per send when given.

    Returns:
        job_id, email_name, date_sent (first Sent row), sent, iers (IERs found, including those
        on converted Leads), on_converted_lead, missing, coverage (iers / sent), status
        (``complete``, ``syncing``, ``incomplete``, ``tracking off``, ``not from Salesforce``),
        main_reason (the commonest reason for the missing), expected_completion (syncing sends:
        when the last IER should have arrived at the median throughput) and
        expected_completion_latest (at the 10th-percentile throughput), unattributable_events.
        Newest send first.
    """
    as_of = _utc(as_of)
    missing = pl.col("status") == MISSING
    per_send = recipients.group_by("job_id").agg(
        date_sent=pl.col("sent_at").min(),
        sent=pl.len().cast(pl.Int64),
        iers=pl.col("has_ier").sum().cast(pl.Int64),
        on_converted_lead=(pl.col("status") == ON_CONVERTED_LEAD).sum().cast(pl.Int64),
        missing=missing.sum().cast(pl.Int64),
        syncing_left=(pl.col("reason") == reasons.IN_SYNC_WINDOW).sum().cast(pl.Int64),
        tracking_off=(pl.col("reason") == reasons.TRACKING_OFF).sum().cast(pl.Int64),
        not_salesforce=(pl.col("reason") == reasons.NOT_SALESFORCE_AUDIENCE).sum().cast(pl.Int64),
    )
    main_reason = (
        recipients.filter(missing)
        .group_by("job_id", "reason")
        .agg(n=pl.len())
        .sort("job_id", "n", "reason", descending=[False, True, False])
        .group_by("job_id")
        .agg(main_reason=pl.col("reason").first())
    )
    next_cycle = throughput.next_cycle(as_of)
    length = throughput.cycle_length.total_seconds()

    def completion(per_cycle: float | None) -> pl.Expr:
        if not per_cycle:
            return pl.lit(None, schema.UTC_DATETIME)
        cycles = (pl.col("syncing_left").cast(pl.Float64) / per_cycle).ceil()
        return pl.when(pl.col("syncing_left") > 0).then(
            pl.lit(next_cycle, schema.UTC_DATETIME)
            + pl.duration(seconds=(cycles * length).cast(pl.Int64))
        )

    status = (
        pl.when(pl.col("syncing_left") > 0)
        .then(pl.lit(SEND_SYNCING))
        .when(pl.col("missing") == 0)
        .then(pl.lit(SEND_COMPLETE))
        .when(pl.col("not_salesforce") == pl.col("missing"))
        .then(pl.lit(SEND_NOT_SALESFORCE))
        .when(pl.col("tracking_off") == pl.col("missing"))
        .then(pl.lit(SEND_TRACKING_OFF))
        .otherwise(pl.lit(SEND_INCOMPLETE))
    )
    frame = (
        per_send.join(_send_names(tables, send_jobs), on="job_id", how="left")
        .join(main_reason, on="job_id", how="left")
        .with_columns(
            coverage=pl.col("iers") / pl.col("sent"),
            status=status,
            expected_completion=completion(throughput.per_cycle_median),
            expected_completion_latest=completion(throughput.per_cycle_p10),
        )
    )
    if unattributable is not None:
        frame = frame.join(
            unattributable.select("job_id", "unattributable_events"), on="job_id", how="left"
        )
    else:
        frame = frame.with_columns(unattributable_events=pl.lit(None, pl.Int64))
    return frame.select(
        "job_id",
        "email_name",
        "date_sent",
        "sent",
        "iers",
        "on_converted_lead",
        "missing",
        "coverage",
        "status",
        "main_reason",
        "expected_completion",
        "expected_completion_latest",
        pl.col("unattributable_events").fill_null(0),
    ).sort("date_sent", "job_id", descending=[True, False])


def missing_by_reason(
    recipients: pl.LazyFrame, *, unattributable: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """Missing IERs per reason, most first, with the fix in words.

    Recipients whose IER is on a converted Lead are counted too (status ``on_converted_lead``:
    the IER exists, but not where a report on the Contact looks). Unattributable events, when
    given, add a ``deleted_in_marketing_cloud`` row counting events, not recipients.

    Returns:
        reason, missing (recipients, or events for deleted_in_marketing_cloud), sends, fix.
    """
    frame = (
        recipients.filter(pl.col("status") != MATCHED)
        .group_by("reason")
        .agg(missing=pl.len().cast(pl.Int64), sends=pl.col("job_id").n_unique().cast(pl.Int64))
    )
    if unattributable is not None:
        deleted = unattributable.select(
            reason=pl.lit(reasons.DELETED_IN_MARKETING_CLOUD),
            missing=pl.col("unattributable_events").sum().cast(pl.Int64),
            sends=pl.len().cast(pl.Int64),
        ).filter(pl.col("missing") > 0)
        frame = pl.concat([frame, deleted])
    return frame.with_columns(
        fix=pl.col("reason").replace_strict(reasons.FIX, return_dtype=pl.String)
    ).sort("missing", "reason", descending=[True, False])


def fixable_records(recipients: pl.LazyFrame) -> pl.LazyFrame:
    """Subscriber Keys to fix in Marketing Cloud, one row per key, with the repaired key.

    Returns:
        subscriber_key, reason (email_key, id15_key, unknown_id), repaired_key (the Id to use
        instead, where the org has one), email, sends (sends the key missed an IER in),
        last_sent, fix. Most sends first.
    """
    return (
        recipients.filter((pl.col("status") == MISSING) & pl.col("reason").is_in(KEY_REASONS))
        .group_by("subscriber_key", "reason")
        .agg(
            pl.col("repaired_key").drop_nulls().first(),
            pl.col("email").drop_nulls().first(),
            sends=pl.col("job_id").n_unique().cast(pl.Int64),
            last_sent=pl.col("sent_at").max(),
        )
        .with_columns(fix=pl.col("reason").replace_strict(reasons.FIX, return_dtype=pl.String))
        .sort("sends", "subscriber_key", descending=[True, False])
    )


# --- words and pictures ------------------------------------------------------------------------


def summary_text(
    coverage: pl.DataFrame,
    by_reason: pl.DataFrame,
    throughput: ThroughputEstimate,
    *,
    fixable: pl.DataFrame | None = None,
) -> str:
    """What to fix first, in words, ordered by missing IERs.

    Args:
        coverage: ``send_coverage`` output, collected.
        by_reason: ``missing_by_reason`` output, collected.
        throughput: The sync's throughput estimate.
        fixable: ``fixable_records`` output, collected (adds how many keys to repair).

    Returns:
        A few short paragraphs of plain text.
    """
    sent = int(coverage.get_column("sent").sum()) if coverage.height else 0
    iers = int(coverage.get_column("iers").sum()) if coverage.height else 0
    lines = [
        f"{coverage.height:,} sends, {sent:,} recipients, {iers:,} with an IER "
        f"({iers / sent:.1%} coverage)."
        if sent
        else "No sent recipients in the extract."
    ]
    actionable = by_reason.filter(
        ~pl.col("reason").is_in(
            [reasons.IN_SYNC_WINDOW, reasons.LEAD_CONVERTED, reasons.DELETED_IN_MARKETING_CLOUD]
        )
    )
    if actionable.height:
        lines.append("Fix first (most missing IERs first):")
        for number, row in enumerate(actionable.iter_rows(named=True), start=1):  # one per reason
            lines.append(
                f"  {number}. {row['reason']}: {row['missing']:,} missing IERs in "
                f"{_sends(row['sends'])}. {row['fix']}"
            )
    else:
        lines.append("Nothing to fix: every missing IER is explained by the sync or by design.")
    if fixable is not None and fixable.height:
        repairable = fixable.filter(pl.col("repaired_key").is_not_null()).height
        lines.append(
            f"{fixable.height:,} Subscriber Keys need attention; {repairable:,} of them have a "
            "repaired key (the Contact or Lead Id to use) in the fixable-records list."
        )
    syncing = coverage.filter(pl.col("status") == SEND_SYNCING)
    for row in syncing.sort("date_sent").iter_rows(named=True):  # sends still syncing: a few
        when = row["expected_completion"]
        latest = row["expected_completion_latest"]
        eta = (
            f"; expected complete by {when:%Y-%m-%d %H:%M} UTC"
            + (f" (at the latest {latest:%H:%M})" if latest and latest != when else "")
            if when
            else ""
        )
        lines.append(
            f"Still syncing, wait: {row['email_name']} ({row['iers']:,} of {row['sent']:,} "
            f"IERs so far{eta})."
        )
    converted = by_reason.filter(pl.col("reason") == reasons.LEAD_CONVERTED)
    if converted.height:
        lines.append(
            f"{converted.item(0, 'missing'):,} IERs sit on Leads converted since the send: they "
            "exist, but reports on the Contact do not show them. "
            + reasons.FIX[reasons.LEAD_CONVERTED]
        )
    deleted = by_reason.filter(pl.col("reason") == reasons.DELETED_IN_MARKETING_CLOUD)
    if deleted.height:
        lines.append(
            f"{deleted.item(0, 'missing'):,} opens and clicks in "
            f"{_sends(deleted.item(0, 'sends'))} "
            "came with a blank Subscriber Key (subscribers deleted in Marketing Cloud): they "
            "cannot be attributed to anyone."
        )
    lines.append(str(throughput))
    return "\n".join(lines)


def _sends(n: int) -> str:
    return f"{n:,} send" if n == 1 else f"{n:,} sends"


def missing_by_reason_chart(by_reason: pl.DataFrame, *, title: str | None = None) -> alt.Chart:
    """A horizontal bar chart of missing IERs per reason (``missing_by_reason`` output)."""
    import altair as alt  # only charts need it: keeps the command line quick to start

    data = by_reason.select(
        "reason",
        "missing",
        "sends",
        "fix",
        what=pl.when(pl.col("reason") == reasons.IN_SYNC_WINDOW)
        .then(pl.lit("wait"))
        .when(pl.col("reason").is_in([reasons.LEAD_CONVERTED, reasons.DELETED_IN_MARKETING_CLOUD]))
        .then(pl.lit("not repairable"))
        .otherwise(pl.lit("fix")),
    )
    return (
        alt.Chart(data, title=title or "Missing IERs by reason")
        .mark_bar()
        .encode(
            x=alt.X("missing:Q", title="missing IERs (events for deleted_in_marketing_cloud)"),
            y=alt.Y("reason:N", sort="-x", title=None),
            color=alt.Color(
                "what:N",
                title=None,
                scale=alt.Scale(
                    domain=["fix", "wait", "not repairable"],
                    range=["#c44e52", "#8c8c8c", "#4c72b0"],
                ),
            ),
            tooltip=["reason", "missing", "sends", "fix"],
        )
        .properties(width=480, height=alt.Step(24))
    )


# --- all together ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    """Everything the sync-health diagnosis found, collected (``diagnose``).

    ``sent_events`` holds the extract's Sent rows (``ierkit.extract.EVENT_SCHEMA``), for checks
    that look at Subscriber Keys (``ierkit.prereq.check_prerequisites(events=...)``).
    """

    as_of: dt.datetime
    grace: dt.timedelta
    throughput: ThroughputEstimate
    recipients: pl.DataFrame
    coverage: pl.DataFrame
    by_reason: pl.DataFrame
    fixable: pl.DataFrame
    unattributable: pl.DataFrame
    summary: str
    sent_events: pl.DataFrame


def read_tracking(path: str | os.PathLike[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The Sent rows and the blank-key opens and clicks of an extract, read once into memory.

    Returns:
        ``sent_rows`` and ``unattributable_events`` of the extract, collected.
    """
    # open_extract keeps a zip unpacked only inside the block: collect what is needed here.
    with extract.open_extract(path) as files:
        frames = [
            extract.scan_file(f) for f in files if f.kind in ("Sent", "Open", "Click") and f.header
        ]
        events = pl.concat(frames) if frames else pl.LazyFrame(schema=extract.EVENT_SCHEMA)
        sent, blank = pl.collect_all(
            [
                events.filter(pl.col("event_type") == "Sent"),
                events.filter(
                    pl.col("event_type").is_in(["Open", "Click"])
                    & (
                        pl.col("subscriber_key").is_null()
                        | (pl.col("subscriber_key").str.strip_chars() == "")
                    )
                ),
            ]
        )
    return sent, blank


def resolve_as_of(
    as_of: str | dt.date | dt.datetime | None, *, source: str, org: Org | None = None
) -> dt.datetime:
    """The instant a diagnosis judges from, from a notebook or command-line value.

    Args:
        as_of: An instant (``datetime`` or ISO text with a time), a day (``date`` or
            ``YYYY-MM-DD``), or empty/None for the default.
        source: The source name, for the default.
        org: The org, for the default when it is open already.

    Returns:
        A UTC instant, as ``ierkit.clock`` defines it: a day means its end, nothing given means
        the source's own instant (``ierkit.orgs.source_instant``).

    Raises:
        MatchingError: When ``as_of`` is not a date or a date and time.
    """
    try:
        parsed = clock.parse_as_of(as_of)
    except clock.ClockError as error:
        raise MatchingError(str(error)) from None
    if parsed is None:
        return source_instant(source, org=org)
    return clock.as_of_instant(parsed)


def default_extract(source: str, extract_path: str | os.PathLike[str] | None) -> str:
    """The extract to read: the given path, else the demo's own ``tracking_extract.zip``.

    A local org folder that holds a ``tracking_extract.zip`` (a generated demo) uses it too.

    Raises:
        MatchingError: When no path is given for a source other than the demo.
    """
    if extract_path is not None and str(extract_path).strip():
        return os.fspath(extract_path)
    if str(source) == "demo":
        from ierkit import demo

        return os.fspath(demo.ensure_demo() / "tracking_extract.zip")
    beside = os.path.join(os.fspath(source), "tracking_extract.zip")
    if os.path.isfile(beside):
        return beside
    raise MatchingError(
        f"source {source!r}: give the tracking extract to match against (a .zip or folder from "
        "Marketing Cloud's Tracking Extract)"
    )


def diagnose(
    org: Org,
    extract_path: str | os.PathLike[str],
    *,
    as_of: dt.datetime,
    grace: dt.timedelta = clock.SYNC_GRACE,
    cycle: Cycle = "hourly",
) -> Diagnosis:
    """Match an extract's sends against an org and explain every missing IER.

    Args:
        org: The org holding the IERs.
        extract_path: A Marketing Cloud tracking extract (zip or folder) covering the sends.
        as_of: The moment to judge from (UTC): for a snapshot, when it was taken.
        grace: A send younger than this is never called broken.
        cycle: The Connect sync frequency.

    Returns:
        A ``Diagnosis`` with every table collected and the summary text.
    """
    as_of = _utc(as_of)
    tables = SyncTables.from_org(org)
    sent, blank = read_tracking(extract_path)
    send_jobs = extract.read_send_jobs(extract_path).collect().lazy()
    throughput = estimate_throughput(tables.iers, cycle=cycle, as_of=as_of)
    recipients = match_recipients(
        sent.lazy(),
        tables,
        as_of=as_of,
        grace=grace,
        cycle=cycle,
        throughput=throughput,
        send_jobs=send_jobs,
    ).collect()
    unattributable = unattributable_events(blank.lazy()).collect()
    coverage = send_coverage(
        recipients.lazy(),
        tables,
        throughput=throughput,
        as_of=as_of,
        send_jobs=send_jobs,
        unattributable=unattributable.lazy(),
    ).collect()
    by_reason = missing_by_reason(recipients.lazy(), unattributable=unattributable.lazy()).collect()
    fixable = fixable_records(recipients.lazy()).collect()
    return Diagnosis(
        as_of=as_of,
        grace=grace,
        throughput=throughput,
        recipients=recipients,
        coverage=coverage,
        by_reason=by_reason,
        fixable=fixable,
        unattributable=unattributable,
        summary=summary_text(coverage, by_reason, throughput, fixable=fixable),
        sent_events=sent,
    )
