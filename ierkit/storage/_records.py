"""Records and megabytes: what a tracked send writes, the org's allocation and current usage.

Marketing Cloud Connect writes one Individual Email Result (IER) per tracked recipient per send,
plus one Individual Link Level Detail per recipient per link clicked. Both are custom-object
records that count a fixed size against the org's data storage, whatever their content.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Final

import polars as pl

from ierkit import schema
from ierkit.errors import IerkitError
from ierkit.orgs.base import Org

# --- Salesforce constants ------------------------------------------------------------------------

#: Data storage per record for most objects, custom objects included (so IERs and Individual Link
#: Level Details): Salesforce Help, "Data and File Storage Allocations".
RECORD_KB: Final = 2.0
#: Storage sizes that differ from RECORD_KB (same Salesforce Help page).
RECORD_KB_BY_TABLE: Final[dict[str, float]] = {"campaigns": 8.0, "campaign_members": 1.0}
#: Salesforce counts 1 MB as 1,024 KB and 1 GB as 1,024 MB in storage figures.
KB_PER_MB: Final = 1024.0
MB_PER_GB: Final = 1024.0
#: Every org gets 10 GB of data storage (Enterprise, Performance, Unlimited, Professional).
BASE_ALLOCATION_MB: Final = 10 * MB_PER_GB
#: Data storage added per user licence: 20 MB for Enterprise and Professional; 120 MB is quoted
#: for Unlimited and Performance (Salesforce Help, "Data and File Storage Allocations").
PER_LICENCE_MB: Final[dict[str, float]] = {
    "enterprise": 20.0,
    "professional": 20.0,
    "unlimited": 120.0,
    "performance": 120.0,
}

# --- ierkit modelling constants ------------------------------------------------------------------

#: Average Gregorian month in days (365.25 / 12): converts retention days to months of cadence.
DAYS_PER_MONTH: Final = 365.25 / 12


class StorageError(IerkitError, ValueError):
    """A storage question cannot be answered as asked; the message says what to pass."""


# --- records and bytes ---------------------------------------------------------------------------


def records_for_send(
    recipients: float, *, links_per_recipient: float = 0.0, tracked: bool = True
) -> dict[str, float]:
    """Records one send writes: an IER per recipient plus a link detail per link clicked.

    Args:
        recipients: Recipients of the send (Salesforce Contacts and Leads).
        links_per_recipient: Individual Link Level Details per recipient: the unique links
            clicked divided by recipients (0.05 when 5% click one link each).
        tracked: Whether individual tracking is on; an untracked send writes nothing.

    Returns:
        ``{"iers": ..., "links": ..., "records": ...}``.

    Raises:
        StorageError: When a count is negative.
    """
    if recipients < 0 or links_per_recipient < 0:
        raise StorageError(
            f"recipients ({recipients}) and links per recipient ({links_per_recipient}) "
            "must not be negative"
        )
    iers = float(recipients) if tracked else 0.0
    links = iers * links_per_recipient
    return {"iers": iers, "links": links, "records": iers + links}


def storage_mb(records: float, *, record_kb: float = RECORD_KB) -> float:
    """Data storage of ``records`` records at ``record_kb`` each, in MB (1 MB = 1,024 KB)."""
    return records * record_kb / KB_PER_MB


def storage_mb_expr(records: pl.Expr, *, record_kb: float | pl.Expr = RECORD_KB) -> pl.Expr:
    """``storage_mb`` as a polars expression; ``record_kb`` may be a column (a size per row)."""
    return records * record_kb / KB_PER_MB


def allocation_mb(edition: str, licences: int) -> float:
    """The org's data storage allocation from its edition and user licences, in MB.

    Args:
        edition: Enterprise, Professional, Unlimited or Performance (any case).
        licences: Number of user licences.

    Returns:
        10 GB plus the edition's amount per licence, e.g. Enterprise with 20 licences: 10,640.

    Raises:
        StorageError: For an unknown edition or a negative licence count.
    """
    key = edition.strip().lower()
    if key not in PER_LICENCE_MB:
        known = ", ".join(name.title() for name in PER_LICENCE_MB)
        raise StorageError(f"edition {edition!r} is not one of {known}")
    if licences < 0:
        raise StorageError(f"licences must not be negative, got {licences}")
    return BASE_ALLOCATION_MB + PER_LICENCE_MB[key] * licences


def send_storage(
    recipients: float,
    *,
    links_per_recipient: float = 0.0,
    sends_per_month: float | None = None,
    record_kb: float = RECORD_KB,
) -> dict[str, float | None]:
    """Records and MB a tracked send writes, and a month's and a year's worth at a cadence.

    Args:
        recipients: Recipients per send.
        links_per_recipient: Link details per recipient (unique links clicked / recipients).
        sends_per_month: Cadence; the monthly and yearly figures are None without it.
        record_kb: Storage per record.

    Returns:
        ``recipients``, ``links_per_recipient``, ``record_kb``, ``iers``, ``links``, ``records``,
        ``mb`` (per send), ``sends_per_month``, ``records_per_month``, ``mb_per_month``,
        ``mb_per_year``.

    Raises:
        StorageError: An argument is NaN, infinite, negative (or zero where a size or cadence
            is meant), or so large that a figure is no longer a number.
    """
    given = {
        "recipients": (recipients, 0.0),
        "links per recipient": (links_per_recipient, 0.0),
        "record KB": (record_kb, math.ulp(0.0)),
        "sends per month": (1.0 if sends_per_month is None else sends_per_month, math.ulp(0.0)),
    }
    for name, (value, least) in given.items():
        # A NaN passes every comparison: it is refused here rather than printed as NaN.
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int beyond any float
            finite = False
        if not (finite and value >= least):
            low = "0 or more" if least == 0 else "greater than 0"
            raise StorageError(f"{name} must be a finite number, {low}; got {value}")
    per_send = records_for_send(recipients, links_per_recipient=links_per_recipient)
    mb = storage_mb(per_send["records"], record_kb=record_kb)
    monthly = None if sends_per_month is None else per_send["records"] * sends_per_month
    if not math.isfinite(mb * 12 * (sends_per_month or 1.0)):
        raise StorageError("these figures are too large to compute: check the numbers given")
    return {
        "recipients": float(recipients),
        "links_per_recipient": float(links_per_recipient),
        "record_kb": float(record_kb),
        **per_send,
        "mb": mb,
        "sends_per_month": sends_per_month,
        "records_per_month": monthly,
        "mb_per_month": None if monthly is None else storage_mb(monthly, record_kb=record_kb),
        "mb_per_year": None if monthly is None else storage_mb(12 * monthly, record_kb=record_kb),
    }


def send_storage_text(
    recipients: float,
    *,
    links_per_recipient: float = 0.0,
    sends_per_month: float | None = None,
    record_kb: float = RECORD_KB,
    as_json: bool = False,
) -> str:
    """``send_storage`` as the CLI prints it: a few lines of text, or JSON."""
    figures = send_storage(
        recipients,
        links_per_recipient=links_per_recipient,
        sends_per_month=sends_per_month,
        record_kb=record_kb,
    )
    if as_json:
        return json.dumps(figures, indent=2)
    lines = [
        f"One tracked send to {figures['recipients']:,.0f} recipients writes "
        f"{figures['iers']:,.0f} IERs + {figures['links']:,.0f} link details = "
        f"{figures['records']:,.0f} records, {figures['mb']:,.1f} MB "
        f"at {record_kb:g} KB a record (1 MB = 1,024 KB)."
    ]
    if sends_per_month is not None:
        lines.append(
            f"At {sends_per_month:g} sends a month: {figures['records_per_month']:,.0f} records, "
            f"{figures['mb_per_month']:,.1f} MB a month; {figures['mb_per_year']:,.1f} MB a year."
        )
    return "\n".join(lines)


# --- the org's allocation and usage --------------------------------------------------------------


@dataclass(frozen=True)
class StorageAllocation:
    """The org's data storage: allocation, use, and where the figures came from.

    Attributes:
        max_mb: Allocation in MB.
        used_mb: Storage in use in MB.
        source: ``"reported"`` (the org's DataStorageMB limits) or ``"estimated"`` (edition and
            licences for the allocation, record counts for the use).
    """

    max_mb: float
    used_mb: float
    source: str

    @property
    def remaining_mb(self) -> float:
        """Allocation not yet used."""
        return self.max_mb - self.used_mb

    @property
    def used_share(self) -> float:
        """Share of the allocation in use."""
        return self.used_mb / self.max_mb if self.max_mb else math.inf


@dataclass(frozen=True)
class StorageInUse:
    """The org's storage in use, counting data ierkit cannot see when the use is estimated.

    Attributes:
        allocation: The allocation and use as ``org_allocation`` gives them.
        other_data_mb: Storage of objects ierkit does not read; counted only for an estimated
            use (a reported use already includes every object).
    """

    allocation: StorageAllocation
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


def current_usage(org: Org, *, record_kb: float = RECORD_KB) -> pl.LazyFrame:
    """Records and storage per canonical table, from the org's record counts.

    Args:
        org: The org.
        record_kb: Size of a record of the tables not in ``RECORD_KB_BY_TABLE``.

    Returns:
        One row per table the org holds: ``table``, ``sobject``, ``records`` (Int64),
        ``record_kb`` and ``mb`` (Float64), largest first.
    """
    counts = org.record_counts()
    names = sorted(counts)
    frame = pl.LazyFrame(
        {
            "table": names,
            "sobject": [schema.table(n).sobject for n in names],
            "records": [counts[n] for n in names],
            "record_kb": [RECORD_KB_BY_TABLE.get(n, record_kb) for n in names],
        },
        schema={
            "table": pl.String,
            "sobject": pl.String,
            "records": pl.Int64,
            "record_kb": pl.Float64,
        },
    )
    return frame.with_columns(
        mb=storage_mb_expr(pl.col("records"), record_kb=pl.col("record_kb"))
    ).sort(["mb", "table"], descending=[True, False])


def org_allocation(
    org: Org,
    *,
    edition: str | None = None,
    licences: int | None = None,
    record_kb: float = RECORD_KB,
) -> StorageAllocation:
    """The org's allocation and use: as the org reports them, else estimated.

    Args:
        org: The org.
        edition: Used when the org does not report ``DataStorageMB`` (a local snapshot).
        licences: User licences, with ``edition``.
        record_kb: Record size for the estimate of use from record counts.

    Returns:
        A ``StorageAllocation``.

    Raises:
        StorageError: When the org reports nothing and no edition and licences were given.
    """
    limits = org.storage_limits()
    if limits is not None:
        return StorageAllocation(limits.max_mb, limits.used_mb, "reported")
    if edition is None or licences is None:
        raise StorageError(
            f"{org.label}: the org does not report its data storage (DataStorageMB); "
            "pass the edition and the number of user licences"
        )
    usage = current_usage(org, record_kb=record_kb)
    used = float(usage.select(pl.col("mb").sum()).collect().item())
    return StorageAllocation(allocation_mb(edition, licences), used, "estimated")
