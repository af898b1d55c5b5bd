"""The plan of a cleanup: what it selects, counted per object, programme, month and send."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from ierkit import schema
from ierkit.cleanup._selection import (
    IERS,
    LINKS,
    CleanupCriteria,
    select_iers,
    select_links,
    selection_query,
)
from ierkit.orgs.base import Org
from ierkit.programmes import programme_expr
from ierkit.storage import storage_mb, storage_mb_expr


def _storage_mb(records: pl.Expr) -> pl.Expr:
    return storage_mb_expr(records).round(2)


@dataclass(frozen=True)
class CleanupPlan:
    """What a cleanup will archive and delete.

    Attributes:
        criteria: The selection.
        source: The org's label.
        counts: ``object`` (table), ``records``, ``storage_mb``; children first.
        by_programme: ``programme``, ``iers``, ``links``, ``storage_mb`` (orphans under
            ``"(orphaned link details)"``).
        by_month: ``month`` (first day, Date), ``iers``, ``links``, ``storage_mb``.
        by_send: ``send_id``, ``email_name``, ``date_sent``, ``iers``, ``links``: the sends whose
            IER-based reports change.
        impacts: Reports, related lists and roll-ups that change, in words.
        query: The selection as SOQL, per table.
    """

    criteria: CleanupCriteria
    source: str
    counts: pl.DataFrame
    by_programme: pl.DataFrame
    by_month: pl.DataFrame
    by_send: pl.DataFrame
    impacts: tuple[str, ...]
    query: dict[str, str]

    @property
    def records(self) -> dict[str, int]:
        """Records selected per table."""
        return dict(zip(self.counts["object"], self.counts["records"], strict=True))

    @property
    def total_records(self) -> int:
        """Records selected over both tables."""
        return int(self.counts["records"].sum())

    @property
    def storage_mb(self) -> float:
        """Data storage the cleanup frees, in MB (2 KB a record)."""
        return round(storage_mb(self.total_records), 2)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the run keeps it beside its ledger)."""
        return {
            "criteria": self.criteria.to_dict(),
            "source": self.source,
            "counts": self.counts.to_dicts(),
            "by_programme": self.by_programme.to_dicts(),
            "by_month": self.by_month.with_columns(pl.col("month").cast(pl.String)).to_dicts(),
            "by_send": self.by_send.with_columns(pl.col("date_sent").cast(pl.String)).to_dicts(),
            "impacts": list(self.impacts),
            "query": self.query,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleanupPlan:
        """The plan ``to_dict`` wrote."""
        return cls(
            criteria=CleanupCriteria.from_dict(data["criteria"]),
            source=data["source"],
            counts=pl.DataFrame(data["counts"], schema=_COUNTS_SCHEMA),
            by_programme=pl.DataFrame(data["by_programme"], schema=_BY_PROGRAMME_SCHEMA),
            by_month=pl.DataFrame(
                data["by_month"], schema={**_BY_MONTH_SCHEMA, "month": pl.String()}
            ).with_columns(pl.col("month").str.to_date("%Y-%m-%d")),
            by_send=pl.DataFrame(
                data["by_send"], schema={**_BY_SEND_SCHEMA, "date_sent": pl.String()}
            ).with_columns(pl.col("date_sent").str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z")),
            impacts=tuple(data["impacts"]),
            query=data["query"],
        )

    def __str__(self) -> str:
        c = self.criteria
        lines = [
            f"Cleanup plan for {self.source}: IERs sent before {c.cutoff:%Y-%m-%d %H:%M} UTC "
            f"(as of {c.as_of}, retention {c.retention_days} days)",
        ]
        if c.programmes is not None:
            lines.append(f"  programmes: {', '.join(c.programmes)}")
        if c.sends is not None:
            lines.append(f"  sends: {', '.join(c.sends)}")
        for row in self.counts.iter_rows(named=True):  # two rows: one per table
            lines.append(f"  {row['object']}: {row['records']:,} records, {row['storage_mb']:,} MB")
        lines.append(f"  storage freed: {self.storage_mb:,} MB (2 KB a record)")
        lines.append("  by month:")
        for row in self.by_month.iter_rows(named=True):  # one row per month
            lines.append(f"    {row['month']:%Y-%m}: {row['iers']:,} IERs, {row['links']:,} links")
        lines.append("  what changes:")
        lines.extend(f"    - {impact}" for impact in self.impacts)
        return "\n".join(lines)


_COUNTS_SCHEMA = pl.Schema({"object": pl.String, "records": pl.Int64, "storage_mb": pl.Float64})
_BY_PROGRAMME_SCHEMA = pl.Schema(
    {"programme": pl.String, "iers": pl.Int64, "links": pl.Int64, "storage_mb": pl.Float64}
)
_BY_MONTH_SCHEMA = pl.Schema(
    {"month": pl.Date, "iers": pl.Int64, "links": pl.Int64, "storage_mb": pl.Float64}
)
_BY_SEND_SCHEMA = pl.Schema(
    {
        "send_id": pl.String(),
        "email_name": pl.String(),
        "date_sent": schema.UTC_DATETIME,
        "iers": pl.Int64(),
        "links": pl.Int64(),
    }
)
ORPHANED_PROGRAMME = "(orphaned link details)"


def plan_cleanup(org: Org, criteria: CleanupCriteria) -> CleanupPlan:
    """Count what a cleanup selects, per object, programme, month and send; nothing changes.

    Args:
        org: The org to clean up.
        criteria: The selection (see ``cleanup_criteria``).

    Returns:
        The plan; ``str(plan)`` is a readable summary.
    """
    iers = select_iers(org, criteria).with_columns(
        programme=programme_expr("name"),
        send_id=pl.coalesce("email_send_id", "triggered_send_id"),
        month=pl.col("date_sent").dt.truncate("1mo").dt.date(),
    )
    links = select_links(org, criteria).with_columns(
        programme=pl.col("programme").fill_null(ORPHANED_PROGRAMME),
        month=pl.col("send_date").dt.truncate("1mo").dt.date(),
    )
    ier_groups = (
        iers.group_by("programme", "month", "send_id")
        .agg(
            iers=pl.len().cast(pl.Int64),
            email_name=pl.col("name").min(),
            date_sent=pl.col("date_sent").min(),
        )
        .collect()
    )
    link_groups = (
        links.group_by("programme", "month", "send_id").agg(links=pl.len().cast(pl.Int64)).collect()
    )
    groups = ier_groups.join(
        link_groups,
        on=["programme", "month", "send_id"],
        how="full",
        coalesce=True,
        nulls_equal=True,
    ).with_columns(pl.col("iers", "links").fill_null(0))

    def rollup(keys: list[str]) -> pl.DataFrame:
        return (
            groups.group_by(keys)
            .agg(pl.col("iers", "links").sum())
            .with_columns(storage_mb=_storage_mb(pl.col("iers") + pl.col("links")))
            .sort(keys, nulls_last=True)
        )

    n_iers, n_links = int(groups["iers"].sum()), int(groups["links"].sum())
    counts = pl.DataFrame(
        {"object": [LINKS, IERS], "records": [n_links, n_iers]}, schema_overrides=_COUNTS_SCHEMA
    ).with_columns(storage_mb=_storage_mb(pl.col("records")))
    by_send = (
        groups.filter(pl.col("send_id").is_not_null())
        .group_by("send_id")
        .agg(
            pl.col("email_name").min(),
            pl.col("date_sent").min(),
            pl.col("iers", "links").sum(),
        )
        .sort("date_sent", "send_id")
        .select(list(_BY_SEND_SCHEMA))
        .cast(_BY_SEND_SCHEMA)
    )
    # Distinct recipients: memory grows with the contacts and leads, not with the IERs.
    contacts, leads = (
        iers.select(
            pl.col("contact_id").drop_nulls().n_unique(), pl.col("lead_id").drop_nulls().n_unique()
        )
        .collect()
        .row(0)
    )
    orphans = int(groups.filter(pl.col("programme") == ORPHANED_PROGRAMME)["links"].sum())
    cutoff = f"{criteria.cutoff:%Y-%m-%d}"
    impacts = (
        f"IER-based reports on sends before {cutoff} lose {n_iers:,} IERs and "
        f"{n_links - orphans:,} link details across {by_send.height:,} sends; ierkit reads them "
        f"back from the archive with source '<source>+archive:<archive folder>'.",
        f"Related lists: {contacts:,} contacts and {leads:,} leads lose Individual Email Results.",
        f"{orphans:,} link details already orphaned by earlier deletes are archived and deleted.",
        "Email Send and Triggered Send totals (sent, opens, clicks, bounces, unsubscribes) stay: "
        "Marketing Cloud Connect writes them on the send; they are not roll-ups of IERs.",
        "Roll-up summary fields, flows, triggers and reports your org built on Individual Email "
        "Results or Individual Link Level Details recalculate or lose rows: ierkit cannot see "
        "them, check them in Setup before executing.",
    )
    return CleanupPlan(
        criteria=criteria,
        source=org.label,
        counts=counts,
        by_programme=rollup(["programme"]).cast(_BY_PROGRAMME_SCHEMA),
        by_month=rollup(["month"]).filter(pl.col("month").is_not_null()).cast(_BY_MONTH_SCHEMA),
        by_send=by_send,
        impacts=impacts,
        query=selection_query(criteria),
    )
