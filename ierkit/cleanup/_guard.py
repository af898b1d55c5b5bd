"""``--require-writeback``: no IER is deleted before its person's summary covers it.

A person's IERs may go only when their Contact or Lead holds an engagement summary
(``ierkit writeback``) whose instant (``engagement_summary_as_of``) is at or after the latest
date of every IER of theirs the cleanup selects (sent, opened, bounced, unsubscribed, tracked).
IERs without a Contact or Lead have no one to summarise and are not held back.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from ierkit.cleanup._errors import CleanupError
from ierkit.cleanup._selection import CleanupCriteria, select_iers
from ierkit.orgs.base import Org

#: People named in the refusal; the rest are counted.
PEOPLE_SHOWN: Final = 10

_IER_DATES: Final = (
    "date_sent",
    "date_opened",
    "date_bounced",
    "date_unsubscribed",
    "tracking_as_of",
)


def people_without_summary(org: Org, criteria: CleanupCriteria) -> pl.DataFrame:
    """People whose selected IERs are newer than their written summary, or who have none.

    Returns:
        ``recipient_id``, ``iers`` (selected IERs of theirs), ``latest`` (their latest IER
        date) and ``summary_as_of`` (null: no summary); sorted by ``recipient_id``.
    """
    per_person = (
        select_iers(org, criteria)
        .select(
            recipient_id=pl.coalesce("contact_id", "lead_id"),
            latest=pl.max_horizontal(*_IER_DATES),
        )
        .filter(pl.col("recipient_id").is_not_null())
        .group_by("recipient_id")
        .agg(iers=pl.len().cast(pl.Int64), latest=pl.col("latest").max())
    )
    summaries = pl.concat(
        [
            org.table(t).select(recipient_id="id", summary_as_of="engagement_summary_as_of")
            for t in ("contacts", "leads")
            if org.has_table(t)
        ]
    )
    return (
        per_person.join(summaries, on="recipient_id", how="left")
        .filter(pl.col("summary_as_of").is_null() | (pl.col("summary_as_of") < pl.col("latest")))
        .sort("recipient_id")
        .collect()
    )


def require_writeback(org: Org, criteria: CleanupCriteria) -> None:
    """Refuse a cleanup that would delete IERs whose person's summary does not cover them.

    Raises:
        CleanupError: Naming how many people and IERs, the first people by Id, and the fix.
    """
    missing = people_without_summary(org, criteria)
    if not missing.height:
        return
    shown = ", ".join(missing.get_column("recipient_id").head(PEOPLE_SHOWN).to_list())
    more = missing.height - PEOPLE_SHOWN
    raise CleanupError(
        f"--require-writeback: {missing.height:,} people ({int(missing['iers'].sum()):,} of the "
        f"selected IERs) have no engagement summary at or after their IERs' latest date: "
        f"{shown}{f' and {more:,} more' if more > 0 else ''}. Run `ierkit writeback --execute` "
        "on this source first, then the cleanup again"
    )
