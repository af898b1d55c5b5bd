"""The views the notebooks show: small tables and one-line summaries built on the library.

A notebook cell only calls and shows; every table or sentence it shows beyond a library result
is built here, with a test. The rules themselves stay in their modules (``reports``,
``sync_health``, ``decision``, ``storage``): a view selects, joins, orders and words them.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ierkit import reports
from ierkit.session import Session

#: The owner picker's "every owner" entry (an empty owner means the same).
ALL = "(all)"
#: Days of link interest up to the report's as-of instant (``reports.all_reports``' default).
LINK_INTEREST_DAYS = 30


# --- engagement ----------------------------------------------------------------------------------


def owner_filter(frame: pl.LazyFrame, owner: str | None) -> pl.LazyFrame:
    """Keep rows of one owner (by ``owner_name``); every row when ``owner`` is empty."""
    if not owner or owner == ALL:
        return frame
    return frame.filter(pl.col("owner_name") == owner)


def worklist_with_campaign(session: Session, *, window_days: int) -> pl.LazyFrame:
    """The engagement worklist of a session with each send's campaign name."""
    return (
        reports.engagement_worklist(session.tables, as_of=session.day, days=window_days)
        .join(
            reports.sends(session.tables).select("send_id", "campaign_name"),
            on="send_id",
            how="left",
        )
        .with_columns(pl.col("campaign_name").fill_null(reports.NO_CAMPAIGN))
        .sort(
            "owner_name", "owner_id", "clicked_at", "ier_id", descending=[False, False, True, False]
        )
    )


def previous_worklist(session: Session, *, window_days: int, owner: str | None) -> pl.DataFrame:
    """The worklist of the window before the report's (for the headline's change)."""
    return owner_filter(
        reports.engagement_worklist(
            session.tables,
            as_of=session.as_of - dt.timedelta(days=window_days),
            days=window_days,
        ),
        owner,
    ).collect()


def worklist_summary(worklist: pl.DataFrame, *, window_days: int, day: dt.date) -> str:
    """One line: how many recipients clicked in the window, how many wait for a follow-up."""
    waiting = worklist.filter(~pl.col("followed_up")).height
    return (
        f"Worklist: {worklist.height:,} recipients clicked in the {window_days} days to {day}; "
        f"{waiting:,} not yet followed up."
    )


def worklist_by_owner(worklist: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Recipients per owner and how many of them nobody followed up, busiest owner first."""
    return (
        worklist.lazy()
        .group_by("owner_name")
        .agg(recipients=pl.len(), not_followed_up=(~pl.col("followed_up")).sum())
        .sort("recipients", "owner_name", descending=[True, False])
    )


def recent_link_interest(
    tables: reports.ReportTables,
    *,
    pattern: str,
    as_of: dt.datetime,
    owner: str | None = None,
    days: int = LINK_INTEREST_DAYS,
) -> pl.LazyFrame:
    """Clicks on links matching ``pattern`` in the ``days`` days up to ``as_of`` (one owner's).

    The window is ``[as_of - days, as_of)``: exactly ``days`` days, as ``reports.all_reports``
    counts it.
    """
    since = as_of - dt.timedelta(days=days)
    return owner_filter(
        reports.link_interest(tables, pattern=pattern, since=since, until=as_of), owner
    )


def link_interest_summary(
    interest: pl.DataFrame, *, pattern: str, day: dt.date, days: int = LINK_INTEREST_DAYS
) -> str:
    """One line: how many clicks on matching links the window holds."""
    return f"{interest.height:,} clicks on links matching {pattern!r} in the {days} days to {day}."


# --- sync health ---------------------------------------------------------------------------------


def coverage_summary(coverage: pl.DataFrame) -> str:
    """One line: the sends, and how many have each status (most common first)."""
    counts = coverage.group_by("status").len().sort("len", "status", descending=[True, False])
    return f"{coverage.height:,} sends: " + ", ".join(
        f"{n:,} {status}" for status, n in counts.rows()
    )


def coverage_table(coverage: pl.DataFrame) -> pl.DataFrame:
    """The coverage per send as shown: the coverage share rounded to four places."""
    return coverage.with_columns(pl.col("coverage").round(4))


def fixable_summary(fixable: pl.DataFrame) -> str:
    """One line: Subscriber Keys to fix, and how many have a repaired key."""
    repaired = fixable.filter(pl.col("repaired_key").is_not_null()).height
    return f"{fixable.height:,} Subscriber Keys to fix; {repaired:,} with a repaired key."


# --- tracking decision ---------------------------------------------------------------------------


def decision_table(decisions: pl.DataFrame) -> pl.DataFrame:
    """The columns of a decision a reader needs: programme, recommendation and why."""
    return decisions.select("programme", "recommendation", "reason").sort("programme")


# --- tables for people ---------------------------------------------------------------------------

#: The worklist as a rep reads it: who (linked), where they work, what and when they clicked,
#: whether someone followed up. Id columns stay for the record links and are not shown.
WORKLIST_COLUMNS = (
    "owner_name",
    "owner_id",
    "recipient_name",
    "recipient_id",
    "recipient_type",
    "company",
    "engagement_score",
    "score_explanation",
    "email_name",
    "send_id",
    "clicked_at",
    "links",
    "followed_up",
)

#: The columns of a campaign, owner or segment summary that fit a page: counts, then the open
#: and click rates over sent (Salesforce's way) and over delivered (Marketing Cloud's way).
RATE_COLUMNS = (
    "sent",
    "delivered",
    "unique_opens",
    "unique_clicks",
    "open_rate_over_sent",
    "open_rate_over_delivered",
    "click_rate_over_sent",
    "click_rate_over_delivered",
    "open_rate_without_machine_opens",
    "click_rate_without_automated_clicks",
    "unsubscribes",
)

#: A decision's measures that explain its recommendation.
DECISION_MEASURES = (
    "programme",
    "recommendation",
    "sends",
    "iers",
    "mb_per_month",
    "human_engaged",
    "followed_up",
    "actionability",
    "mb_per_followup",
    "click_rate_over_delivered",
)


def worklist_for_people(worklist: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """The worklist's columns a rep or manager reads, latest click first within each owner."""
    return worklist.lazy().select(WORKLIST_COLUMNS)


def automated_by_company(clicks: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Suspected automated clicks (``reports.suspected_automated_clicks``) per company.

    Which recipients' security gateways click every link: a row per company with the people,
    the emails and the IERs involved, most IERs first.
    """
    return (
        clicks.lazy()
        .group_by(pl.col("company").fill_null("(no company)"))
        .agg(
            recipients=pl.col("recipient_id").n_unique(),
            emails=pl.col("send_id").n_unique(),
            iers=pl.len(),
        )
        .sort(["iers", "company"], descending=[True, False])
    )


def rates_table(summary: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """A campaign, owner or segment summary narrowed to its names, counts and main rates."""
    frame = summary.lazy()
    names = [
        c for c in frame.collect_schema().names() if c not in RATE_COLUMNS and "_rate" not in c
    ]
    return frame.select(*names, *RATE_COLUMNS)


def decision_measures(decisions: pl.DataFrame) -> pl.DataFrame:
    """The measures behind each recommendation, by programme."""
    return decisions.select(DECISION_MEASURES).sort("programme")


def coverage_for_people(coverage: pl.DataFrame) -> pl.DataFrame:
    """Coverage per send without the extract's job number and the rarely needed columns."""
    return coverage.select(
        "email_name",
        "date_sent",
        "sent",
        "iers",
        "missing",
        "coverage",
        "status",
        "main_reason",
        "expected_completion",
    )
