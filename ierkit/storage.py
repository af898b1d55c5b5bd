"""Storage: what tracked sends cost in Salesforce data storage, now and over the next months.

Marketing Cloud Connect writes one Individual Email Result (IER) per tracked recipient per send,
plus one Individual Link Level Detail per recipient per link clicked. Both are custom-object
records that count a fixed size against the org's data storage, whatever their content. This
module turns recipients and clicks into records and megabytes, reads the org's allocation and
usage, and projects a send plan month by month, with or without a retention window that deletes
IERs (and their link details) older than N days.

The projection is one vectorised polars query (programmes x months cross join), so a plan of
thousands of programmes projects in well under a second and widgets can recompute it live.

The plan is a frame with one row per programme (see ``PLAN_COLUMNS``):

============================ ======== =========================================================
column                       type     meaning
============================ ======== =========================================================
``programme``                String   name of the programme (required)
``list_size``                Float64  recipients per send (required)
``sends_per_month``          Float64  cadence (required)
``tracked``                  Boolean  individual tracking on; default True
``links_per_recipient``      Float64  link details written per recipient per send (unique
                                      links clicked / recipients); default: the keyword
``retention_days``           Float64  IERs kept this many days; null: the keyword (None: kept)
``tracking_mb_now``          Float64  storage the programme's IERs and links use today;
                                      default 0
============================ ======== =========================================================
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
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
#: Share of the allocation the projection warns at by default.
DEFAULT_THRESHOLD: Final = 0.9
#: Months projected by default.
DEFAULT_MONTHS: Final = 24
#: Price of extra data storage per GB per month. A commonly quoted list price (USD 125 a month
#: per 500 MB block), not confirmed by Salesforce documentation: pass the contract's price.
DEFAULT_PRICE_PER_GB_MONTH: Final = 250.0
#: Retention windows (days) the outlook tries when looking for one that stays under the threshold.
DEFAULT_RETENTION_CANDIDATES: Final = (30, 60, 90, 180, 270, 365, 540, 730)

#: Columns of a send plan and their types (see the module docstring).
PLAN_COLUMNS: Final = pl.Schema(
    {
        "programme": pl.String,
        "list_size": pl.Float64,
        "sends_per_month": pl.Float64,
        "tracked": pl.Boolean,
        "links_per_recipient": pl.Float64,
        "retention_days": pl.Float64,
        "tracking_mb_now": pl.Float64,
    }
)
_REQUIRED_PLAN_COLUMNS: Final = ("programme", "list_size", "sends_per_month")


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


def storage_mb_expr(records: pl.Expr, *, record_kb: float = RECORD_KB) -> pl.Expr:
    """``storage_mb`` as a polars expression."""
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
    """
    per_send = records_for_send(recipients, links_per_recipient=links_per_recipient)
    mb = storage_mb(per_send["records"], record_kb=record_kb)
    monthly = None if sends_per_month is None else per_send["records"] * sends_per_month
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
    return frame.with_columns(mb=pl.col("records") * pl.col("record_kb") / KB_PER_MB).sort(
        ["mb", "table"], descending=[True, False]
    )


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


# --- the send plan -------------------------------------------------------------------------------


def normalize_plan(
    plan: pl.LazyFrame | pl.DataFrame, *, links_per_recipient: float = 0.0
) -> pl.LazyFrame:
    """A send plan with every column of ``PLAN_COLUMNS``, defaults filled, types cast.

    Args:
        plan: One row per programme; ``programme``, ``list_size`` and ``sends_per_month``
            required, the other columns of ``PLAN_COLUMNS`` optional.
        links_per_recipient: Link details per recipient where the plan has none.

    Returns:
        The plan as a LazyFrame in ``PLAN_COLUMNS`` order.

    Raises:
        StorageError: Naming the missing required columns.
    """
    lf = plan.lazy()
    present = lf.collect_schema()
    missing = [c for c in _REQUIRED_PLAN_COLUMNS if c not in present]
    if missing:
        raise StorageError(f"send plan: missing column(s) {', '.join(missing)}")
    defaults = {
        "tracked": pl.lit(True),
        "links_per_recipient": pl.lit(float(links_per_recipient)),
        "retention_days": pl.lit(None, pl.Float64),
        "tracking_mb_now": pl.lit(0.0),
    }
    exprs = []
    for name, dtype in PLAN_COLUMNS.items():
        expr = pl.col(name) if name in present else defaults[name]
        if name in defaults and name in present and name != "retention_days":
            expr = expr.fill_null(defaults[name])
        exprs.append(expr.cast(dtype).alias(name))
    return lf.select(exprs)


def _month_frame(months: int) -> pl.LazyFrame:
    return pl.LazyFrame({"month": pl.int_range(0, months + 1, dtype=pl.Int32, eager=True)})


def project_by_programme(
    plan: pl.LazyFrame | pl.DataFrame,
    *,
    start: dt.date,
    months: int = DEFAULT_MONTHS,
    retention_days: float | None = None,
    links_per_recipient: float = 0.0,
    record_kb: float = RECORD_KB,
) -> pl.LazyFrame:
    """Tracking records each programme keeps in storage, month by month.

    Month 0 is ``start`` (today); month m is m calendar months later. A programme writes
    ``list_size x sends_per_month`` IERs a month (times ``1 + links_per_recipient`` records
    with its link details) when tracked, nothing otherwise.

    Without retention, everything written stays: kept(m) = written a month x m, on top of the
    programme's ``tracking_mb_now``.

    With a retention window of W = retention_days / DAYS_PER_MONTH months, IERs and their link
    details older than W are deleted, so what the plan writes is capped at a month's records x W.
    Today's records (``tracking_mb_now``) are taken to be the latest of a history written at the
    plan's rate: those still younger than W at month m are min(now, a month x (W - m)), so a
    long-running programme sits at a month x W from the start and a new one fills up to it.
    Month 0 under retention is the storage right after the first cleanup.

    Args:
        plan: The send plan (see the module docstring).
        start: The first day of the projection (month 0).
        months: Months projected after month 0.
        retention_days: Retention window for programmes whose plan row has none; None keeps
            everything.
        links_per_recipient: Link details per recipient where the plan has none.
        record_kb: Size of an IER and of a link detail.

    Returns:
        One row per programme and month (0..months), sorted by programme and month:
        ``programme``, ``month`` (Int32), ``month_start`` (Date), ``written_records`` (this
        month), ``kept_iers``, ``kept_links``, ``kept_records`` and ``kept_mb`` (all Float64,
        ``kept_mb`` includes today's records still kept).
    """
    if months < 0:
        raise StorageError(f"months must not be negative, got {months}")
    normalized = normalize_plan(plan, links_per_recipient=links_per_recipient)
    return _kept(
        normalized,
        keys=["programme"],
        start=start,
        months=months,
        retention_days=retention_days,
        record_kb=record_kb,
    ).sort("programme", "month")


def _kept(
    plan: pl.LazyFrame,
    *,
    keys: list[str],
    start: dt.date,
    months: int,
    retention_days: float | None,
    record_kb: float,
) -> pl.LazyFrame:
    """The projection arithmetic of ``project_by_programme`` on a normalised plan."""
    global_window = None if retention_days is None else float(retention_days)
    window = pl.col("retention_days").fill_null(pl.lit(global_window, pl.Float64)) / DAYS_PER_MONTH
    month = pl.col("month").cast(pl.Float64)
    ier_rate = (
        pl.when(pl.col("tracked"))
        .then(pl.col("list_size") * pl.col("sends_per_month"))
        .otherwise(0.0)
    )
    # Months of writing still inside the window: all of them without retention.
    kept_months = (
        pl.when(pl.col("window").is_null())
        .then(month)
        .otherwise(pl.min_horizontal(month, pl.col("window")))
    )
    rate_mb = storage_mb_expr(pl.col("ier_rate") + pl.col("link_rate"), record_kb=record_kb)
    existing_mb = (
        pl.when(pl.col("window").is_null())
        .then(pl.col("tracking_mb_now"))
        .otherwise(
            pl.min_horizontal(
                pl.col("tracking_mb_now"),
                rate_mb * (pl.col("window") - month).clip(lower_bound=0.0),
            )
        )
    )
    return (
        plan.with_columns(window=window, ier_rate=ier_rate)
        .with_columns(link_rate=pl.col("ier_rate") * pl.col("links_per_recipient"))
        .join(_month_frame(months), how="cross")
        .with_columns(
            month_start=pl.lit(start, pl.Date).dt.offset_by(pl.format("{}mo", pl.col("month"))),
            written_records=pl.when(pl.col("month") > 0)
            .then(pl.col("ier_rate") + pl.col("link_rate"))
            .otherwise(0.0),
            kept_iers=pl.col("ier_rate") * kept_months,
            kept_links=pl.col("link_rate") * kept_months,
            existing_mb=existing_mb,
        )
        .with_columns(kept_records=pl.col("kept_iers") + pl.col("kept_links"))
        .with_columns(
            kept_mb=storage_mb_expr(pl.col("kept_records"), record_kb=record_kb)
            + pl.col("existing_mb")
        )
        .select(
            *keys,
            "month",
            "month_start",
            "written_records",
            "kept_iers",
            "kept_links",
            "kept_records",
            "kept_mb",
        )
    )


def project_storage(
    plan: pl.LazyFrame | pl.DataFrame,
    *,
    start: dt.date,
    used_mb: float,
    allocation_mb: float,
    months: int = DEFAULT_MONTHS,
    retention_days: float | None = None,
    links_per_recipient: float = 0.0,
    record_kb: float = RECORD_KB,
    threshold: float = DEFAULT_THRESHOLD,
    price_per_gb_month: float = DEFAULT_PRICE_PER_GB_MONTH,
) -> pl.LazyFrame:
    """The org's used data storage month by month under a send plan.

    Used storage at month m = ``used_mb`` (today) - the plan's ``tracking_mb_now`` + what
    ``project_by_programme`` keeps at month m. Storage other than the plan's IERs and links is
    taken to stay as it is.

    Args:
        plan: The send plan (see the module docstring).
        start: The first day of the projection (month 0, today).
        used_mb: Data storage in use today (``StorageAllocation.used_mb``).
        allocation_mb: The org's allocation (``StorageAllocation.max_mb``).
        months: Months projected after month 0.
        retention_days: Retention window for programmes whose plan row has none; None keeps all.
        links_per_recipient: Link details per recipient where the plan has none.
        record_kb: Size of an IER and of a link detail.
        threshold: Share of the allocation that counts as full (0.9: 90%).
        price_per_gb_month: Price of extra storage per GB per month.

    Returns:
        One row per month 0..months, sorted by month: ``month`` (Int32), ``month_start`` (Date),
        ``tracking_mb`` (the plan's IERs and links), ``used_mb``, ``allocation_mb``,
        ``used_share``, ``over_threshold`` (Boolean), ``extra_gb`` (storage to buy to stay at the
        threshold) and ``extra_cost`` (that month's price of it).
    """
    by_programme = project_by_programme(
        plan,
        start=start,
        months=months,
        retention_days=retention_days,
        links_per_recipient=links_per_recipient,
        record_kb=record_kb,
    )
    now_mb = normalize_plan(plan).select(pl.col("tracking_mb_now").sum())
    return _used_by_month(
        by_programme.group_by("month", "month_start").agg(tracking_mb=pl.col("kept_mb").sum()),
        now_mb,
        used_mb=used_mb,
        allocation_mb=allocation_mb,
        threshold=threshold,
        price_per_gb_month=price_per_gb_month,
    ).sort("month")


def _used_by_month(
    tracking: pl.LazyFrame,
    now_mb: pl.LazyFrame,
    *,
    used_mb: float,
    allocation_mb: float,
    threshold: float,
    price_per_gb_month: float,
) -> pl.LazyFrame:
    if allocation_mb <= 0:
        raise StorageError(f"allocation must be positive, got {allocation_mb} MB")
    limit = threshold * allocation_mb
    extra_gb = ((pl.col("used_mb") - limit).clip(lower_bound=0.0)) / MB_PER_GB
    return (
        tracking.join(now_mb.select(now_mb=pl.col("tracking_mb_now")), how="cross")
        .with_columns(used_mb=pl.lit(float(used_mb)) - pl.col("now_mb") + pl.col("tracking_mb"))
        .with_columns(
            allocation_mb=pl.lit(float(allocation_mb)),
            used_share=pl.col("used_mb") / allocation_mb,
            over_threshold=pl.col("used_mb") >= limit,
            extra_gb=extra_gb,
        )
        .with_columns(extra_cost=pl.col("extra_gb") * price_per_gb_month)
        .drop("now_mb")
    )


def threshold_date(
    projection: pl.DataFrame, *, allocation_mb: float, threshold: float = DEFAULT_THRESHOLD
) -> dt.date | None:
    """The day used storage reaches the threshold, interpolated within the month.

    Args:
        projection: ``project_storage`` output, collected.
        allocation_mb: The org's allocation.
        threshold: Share of the allocation that counts as full.

    Returns:
        The date, ``month_start`` of month 0 when storage is over already, None when the
        projection stays under.
    """
    limit = threshold * allocation_mb
    rows = projection.sort("month").with_columns(
        prev_used=pl.col("used_mb").shift(1),
        prev_start=pl.col("month_start").shift(1),
    )
    crossing = rows.filter(pl.col("used_mb") >= limit).head(1)
    if crossing.is_empty():
        return None
    row = crossing.row(0, named=True)
    if row["prev_used"] is None:
        return row["month_start"]
    fraction = (limit - row["prev_used"]) / (row["used_mb"] - row["prev_used"])
    days = (row["month_start"] - row["prev_start"]).days
    return row["prev_start"] + dt.timedelta(days=math.ceil(fraction * days))


def retention_options(
    plan: pl.LazyFrame | pl.DataFrame,
    *,
    start: dt.date,
    used_mb: float,
    allocation_mb: float,
    candidates: Sequence[float] = DEFAULT_RETENTION_CANDIDATES,
    months: int = DEFAULT_MONTHS,
    links_per_recipient: float = 0.0,
    record_kb: float = RECORD_KB,
    threshold: float = DEFAULT_THRESHOLD,
) -> pl.LazyFrame:
    """Peak used storage over the horizon for each candidate retention window.

    The candidate applies to the programmes whose plan row has no ``retention_days``; one
    query (candidates x programmes x months).

    Returns:
        One row per candidate, shortest first: ``retention_days`` (Float64), ``peak_used_mb``,
        ``peak_share`` and ``under_threshold`` (Boolean: the peak stays below the threshold).
    """
    cands = pl.LazyFrame(
        {"candidate": [float(c) for c in candidates]}, schema={"candidate": pl.Float64}
    )
    base = normalize_plan(plan, links_per_recipient=links_per_recipient)
    now_mb = float(base.select(pl.col("tracking_mb_now").sum()).collect().item() or 0.0)
    expanded = base.join(cands, how="cross").with_columns(
        retention_days=pl.col("retention_days").fill_null(pl.col("candidate"))
    )
    projected = _kept(
        expanded,
        keys=["candidate", "programme"],
        start=start,
        months=months,
        retention_days=None,
        record_kb=record_kb,
    )
    limit = threshold * allocation_mb
    return (
        projected.group_by("candidate", "month")
        .agg(tracking_mb=pl.col("kept_mb").sum())
        .group_by("candidate")
        .agg(peak_used_mb=used_mb - now_mb + pl.col("tracking_mb").max())
        .select(
            retention_days=pl.col("candidate"),
            peak_used_mb="peak_used_mb",
            peak_share=pl.col("peak_used_mb") / allocation_mb,
            under_threshold=pl.col("peak_used_mb") < limit,
        )
        .sort("retention_days")
    )


@dataclass(frozen=True)
class StorageOutlook:
    """What a send plan does to the org's storage over the horizon.

    Attributes:
        projection: ``project_storage`` output (collected), month 0..months.
        allocation_mb: The allocation the projection used.
        threshold: The share that counts as full.
        threshold_date: The day storage reaches the threshold; None if it stays under.
        peak_used_mb: Highest used storage over the horizon.
        retention_days: The longest candidate retention window that keeps the peak under the
            threshold; None when none is needed (``retention_needed`` False) or none suffices.
        retention_needed: Whether the plan without retention crosses the threshold.
        extra_gb_needed: Extra storage to buy by the end of the horizon to stay at the threshold
            without retention.
        extra_cost: Price of buying it month by month over the horizon, summed.
    """

    projection: pl.DataFrame
    allocation_mb: float
    threshold: float
    threshold_date: dt.date | None
    peak_used_mb: float
    retention_days: float | None
    retention_needed: bool
    extra_gb_needed: float
    extra_cost: float

    def __str__(self) -> str:
        share = f"{self.threshold:.0%}"
        if self.threshold_date is None:
            when = f"stays under {share} of {self.allocation_mb:,.0f} MB"
        else:
            when = f"reaches {share} of {self.allocation_mb:,.0f} MB on {self.threshold_date}"
        if not self.retention_needed:
            keep = "no retention window needed"
        elif self.retention_days is None:
            keep = "no candidate retention window keeps it under"
        else:
            keep = f"keeping IERs {self.retention_days:,.0f} days keeps it under"
        return (
            f"Storage {when} (peak {self.peak_used_mb:,.0f} MB); {keep}; buying instead: "
            f"{self.extra_gb_needed:,.1f} GB, {self.extra_cost:,.0f} over the horizon."
        )


def storage_outlook(
    plan: pl.LazyFrame | pl.DataFrame,
    *,
    start: dt.date,
    used_mb: float,
    allocation_mb: float,
    months: int = DEFAULT_MONTHS,
    retention_days: float | None = None,
    candidates: Sequence[float] = DEFAULT_RETENTION_CANDIDATES,
    links_per_recipient: float = 0.0,
    record_kb: float = RECORD_KB,
    threshold: float = DEFAULT_THRESHOLD,
    price_per_gb_month: float = DEFAULT_PRICE_PER_GB_MONTH,
) -> StorageOutlook:
    """Project a plan and answer: when is storage full, what retention avoids it, what buying costs.

    Args:
        plan: The send plan (see the module docstring).
        start: The first day of the projection (today).
        used_mb: Data storage in use today.
        allocation_mb: The org's allocation.
        months: Months projected.
        retention_days: Retention applied in the projection (None: keep everything).
        candidates: Retention windows (days) to try for ``StorageOutlook.retention_days``.
        links_per_recipient: Link details per recipient where the plan has none.
        record_kb: Size of an IER and of a link detail.
        threshold: Share of the allocation that counts as full.
        price_per_gb_month: Price of extra storage per GB per month.

    Returns:
        A ``StorageOutlook``; its projection follows ``retention_days``, while the retention and
        buying answers compare against keeping everything.
    """
    common = dict(
        start=start,
        used_mb=used_mb,
        allocation_mb=allocation_mb,
        months=months,
        links_per_recipient=links_per_recipient,
        record_kb=record_kb,
        threshold=threshold,
    )
    lazy_plan = plan.lazy()
    projection = project_storage(
        lazy_plan, retention_days=retention_days, price_per_gb_month=price_per_gb_month, **common
    )
    keep_all = project_storage(
        lazy_plan, retention_days=None, price_per_gb_month=price_per_gb_month, **common
    )
    options = retention_options(lazy_plan, candidates=candidates, **common)
    shown, kept, opts = pl.collect_all([projection, keep_all, options])
    retention_needed = bool(kept.get_column("over_threshold").any())
    fitting = opts.filter(pl.col("under_threshold"))
    best = fitting.get_column("retention_days").max() if retention_needed else None
    return StorageOutlook(
        projection=shown,
        allocation_mb=allocation_mb,
        threshold=threshold,
        threshold_date=threshold_date(shown, allocation_mb=allocation_mb, threshold=threshold),
        peak_used_mb=float(shown.get_column("used_mb").max()),
        retention_days=None if best is None else float(best),
        retention_needed=retention_needed,
        extra_gb_needed=float(kept.get_column("extra_gb").max()),
        extra_cost=float(kept.get_column("extra_cost").sum()),
    )
