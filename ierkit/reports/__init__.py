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

import polars as pl

from ierkit.orgs.base import Org
from ierkit.reports._facts import (
    BOUNCED,
    CLICKED,
    OPENED,
    UNSUBSCRIBED,
    recipients,
    sends,
)
from ierkit.reports._summaries import (
    RATE_COLUMNS,
    SUMMARY_COUNTS,
    campaign_summary,
    click_heatmap,
    owner_summary,
    programme_trend,
    rollup,
    segment_summary,
)
from ierkit.reports._tables import (
    NO_CAMPAIGN,
    NO_OWNER,
    NO_SEGMENT,
    SEGMENT_FIELDS,
    ReportError,
    ReportTables,
    _as_of,
    _days,
    as_tables,
)
from ierkit.reports._worklists import (
    engagement_worklist,
    link_interest,
    no_response,
    no_response_by_send,
    owner_worklist,
    suspected_automated_clicks,
)

__all__ = [
    "BOUNCED",
    "CLICKED",
    "NO_CAMPAIGN",
    "NO_OWNER",
    "NO_SEGMENT",
    "OPENED",
    "RATE_COLUMNS",
    "REPORT_NAMES",
    "SEGMENT_FIELDS",
    "SUMMARY_COUNTS",
    "UNSUBSCRIBED",
    "ReportError",
    "ReportTables",
    "all_reports",
    "as_tables",
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
    "suspected_automated_clicks",
]

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
