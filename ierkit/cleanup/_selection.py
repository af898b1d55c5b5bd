"""What a cleanup selects: the criteria, the IERs and link details they take, and the SOQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from ierkit import clock, schema
from ierkit.archive import SALESFORCE_EARLIEST
from ierkit.cleanup._errors import CleanupError
from ierkit.orgs.base import Org
from ierkit.programmes import programme_expr

IERS = schema.INDIVIDUAL_EMAIL_RESULTS.name
LINKS = schema.INDIVIDUAL_LINKS.name

#: The archive's hive partition columns.
PARTITION_KEYS = ("year", "month")


@dataclass(frozen=True)
class CleanupCriteria:
    """What a cleanup selects.

    Attributes:
        retention_days: IERs sent at least this many days before ``as_of`` are selected.
        as_of: The day the retention window ends on; the cutoff is its midnight UTC minus
            ``retention_days``.
        programmes: Only IERs whose email name starts with one of these programmes
            (``"<Programme> - <detail>"``); all programmes when None.
        sends: Only IERs of these Email Send or Triggered Send Ids; all sends when None.
        include_orphans: Also select link details whose IER is already gone.
    """

    retention_days: int
    as_of: dt.date
    programmes: tuple[str, ...] | None = None
    sends: tuple[str, ...] | None = None
    include_orphans: bool = True

    def __post_init__(self) -> None:
        if self.retention_days < 0:
            raise CleanupError(f"retention days must be 0 or more, not {self.retention_days}")
        # Salesforce stores no date before 1700: a cutoff before it selects nothing real, and
        # a retention of millions of days would not be a date at all.
        most = (self.as_of - SALESFORCE_EARLIEST.date()).days
        if self.retention_days > most:
            raise CleanupError(
                f"retention days {self.retention_days:,} put the cutoff before "
                f"{SALESFORCE_EARLIEST:%Y-%m-%d}, the earliest date Salesforce stores: use at "
                f"most {most:,} days with as-of {self.as_of}"
            )

    @property
    def cutoff(self) -> dt.datetime:
        """IERs sent before this instant (UTC) are selected."""
        midnight = dt.datetime.combine(self.as_of, dt.time(), tzinfo=clock.UTC)
        return midnight - dt.timedelta(days=self.retention_days)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for the ledger and the manifest."""
        return {
            "retention_days": self.retention_days,
            "as_of": self.as_of.isoformat(),
            "cutoff": self.cutoff.isoformat(),
            "programmes": list(self.programmes) if self.programmes is not None else None,
            "sends": list(self.sends) if self.sends is not None else None,
            "include_orphans": self.include_orphans,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleanupCriteria:
        """The criteria ``to_dict`` wrote."""
        return cls(
            retention_days=int(data["retention_days"]),
            as_of=dt.date.fromisoformat(data["as_of"]),
            programmes=tuple(data["programmes"]) if data.get("programmes") is not None else None,
            sends=tuple(data["sends"]) if data.get("sends") is not None else None,
            include_orphans=bool(data.get("include_orphans", True)),
        )


def cleanup_criteria(
    retention_days: int,
    *,
    as_of: dt.date | None = None,
    programmes: Sequence[str] | None = None,
    sends: Sequence[str] | None = None,
    include_orphans: bool = True,
) -> CleanupCriteria:
    """Criteria with ``as_of`` defaulting to today (UTC) and filters sorted and de-duplicated."""
    return CleanupCriteria(
        retention_days=retention_days,
        as_of=as_of or clock.now().date(),
        programmes=tuple(sorted(set(programmes))) if programmes is not None else None,
        sends=tuple(sorted(set(sends))) if sends is not None else None,
        include_orphans=include_orphans,
    )


def partition_columns(send_date: pl.Expr) -> list[pl.Expr]:
    """``year`` and ``month`` (Int32) of ``send_date``: a record's archive partition."""
    return [
        send_date.dt.year().cast(pl.Int32).alias("year"),
        send_date.dt.month().cast(pl.Int32).alias("month"),
    ]


def select_iers(org: Org, criteria: CleanupCriteria) -> pl.LazyFrame:
    """The IERs a cleanup selects, in the canonical schema.

    IERs without a send date are never selected: their age is unknown.
    """
    keep = pl.col("date_sent") < criteria.cutoff
    if criteria.programmes is not None:
        keep &= programme_expr("name").is_in(list(criteria.programmes))
    if criteria.sends is not None:
        sends = list(criteria.sends)
        keep &= pl.col("email_send_id").is_in(sends) | pl.col("triggered_send_id").is_in(sends)
    return org.table(IERS).filter(keep)


def select_links(
    org: Org, criteria: CleanupCriteria, *, parents: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """The link details a cleanup selects: children of the selected IERs, and orphans.

    Args:
        org: The org.
        criteria: The selection.
        parents: The selected IERs (at least ``id``, ``name``, ``date_sent``, ``email_send_id``,
            ``triggered_send_id``); ``select_iers(org, criteria)`` when None. A run passes its
            archived IERs, so the link details archived are exactly the children of the IERs
            archived.

    Returns:
        Canonical link columns plus ``send_date`` (the parent's send date; for an orphan, the
        link's own created date, its send being gone), ``programme``, ``send_id`` (null for
        orphans) and ``orphaned``.
    """
    links = org.table(LINKS)
    if parents is None:
        parents = select_iers(org, criteria)
    parent_columns = parents.select(
        pl.col("id").alias("_parent"),
        pl.col("date_sent").alias("send_date"),
        programme_expr("name"),
        pl.coalesce("email_send_id", "triggered_send_id").alias("send_id"),
    )
    # Link details are far fewer than IERs: hash them, stream the IERs (memory stays flat).
    children = links.join(
        parent_columns,
        left_on="individual_email_result_id",
        right_on="_parent",
        how="inner",
        build_side="force_left",
    ).with_columns(orphaned=pl.lit(False))
    if not criteria.include_orphans:
        return children
    orphans = orphaned_links(org).with_columns(
        send_date=pl.coalesce("created_date", "last_clicked"),
        programme=pl.lit(None, pl.String),
        send_id=pl.lit(None, pl.String),
        orphaned=pl.lit(True),
    )
    return pl.concat([children, orphans.select(children.collect_schema().names())])


def orphaned_links(org: Org) -> pl.LazyFrame:
    """Link details whose IER is gone: the lookup is empty (Salesforce clears it on delete) or
    points to an IER the org no longer has (a local org does not clear it)."""
    links = org.table(LINKS)
    pointing = links.filter(pl.col("individual_email_result_id").is_not_null())
    # Parents that exist, found by hashing the link details' lookups and streaming the IERs.
    existing = (
        org.table(IERS)
        .select("id")
        .join(
            pointing.select("individual_email_result_id"),
            left_on="id",
            right_on="individual_email_result_id",
            how="semi",
            build_side="force_right",
        )
    )
    dangling = pointing.join(
        existing,
        left_on="individual_email_result_id",
        right_on="id",
        how="anti",
        build_side="force_right",
    )
    return pl.concat([links.filter(pl.col("individual_email_result_id").is_null()), dangling])


def selection_query(criteria: CleanupCriteria) -> dict[str, str]:
    """The selection written as SOQL, for the manifest (what a Salesforce admin would run)."""
    ier, link = schema.INDIVIDUAL_EMAIL_RESULTS, schema.INDIVIDUAL_LINKS

    def api(table: schema.Table, name: str) -> str:
        return str(table.column(name).api_name)

    where = [f"{api(ier, 'date_sent')} < {criteria.cutoff:%Y-%m-%dT%H:%M:%SZ}"]
    if criteria.programmes is not None:
        likes = " OR ".join(f"Name LIKE '{p} - %'" for p in criteria.programmes)
        where.append(f"({likes})")
    if criteria.sends is not None:
        ids = ", ".join(f"'{s}'" for s in criteria.sends)
        where.append(
            f"({api(ier, 'email_send_id')} IN ({ids}) OR "
            f"{api(ier, 'triggered_send_id')} IN ({ids}))"
        )
    ier_fields = ", ".join(_own_fields(ier))
    link_fields = ", ".join(_own_fields(link))
    ier_query = f"SELECT {ier_fields} FROM {ier.sobject} WHERE {' AND '.join(where)}"
    lookup = api(link, "individual_email_result_id")
    link_query = f"SELECT {link_fields} FROM {link.sobject} WHERE {lookup} IN (<selected IERs>)"
    if criteria.include_orphans:
        link_query += f" OR {lookup} = null"
    return {IERS: ier_query, LINKS: link_query}


def _own_fields(table: schema.Table) -> list[str]:
    """The table's stored fields that are its own (not a relationship path such as
    ``Account.Name``)."""
    return [c.api_name for c in table.stored_columns if c.api_name and "." not in c.api_name]
