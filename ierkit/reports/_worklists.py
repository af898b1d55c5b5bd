"""Rep worklists: who clicked, who did not respond, which links drew interest."""

from __future__ import annotations

import datetime as dt
import re

import polars as pl

from ierkit import signal
from ierkit.orgs.base import Org
from ierkit.programmes import programme_expr
from ierkit.reports._facts import (
    BOUNCED,
    CLICKED,
    _ier_facts,
    _recipients,
    sends,
)
from ierkit.reports._tables import (
    NO_CAMPAIGN,
    NO_OWNER,
    ReportError,
    ReportTables,
    _as_of,
    _days,
    _utc,
    as_tables,
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
        ``link_urls``, ``followed_up``, ``first_follow_up_at``, ``engagement_score``,
        ``score_explanation`` (``ierkit.signal.engagement_score``). Only human clicks count:
        IERs whose clicks look automated (``ierkit.signal.classify_iers``) are left out and
        listed by ``suspected_automated_clicks``. Sorted by owner name, owner Id, highest score
        first, latest click, then recipient and IER Id.
    """
    tables = as_tables(source)
    end = _as_of(as_of)
    start = end - _days(days, "days")
    flags = signal.classify_iers(tables.iers, tables.links)
    scores = signal.engagement_score(flags, tables.links, as_of=end).select(
        "recipient_id", "engagement_score", "score_explanation"
    )
    clicks = (
        _clicked_iers(tables)
        # Human clicks only: suspected automated clicks are in suspected_automated_clicks.
        .join(flags.filter("human_clicked").select(id=pl.col("ier_id")), on="id", how="semi")
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
        .join(scores, on="recipient_id", how="left")
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
            "engagement_score",
            "score_explanation",
        )
        .sort(
            [
                "owner_name",
                "owner_id",
                "engagement_score",
                "clicked_at",
                "recipient_name",
                "ier_id",
            ],
            descending=[False, False, True, True, False, False],
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
    """Delivered IERs past their wait, flagged ``is_silent`` (no human open or click, no
    unsubscribe): a machine open or a scanner's clicks are not a response.

    One plan for ``no_response`` and ``no_response_by_send``, so collecting both together reads
    the IERs once.
    """
    window = pl.col("date_sent") <= end - _days(wait_days, "wait_days")
    if max_age_days is not None:
        window &= pl.col("date_sent") >= end - _days(max_age_days, "max_age_days")
    flags = signal.classify_iers(tables.iers, tables.links).select(
        id="ier_id", human_opened="human_opened", human_clicked="human_clicked"
    )
    facts = _ier_facts(tables.iers.filter(window & ~BOUNCED)).join(
        flags, on="id", how="left", maintain_order="left"
    )
    return facts.select(
        pl.col("id").alias("ier_id"),
        "recipient_id",
        "send_id",
        pl.col("name").alias("email_name"),
        "subject_line",
        "date_sent",
        is_silent=~pl.col("human_opened").fill_null(pl.col("is_opened"))
        & ~pl.col("human_clicked").fill_null(pl.col("is_clicked"))
        & ~pl.col("is_unsubscribed"),
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
    before ``as_of``. Only human engagement counts: an open that looks like a machine's (Apple
    Mail Privacy Protection, a security gateway) or clicks that look automated
    (``ierkit.signal.classify_iers``) are no response. The wait applies per IER's
    ``date_sent``, so each daily batch of a triggered send becomes due on its own.

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
    is the link detail's ``last_clicked`` (the only per-link time Salesforce keeps). Only human
    clicks count: links of IERs whose clicks look automated (a security gateway following every
    link on delivery, ``ierkit.signal.classify_iers``) are left out; see
    ``suspected_automated_clicks``.

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
    human = signal.classify_iers(tables.iers, tables.links).filter("human_clicked")
    matched = matched.join(human.select(ier_id="ier_id"), on="ier_id", how="semi")
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


def suspected_automated_clicks(source: ReportTables | Org) -> pl.LazyFrame:
    """IERs whose clicks look like a security scanner's, with the reason in words.

    Never part of a rep's worklist: these are for the RevOps lead (which companies' gateways
    inflate click rates). The rules are ``ierkit.signal.classify_iers``'s.

    Returns:
        One row per IER: owner, recipient, ``ier_id``, ``send_id``, ``email_name``,
        ``date_sent``, ``signal_reason``; sorted by company, recipient name, send date, IER Id.
    """
    tables = as_tables(source)
    flags = signal.classify_iers(tables.iers, tables.links).filter("automated_clicks")
    names = _ier_facts(tables.iers).select(ier_id=pl.col("id"), email_name=pl.col("name"))
    return (
        flags.join(names, on="ier_id", how="left")
        .join(_recipients(tables), on="recipient_id", how="left")
        .with_columns(pl.col("owner_name").fill_null(NO_OWNER))
        .select(
            *_RECIPIENT_COLUMNS,
            "ier_id",
            "send_id",
            "email_name",
            "date_sent",
            "signal_reason",
        )
        .sort(["company", "recipient_name", "date_sent", "ier_id"], nulls_last=True)
    )
