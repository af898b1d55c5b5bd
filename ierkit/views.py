"""What the notebooks compute beyond the library's reports: small derived tables and lines.

Every rule a notebook shows lives here with a test, so a notebook cell only calls and shows.
Each function names the module it belongs in once the restructuring settles (the notebooks
are the only callers today): ``reports`` for the engagement views, ``storage`` for storage in
use, ``matching`` (sync health) for the coverage lines, ``decision`` for the decision table.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import polars as pl

from ierkit import reports, storage
from ierkit.session import Session

#: The owner picker's "every owner" entry (an empty owner means the same).
ALL = "(all)"
#: Days of link interest up to the report's as-of instant (``reports.all_reports``' default).
LINK_INTEREST_DAYS = 30


# --- engagement (belongs in ierkit.reports) --------------------------------------------------


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


# --- storage (belongs in ierkit.storage) -----------------------------------------------------


@dataclass(frozen=True)
class StorageInUse:
    """The org's storage in use, counting data ierkit cannot see when the use is estimated.

    Attributes:
        allocation: The allocation and use as ``storage.org_allocation`` gives them.
        other_data_mb: Storage of objects ierkit does not read; counted only for an estimated
            use (a reported use already includes every object).
    """

    allocation: storage.StorageAllocation
    other_data_mb: float = 0.0

    @property
    def used_mb(self) -> float:
        """Storage in use, MB."""
        extra = self.other_data_mb if self.allocation.source == "estimated" else 0.0
        return self.allocation.used_mb + extra

    @property
    def used_share(self) -> float:
        """Share of the allocation in use."""
        max_mb = self.allocation.max_mb
        return self.used_mb / max_mb if max_mb else math.inf

    def __str__(self) -> str:
        a = self.allocation
        return (
            f"Allocation {a.max_mb:,.0f} MB ({a.source}); in use {self.used_mb:,.0f} MB "
            f"({self.used_share:.1%}), of which the tables below {a.used_mb:,.0f} MB."
        )


def plan_with_programme(
    plan: pl.DataFrame | pl.LazyFrame,
    *,
    programme: str,
    list_size: float,
    sends_per_month: float,
) -> pl.DataFrame:
    """A send plan with one more programme (a what-if), both in ``storage.PLAN_COLUMNS``."""
    extra = pl.DataFrame(
        {
            "programme": [programme],
            "list_size": [float(list_size)],
            "sends_per_month": [float(sends_per_month)],
        }
    )
    return pl.concat(
        [storage.normalize_plan(plan).collect(), storage.normalize_plan(extra).collect()]
    )


# --- sync health (belongs in ierkit.matching / sync_health) ----------------------------------


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


# --- tracking decision (belongs in ierkit.decision) ------------------------------------------


def decision_table(decisions: pl.DataFrame) -> pl.DataFrame:
    """The columns of a decision a reader needs: programme, recommendation and why."""
    return decisions.select("programme", "recommendation", "reason").sort("programme")
