"""The tracking decision: which programmes are worth their Individual Email Results.

Each tracked recipient of each send costs a record of data storage (plus one per link clicked).
The records pay off when someone acts on them: a rep who sees the open or click and follows up.
For each programme this module measures, from the org's history:

- *storage*: IERs and link details written, and MB a month (records a month x record size);
- *engagement*: open and click rates, over sent and over delivered (Salesforce divides by sent,
  Marketing Cloud by delivered; both are shown);
- *human engagement*: opens and clicks without suspected machine opens and automated clicks
  (``ierkit.signal.classify_iers``: security-gateway scanners, Apple Mail Privacy Protection);
  rates are shown both ways;
- *actionability*: the share of human-engaged IERs (opened or clicked by a person, not a scanner
  or a privacy proxy) whose recipient got a Task within
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
as-of instant; nothing reads the wall clock. The measuring options travel as one
``MeasureOptions``. ``recommend`` applies the thresholds to measures already computed, so a
widget can move the thresholds without measuring again; ``decide`` measures and recommends.

The send plan that repeats the org's history, and the plan with the decisions applied, are
storage-forecast inputs: ``ierkit.storage.plan_from_history`` and ``apply_decisions``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import polars as pl
from polars.expr.whenthen import ChainedThen, Then

from ierkit import clock, signal, storage
from ierkit._exprs import rate
from ierkit._tracking import (
    GROUPINGS,
    RECOMMENDATIONS,
    SKIP,
    TOO_NEW,
    TRACK,
    TRACK_WITH_RETENTION,
    GroupBy,
    ier_rows,
    unknown_grouping,
)
from ierkit.errors import IerkitError
from ierkit.orgs.base import Org
from ierkit.programmes import PROGRAMME_SEPARATOR
from ierkit.reports import ReportTables, as_tables

__all__ = [
    "GROUPINGS",
    "RECOMMENDATIONS",
    "DecisionError",
    "DecisionThresholds",
    "GroupBy",
    "MeasureOptions",
    "decide",
    "programme_measures",
    "recommend",
]

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


@dataclass(frozen=True, eq=False)
class MeasureOptions:
    """How programmes are formed and measured.

    One object for ``programme_measures``, ``recommend`` and ``decide``. Compared by identity:
    a polars expression (``task_filter``) has no value equality.

    Attributes:
        group_by: ``email_name`` (text before ``separator``), ``campaign``, ``campaign_type``
            or ``send_type``.
        separator: Separator of the programme in the email name.
        history_days: Days of history before the as-of instant to measure; None: all.
        followup_days: Days after the engagement a follow-up Task may come.
        grace_days: Extra days before a send is judged.
        task_filter: Only Tasks matching this expression count (e.g. a subject pattern); all
            Tasks when None.
        record_kb: Storage per IER and per link detail.

    Raises:
        DecisionError: For an unknown ``group_by`` or a negative number of days.
    """

    group_by: GroupBy = "email_name"
    separator: str = PROGRAMME_SEPARATOR
    history_days: float | None = DEFAULT_HISTORY_DAYS
    followup_days: float = DEFAULT_FOLLOWUP_DAYS
    grace_days: float = DEFAULT_GRACE_DAYS
    task_filter: pl.Expr | None = None
    record_kb: float = storage.RECORD_KB

    def __post_init__(self) -> None:
        days = {"followup_days": self.followup_days, "grace_days": self.grace_days}
        if self.history_days is not None:
            days["history_days"] = self.history_days
        for name, value in days.items():
            if value < 0:
                raise DecisionError(f"{name} must not be negative, got {value}")
        problem = unknown_grouping(self.group_by)
        if problem is not None:
            raise DecisionError(problem)

    @property
    def followup(self) -> dt.timedelta:
        """The follow-up window."""
        return dt.timedelta(days=self.followup_days)

    @property
    def settle(self) -> dt.timedelta:
        """Time from a send until it can be judged: the follow-up window plus the grace days."""
        return self.followup + dt.timedelta(days=self.grace_days)


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


def _with_human_engagement(rows: pl.LazyFrame, tables: ReportTables) -> pl.LazyFrame:
    """``rows`` (``ier_rows``) with ``is_human_opened``/``_clicked``/``_engaged`` beside the facts.

    An IER the signal cannot judge (no evidence either way) stays human; ``engaged_at`` moves to
    the first human engagement, so a scanner's sweep on delivery does not start the follow-up
    window.
    """
    flags = signal.classify_iers(tables.iers, tables.links).select(
        id="ier_id",
        machine=pl.col("machine_open"),
        is_human_opened=pl.col("human_opened"),
        is_human_clicked=pl.col("human_clicked"),
    )
    return (
        rows.join(flags, on="id", how="left", maintain_order="left")
        .with_columns(
            is_human_opened=pl.col("is_human_opened").fill_null(pl.col("is_opened")),
            is_human_clicked=pl.col("is_human_clicked").fill_null(pl.col("is_clicked")),
        )
        .with_columns(
            is_human_engaged=pl.col("is_human_opened") | pl.col("is_human_clicked"),
            engaged_at=pl.min_horizontal(
                pl.when(~pl.col("machine").fill_null(False)).then(pl.col("date_opened")),
                pl.when(pl.col("is_human_clicked")).then(pl.col("first_link_click")),
            ).fill_null(pl.col("engaged_at")),
        )
        .drop("machine")
    )


def programme_measures(
    source: ReportTables | Org,
    *,
    as_of: dt.datetime,
    options: MeasureOptions = MeasureOptions(),
) -> pl.LazyFrame:
    """Storage, engagement and actionability per programme, from the org's history.

    Args:
        source: The canonical tables, or an org to read them from.
        as_of: The instant to judge at (UTC; naive means UTC); IERs sent after it are ignored.
        options: How programmes are formed and measured (``MeasureOptions``).

    Returns:
        One row per programme, sorted by programme: ``programme``, ``sends``, ``sends_judged``,
        ``first_sent``, ``last_sent``, ``iers``, ``links``, ``records``, ``mb``,
        ``months_observed``, ``records_per_month``, ``mb_per_month`` (all IERs in the history);
        over the IERs old enough to judge: ``sent``, ``delivered``, ``opened``, ``clicked``,
        ``engaged``, ``open_rate_over_sent``, ``open_rate_over_delivered``,
        ``click_rate_over_sent``, ``click_rate_over_delivered``, ``human_opened``,
        ``human_clicked``, ``human_engaged`` (without suspected machine opens and automated
        clicks, ``ierkit.signal``), ``open_rate_without_machine_opens`` and
        ``click_rate_without_automated_clicks`` (over sent), ``followed_up``,
        ``actionability`` (followed up / human engaged), ``judged_mb`` and ``mb_per_followup``
        (null without follow-ups); and ``judge_from``: the day the newest send can be judged.
    """
    as_of = clock.to_utc(as_of)
    tables = as_tables(source)
    history_days = options.history_days
    since = None if history_days is None else as_of - dt.timedelta(days=history_days)
    settle = options.settle
    record_kb = options.record_kb
    rows = ier_rows(
        tables, as_of=as_of, since=since, group_by=options.group_by, separator=options.separator
    ).with_columns(is_judged=pl.col("date_sent") <= as_of - settle)
    rows = _with_human_engagement(rows, tables)
    followed = _followed_up(
        rows.filter(pl.col("is_judged") & pl.col("is_human_engaged")),
        tables,
        followup=options.followup,
        task_filter=options.task_filter,
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
            human_opened=(judged & pl.col("is_human_opened")).sum().cast(pl.Int64),
            human_clicked=(judged & pl.col("is_human_clicked")).sum().cast(pl.Int64),
            human_engaged=(judged & pl.col("is_human_engaged")).sum().cast(pl.Int64),
            followed_up=pl.col("followed_up").sum().cast(pl.Int64),
            judged_mb=record_mb.filter(judged).sum(),
        )
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
            open_rate_without_machine_opens=rate("human_opened", "sent"),
            click_rate_without_automated_clicks=rate("human_clicked", "sent"),
            actionability=rate("followed_up", "human_engaged"),
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
            "human_opened",
            "human_clicked",
            "human_engaged",
            "open_rate_without_machine_opens",
            "click_rate_without_automated_clicks",
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

    def thousands(k: int) -> int:
        return int(1000**k)

    def group(k: int) -> pl.Expr:
        return ((n // thousands(k)) % 1000).cast(pl.String).str.zfill(3)

    out: Then | ChainedThen = pl.when(n < 1000).then(n.cast(pl.String))
    for k in range(1, 6):
        parts = [(n // thousands(k)).cast(pl.String)] + [group(j) for j in range(k - 1, -1, -1)]
        out = out.when(n < thousands(k + 1)).then(pl.concat_str(parts, separator=","))
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


def recommend(
    measures: pl.LazyFrame | pl.DataFrame,
    *,
    thresholds: DecisionThresholds = DecisionThresholds(),
    options: MeasureOptions = MeasureOptions(),
) -> pl.LazyFrame:
    """Recommend track, skip or track with retention for each measured programme, with the reason.

    Rules, in order: no IER old enough to judge: ``too new``; actionability under
    ``skip_below``: ``skip``; under ``min_actionability``: ``track with retention``; storage
    per follow-up over ``max_mb_per_followup`` or MB a month over ``max_mb_per_month``:
    ``track with retention``; otherwise ``track``.

    The measures are not recomputed: measure once with ``programme_measures`` (collected, or
    lazy), then call this for each set of thresholds.

    Args:
        measures: ``programme_measures`` output.
        thresholds: Where the recommendation changes.
        options: The options the measures were computed with; the reasons quote its
            ``followup_days`` and ``grace_days``.

    Returns:
        The measures with ``recommendation`` (one of ``RECOMMENDATIONS``), ``retention_days``
        (Int64, set for ``track with retention``) and ``reason`` (a sentence with the numbers)
        after ``programme``; sorted by programme.
    """
    t = thresholds
    followup_days = options.followup_days
    grace_days = options.grace_days
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
        measures.lazy()
        .with_columns(recommendation=recommendation)
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


def decide(
    source: ReportTables | Org,
    *,
    as_of: dt.datetime,
    thresholds: DecisionThresholds = DecisionThresholds(),
    options: MeasureOptions = MeasureOptions(),
) -> pl.LazyFrame:
    """Measure each programme and recommend track, skip or track with retention, with the reason.

    ``recommend(programme_measures(source, as_of=as_of, options=options), thresholds=thresholds,
    options=options)``; see ``recommend`` for the rules.

    Args:
        source: The canonical tables, or an org to read them from.
        as_of: The instant to judge at (UTC; naive means UTC).
        thresholds: Where the recommendation changes.
        options: How programmes are formed and measured.

    Returns:
        ``programme_measures`` with ``recommendation``, ``retention_days`` and ``reason`` after
        ``programme``; sorted by programme.
    """
    measures = programme_measures(source, as_of=as_of, options=options)
    return recommend(measures, thresholds=thresholds, options=options)
