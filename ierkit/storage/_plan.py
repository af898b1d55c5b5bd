"""Send plans: the plan frame, its normalisation, and the plan that repeats the org's history.

A send plan has one row per programme (columns and types in ``PLAN_COLUMNS``, meanings in the
``ierkit.storage`` docstring). ``plan_from_history`` reads it off the IERs already written,
``apply_decisions`` changes it as ``ierkit.decision.decide`` recommends; the projection
(``ierkit.storage._projection``) takes it from there.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import polars as pl

from ierkit import clock
from ierkit._tracking import SKIP, GroupBy, ier_rows, unknown_grouping
from ierkit.orgs.base import Org
from ierkit.programmes import PROGRAMME_SEPARATOR
from ierkit.reports import ReportTables, as_tables
from ierkit.storage._records import DAYS_PER_MONTH, RECORD_KB, StorageError, storage_mb_expr

#: Columns of a send plan and their types (see the ``ierkit.storage`` docstring).
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


def plan_from_history(
    source: ReportTables | Org,
    *,
    as_of: dt.datetime,
    months: float = 3,
    group_by: GroupBy = "email_name",
    separator: str = PROGRAMME_SEPARATOR,
    record_kb: float = RECORD_KB,
) -> pl.LazyFrame:
    """A send plan (``PLAN_COLUMNS``) that repeats the last ``months`` of sends.

    Per programme: ``sends_per_month`` = sends (send and batch) in the last ``months`` months /
    ``months``; ``list_size`` = IERs per send; ``links_per_recipient`` = link details per IER;
    ``tracked`` True; ``retention_days`` null; ``tracking_mb_now`` = MB of the programme's IERs
    and link details in the org today (all history up to ``as_of``).

    Args:
        source: The canonical tables, or an org to read them from.
        as_of: The instant the plan starts from (UTC; naive means UTC).
        months: Months of history the cadence and list size come from.
        group_by: How sends form programmes (see ``ierkit.decision.programme_measures``).
        separator: Separator of the programme in the email name.
        record_kb: Storage per IER and per link detail.

    Returns:
        The plan, one row per programme seen in the last ``months`` months, sorted by programme.

    Raises:
        StorageError: For months that are not positive or an unknown ``group_by``.
    """
    as_of = clock.to_utc(as_of)
    if months <= 0:
        raise StorageError(f"months must be positive, got {months}")
    problem = unknown_grouping(group_by)
    if problem is not None:
        raise StorageError(problem)
    tables = as_tables(source)
    since = as_of - dt.timedelta(days=months * DAYS_PER_MONTH)
    rows = ier_rows(tables, as_of=as_of, since=None, group_by=group_by, separator=separator)
    recent = pl.col("date_sent") > since
    return (
        rows.group_by("programme")
        .agg(
            sends=pl.col("send_key").filter(recent).n_unique(),
            iers=recent.sum(),
            links=pl.col("links").filter(recent).sum(),
            records_now=pl.len() + pl.col("links").sum(),
        )
        .filter(pl.col("iers") > 0)
        .select(
            "programme",
            list_size=(pl.col("iers") / pl.col("sends")).cast(pl.Float64),
            sends_per_month=(pl.col("sends") / months).cast(pl.Float64),
            tracked=pl.lit(True),
            links_per_recipient=(pl.col("links") / pl.col("iers")).cast(pl.Float64),
            retention_days=pl.lit(None, pl.Float64),
            tracking_mb_now=storage_mb_expr(
                pl.col("records_now").cast(pl.Float64), record_kb=record_kb
            ),
        )
        .sort("programme")
    )


def apply_decisions(plan: pl.LazyFrame | pl.DataFrame, decisions: pl.LazyFrame) -> pl.LazyFrame:
    """The plan as it would be if the decisions were followed.

    ``skip`` turns tracking off; ``track with retention`` sets the plan's ``retention_days``;
    ``track`` and ``too new`` leave the row as it is. Programmes are matched by name.

    Args:
        plan: A send plan (``PLAN_COLUMNS``).
        decisions: ``ierkit.decision.decide`` (or ``recommend``) output: ``programme``,
            ``recommendation``, ``retention_days``.

    Returns:
        The plan, sorted by programme.
    """
    chosen = decisions.select(
        "programme", "recommendation", decided_retention=pl.col("retention_days").cast(pl.Float64)
    )
    return (
        normalize_plan(plan)
        .join(chosen, on="programme", how="left")
        .with_columns(
            tracked=pl.col("tracked") & (pl.col("recommendation").fill_null("") != SKIP),
            retention_days=pl.coalesce("decided_retention", "retention_days"),
        )
        .select(PLAN_COLUMNS.names())
        .sort("programme")
    )


def plan_with_programme(
    plan: pl.DataFrame | pl.LazyFrame,
    *,
    programme: str,
    list_size: float,
    sends_per_month: float,
) -> pl.DataFrame:
    """A send plan with one more programme (a what-if), both in ``PLAN_COLUMNS``."""
    extra = pl.DataFrame(
        {
            "programme": [programme],
            "list_size": [float(list_size)],
            "sends_per_month": [float(sends_per_month)],
        }
    )
    return pl.concat([normalize_plan(plan).collect(), normalize_plan(extra).collect()])
