"""The projection: a send plan's storage month by month, when it fills, what retention avoids it.

One vectorised polars query (programmes x months cross join), so a plan of thousands of
programmes projects in well under a second and widgets can recompute it live. The options the
projection functions share travel together as one ``ProjectionOptions``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import Final

import polars as pl

from ierkit.storage._plan import normalize_plan
from ierkit.storage._records import (
    DAYS_PER_MONTH,
    MB_PER_GB,
    RECORD_KB,
    StorageError,
    storage_mb_expr,
)

#: Share of the allocation the projection warns at by default.
DEFAULT_THRESHOLD: Final = 0.9
#: Months projected by default.
DEFAULT_MONTHS: Final = 24
#: Price of extra data storage per GB per month. A commonly quoted list price (USD 125 a month
#: per 500 MB block), not confirmed by Salesforce documentation: pass the contract's price.
DEFAULT_PRICE_PER_GB_MONTH: Final = 250.0
#: Retention windows (days) the outlook tries when looking for one that stays under the threshold.
DEFAULT_RETENTION_CANDIDATES: Final = (30, 60, 90, 180, 270, 365, 540, 730)


@dataclass(frozen=True)
class ProjectionOptions:
    """How a send plan is projected; one object for every projection function.

    Each function reads the fields it needs: ``project_by_programme`` the first four,
    ``project_storage`` also ``threshold`` and ``price_per_gb_month``, ``retention_options``
    ``candidates`` (in place of ``retention_days``), ``storage_outlook`` all of them.

    Attributes:
        months: Months projected after month 0.
        retention_days: Retention window for programmes whose plan row has none; None keeps
            everything.
        links_per_recipient: Link details per recipient where the plan has none.
        record_kb: Size of an IER and of a link detail.
        threshold: Share of the allocation that counts as full (0.9: 90%).
        price_per_gb_month: Price of extra storage per GB per month.
        candidates: Retention windows (days) tried for one that keeps storage under the
            threshold.

    Raises:
        StorageError: For a negative number of months.
    """

    months: int = DEFAULT_MONTHS
    retention_days: float | None = None
    links_per_recipient: float = 0.0
    record_kb: float = RECORD_KB
    threshold: float = DEFAULT_THRESHOLD
    price_per_gb_month: float = DEFAULT_PRICE_PER_GB_MONTH
    candidates: tuple[float, ...] = DEFAULT_RETENTION_CANDIDATES

    def __post_init__(self) -> None:
        if self.months < 0:
            raise StorageError(f"months must not be negative, got {self.months}")


def _month_frame(months: int) -> pl.LazyFrame:
    return pl.LazyFrame({"month": pl.int_range(0, months + 1, dtype=pl.Int32, eager=True)})


def project_by_programme(
    plan: pl.LazyFrame | pl.DataFrame,
    *,
    start: dt.date,
    options: ProjectionOptions = ProjectionOptions(),
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
        plan: The send plan (see the ``ierkit.storage`` docstring).
        start: The first day of the projection (month 0).
        options: ``months``, ``retention_days``, ``links_per_recipient`` and ``record_kb``.

    Returns:
        One row per programme and month (0..months), sorted by programme and month:
        ``programme``, ``month`` (Int32), ``month_start`` (Date), ``written_records`` (this
        month), ``kept_iers``, ``kept_links``, ``kept_records`` and ``kept_mb`` (all Float64,
        ``kept_mb`` includes today's records still kept).
    """
    normalized = normalize_plan(plan, links_per_recipient=options.links_per_recipient)
    return _kept(
        normalized,
        keys=["programme"],
        start=start,
        months=options.months,
        retention_days=options.retention_days,
        record_kb=options.record_kb,
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
    options: ProjectionOptions = ProjectionOptions(),
) -> pl.LazyFrame:
    """The org's used data storage month by month under a send plan.

    Used storage at month m = ``used_mb`` (today) - the plan's ``tracking_mb_now`` + what
    ``project_by_programme`` keeps at month m. Storage other than the plan's IERs and links is
    taken to stay as it is.

    Args:
        plan: The send plan (see the ``ierkit.storage`` docstring).
        start: The first day of the projection (month 0, today).
        used_mb: Data storage in use today (``StorageAllocation.used_mb``).
        allocation_mb: The org's allocation (``StorageAllocation.max_mb``).
        options: Those of ``project_by_programme``, plus ``threshold`` and
            ``price_per_gb_month``.

    Returns:
        One row per month 0..months, sorted by month: ``month`` (Int32), ``month_start`` (Date),
        ``tracking_mb`` (the plan's IERs and links), ``used_mb``, ``allocation_mb``,
        ``used_share``, ``over_threshold`` (Boolean), ``extra_gb`` (storage to buy to stay at the
        threshold) and ``extra_cost`` (that month's price of it).
    """
    by_programme = project_by_programme(plan, start=start, options=options)
    now_mb = normalize_plan(plan).select(pl.col("tracking_mb_now").sum())
    return _used_by_month(
        by_programme.group_by("month", "month_start").agg(tracking_mb=pl.col("kept_mb").sum()),
        now_mb,
        used_mb=used_mb,
        allocation_mb=allocation_mb,
        threshold=options.threshold,
        price_per_gb_month=options.price_per_gb_month,
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
    month_start: dt.date = row["month_start"]
    if row["prev_used"] is None:
        return month_start
    prev_used: float = row["prev_used"]
    prev_start: dt.date = row["prev_start"]
    fraction = (limit - prev_used) / (row["used_mb"] - prev_used)
    days = (month_start - prev_start).days
    return prev_start + dt.timedelta(days=math.ceil(fraction * days))


def retention_options(
    plan: pl.LazyFrame | pl.DataFrame,
    *,
    start: dt.date,
    used_mb: float,
    allocation_mb: float,
    options: ProjectionOptions = ProjectionOptions(),
) -> pl.LazyFrame:
    """Peak used storage over the horizon for each candidate retention window.

    Each of ``options.candidates`` applies to the programmes whose plan row has no
    ``retention_days`` (``options.retention_days`` is not used); one query (candidates x
    programmes x months).

    Returns:
        One row per candidate, shortest first: ``retention_days`` (Float64), ``peak_used_mb``,
        ``peak_share`` and ``under_threshold`` (Boolean: the peak stays below the threshold).
    """
    cands = pl.LazyFrame(
        {"candidate": [float(c) for c in options.candidates]}, schema={"candidate": pl.Float64}
    )
    base = normalize_plan(plan, links_per_recipient=options.links_per_recipient)
    now_mb = float(base.select(pl.col("tracking_mb_now").sum()).collect().item() or 0.0)
    expanded = base.join(cands, how="cross").with_columns(
        retention_days=pl.col("retention_days").fill_null(pl.col("candidate"))
    )
    projected = _kept(
        expanded,
        keys=["candidate", "programme"],
        start=start,
        months=options.months,
        retention_days=None,
        record_kb=options.record_kb,
    )
    limit = options.threshold * allocation_mb
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


def _number(value: object) -> float:
    """A number a polars aggregate returned (typed loosely by polars) as a float."""
    if not isinstance(value, int | float):
        raise StorageError(f"expected a number from the projection, got {value!r}")
    return float(value)


def storage_outlook(
    plan: pl.LazyFrame | pl.DataFrame,
    *,
    start: dt.date,
    used_mb: float,
    allocation_mb: float,
    options: ProjectionOptions = ProjectionOptions(),
) -> StorageOutlook:
    """Project a plan and answer: when is storage full, what retention avoids it, what buying costs.

    Args:
        plan: The send plan (see the ``ierkit.storage`` docstring).
        start: The first day of the projection (today).
        used_mb: Data storage in use today.
        allocation_mb: The org's allocation.
        options: All of them; ``retention_days`` is the retention applied in the projection
            shown (None: keep everything), ``candidates`` the windows tried for
            ``StorageOutlook.retention_days``.

    Returns:
        A ``StorageOutlook``; its projection follows ``options.retention_days``, while the
        retention and buying answers compare against keeping everything.
    """
    lazy_plan = plan.lazy()
    keep_everything = dataclasses.replace(options, retention_days=None)
    projection, keep_all = (
        project_storage(
            lazy_plan, start=start, used_mb=used_mb, allocation_mb=allocation_mb, options=chosen
        )
        for chosen in (options, keep_everything)
    )
    candidates = retention_options(
        lazy_plan, start=start, used_mb=used_mb, allocation_mb=allocation_mb, options=options
    )
    shown, kept, opts = pl.collect_all([projection, keep_all, candidates])
    retention_needed = bool(kept.get_column("over_threshold").any())
    fitting = opts.filter(pl.col("under_threshold"))
    best = fitting.get_column("retention_days").max() if retention_needed else None
    threshold = options.threshold
    return StorageOutlook(
        projection=shown,
        allocation_mb=allocation_mb,
        threshold=threshold,
        threshold_date=threshold_date(shown, allocation_mb=allocation_mb, threshold=threshold),
        peak_used_mb=_number(shown.get_column("used_mb").max()),
        retention_days=None if best is None else _number(best),
        retention_needed=retention_needed,
        extra_gb_needed=_number(kept.get_column("extra_gb").max()),
        extra_cost=_number(kept.get_column("extra_cost").sum()),
    )
