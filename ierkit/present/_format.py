"""Cells for people: each value formatted by what its column holds, Ids turned into record links.

A report frame keeps its machine names and types (``click_rate_over_sent`` as a Float64 share,
``mb`` as megabytes, ``clicked_at`` in UTC). ``prepare`` turns it into text cells a person reads:
the column's label in words, counts with thousands separators, rates as percentages with their
denominator in the label, storage with a unit, times in the report's named zone, booleans as a
mark, nulls blank. Id columns disappear; a name beside its Id becomes a link to the record.
Every renderer (notebook table, weekly HTML, email, plain text, CSV) starts from these cells.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from ierkit import ids as ids_module
from ierkit import reasons, schema
from ierkit.errors import IerkitError


class PresentError(IerkitError):
    """A presentation option cannot be used (an unknown time zone, a malformed My Domain URL)."""


#: Salesforce Ids are 15 or 18 letters and digits (the 18-character form adds a checksum).
_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
#: A My Domain or instance URL: https, a host name, nothing after it.
_INSTANCE = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?")

#: Shown for a true boolean, and for a false one (a null stays blank).
YES, NO = "✓", "✗"

#: Column labels in words. Columns not listed are labelled from their name ("sends_judged" ->
#: "Sends judged"); rate columns are labelled by ``_rate_label``.
LABELS: Mapping[str, str] = {
    "owner_name": "Owner",
    "rep": "Rep",
    "owner_email": "Owner's email",
    "recipient_name": "Person",
    "recipient_type": "Record",
    "company": "Company",
    "email": "Email",
    "email_name": "Email sent",
    "programme": "Programme",
    "date_sent": "Sent",
    "clicked_at": "Last click",
    "clicked_at_source": "Click time from",
    "unique_clicks": "Unique clicks",
    "total_clicks": "Clicks",
    "links": "Links clicked",
    "link_urls": "Link addresses",
    "followed_up": "Followed up",
    "engagement_score": "Score",
    "score_explanation": "Why this score",
    "signal_reason": "Why it looks automated",
    "human_opens": "Opened by people",
    "human_clicks": "Clicked by people",
    "human_opened": "Opened by people",
    "human_clicked": "Clicked by people",
    "human_engaged": "Engaged people",
    "open_rate_without_machine_opens": "Open rate of sent, machine opens left out",
    "click_rate_without_automated_clicks": "Click rate of sent, automated clicks left out",
    "first_follow_up_at": "First follow-up",
    "not_followed_up": "Not followed up",
    "recipients": "People",
    "campaign_name": "Campaign",
    "campaign_type": "Campaign type",
    "unique_opens": "Opened",
    "unsubscribes": "Unsubscribed",
    "bounces": "Bounced",
    "segment_value": "Segment",
    "sobject": "Salesforce object",
    "record_kb": "Size a record",
    "mb": "Storage",
    "storage_mb": "Storage",
    "tracking_mb_now": "Tracking storage now",
    "mb_per_month": "Storage a month",
    "judged_mb": "Storage judged",
    "mb_per_followup": "Storage per follow-up",
    "iers": "IERs",
    "emails": "Emails",
    "links_per_recipient": "Links per person",
    "judge_from": "Judged from",
    "actionability": "Followed up (of engaged)",
    "coverage": "Coverage (IERs of sent)",
    "on_converted_lead": "On converted Leads",
    "main_reason": "Main reason",
    "expected_completion": "Expected complete",
    "expected_completion_latest": "Complete at the latest",
    "unattributable_events": "Unattributable events",
    "subscriber_key": "Subscriber Key",
    "repaired_key": "Repaired key",
    "last_sent": "Last sent",
    "first_sent": "First sent",
    "retention_days": "Retention (days)",
    "fix": "Fix",
}

#: A name column and the Id column whose record it links to, with the record's object: a name
#: or a column holding the object name per row (``recipient_type`` is Contact or Lead).
RECORD_LINKS: Mapping[str, tuple[str, str]] = {
    "owner_name": ("owner_id", "User"),
    "rep": ("owner_id", "User"),
    "recipient_name": ("recipient_id", "@recipient_type"),
    "email_name": ("send_id", schema.EMAIL_SENDS.sobject),
    "campaign_name": ("campaign_id", "Campaign"),
}


@dataclass(frozen=True)
class Look:
    """How a report shows its tables: one value travels to every table of the report.

    Attributes:
        timezone: IANA zone times are shown in (named in every time column's label).
        instance_url: The org's My Domain URL for record links; None shows names unlinked.
        rows: Rows shown before a table is cut (the rest go to a CSV beside the report).
        csv_dir: Where full tables of cut tables are written as CSV; None writes none.
    """

    timezone: str = "UTC"
    instance_url: str | None = None
    rows: int = 25
    csv_dir: Path | None = None

    def __post_init__(self) -> None:
        zone(self.timezone)
        if self.instance_url is not None and not _INSTANCE.fullmatch(self.instance_url):
            raise PresentError(
                f"instance URL {self.instance_url[:80]!r} is not like "
                "https://yourdomain.my.salesforce.com"
            )


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The time zone of an IANA name (``Europe/London``); ``PresentError`` names a wrong one."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PresentError(
            f"time zone {name!r} is not an IANA zone name such as UTC or Europe/London"
        ) from None


# --- one value --------------------------------------------------------------------------------


def count(value: int | None) -> str:
    """``1234`` -> ``1,234``; None -> blank."""
    return "" if value is None else f"{value:,}"


def number(value: float | None, *, places: int = 1) -> str:
    """A measure with thousands separators and ``places`` decimals (two below 1: ``0.14``)."""
    if value is None or math.isnan(value):
        return ""
    return f"{value:,.{2 if 0 < abs(value) < 1 else places}f}"


def percent(value: float | None) -> str:
    """A share as a percentage: ``0.026312`` -> ``2.6%``; small shares keep two decimals."""
    if value is None or math.isnan(value):
        return ""
    share = value * 100
    return f"{share:.2f}%" if 0 < abs(share) < 1 else f"{share:,.1f}%"


def size_mb(value: float | None) -> str:
    """Storage given in MB with its unit: ``54.42`` -> ``54.4 MB``, ``2048`` -> ``2.0 GB``."""
    if value is None or math.isnan(value):
        return ""
    if abs(value) >= 1024:
        return f"{value / 1024:,.1f} GB"
    if 0 < abs(value) < 0.1:
        return f"{value * 1024:,.0f} KB"
    return f"{value:,.1f} MB"


def size_kb(value: float | None) -> str:
    """Storage given in KB with its unit: ``2.0`` -> ``2.0 KB``."""
    if value is None or math.isnan(value):
        return ""
    return f"{value:,.1f} KB"


def when(value: dt.datetime | None, timezone: str) -> str:
    """An instant in ``timezone``: ``20 Nov 2026 14:05`` (the zone is named in the label)."""
    if value is None:
        return ""
    if value.tzinfo is None:  # the core keeps UTC; a naive instant is UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(zone(timezone)).strftime("%-d %b %Y %H:%M")


def day(value: dt.date | None) -> str:
    """A date: ``20 Nov 2026``."""
    return "" if value is None else value.strftime("%-d %b %Y")


def mark(value: bool | None) -> str:
    """A boolean as a mark (✓ or ✗); None -> blank."""
    return "" if value is None else (YES if value else NO)


def record_url(instance_url: str, sobject: str, record_id: str) -> str:
    """The Lightning URL of a record: ``https://<my domain>/lightning/r/<Object>/<Id>/view``.

    Raises:
        PresentError: The Id is not a Salesforce Id, or the object name is not an API name.
    """
    if not _ID.fullmatch(record_id):
        raise PresentError(f"{record_id[:40]!r} is not a 15- or 18-character Salesforce Id")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", sobject):
        raise PresentError(f"{sobject[:60]!r} is not a Salesforce object API name")
    return f"{instance_url.rstrip('/')}/lightning/r/{sobject}/{record_id}/view"


# --- columns ----------------------------------------------------------------------------------


def label(name: str, dtype: pl.DataType, look: Look) -> str:
    """A column's label in words; a time column names the zone, a rate its denominator."""
    text = LABELS.get(name) or _rate_label(name) or name.replace("_", " ").capitalize()
    if isinstance(dtype, pl.Datetime):
        text = f"{text} ({look.timezone})"
    return text


def _rate_label(name: str) -> str | None:
    """``click_rate_over_delivered`` -> ``Click rate (of delivered)``."""
    found = re.fullmatch(r"([a-z_]+)_rate_over_([a-z_]+)", name)
    if not found:
        return None
    what, over = found.groups()
    return f"{what.replace('_', ' ').capitalize()} rate (of {over.replace('_', ' ')})"


def _is_rate(name: str) -> bool:
    return (
        "_rate" in name
        or name.endswith("_share")
        or name in ("coverage", "actionability", "share", "threshold")
    )


#: Columns that hold a sync-health reason code (``ierkit.reasons``): shown in words.
_REASON_COLUMNS: Final = ("reason", "main_reason")


def formatter(name: str, dtype: pl.DataType, look: Look) -> Callable[[Any], str]:
    """The value formatter a column gets from its name and type."""
    if isinstance(dtype, pl.Boolean):
        return mark
    if isinstance(dtype, pl.Datetime):
        return lambda value: when(value, look.timezone)
    if isinstance(dtype, pl.Date):
        return day
    if isinstance(dtype, pl.List):
        return lambda value: "; ".join(str(v) for v in value or [] if v is not None)
    if name in _REASON_COLUMNS:
        return lambda value: "" if value is None else reasons.LABEL.get(value, str(value))
    if dtype.is_numeric():
        if name == "mb" or name.endswith("_mb") or "_mb_" in name or name.startswith("mb_"):
            return size_mb
        if name.endswith("_kb"):
            return size_kb
        if dtype.is_float() and _is_rate(name):
            return percent
        if dtype.is_integer():
            return count
        return number
    return lambda value: "" if value is None else str(value)


def _is_id(name: str) -> bool:
    return name == "id" or name.endswith("_id")


@dataclass(frozen=True)
class Cells:
    """A table as people read it: text cells under labels, and the links some cells carry.

    Attributes:
        frame: One String column per shown column, named by its label.
        links: Per label, the record URL of each row (None where there is none).
        rows: Rows of the full table (``frame`` may hold only the first of them).
    """

    frame: pl.DataFrame
    links: dict[str, list[str | None]] = field(default_factory=dict)
    rows: int = 0


def prepare(frame: pl.DataFrame | pl.LazyFrame, look: Look, *, rows: int | None = None) -> Cells:
    """Format a report frame for people (see the module docstring).

    Args:
        frame: Any report frame.
        look: Time zone, instance URL, rows shown.
        rows: Format only the first ``rows`` rows; every row when None.

    Returns:
        The cells under their labels, with the record link of each linked name.
    """
    data = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    total = data.height
    shown = data if rows is None else data.head(rows)
    columns: dict[str, pl.Series] = {}
    links: dict[str, list[str | None]] = {}
    for name, dtype in shown.schema.items():
        if _is_id(name):
            continue
        text = label(name, dtype, look)
        fmt = formatter(name, dtype, look)
        columns[text] = pl.Series(
            text, [fmt(v) for v in shown.get_column(name).to_list()], pl.String
        )
        if look.instance_url and name in RECORD_LINKS:
            urls = _links(shown, name, look.instance_url)
            if urls is not None:
                links[text] = urls
    return Cells(pl.DataFrame(list(columns.values())), links, total)


def _links(frame: pl.DataFrame, name: str, instance_url: str) -> list[str | None] | None:
    """The record URL of each row's ``name`` cell; None when the frame lacks the Id column."""
    id_column, sobject = RECORD_LINKS[name]
    if id_column not in frame.columns:
        return None
    ids = frame.get_column(id_column).to_list()
    if sobject.startswith("@") and sobject[1:] in frame.columns:
        objects = frame.get_column(sobject[1:]).to_list()
    elif sobject.startswith("@"):
        # No column names the object: the Id's key prefix does (003 Contact, 00Q Lead).
        objects = [ids_module.object_type(str(i)) if i is not None else None for i in ids]
    else:
        objects = [sobject] * len(ids)
    urls: list[str | None] = []
    for record_id, obj in zip(ids, objects or [None] * len(ids), strict=True):
        ok = record_id is not None and obj and _ID.fullmatch(str(record_id))
        urls.append(record_url(instance_url, str(obj), str(record_id)) if ok else None)
    return urls
