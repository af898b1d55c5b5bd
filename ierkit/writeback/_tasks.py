"""The optional Tasks of a write-back: one per person per day a person clicked.

A Task ("Clicked Pricing in November Newsletter") puts a human click on the person's activity
timeline, where it stays after the IER is deleted. Off by default (``--tasks``): a Task costs
storage too. Only clicks in the 90 days before the summary's instant get one, so a first run
does not file a person's whole history; the Task is dated on the day of the click (UTC), owned
by the person's owner and marked Completed. A Task the org already holds for that person, day
and subject is never created again, so a rerun creates none.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import polars as pl

from ierkit import clock, schema, signal
from ierkit.orgs.base import Org
from ierkit.writeback._summary import CLICK_WINDOW, human_clicks

#: Task.Subject is a 255-character text field.
SUBJECT_LENGTH: Final = 255

#: A Task's status: the click happened, there is nothing to do on it.
TASK_STATUS: Final = "Completed"

#: The key that makes a Task unique for the write-back: person, day and subject.
TASK_KEY: Final = ("who_id", "activity_date", "subject")


def _subject() -> pl.Expr:
    link = pl.col("link").fill_null("a link")
    email = pl.col("email_name").fill_null("an email")
    return (pl.lit("Clicked ") + link + pl.lit(" in ") + email).str.slice(0, SUBJECT_LENGTH)


def missing_tasks(
    org: Org, as_of: dt.datetime, params: signal.SignalParams | None = None
) -> pl.DataFrame:
    """The Tasks a write-back creates: one per person per day of a human click, not yet held.

    Of a day's clicks, the last one names the Task (two at the same instant: the first link
    name in order).

    Args:
        org: The org (its IERs, link details, Contacts, Leads and Tasks).
        as_of: The summary's instant; clicks in the 90 days up to it count.
        params: The signal's windows and weights; the defaults when None.

    Returns:
        Canonical Task columns without ``id``: ``who_id``, ``owner_id``, ``subject``,
        ``status``, ``type`` ("Email"), ``activity_date``; sorted by person, then day.
    """
    end = clock.to_utc(as_of)
    owners = pl.concat(
        [org.table(t).select("id", "owner_id") for t in ("contacts", "leads") if org.has_table(t)]
    )
    per_day = (
        human_clicks(org, end, params)
        .filter(pl.col("clicked_at") > end - CLICK_WINDOW)
        .with_columns(activity_date=pl.col("clicked_at").dt.date(), subject=_subject())
        .group_by("recipient_id", "activity_date")
        .agg(
            pl.col("subject")
            .sort_by(pl.col("clicked_at"), pl.col("subject"), descending=[True, False])
            .first()
        )
        .rename({"recipient_id": "who_id"})
    )
    if org.has_table("tasks"):
        held = org.table("tasks").select(TASK_KEY).unique()
        per_day = per_day.join(held, on=list(TASK_KEY), how="anti", nulls_equal=True)
    return (
        per_day.join(owners, left_on="who_id", right_on="id", how="inner")
        .select(
            "who_id",
            "owner_id",
            "subject",
            status=pl.lit(TASK_STATUS),
            type=pl.lit("Email"),
            activity_date="activity_date",
        )
        .cast({"activity_date": schema.TASKS.column("activity_date").dtype})
        .sort("who_id", "activity_date")
        .collect()
    )
