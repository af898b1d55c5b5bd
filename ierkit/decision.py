"""The tracking decision: which programmes are worth their Individual Email Results.

Each tracked recipient of each send costs a record of data storage (plus one per link clicked).
The records pay off when someone acts on them: a rep who sees the open or click and follows up.
For each programme this module measures, from the org's history:

- *storage*: IERs and link details written, and MB a month (records a month x record size);
- *engagement*: open and click rates, over sent and over delivered (Salesforce divides by sent,
  Marketing Cloud by delivered; both are shown);
- *actionability*: the share of engaged IERs (opened or clicked) whose recipient got a Task within
  N days: a Task on the Contact or Lead (or, for a converted Lead, on the Contact it became),
  created after the send and at most N days after the engagement. Salesforce keeps one open time
  per IER (not documented as first or last) and no click time on the IER, so the window opens at
  the send rather than at an open time that may be the last one;
- *storage per follow-up*: MB of IERs and links written for each engagement that got one;

and recommends ``track``, ``skip`` or ``track with retention`` under ``DecisionThresholds``,
with the reason in a sentence. IERs sent less than the follow-up window plus a grace period
before the as-of instant are too new to judge: they count as storage but not in the rates, and a
programme with nothing older is marked ``too new``.

Programmes: by default the text of the email name before ``" - "`` (``ierkit.programmes``); or
the campaign name, the campaign type, or the send type (Email Send vs Triggered Send).

Everything takes ``ReportTables`` (LazyFrames of the canonical tables) or an ``Org``, and the
as-of instant; nothing reads the wall clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, Literal

import polars as pl

from ierkit import storage
from ierkit.errors import IerkitError
from ierkit.orgs.base import Org
from ierkit.programmes import PROGRAMME_SEPARATOR, programme_expr
from ierkit.reports import (
    BOUNCED,
    CLICKED,
    NO_CAMPAIGN,
    OPENED,
    ReportTables,
    as_tables,
    sends,
)

__all__ = [
    "GROUPINGS",
    "RECOMMENDATIONS",
    "DecisionError",
    "DecisionThresholds",
    "apply_decisions",
    "decide",
    "plan_from_history",
    "programme_measures",
]

GroupBy = Literal["email_name", "campaign", "campaign_type", "send_type"]
#: Ways to group sends into programmes.
GROUPINGS: Final = ("email_name", "campaign", "campaign_type", "send_type")

TRACK: Final = "track"
SKIP: Final = "skip"
TRACK_WITH_RETENTION: Final = "track with retention"
TOO_NEW: Final = "too new"
#: Every recommendation, in the order a table sorts them.
RECOMMENDATIONS: Final = (TRACK, TRACK_WITH_RETENTION, SKIP, TOO_NEW)

#: Default history looked at: about six months.
DEFAULT_HISTORY_DAYS: Final = 183
#: Days a rep has to follow up an engagement, by default.
DEFAULT_FOLLOWUP_DAYS: Final = 7
#: Extra days before a send is judged: the tracking sync fills in over hours to a day, and Tasks
#: are often logged a day late.
DEFAULT_GRACE_DAYS: Final = 2


_SECONDS_PER_MONTH: Final = storage.DAYS_PER_MONTH * 86_400


class DecisionError(IerkitError, ValueError):
    """A decision cannot be made as asked; the message names the parameter."""


@dataclass(frozen=True)
class DecisionThresholds:
    """Where the recommendation changes. All shares are fractions (0.05 = 5%).

    The defaults are starting points, not Salesforce figures: under 1 follow-up in 50
    engagements, reps hardly use the IERs (a newsletter that only Tasks logged by chance land
    on sits near 1%); 1 in 33 or more is a programme reps work. Tune them to the org.

    Attributes:
        min_actionability: Track outright when at least this share of engaged recipients got a
            follow-up (and storage is not too dear).
        skip_below: Skip when fewer than this share got one. Between ``skip_below`` and
            ``min_actionability``: track with retention (reps act on a few, within days).
        max_mb_per_followup: Above this many MB of IER storage per follow-up, an actionable
            programme is tracked with retention rather than kept forever.
        max_mb_per_month: Above this many MB written a month, likewise; None: no limit.
        retention_days: Window recommended with ``track with retention``.
    """

    min_actionability: float = 0.03
    skip_below: float = 0.02
    max_mb_per_followup: float = 1.0
    max_mb_per_month: float | None = None
    retention_days: int = 90

    def __post_init__(self) -> None:
        if not 0 <= self.skip_below <= self.min_actionability <= 1:
            raise DecisionError(
                "thresholds need 0 <= skip_below <= min_actionability <= 1, got "
                f"skip_below={self.skip_below}, min_actionability={self.min_actionability}"
            )
        if self.max_mb_per_followup <= 0 or self.retention_days <= 0:
            raise DecisionError(
                "max_mb_per_followup and retention_days must be positive, got "
                f"{self.max_mb_per_followup} and {self.retention_days}"
            )


# --- helpers ---------------------------------------------------------------------------------


def _utc(instant: dt.datetime) -> dt.datetime:
    if not isinstance(instant, dt.datetime):
        raise DecisionError(f"as_of must be a datetime (UTC), got {instant!r}")
    if instant.tzinfo is None:
        # A naive time inside ierkit is UTC by convention (see ierkit.schema).
        return instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(dt.UTC)


def _check_days(name: str, value: float) -> None:
    if value < 0:
        raise DecisionError(f"{name} must not be negative, got {value}")


def _programme_of(group_by: str, separator: str) -> pl.Expr:
    if group_by == "email_name":
        return programme_expr(pl.coalesce("name", "send_name"), separator=separator)
    if group_by == "campaign":
        return pl.col("campaign_name").fill_null(NO_CAMPAIGN).alias("programme")
    if group_by == "campaign_type":
        return pl.col("campaign_type").fill_null(NO_CAMPAIGN).alias("programme")
    if group_by == "send_type":
        return pl.col("send_type").fill_null("(unknown send)").alias("programme")
    raise DecisionError(f"group_by {group_by!r} is not one of {', '.join(GROUPINGS)}")


def _ier_rows(
    tables: ReportTables,
    *,
    as_of: dt.datetime,
    since: dt.datetime | None,
    group_by: str,
    separator: str,
) -> pl.LazyFrame:
    """IERs sent in (since, as_of] with their programme, send key, flags and link count."""
    link_counts = (
        tables.links.filter(pl.col("individual_email_result_id").is_not_null())
        .group_by("individual_email_result_id")
        .agg(links=pl.len().cast(pl.Int64), first_link_click=pl.col("last_clicked").min())
        .rename({"individual_email_result_id": "id"})
    )
    window = pl.col("date_sent") <= as_of
    if since is not None:
        window = window & (pl.col("date_sent") > since)
    return (
        tables.iers.filter(window)
        .with_columns(send_id=pl.coalesce("email_send_id", "triggered_send_id"))
        .join(
            sends(tables).select(
                "send_id", "send_type", "send_name", "campaign_name", "campaign_type"
            ),
            on="send_id",
            how="left",
        )
        .join(link_counts, on="id", how="left")
        .with_columns(
            _programme_of(group_by, separator),
            # A triggered send goes out in batches; a list send is batch 0. Older packages have
            # no batch Id: the day sent stands in.
            send_key=pl.concat_str(
                pl.col("send_id").fill_null("?"),
                pl.coalesce(
                    pl.col("batch_id").cast(pl.String),
                    pl.col("date_sent").dt.date().cast(pl.String),
                ),
                separator="/",
            ),
            recipient_id=pl.coalesce("contact_id", "lead_id"),
            links=pl.col("links").fill_null(0),
            is_bounced=BOUNCED,
            is_opened=OPENED,
            is_clicked=CLICKED,
        )
        .with_columns(
            is_engaged=pl.col("is_opened") | pl.col("is_clicked"),
            engaged_at=pl.min_horizontal("date_opened", "first_link_click").fill_null(
                pl.col("date_sent")
            ),
        )
    )


def _followed_up(
    engaged: pl.LazyFrame,
    tables: ReportTables,
    *,
    followup: dt.timedelta,
    task_filter: pl.Expr | None,
) -> pl.LazyFrame:
    """Ids of engaged IERs whose recipient got a Task in [date_sent, engaged_at + followup]."""
    converted = tables.leads.filter(pl.col("converted_contact_id").is_not_null()).select(
        lead_id=pl.col("id"), converted_contact_id=pl.col("converted_contact_id")
    )
    # A converted Lead's IERs stay on the Lead; the rep may log the Task on the new Contact.
    whos = (
        engaged.select("id", "lead_id", "recipient_id", "date_sent", "engaged_at")
        .join(converted, on="lead_id", how="left")
        .with_columns(
            who_id=pl.concat_list("recipient_id", "converted_contact_id").list.drop_nulls()
        )
        .explode("who_id")
        .filter(pl.col("who_id").is_not_null())
    )
    tasks = tables.tasks if task_filter is None else tables.tasks.filter(task_filter)
    return (
        whos.join(
            tasks.select("who_id", task_created=pl.col("created_date")),
            on="who_id",
            how="inner",
        )
        .filter(
            (pl.col("task_created") >= pl.col("date_sent"))
            & (pl.col("task_created") <= pl.col("engaged_at") + followup)
        )
        .select("id")
        .unique()
        .with_columns(followed_up=pl.lit(True))
    )


# --- measures --------------------------------------------------------------------------------


def programme_measures(
    source: ReportTables | Org,
    *,
    as_of: dt.datetime,
    group_by: GroupBy = "email_name",
    separator: str = PROGRAMME_SEPARATOR,
    history_days: float | None = DEFAULT_HISTORY_DAYS,
    followup_days: float = DEFAULT_FOLLOWUP_DAYS,
    grace_days: float = DEFAULT_GRACE_DAYS,
    task_filter: pl.Expr | None = None,
    record_kb: float = storage.RECORD_KB,
) -> pl.LazyFrame:
    """Storage, engagement and actionability per programme, from the org's history.

    Args:
        source: The canonical tables, or an org to read them from.
        as_of: The instant to judge at (UTC); IERs sent after it are ignored.
        group_by: ``email_name`` (text before ``separator``), ``campaign``, ``campaign_type``
            or ``send_type``.
        separator: Separator of the programme in the email name.
        history_days: Days of history before ``as_of`` to measure; None: all.
        followup_days: Days after the engagement a follow-up Task may come.
        grace_days: Extra days before a send is judged.
        task_filter: Only Tasks matching this expression count (e.g. a subject pattern); all
            Tasks when None.
        record_kb: Storage per IER and per link detail.

    Returns:
        One row per programme, sorted by programme: ``programme``, ``sends``, ``sends_judged``,
        ``first_sent``, ``last_sent``, ``iers``, ``links``, ``records``, ``mb``,
        ``months_observed``, ``records_per_month``, ``mb_per_month`` (all IERs in the history);
        over the IERs old enough to judge: ``sent``, ``delivered``, ``opened``, ``clicked``,
        ``engaged``, ``open_rate_over_sent``, ``open_rate_over_delivered``,
        ``click_rate_over_sent``, ``click_rate_over_delivered``, ``followed_up``,
        ``actionability`` (followed up / engaged), ``judged_mb`` and ``mb_per_followup``
        (null without follow-ups); and ``judge_from``: the day the newest send can be judged.
    """
    as_of = _utc(as_of)
    for name, value in (("followup_days", followup_days), ("grace_days", grace_days)):
        _check_days(name, value)
    if history_days is not None:
        _check_days("history_days", history_days)
    tables = as_tables(source)
    since = None if history_days is None else as_of - dt.timedelta(days=history_days)
    followup = dt.timedelta(days=followup_days)
    settle = followup + dt.timedelta(days=grace_days)
    rows = _ier_rows(
        tables, as_of=as_of, since=since, group_by=group_by, separator=separator
    ).with_columns(is_judged=pl.col("date_sent") <= as_of - settle)
    followed = _followed_up(
        rows.filter(pl.col("is_judged") & pl.col("is_engaged")),
        tables,
        followup=followup,
        task_filter=task_filter,
    )
    judged = pl.col("is_judged")
    record_mb = storage.storage_mb_expr(1 + pl.col("links"), record_kb=record_kb)
    observed_from = (
        pl.col("first_sent")
        if since is None
        else pl.max_horizontal(pl.col("first_sent"), pl.lit(since))
    )
    measures = (
        rows.join(followed, on="id", how="left")
        .with_columns(followed_up=pl.col("followed_up").fill_null(False) & judged)
        .group_by("programme")
        .agg(
            sends=pl.col("send_key").n_unique().cast(pl.Int64),
            sends_judged=pl.col("send_key").filter(judged).n_unique().cast(pl.Int64),
            first_sent=pl.col("date_sent").min(),
            last_sent=pl.col("date_sent").max(),
            iers=pl.len().cast(pl.Int64),
            links=pl.col("links").sum().cast(pl.Int64),
            sent=judged.sum().cast(pl.Int64),
            bounced=(judged & pl.col("is_bounced")).sum().cast(pl.Int64),
            opened=(judged & pl.col("is_opened")).sum().cast(pl.Int64),
            clicked=(judged & pl.col("is_clicked")).sum().cast(pl.Int64),
            engaged=(judged & pl.col("is_engaged")).sum().cast(pl.Int64),
            followed_up=pl.col("followed_up").sum().cast(pl.Int64),
            judged_mb=record_mb.filter(judged).sum(),
        )
    )

    def rate(numerator: str, denominator: str) -> pl.Expr:
        return (
            pl.when(pl.col(denominator) > 0)
            .then(pl.col(numerator) / pl.col(denominator))
            .otherwise(None)
        )

    return (
        measures.with_columns(
            records=pl.col("iers") + pl.col("links"),
            delivered=pl.col("sent") - pl.col("bounced"),
            # At least one month, so a first send yesterday is not read as a month's rate x 30.
            months_observed=pl.max_horizontal(
                (pl.lit(as_of) - observed_from).dt.total_seconds() / _SECONDS_PER_MONTH,
                pl.lit(1.0),
            ),
            judge_from=(pl.col("last_sent") + settle).dt.date(),
        )
        .with_columns(
            mb=storage.storage_mb_expr(pl.col("records"), record_kb=record_kb),
            records_per_month=pl.col("records") / pl.col("months_observed"),
        )
        .with_columns(
            mb_per_month=storage.storage_mb_expr(pl.col("records_per_month"), record_kb=record_kb),
            open_rate_over_sent=rate("opened", "sent"),
            open_rate_over_delivered=rate("opened", "delivered"),
            click_rate_over_sent=rate("clicked", "sent"),
            click_rate_over_delivered=rate("clicked", "delivered"),
            actionability=rate("followed_up", "engaged"),
            mb_per_followup=rate("judged_mb", "followed_up"),
        )
        .select(
            "programme",
            "sends",
            "sends_judged",
            "first_sent",
            "last_sent",
            "iers",
            "links",
            "records",
            "mb",
            "months_observed",
            "records_per_month",
            "mb_per_month",
            "sent",
            "delivered",
            "opened",
            "clicked",
            "engaged",
            "open_rate_over_sent",
            "open_rate_over_delivered",
            "click_rate_over_sent",
            "click_rate_over_delivered",
            "followed_up",
            "actionability",
            "judged_mb",
            "mb_per_followup",
            "judge_from",
        )
        .sort("programme")
    )


# --- text ------------------------------------------------------------------------------------


def _int_text(expr: pl.Expr) -> pl.Expr:
    """A non-negative number as an integer with thousands separators: 12345.6 -> "12,346"."""
    n = expr.round(0).cast(pl.Int64)

    def group(k: int) -> pl.Expr:
        return ((n // 10 ** (3 * k)) % 1000).cast(pl.String).str.zfill(3)

    out = pl.when(n < 1000).then(n.cast(pl.String))
    for k in range(1, 6):
        parts = [(n // 10 ** (3 * k)).cast(pl.String)] + [group(j) for j in range(k - 1, -1, -1)]
        out = out.when(n < 10 ** (3 * (k + 1))).then(pl.concat_str(parts, separator=","))
    return out.otherwise(n.cast(pl.String))


def _pct_text(expr: pl.Expr) -> pl.Expr:
    """A share as a percentage with one decimal: 0.0081 -> "0.8%"."""
    return pl.format("{}%", (expr * 100).round(1))


def _mb_text(expr: pl.Expr) -> pl.Expr:
    """MB readable at any size: "1,234 MB", "12.3 MB", "0.012 MB"."""
    text = (
        pl.when(expr >= 100)
        .then(_int_text(expr))
        .when(expr >= 1)
        .then(expr.round(1).cast(pl.String))
        .otherwise(expr.round_sig_figs(2).cast(pl.String))
    )
    return pl.format("{} MB", text)


def _days_text(days: float) -> str:
    return f"{days:g} day" if days == 1 else f"{days:g} days"


# --- the decision ----------------------------------------------------------------------------


def decide(
    source: ReportTables | Org,
    *,
    as_of: dt.datetime,
    thresholds: DecisionThresholds = DecisionThresholds(),
    group_by: GroupBy = "email_name",
    separator: str = PROGRAMME_SEPARATOR,
    history_days: float | None = DEFAULT_HISTORY_DAYS,
    followup_days: float = DEFAULT_FOLLOWUP_DAYS,
    grace_days: float = DEFAULT_GRACE_DAYS,
    task_filter: pl.Expr | None = None,
    record_kb: float = storage.RECORD_KB,
) -> pl.LazyFrame:
    """Recommend track, skip or track with retention for each programme, with the reason.

    Rules, in order: no IER old enough to judge: ``too new``; actionability under
    ``skip_below``: ``skip``; under ``min_actionability``: ``track with retention``; storage
    per follow-up over ``max_mb_per_followup`` or MB a month over ``max_mb_per_month``:
    ``track with retention``; otherwise ``track``.

    Args:
        source: The canonical tables, or an org to read them from.
        as_of: The instant to judge at (UTC).
        thresholds: Where the recommendation changes.
        group_by: How sends form programmes (see ``programme_measures``).
        separator: Separator of the programme in the email name.
        history_days: Days of history to measure; None: all.
        followup_days: Days after the engagement a follow-up Task may come.
        grace_days: Extra days before a send is judged.
        task_filter: Only Tasks matching this expression count; all when None.
        record_kb: Storage per IER and per link detail.

    Returns:
        ``programme_measures`` with ``recommendation`` (one of ``RECOMMENDATIONS``),
        ``retention_days`` (Int64, set for ``track with retention``) and ``reason`` (a
        sentence with the numbers) after ``programme``; sorted by programme.
    """
    t = thresholds
    measures = programme_measures(
        source,
        as_of=as_of,
        group_by=group_by,
        separator=separator,
        history_days=history_days,
        followup_days=followup_days,
        grace_days=grace_days,
        task_filter=task_filter,
        record_kb=record_kb,
    )
    act = pl.col("actionability").fill_null(0.0)
    dear_followup = pl.col("mb_per_followup") > t.max_mb_per_followup
    big_month = (
        pl.lit(False) if t.max_mb_per_month is None else pl.col("mb_per_month") > t.max_mb_per_month
    )
    recommendation = (
        pl.when(pl.col("sent") == 0)
        .then(pl.lit(TOO_NEW))
        .when(act < t.skip_below)
        .then(pl.lit(SKIP))
        .when(act < t.min_actionability)
        .then(pl.lit(TRACK_WITH_RETENTION))
        .when(dear_followup | big_month)
        .then(pl.lit(TRACK_WITH_RETENTION))
        .otherwise(pl.lit(TRACK))
    )
    window = _days_text(followup_days)
    engaged_text = _int_text(pl.col("engaged"))
    share = pl.format(
        "{} of {} engaged recipients got a follow-up within {}",
        _pct_text(act),
        engaged_text,
        pl.lit(window),
    )
    per_followup = _mb_text(pl.col("mb_per_followup"))
    per_month = _mb_text(pl.col("mb_per_month"))
    keep = f"Track with retention (keep {_days_text(t.retention_days)})"
    low_share = pl.format(
        "{}: {} (between {} and {}): reps act on a few, and only within days; each follow-up "
        "costs {} of IER storage.",
        pl.lit(keep),
        share,
        _pct_text(pl.lit(t.skip_below)),
        _pct_text(pl.lit(t.min_actionability)),
        per_followup,
    )
    dear = pl.format(
        "{}: {}, but each follow-up costs {} of IER storage (limit {}) and the programme writes "
        "{} a month.",
        pl.lit(keep),
        share,
        per_followup,
        _mb_text(pl.lit(t.max_mb_per_followup)),
        per_month,
    )
    reason = (
        pl.when(pl.col("recommendation") == TOO_NEW)
        .then(
            pl.format(
                "Too new: its {} send(s) went out less than {} plus {} of grace before the as-of "
                "date; judge it from {}.",
                _int_text(pl.col("sends")),
                pl.lit(window),
                pl.lit(_days_text(grace_days)),
                pl.col("judge_from").cast(pl.String),
            )
        )
        .when((pl.col("recommendation") == SKIP) & (pl.col("engaged") == 0))
        .then(
            pl.format(
                "Skip: none of {} recipients engaged, and the programme writes {} of IER storage "
                "a month.",
                _int_text(pl.col("sent")),
                per_month,
            )
        )
        .when((pl.col("recommendation") == SKIP) & (pl.col("followed_up") == 0))
        .then(
            pl.format(
                "Skip: none of {} engaged recipients got a follow-up within {}, and the "
                "programme writes {} of IER storage a month.",
                engaged_text,
                pl.lit(window),
                per_month,
            )
        )
        .when(pl.col("recommendation") == SKIP)
        .then(
            pl.format(
                "Skip: only {} (under {}), so reps hardly use these IERs; each follow-up costs "
                "{} of IER storage and the programme writes {} a month.",
                share,
                _pct_text(pl.lit(t.skip_below)),
                per_followup,
                per_month,
            )
        )
        .when((pl.col("recommendation") == TRACK_WITH_RETENTION) & (act < t.min_actionability))
        .then(low_share)
        .when(pl.col("recommendation") == TRACK_WITH_RETENTION)
        .then(dear)
        .otherwise(
            pl.format(
                "Track: {}, at {} of IER storage per follow-up ({} a month).",
                share,
                per_followup,
                per_month,
            )
        )
    )
    # Sends too new to judge inside a programme that can be judged: say they were left out.
    unjudged = pl.col("sends") - pl.col("sends_judged")
    not_yet = (
        pl.when((pl.col("recommendation") != TOO_NEW) & (unjudged > 0))
        .then(
            pl.format(
                " {} newer send(s) too new to judge are left out of the rates.", _int_text(unjudged)
            )
        )
        .otherwise(pl.lit(""))
    )
    return (
        measures.with_columns(recommendation=recommendation)
        .with_columns(
            retention_days=pl.when(pl.col("recommendation") == TRACK_WITH_RETENTION)
            .then(pl.lit(t.retention_days, pl.Int64))
            .otherwise(pl.lit(None, pl.Int64)),
            reason=pl.concat_str(reason, not_yet),
        )
        .select(
            "programme",
            "recommendation",
            "retention_days",
            "reason",
            pl.exclude("programme", "recommendation", "retention_days", "reason"),
        )
        .sort("programme")
    )


# --- send plans ------------------------------------------------------------------------------


def plan_from_history(
    source: ReportTables | Org,
    *,
    as_of: dt.datetime,
    months: float = 3,
    group_by: GroupBy = "email_name",
    separator: str = PROGRAMME_SEPARATOR,
    record_kb: float = storage.RECORD_KB,
) -> pl.LazyFrame:
    """A send plan (``ierkit.storage.PLAN_COLUMNS``) that repeats the last ``months`` of sends.

    Per programme: ``sends_per_month`` = sends (send and batch) in the last ``months`` months /
    ``months``; ``list_size`` = IERs per send; ``links_per_recipient`` = link details per IER;
    ``tracked`` True; ``retention_days`` null; ``tracking_mb_now`` = MB of the programme's IERs
    and link details in the org today (all history up to ``as_of``).

    Args:
        source: The canonical tables, or an org to read them from.
        as_of: The instant the plan starts from (UTC).
        months: Months of history the cadence and list size come from.
        group_by: How sends form programmes (see ``programme_measures``).
        separator: Separator of the programme in the email name.
        record_kb: Storage per IER and per link detail.

    Returns:
        The plan, one row per programme seen in the last ``months`` months, sorted by programme.
    """
    as_of = _utc(as_of)
    if months <= 0:
        raise DecisionError(f"months must be positive, got {months}")
    tables = as_tables(source)
    since = as_of - dt.timedelta(days=months * storage.DAYS_PER_MONTH)
    rows = _ier_rows(tables, as_of=as_of, since=None, group_by=group_by, separator=separator)
    recent = pl.col("date_sent") > since
    return (
        rows.group_by("programme")
        .agg(
            sends=pl.col("send_key").filter(recent).n_unique(),
            iers=recent.sum(),
            links=pl.col("links").filter(recent).sum(),
            records_now=pl.len() + pl.col("links").sum(),
        )
        .filter(pl.col("iers") > 0)
        .select(
            "programme",
            list_size=(pl.col("iers") / pl.col("sends")).cast(pl.Float64),
            sends_per_month=(pl.col("sends") / months).cast(pl.Float64),
            tracked=pl.lit(True),
            links_per_recipient=(pl.col("links") / pl.col("iers")).cast(pl.Float64),
            retention_days=pl.lit(None, pl.Float64),
            tracking_mb_now=storage.storage_mb_expr(
                pl.col("records_now").cast(pl.Float64), record_kb=record_kb
            ),
        )
        .sort("programme")
    )


def apply_decisions(plan: pl.LazyFrame | pl.DataFrame, decisions: pl.LazyFrame) -> pl.LazyFrame:
    """The plan as it would be if the decisions were followed.

    ``skip`` turns tracking off; ``track with retention`` sets the plan's ``retention_days``;
    ``track`` and ``too new`` leave the row as it is. Programmes are matched by name.

    Args:
        plan: A send plan (``ierkit.storage.PLAN_COLUMNS``).
        decisions: ``decide`` output (``programme``, ``recommendation``, ``retention_days``).

    Returns:
        The plan, sorted by programme.
    """
    chosen = decisions.select(
        "programme", "recommendation", decided_retention=pl.col("retention_days").cast(pl.Float64)
    )
    return (
        storage.normalize_plan(plan)
        .join(chosen, on="programme", how="left")
        .with_columns(
            tracked=pl.col("tracked") & (pl.col("recommendation").fill_null("") != SKIP),
            retention_days=pl.coalesce("decided_retention", "retention_days"),
        )
        .select(storage.PLAN_COLUMNS.names())
        .sort("programme")
    )
