"""Engagement reports on Individual Email Results: worklists for reps, summaries for marketing.

Every report is a function that takes the canonical tables (``ReportTables``: LazyFrames, or an
``Org`` to read them from) and returns a sorted ``pl.LazyFrame``; nothing is collected here. The
as-of instant and every window are parameters: library code never reads the wall clock, so a
report for a given as-of is the same whenever it runs. Times are UTC.

Definitions used throughout:

- *Recipient*: the Contact or Lead the IER is on (``contact_id``, else ``lead_id``); name,
  company, email, owner and segment fields come from that record, the owner's name from
  ``users``. A converted lead's IERs stay on the lead (Salesforce does not move them), so the
  lead's owner is shown.
- *Send*: the Email Send or Triggered Send the IER points to (``send_id``); campaigns come from
  the Email Send (a Triggered Send has no campaign).
- *Programme*: ``ierkit.programmes.programme_expr`` of the email name.
- *Bounced*: hard or soft bounce flag, or a bounce date. *Delivered* = sent minus bounced.
- *Opened*: the Opened checkbox, or an open date. *Clicked*: the Clicked formula, or unique
  clicks above zero. *Unsubscribed*: the flag, or an unsubscribe date.
- *When a recipient clicked*: Salesforce keeps no per-click time on the IER. The latest
  ``last_clicked`` of the IER's link details is used; where an IER has no link rows (link detail
  tracking off, or links deleted), its ``tracking_as_of`` (the last tracking update, which comes
  at or after the click) stands in, then ``date_opened``. Column ``clicked_at_source`` says which.
- Rates: Salesforce divides send totals by *sent*, Marketing Cloud by *delivered*; summaries
  show both, in columns named ``<metric>_rate_over_sent`` and ``<metric>_rate_over_delivered``,
  as fractions (0.25 = 25 %), null where the denominator is zero.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from ierkit import clock, schema
from ierkit._exprs import rate
from ierkit.errors import IerkitError
from ierkit.orgs.base import Org
from ierkit.programmes import programme_expr

__all__ = [
    "REPORT_NAMES",
    "ReportError",
    "ReportTables",
    "all_reports",
    "campaign_summary",
    "click_heatmap",
    "engagement_worklist",
    "link_interest",
    "no_response",
    "no_response_by_send",
    "owner_summary",
    "owner_worklist",
    "programme_trend",
    "recipients",
    "rollup",
    "segment_summary",
    "sends",
]

#: Owner name shown for records whose owner is missing or not in ``users``.
NO_OWNER = "(no owner)"
#: Campaign name shown for sends without a campaign (triggered sends, or no campaign set).
NO_CAMPAIGN = "(no campaign)"
#: Segment value shown for recipients whose segment field is empty.
NO_SEGMENT = "(not set)"

#: Segment fields a summary may group by: present on both Contact and Lead.
SEGMENT_FIELDS = tuple(
    name
    for name in schema.CONTACTS.column_names
    if name in schema.LEADS.column_names
    and name not in {"id", "first_name", "last_name", "email", "owner_id"}
    and schema.CONTACTS.column(name).dtype == pl.String
)

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_TABLE_FIELDS = {
    "iers": "individual_email_results",
    "links": "individual_links",
    "contacts": "contacts",
    "leads": "leads",
    "users": "users",
    "tasks": "tasks",
    "email_sends": "email_sends",
    "triggered_sends": "triggered_sends",
    "campaigns": "campaigns",
}


class ReportError(IerkitError, ValueError):
    """A report was asked for with parameters it cannot use; the message says which."""


def _empty(table_name: str) -> pl.LazyFrame:
    return schema.table(table_name).empty().lazy()


def _conform(table_name: str, frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Add the canonical columns ``frame`` lacks (as nulls) and cast it to the canonical schema."""
    lazy = frame.lazy()
    present = lazy.collect_schema()
    missing = [
        pl.lit(None, dtype=c.dtype).alias(c.name)
        for c in schema.table(table_name).columns
        if c.name not in present
    ]
    return schema.validate(table_name, lazy.with_columns(missing) if missing else lazy)


@dataclass(frozen=True)
class ReportTables:
    """The canonical tables the reports read, as LazyFrames (empty tables by default).

    Build it with ``from_org`` for an org, or ``of`` for inline frames (tests, notebooks).
    """

    iers: pl.LazyFrame = field(default_factory=lambda: _empty("individual_email_results"))
    links: pl.LazyFrame = field(default_factory=lambda: _empty("individual_links"))
    contacts: pl.LazyFrame = field(default_factory=lambda: _empty("contacts"))
    leads: pl.LazyFrame = field(default_factory=lambda: _empty("leads"))
    users: pl.LazyFrame = field(default_factory=lambda: _empty("users"))
    tasks: pl.LazyFrame = field(default_factory=lambda: _empty("tasks"))
    email_sends: pl.LazyFrame = field(default_factory=lambda: _empty("email_sends"))
    triggered_sends: pl.LazyFrame = field(default_factory=lambda: _empty("triggered_sends"))
    campaigns: pl.LazyFrame = field(default_factory=lambda: _empty("campaigns"))

    @classmethod
    def from_org(cls, org: Org) -> ReportTables:
        """The org's tables; a table the org does not hold (e.g. a partial snapshot) is empty."""
        return cls(
            **{
                attr: org.table(name) if org.has_table(name) else _empty(name)
                for attr, name in _TABLE_FIELDS.items()
            }
        )

    @classmethod
    def of(cls, **frames: pl.DataFrame | pl.LazyFrame) -> ReportTables:
        """Tables from partial frames: missing columns become nulls, types are made canonical.

        Args:
            **frames: Keyed by field name (``iers``, ``links``, ``contacts``, ...).

        Raises:
            ReportError: For a key that is not a field.
            SchemaError: When a given column has a type that cannot be cast.
        """
        unknown = sorted(set(frames) - set(_TABLE_FIELDS))
        if unknown:
            known = ", ".join(_TABLE_FIELDS)
            raise ReportError(f"unknown report tables {unknown}; known: {known}")
        return cls(**{k: _conform(_TABLE_FIELDS[k], v) for k, v in frames.items()})


def as_tables(source: ReportTables | Org) -> ReportTables:
    """The tables of a source: ``ReportTables`` as given, or read from an ``Org``."""
    if isinstance(source, ReportTables):
        return source
    if isinstance(source, Org):
        return ReportTables.from_org(source)
    raise ReportError(f"expected ReportTables or an Org, got {type(source).__name__}")


def _utc(instant: dt.datetime | dt.date, name: str) -> dt.datetime:
    """A UTC instant; a date means the start (00:00 UTC) of that day."""
    if isinstance(instant, dt.datetime):
        return clock.to_utc(instant)
    if isinstance(instant, dt.date):
        return dt.datetime.combine(instant, dt.time(), tzinfo=clock.UTC)
    raise ReportError(f"{name} must be a datetime or a date (UTC), got {instant!r}")


def _as_of(as_of: dt.datetime | dt.date) -> dt.datetime:
    """The report's "now": an instant, or a report date's end (``ierkit.clock.as_of_instant``)."""
    if isinstance(as_of, dt.date):
        return clock.as_of_instant(as_of)
    raise ReportError(f"as_of must be a datetime or a date (UTC), got {as_of!r}")


def _days(value: int | float | dt.timedelta, name: str) -> dt.timedelta:
    delta = value if isinstance(value, dt.timedelta) else dt.timedelta(days=value)
    if delta < dt.timedelta(0):
        raise ReportError(f"{name} must not be negative, got {value!r}")
    return delta


# --- building blocks -------------------------------------------------------------------------

# Engagement flags of an IER, read from the checkbox or the date, whichever the org filled
# (see the module docstring); ierkit.decision counts with the same ones.
BOUNCED = (
    pl.col("hard_bounce").fill_null(False)
    | pl.col("soft_bounce").fill_null(False)
    | pl.col("date_bounced").is_not_null()
)
OPENED = pl.col("opened").fill_null(False) | pl.col("date_opened").is_not_null()
CLICKED = pl.col("clicked").fill_null(False) | (pl.col("unique_clicks").fill_null(0) > 0)
UNSUBSCRIBED = pl.col("unsubscribed").fill_null(False) | pl.col("date_unsubscribed").is_not_null()


def _ier_facts(iers: pl.LazyFrame) -> pl.LazyFrame:
    """IERs with recipient and send keys and the engagement flags derived.

    Filter the raw IERs (with ``CLICKED`` etc.) before calling this where a report can: the
    derived columns then cost only the rows kept. The programme is derived later still, on
    few rows or on distinct email names.
    """
    return iers.with_columns(
        recipient_id=pl.coalesce("contact_id", "lead_id"),
        send_id=pl.coalesce("email_send_id", "triggered_send_id"),
        is_bounced=BOUNCED,
        is_opened=OPENED,
        is_clicked=CLICKED,
        is_unsubscribed=UNSUBSCRIBED,
    )


def recipients(source: ReportTables | Org, *, extra_fields: Sequence[str] = ()) -> pl.LazyFrame:
    """Contacts and leads as one table of recipients, with their owner's name.

    Args:
        source: The tables, or an org.
        extra_fields: Further columns present on both Contact and Lead (see ``SEGMENT_FIELDS``).

    Returns:
        ``recipient_id``, ``recipient_type`` ("Contact"/"Lead"), ``recipient_name``, ``company``,
        ``email``, ``owner_id``, ``owner_name`` (``NO_OWNER`` when unknown), ``owner_email``, then
        ``extra_fields``; sorted by ``recipient_id``.
    """
    return _recipients(as_tables(source), extra_fields).sort("recipient_id")


def _recipients(tables: ReportTables, extra_fields: Sequence[str] = ()) -> pl.LazyFrame:
    """``recipients`` unsorted: for joins, where sorting 1M+ rows would be wasted work."""
    for name in extra_fields:
        _check_segment(name)
    # "company" is always there; asking for it as a segment must not select it twice.
    extra_fields = [n for n in dict.fromkeys(extra_fields) if n != "company"]

    def part(frame: pl.LazyFrame, kind: str) -> pl.LazyFrame:
        # Positional columns come first in a select, whatever their place in the call.
        return frame.select(
            *[pl.col(n) for n in extra_fields],
            recipient_id=pl.col("id"),
            recipient_type=pl.lit(kind),
            recipient_name=pl.concat_str(
                ["first_name", "last_name"], separator=" ", ignore_nulls=True
            ),
            company=pl.col("company"),
            email=pl.col("email"),
            owner_id=pl.col("owner_id"),
        )

    owners = tables.users.select(
        owner_id=pl.col("id"), owner_name=pl.col("name"), owner_email=pl.col("email")
    )
    return (
        pl.concat([part(tables.contacts, "Contact"), part(tables.leads, "Lead")])
        .join(owners, on="owner_id", how="left")
        .with_columns(pl.col("owner_name").fill_null(NO_OWNER))
        .select(
            "recipient_id",
            "recipient_type",
            "recipient_name",
            "company",
            "email",
            "owner_id",
            "owner_name",
            "owner_email",
            *extra_fields,
        )
    )


def sends(source: ReportTables | Org) -> pl.LazyFrame:
    """Email Sends and Triggered Sends as one table, with their campaign.

    Returns:
        ``send_id``, ``send_type`` ("Email Send"/"Triggered Send"), ``send_name`` (the email
        name of an Email Send, the name of a Triggered Send), ``subject_line``, ``campaign_id``,
        ``campaign_name`` (``NO_CAMPAIGN`` when none), ``campaign_type``; sorted by ``send_id``.
    """
    tables = as_tables(source)
    campaigns = tables.campaigns.select(
        campaign_id=pl.col("id"), campaign_name=pl.col("name"), campaign_type=pl.col("type")
    )
    email = tables.email_sends.select(
        send_id=pl.col("id"),
        send_type=pl.lit("Email Send"),
        send_name=pl.col("email_name"),
        subject_line=pl.col("subject_line"),
        campaign_id=pl.col("campaign_id"),
    )
    triggered = tables.triggered_sends.select(
        send_id=pl.col("id"),
        send_type=pl.lit("Triggered Send"),
        send_name=pl.col("name"),
        subject_line=pl.lit(None, dtype=pl.String),
        campaign_id=pl.lit(None, dtype=pl.String),
    )
    return (
        pl.concat([email, triggered])
        .join(campaigns, on="campaign_id", how="left")
        .with_columns(pl.col("campaign_name").fill_null(NO_CAMPAIGN))
        .sort("send_id")
    )


def _check_segment(name: str) -> None:
    if name not in SEGMENT_FIELDS:
        raise ReportError(
            f"segment field {name!r} is not a text field on both Contact and Lead; "
            f"choose one of: {', '.join(SEGMENT_FIELDS)}"
        )


# --- rep worklists ---------------------------------------------------------------------------

_RECIPIENT_COLUMNS = (
    "owner_id",
    "owner_name",
    "owner_email",
    "recipient_id",
    "recipient_type",
    "recipient_name",
    "company",
    "email",
)


def _clicked_iers(tables: ReportTables) -> pl.LazyFrame:
    """Clicked IERs with the columns the worklist and link interest need.

    One fixed plan for both, so ``pl.collect_all`` reads the clicked IERs once for the two.
    """
    return _ier_facts(tables.iers.filter(CLICKED)).select(
        "id",
        "recipient_id",
        "send_id",
        "name",
        "date_sent",
        "date_opened",
        "tracking_as_of",
        "unique_clicks",
        "total_clicks",
    )


def _last_link_clicks(tables: ReportTables) -> pl.LazyFrame:
    """Per IER with link details: ``id`` and its latest ``last_link_click``."""
    return (
        tables.links.filter(pl.col("individual_email_result_id").is_not_null())
        .group_by(id=pl.col("individual_email_result_id"))
        .agg(last_link_click=pl.col("last_clicked").max())
    )


def _link_lists(tables: ReportTables, ier_ids: pl.LazyFrame) -> pl.LazyFrame:
    """Per IER of ``ier_ids`` (column ``ier_id``): the links clicked, sorted and joined by "; ".

    Only for the IERs a report keeps: joining strings per group costs more than the max above.
    """
    return (
        tables.links.join(
            ier_ids, left_on="individual_email_result_id", right_on="ier_id", how="semi"
        )
        .with_columns(link=pl.coalesce("link_name", "link_url"))
        .group_by(ier_id=pl.col("individual_email_result_id"))
        .agg(
            links=pl.col("link").drop_nulls().unique().sort().str.join("; "),
            link_urls=pl.col("link_url").drop_nulls().unique().sort().str.join("; "),
        )
    )


def engagement_worklist(
    source: ReportTables | Org,
    *,
    as_of: dt.datetime | dt.date,
    days: int | float | dt.timedelta = 7,
) -> pl.LazyFrame:
    """Recipients who clicked in the last ``days`` before ``as_of``, grouped by record owner.

    "When they clicked" is the IER's latest link click, or its tracking date where it has no link
    details (see the module docstring; ``clicked_at_source`` says which). A click counts when
    ``as_of - days < clicked_at <= as_of``. A rep "followed up" when a Task on the recipient
    (``who_id``) was created after the click and no later than ``as_of``.

    Args:
        source: The tables, or an org.
        as_of: The report's "now" (UTC; a naive datetime is read as UTC; a date means the end
            of that day).
        days: Length of the window, in days or as a timedelta.

    Returns:
        One row per recipient and send: owner, recipient (name, company, email, type), send
        (``ier_id``, ``send_id``, ``email_name``, ``programme``, ``date_sent``), ``clicked_at``,
        ``clicked_at_source``, ``unique_clicks``, ``total_clicks``, ``links`` (link names),
        ``link_urls``, ``followed_up``, ``first_follow_up_at``. Sorted by owner name, owner Id,
        latest click first, then recipient and IER Id.
    """
    tables = as_tables(source)
    end = _as_of(as_of)
    start = end - _days(days, "days")
    clicks = (
        _clicked_iers(tables)
        .join(_last_link_clicks(tables), on="id", how="left")
        .with_columns(
            clicked_at=pl.coalesce("last_link_click", "tracking_as_of", "date_opened"),
            clicked_at_source=pl.when(pl.col("last_link_click").is_not_null())
            .then(pl.lit("link detail"))
            .when(pl.col("tracking_as_of").is_not_null())
            .then(pl.lit("tracking as of"))
            .when(pl.col("date_opened").is_not_null())
            .then(pl.lit("date opened")),
        )
        .filter((pl.col("clicked_at") > start) & (pl.col("clicked_at") <= end))
        .with_columns(programme_expr("name"))
        .select(
            pl.col("id").alias("ier_id"),
            "recipient_id",
            "send_id",
            pl.col("name").alias("email_name"),
            "programme",
            "date_sent",
            "clicked_at",
            "clicked_at_source",
            "unique_clicks",
            "total_clicks",
        )
    )
    follow_ups = (
        tables.tasks.filter(pl.col("who_id").is_not_null() & (pl.col("created_date") <= end))
        .select(recipient_id=pl.col("who_id"), task_created=pl.col("created_date"))
        .join(clicks.select("ier_id", "recipient_id", "clicked_at"), on="recipient_id")
        .filter(pl.col("task_created") > pl.col("clicked_at"))
        .group_by("ier_id")
        .agg(first_follow_up_at=pl.col("task_created").min())
    )
    return (
        clicks.join(_recipients(tables), on="recipient_id", how="left")
        .join(_link_lists(tables, clicks.select("ier_id")), on="ier_id", how="left")
        .join(follow_ups, on="ier_id", how="left")
        .with_columns(
            pl.col("owner_name").fill_null(NO_OWNER),
            followed_up=pl.col("first_follow_up_at").is_not_null(),
        )
        .select(
            *_RECIPIENT_COLUMNS,
            "ier_id",
            "send_id",
            "email_name",
            "programme",
            "date_sent",
            "clicked_at",
            "clicked_at_source",
            "unique_clicks",
            "total_clicks",
            "links",
            "link_urls",
            "followed_up",
            "first_follow_up_at",
        )
        .sort(
            ["owner_name", "owner_id", "clicked_at", "recipient_name", "ier_id"],
            descending=[False, False, True, False, False],
            nulls_last=True,
        )
    )


def owner_worklist(
    source: ReportTables | Org,
    *,
    as_of: dt.datetime | dt.date,
    window_days: int | float | dt.timedelta = 7,
) -> pl.DataFrame:
    """The engagement worklist, collected: the weekly run splits it by owner.

    Same as ``engagement_worklist`` (columns start with ``owner_id``, ``owner_name``,
    ``owner_email``); a date ``as_of`` covers the ``window_days`` whole days ending with it.
    """
    return engagement_worklist(source, as_of=as_of, days=window_days).collect()


def _due_delivered(
    tables: ReportTables,
    end: dt.datetime,
    wait_days: int | float | dt.timedelta,
    max_age_days: int | float | dt.timedelta | None,
) -> pl.LazyFrame:
    """Delivered IERs past their wait, flagged ``is_silent`` (no open, click or unsubscribe).

    One plan for ``no_response`` and ``no_response_by_send``, so collecting both together reads
    the IERs once.
    """
    window = pl.col("date_sent") <= end - _days(wait_days, "wait_days")
    if max_age_days is not None:
        window &= pl.col("date_sent") >= end - _days(max_age_days, "max_age_days")
    return _ier_facts(tables.iers.filter(window & ~BOUNCED)).select(
        pl.col("id").alias("ier_id"),
        "recipient_id",
        "send_id",
        pl.col("name").alias("email_name"),
        "subject_line",
        "date_sent",
        is_silent=~pl.col("is_opened") & ~pl.col("is_clicked") & ~pl.col("is_unsubscribed"),
    )


def no_response(
    source: ReportTables | Org,
    *,
    as_of: dt.datetime | dt.date,
    wait_days: int | float | dt.timedelta = 3,
    max_age_days: int | float | dt.timedelta | None = 14,
) -> pl.LazyFrame:
    """Recipients a send reached who never opened it, once the wait period has passed.

    A recipient is listed for a send when the IER is delivered (not bounced), not opened, not
    clicked (a click without a recorded open is a response: images were blocked) and not
    unsubscribed (an unsubscribe is an answer too), and the IER was sent at least ``wait_days``
    before ``as_of``. The wait applies per IER's ``date_sent``, so each daily batch of a
    triggered send becomes due on its own.

    Args:
        source: The tables, or an org.
        as_of: The report's "now" (UTC; a date means the end of that day).
        wait_days: How long to give recipients before counting them as no response.
        max_age_days: Only IERs sent at most this long before ``as_of`` (the list is for
            acting on, and old sends are past acting on; 14 days lets a weekly run show each
            send at least once after its wait); None for all.

    Returns:
        One row per recipient and send: owner, recipient, ``ier_id``, ``send_id``, ``send_type``,
        ``email_name``, ``programme``, ``subject_line``, ``campaign_id``, ``campaign_name``,
        ``date_sent``, ``days_since_sent``. Sorted by campaign name, send date (newest first),
        send Id, owner name, recipient name, IER Id.
    """
    tables = as_tables(source)
    end = _as_of(as_of)
    silent = (
        _due_delivered(tables, end, wait_days, max_age_days)
        .filter("is_silent")
        .with_columns(programme_expr("email_name"))
    )
    send_info = sends(tables).select(
        "send_id", "send_type", "campaign_id", "campaign_name", subject_of_send="subject_line"
    )
    return (
        silent.join(send_info, on="send_id", how="left")
        .join(_recipients(tables), on="recipient_id", how="left")
        .with_columns(
            pl.col("owner_name").fill_null(NO_OWNER),
            pl.col("campaign_name").fill_null(NO_CAMPAIGN),
            subject_line=pl.coalesce("subject_line", "subject_of_send"),
            days_since_sent=((pl.lit(end) - pl.col("date_sent")).dt.total_hours() / 24).floor(),
        )
        .select(
            *_RECIPIENT_COLUMNS,
            "ier_id",
            "send_id",
            "send_type",
            "email_name",
            "programme",
            "subject_line",
            "campaign_id",
            "campaign_name",
            "date_sent",
            pl.col("days_since_sent").cast(pl.Int64),
        )
        .sort(
            ["campaign_name", "date_sent", "send_id", "owner_name", "recipient_name", "ier_id"],
            descending=[False, True, False, False, False, False],
            nulls_last=True,
        )
    )


def no_response_by_send(
    source: ReportTables | Org,
    *,
    as_of: dt.datetime | dt.date,
    wait_days: int | float | dt.timedelta = 3,
    max_age_days: int | float | dt.timedelta | None = 14,
) -> pl.LazyFrame:
    """Per send past its wait period: how many delivered recipients have not responded.

    Same rules as ``no_response``; a high ``no_response_share`` with a normal bounce rate points
    at the subject line (shown) rather than the list.

    Returns:
        ``campaign_id``, ``campaign_name``, ``send_id``, ``send_type``, ``email_name``,
        ``programme``, ``subject_line``, ``first_sent``, ``delivered``, ``no_response``,
        ``no_response_share`` (over delivered); sorted by campaign name, newest send first,
        send Id.
    """
    tables = as_tables(source)
    end = _as_of(as_of)
    send_info = sends(tables).select(
        "send_id", "send_type", "campaign_id", "campaign_name", subject_of_send="subject_line"
    )
    return (
        _due_delivered(tables, end, wait_days, max_age_days)
        .group_by("send_id")
        .agg(
            email_name=pl.col("email_name").drop_nulls().min(),
            subject_line=pl.col("subject_line").drop_nulls().min(),
            first_sent=pl.col("date_sent").min(),
            delivered=pl.len().cast(pl.Int64),
            no_response=pl.col("is_silent").sum().cast(pl.Int64),
        )
        .join(send_info, on="send_id", how="left")
        .with_columns(
            programme_expr("email_name"),
            pl.col("campaign_name").fill_null(NO_CAMPAIGN),
            subject_line=pl.coalesce("subject_line", "subject_of_send"),
            no_response_share=pl.col("no_response") / pl.col("delivered"),
        )
        .select(
            "campaign_id",
            "campaign_name",
            "send_id",
            "send_type",
            "email_name",
            "programme",
            "subject_line",
            "first_sent",
            "delivered",
            "no_response",
            "no_response_share",
        )
        .sort(
            ["campaign_name", "first_sent", "send_id"],
            descending=[False, True, False],
            nulls_last=True,
        )
    )


def link_interest(
    source: ReportTables | Org,
    *,
    pattern: str,
    since: dt.datetime | dt.date,
    until: dt.datetime | dt.date,
    literal: bool = False,
) -> pl.LazyFrame:
    """Everyone who clicked a link matching ``pattern`` in ``[since, until)``, newest first.

    A link matches when its URL or its name contains the pattern, ignoring case. The click time
    is the link detail's ``last_clicked`` (the only per-link time Salesforce keeps).

    Args:
        source: The tables, or an org.
        pattern: A regular expression (``"pricing"``, ``"/pricing|/demo"``), or plain text when
            ``literal``.
        since: Start of the period, inclusive (UTC).
        until: End of the period, exclusive (UTC); usually the as-of instant.
        literal: Match ``pattern`` as plain text rather than as a regular expression.

    Returns:
        One row per link detail: ``last_clicked``, ``link_name``, ``link_url``,
        ``total_clicks``, owner, recipient, ``ier_id``, ``send_id``, ``email_name``,
        ``programme``, ``date_sent``. Sorted newest click first, then owner, recipient, link Id.

    Raises:
        ReportError: When the pattern is empty or not a valid regular expression.
    """
    tables = as_tables(source)
    start, end = _utc(since, "since"), _utc(until, "until")
    if not pattern:
        raise ReportError("link_interest: pattern is empty; give text such as 'pricing'")
    regex = "(?i)" + (re.escape(pattern) if literal else pattern)
    try:
        re.compile(regex)
    except re.error as exc:
        raise ReportError(
            f"link_interest: pattern {pattern!r} is not a valid regular expression: {exc}"
        ) from None
    matched = tables.links.filter(
        (pl.col("last_clicked") >= start)
        & (pl.col("last_clicked") < end)
        & (
            pl.col("link_url").fill_null("").str.contains(regex)
            | pl.col("link_name").fill_null("").str.contains(regex)
        )
    ).select(
        link_id=pl.col("id"),
        ier_id=pl.col("individual_email_result_id"),
        last_clicked=pl.col("last_clicked"),
        link_name=pl.col("link_name"),
        link_url=pl.col("link_url"),
        total_clicks=pl.col("total_clicks"),
    )
    iers = _clicked_iers(tables).select(
        ier_id=pl.col("id"),
        recipient_id=pl.col("recipient_id"),
        send_id=pl.col("send_id"),
        email_name=pl.col("name"),
        date_sent=pl.col("date_sent"),
    )
    return (
        matched.join(iers, on="ier_id", how="left")
        .with_columns(programme_expr("email_name"))
        .join(_recipients(tables), on="recipient_id", how="left")
        .with_columns(pl.col("owner_name").fill_null(NO_OWNER))
        .select(
            "last_clicked",
            "link_name",
            "link_url",
            "total_clicks",
            *_RECIPIENT_COLUMNS,
            "ier_id",
            "send_id",
            "email_name",
            "programme",
            "date_sent",
            "link_id",
        )
        .sort(
            ["last_clicked", "owner_name", "recipient_name", "link_id"],
            descending=[True, False, False, False],
            nulls_last=True,
        )
    )


# --- summaries -------------------------------------------------------------------------------

#: Counts of a summary, in output order.
SUMMARY_COUNTS = ("sent", "delivered", "bounces", "unique_opens", "unique_clicks", "unsubscribes")

#: Rates of a summary, in output order: each metric over sent and over delivered.
RATE_COLUMNS = (
    "open_rate_over_sent",
    "open_rate_over_delivered",
    "click_rate_over_sent",
    "click_rate_over_delivered",
    "unsubscribe_rate_over_sent",
    "unsubscribe_rate_over_delivered",
    "bounce_rate_over_sent",
)

# The additive counts; delivered and the rates are derived from them after every roll-up.
_ADDITIVE = ("sent", "bounces", "unique_opens", "unique_clicks", "unsubscribes")


def _count_aggs() -> list[pl.Expr]:
    # Sums of the raw flags: the IERs need not go through _ier_facts first (cheaper).
    return [
        pl.len().cast(pl.Int64).alias("sent"),
        BOUNCED.sum().cast(pl.Int64).alias("bounces"),
        OPENED.sum().cast(pl.Int64).alias("unique_opens"),
        CLICKED.sum().cast(pl.Int64).alias("unique_clicks"),
        UNSUBSCRIBED.sum().cast(pl.Int64).alias("unsubscribes"),
    ]


def rollup(
    counts: pl.LazyFrame, by: Sequence[str], *, sort_by: Sequence[str] | None = None
) -> pl.LazyFrame:
    """Sum summary counts by ``by`` and add delivered and the rates over sent and delivered.

    Args:
        counts: Rows with the additive counts ``sent``, ``bounces``, ``unique_opens``,
            ``unique_clicks``, ``unsubscribes`` (e.g. a summary's output) and the ``by`` columns.
        by: Grouping columns.
        sort_by: Output order; ``by`` when None.

    Returns:
        ``by``, then ``SUMMARY_COUNTS``, then ``RATE_COLUMNS``.
    """
    summed = counts.group_by(list(by)).agg(pl.col(c).sum().cast(pl.Int64) for c in _ADDITIVE)
    return (
        summed.with_columns(delivered=pl.col("sent") - pl.col("bounces"))
        .with_columns(
            open_rate_over_sent=rate("unique_opens", "sent"),
            open_rate_over_delivered=rate("unique_opens", "delivered"),
            click_rate_over_sent=rate("unique_clicks", "sent"),
            click_rate_over_delivered=rate("unique_clicks", "delivered"),
            unsubscribe_rate_over_sent=rate("unsubscribes", "sent"),
            unsubscribe_rate_over_delivered=rate("unsubscribes", "delivered"),
            bounce_rate_over_sent=rate("bounces", "sent"),
        )
        .select(*by, *SUMMARY_COUNTS, *RATE_COLUMNS)
        .sort(list(sort_by or by), nulls_last=True)
    )


def _period(
    iers: pl.LazyFrame, since: dt.datetime | dt.date | None, until: dt.datetime | dt.date | None
) -> pl.LazyFrame:
    if since is not None:
        iers = iers.filter(pl.col("date_sent") >= _utc(since, "since"))
    if until is not None:
        iers = iers.filter(pl.col("date_sent") < _utc(until, "until"))
    return iers


def _per_send_week(
    tables: ReportTables, since: dt.datetime | dt.date | None, until: dt.datetime | dt.date | None
) -> pl.LazyFrame:
    """Counts per send, email name and week sent: few rows, from low-cardinality columns.

    The campaign summary and the programme trend roll this one plan up, so collecting both
    together reads the IERs once.
    """
    return (
        _period(tables.iers, since, until)
        .group_by(
            "email_send_id",
            "triggered_send_id",
            "name",
            week_start=pl.col("date_sent").dt.truncate("1w").dt.date(),
        )
        .agg(_count_aggs())
        .with_columns(send_id=pl.coalesce("email_send_id", "triggered_send_id"))
    )


def _per_recipient(
    tables: ReportTables, since: dt.datetime | dt.date | None, until: dt.datetime | dt.date | None
) -> pl.LazyFrame:
    """Counts per recipient. Owner and segment summaries build on the same plan, so
    ``pl.collect_all`` computes it once for both (common subplan elimination)."""
    return (
        _period(tables.iers, since, until)
        .group_by("contact_id", "lead_id")
        .agg(_count_aggs())
        .with_columns(recipient_id=pl.coalesce("contact_id", "lead_id"))
    )


def campaign_summary(
    source: ReportTables | Org,
    *,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
) -> pl.LazyFrame:
    """Sent, delivered, opens, clicks, bounces, unsubscribes and rates per campaign.

    Counted from the IERs (one per recipient per send) sent in ``[since, until)`` (a date means
    00:00 UTC that day). IERs of sends without a campaign (triggered sends) are grouped under
    ``NO_CAMPAIGN``.

    Returns:
        ``campaign_id``, ``campaign_name``, ``campaign_type``, ``SUMMARY_COUNTS``,
        ``RATE_COLUMNS``; by campaign name, campaign Id.
    """
    tables = as_tables(source)
    send_info = sends(tables).select("send_id", "campaign_id", "campaign_name", "campaign_type")
    counts = (
        _per_send_week(tables, since, until)
        .join(send_info, on="send_id", how="left")
        .with_columns(pl.col("campaign_name").fill_null(NO_CAMPAIGN))
    )
    return rollup(
        counts,
        ["campaign_id", "campaign_name", "campaign_type"],
        sort_by=["campaign_name", "campaign_id"],
    )


def owner_summary(
    source: ReportTables | Org,
    *,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
) -> pl.LazyFrame:
    """Engagement per record owner of the recipients (the rep whose book it is).

    Returns:
        ``owner_id``, ``owner_name``, ``SUMMARY_COUNTS``, ``RATE_COLUMNS``; by owner name, Id.
    """
    tables = as_tables(source)
    owners = _recipients(tables).select("recipient_id", "owner_id", "owner_name")
    counts = (
        _per_recipient(tables, since, until)
        .join(owners, on="recipient_id", how="left")
        .with_columns(pl.col("owner_name").fill_null(NO_OWNER))
    )
    return rollup(counts, ["owner_id", "owner_name"], sort_by=["owner_name", "owner_id"])


def segment_summary(
    source: ReportTables | Org,
    *,
    segment: str = "industry",
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
) -> pl.LazyFrame:
    """Engagement per value of a Contact/Lead field (industry, lifecycle stage, lead source).

    Args:
        source: The tables, or an org.
        segment: One of ``SEGMENT_FIELDS``.
        since: Earliest send date, inclusive.
        until: Latest send date, exclusive.

    Returns:
        ``segment`` (the field's name), ``segment_value`` (``NO_SEGMENT`` when empty),
        ``SUMMARY_COUNTS``, ``RATE_COLUMNS``; by segment value.

    Raises:
        ReportError: When ``segment`` is not one of ``SEGMENT_FIELDS``.
    """
    _check_segment(segment)
    tables = as_tables(source)
    values = _recipients(tables, [segment]).select("recipient_id", segment_value=pl.col(segment))
    counts = (
        _per_recipient(tables, since, until)
        .join(values, on="recipient_id", how="left")
        .with_columns(
            segment=pl.lit(segment),
            segment_value=pl.when(pl.col("segment_value").str.strip_chars().fill_null("") == "")
            .then(pl.lit(NO_SEGMENT))
            .otherwise(pl.col("segment_value")),
        )
    )
    return rollup(counts, ["segment", "segment_value"])


def programme_trend(
    source: ReportTables | Org,
    *,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
) -> pl.LazyFrame:
    """Weekly opens and clicks per programme, by the week the email was sent.

    Opens and clicks are counted against the week of ``date_sent`` (IERs hold one open date and
    no click dates, so event-week counts are not available from an org). Weeks start on Monday,
    UTC.

    Returns:
        ``week_start`` (Date), ``programme``, ``SUMMARY_COUNTS``, ``RATE_COLUMNS``; by week
        then programme.
    """
    tables = as_tables(source)
    counts = (
        _per_send_week(tables, since, until)
        .filter(pl.col("week_start").is_not_null())
        # The programme rule runs on distinct email names, not on every IER.
        .with_columns(programme_expr("name"))
    )
    return rollup(counts, ["week_start", "programme"])


def click_heatmap(
    source: ReportTables | Org,
    *,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
    time_zone: str = "UTC",
) -> pl.LazyFrame:
    """Link clicks by weekday and hour of day: at most 7 x 24 rows, whatever the org's size.

    Each link detail counts once, at its ``last_clicked`` (Salesforce keeps no earlier click
    times), in ``time_zone``; ``total_clicks`` sums the link details' click counts.

    Args:
        source: The tables, or an org.
        since: Earliest click, inclusive (UTC).
        until: Latest click, exclusive (UTC).
        time_zone: IANA zone the weekdays and hours are shown in (say it in the chart title).

    Returns:
        ``weekday`` (1 = Monday), ``weekday_name``, ``hour`` (0-23), ``links_clicked``,
        ``total_clicks``, ``time_zone``; by weekday then hour. Only cells with clicks appear.
    """
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ReportError(f"click_heatmap: unknown time zone {time_zone!r}") from None
    tables = as_tables(source)
    links = tables.links.filter(pl.col("last_clicked").is_not_null())
    if since is not None:
        links = links.filter(pl.col("last_clicked") >= _utc(since, "since"))
    if until is not None:
        links = links.filter(pl.col("last_clicked") < _utc(until, "until"))
    local = pl.col("last_clicked").dt.convert_time_zone(time_zone)
    return (
        links.with_columns(
            weekday=local.dt.weekday().cast(pl.Int8), hour=local.dt.hour().cast(pl.Int8)
        )
        .group_by("weekday", "hour")
        .agg(
            links_clicked=pl.len().cast(pl.Int64),
            total_clicks=pl.col("total_clicks").fill_null(1).sum().cast(pl.Int64),
        )
        .with_columns(
            weekday_name=pl.col("weekday").replace_strict(
                list(range(1, 8)), list(_WEEKDAYS), return_dtype=pl.String
            ),
            time_zone=pl.lit(time_zone),
        )
        .select("weekday", "weekday_name", "hour", "links_clicked", "total_clicks", "time_zone")
        .sort("weekday", "hour")
    )


#: Names of the reports ``all_reports`` returns, in order.
REPORT_NAMES = (
    "engagement_worklist",
    "no_response",
    "no_response_by_send",
    "link_interest",
    "campaign_summary",
    "owner_summary",
    "segment_summary",
    "programme_trend",
    "click_heatmap",
)


def all_reports(
    source: ReportTables | Org,
    *,
    as_of: dt.datetime | dt.date,
    worklist_days: int | float | dt.timedelta = 7,
    wait_days: int | float | dt.timedelta = 3,
    max_age_days: int | float | dt.timedelta | None = 14,
    link_pattern: str = "pricing",
    link_days: int | float | dt.timedelta = 30,
    segment: str = "industry",
    since: dt.datetime | dt.date | None = None,
    time_zone: str = "UTC",
) -> dict[str, pl.DataFrame]:
    """Every report for one as-of, collected together (shared scans are read once).

    ``pl.collect_all`` runs the plans as one: the owner and segment summaries share their
    per-recipient counts, and the tables are scanned once where plans overlap.

    Args:
        source: The tables, or an org.
        as_of: The reports' "now" (a date means the end of that day, UTC).
        worklist_days: Window of the engagement worklist.
        wait_days: Wait before a recipient counts as no response.
        max_age_days: Oldest sends in the no-response lists; None for all.
        link_pattern: Pattern of ``link_interest``.
        link_days: Window of ``link_interest``, ending at ``as_of``.
        segment: Field of ``segment_summary``.
        since: Start of the summaries, trend and heat map (all history when None); they end
            at ``as_of``.
        time_zone: Zone of the click heat map.

    Returns:
        The collected reports by name (``REPORT_NAMES``).
    """
    tables = as_tables(source)
    end = _as_of(as_of)
    plans = {
        "engagement_worklist": engagement_worklist(tables, as_of=end, days=worklist_days),
        "no_response": no_response(
            tables, as_of=end, wait_days=wait_days, max_age_days=max_age_days
        ),
        "no_response_by_send": no_response_by_send(
            tables, as_of=end, wait_days=wait_days, max_age_days=max_age_days
        ),
        "link_interest": link_interest(
            tables,
            pattern=link_pattern,
            since=end - _days(link_days, "link_days"),
            until=end,
        ),
        "campaign_summary": campaign_summary(tables, since=since, until=end),
        "owner_summary": owner_summary(tables, since=since, until=end),
        "segment_summary": segment_summary(tables, segment=segment, since=since, until=end),
        "programme_trend": programme_trend(tables, since=since, until=end),
        "click_heatmap": click_heatmap(tables, since=since, until=end, time_zone=time_zone),
    }
    return dict(zip(plans, pl.collect_all(list(plans.values())), strict=True))
