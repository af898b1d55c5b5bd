"""The whole sync-health diagnosis: read the extract, match, explain, and say it in words."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Final

import polars as pl

from ierkit import clock, extract, reasons, schema
from ierkit.orgs import source_instant
from ierkit.orgs.base import Org
from ierkit.reports import ReportTables
from ierkit.sync_health._coverage import (
    SEND_SYNCING,
    fixable_records,
    missing_by_reason,
    send_coverage,
)
from ierkit.sync_health._dedupe import deduplicated_recipients
from ierkit.sync_health._matching import match_recipients, unattributable_events
from ierkit.sync_health._throughput import (
    Cycle,
    MatchingError,
    ThroughputEstimate,
    estimate_throughput,
)

# The org tables the diagnosis reads (``ReportTables`` fields -> table names). Only these are
# read, not all of ``ReportTables.from_org``: a live org pulls every table it is asked for, and
# the diagnosis needs neither link details, tasks, users nor campaigns.
_SYNC_TABLES: Final = {
    "iers": "individual_email_results",
    "contacts": "contacts",
    "leads": "leads",
    "email_sends": "email_sends",
    "triggered_sends": "triggered_sends",
}


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
            [
                reasons.IN_SYNC_WINDOW,
                reasons.LEAD_CONVERTED,
                reasons.DELETED_IN_MARKETING_CLOUD,
                reasons.DEDUPLICATED,
            ]
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
    deduplicated = by_reason.filter(pl.col("reason") == reasons.DEDUPLICATED)
    if deduplicated.height:
        lines.append(
            f"{deduplicated.item(0, 'missing'):,} recipients in "
            f"{_sends(deduplicated.item(0, 'sends'))} share an email address with someone who "
            "was sent to and were left out by 'Dedupe Subscribers' (by design). "
            + reasons.FIX[reasons.DEDUPLICATED]
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


def _org_tables(org: Org) -> ReportTables:
    """The tables the diagnosis reads from ``org``; one the org lacks is empty, as are the rest."""
    return ReportTables(
        **{
            attr: org.table(name) if org.has_table(name) else schema.table(name).empty().lazy()
            for attr, name in _SYNC_TABLES.items()
        }
    )


def read_tracking(path: str | os.PathLike[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The Sent rows and the blank-key opens and clicks of an extract, read once into memory.

    Returns:
        ``sent_rows`` and ``unattributable_events`` of the extract, collected.
    """
    # open_extract keeps a zip unpacked only inside the block: collect what is needed here.
    with extract.open_extract(path) as files:
        # scan_checked: a bad row is an ExtractFormatError naming file and line, never polars'
        # message (which quotes raw rows with email addresses).
        frames = [
            extract.scan_checked(f)
            for f in files
            if f.kind in ("Sent", "Open", "Click") and f.header
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

    A local org folder that holds a ``tracking_extract.zip`` (a generated demo) uses it too. An
    ``sftp://user@host/folder/pattern*.zip`` URL is picked up: its newest matching file,
    downloaded once into the cache (``ierkit.pickup.fetch_latest``).

    Raises:
        MatchingError: When no path is given for a source other than the demo.
        PickupError: When an SFTP URL cannot be picked up (host key, login, no file).
    """
    if extract_path is not None and str(extract_path).strip():
        if os.fspath(extract_path).startswith(extract.SFTP_SCHEME):
            return os.fspath(extract.local_path(extract_path))
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
    as_of = clock.to_utc(as_of)
    tables = _org_tables(org)
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
    members = org.table("campaign_members") if org.has_table("campaign_members") else None
    recipients = pl.concat(
        [recipients, deduplicated_recipients(recipients.lazy(), tables, members).collect()]
    )
    unattributable = unattributable_events(blank.lazy()).collect()
    coverage, by_reason, fixable = pl.collect_all(
        [
            send_coverage(
                recipients.lazy(),
                tables,
                throughput=throughput,
                as_of=as_of,
                send_jobs=send_jobs,
                unattributable=unattributable.lazy(),
            ),
            missing_by_reason(recipients.lazy(), unattributable=unattributable.lazy()),
            fixable_records(recipients.lazy()),
        ]
    )
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
