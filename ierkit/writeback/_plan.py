"""What a write-back would change: the summary diffed against the values the org holds now.

Only records whose six values differ are written (a null differs from a value; scores compare
at two decimals, as ``Number(8,2)`` stores them). Contacts and Leads are planned separately.
People with a summary the org does not hold (a deleted Contact) are left out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Final

import polars as pl

from ierkit import clock, schema, signal
from ierkit.orgs.base import Org
from ierkit.writeback._summary import SUMMARY_COLUMNS, SUMMARY_SCHEMA, summarise
from ierkit.writeback._tasks import missing_tasks

#: The tables written, in order: Contacts, then Leads.
TABLES: Final = ("contacts", "leads")

#: Changed records shown in a dry run, per table.
SAMPLE_SIZE: Final = 5

_LABELS: Final = {
    "engagement_last_open": "last open",
    "engagement_last_human_click": "last human click",
    "engagement_human_clicks_90d": "human clicks in 90 days",
    "engagement_score": "score",
    "engagement_last_link": "last link",
    "engagement_summary_as_of": "summary as of",
}


@dataclass(frozen=True)
class WritebackPlan:
    """What a write-back writes.

    Attributes:
        source: The org's label.
        as_of: The instant the summary describes.
        people: People with a summary, per table (those the org holds).
        changes: Per table: ``id``, the six new values and the six held now (``was_<name>``),
            only for records where they differ; sorted by highest score, then ``id``.
        tasks: Tasks to create (``ierkit.writeback.missing_tasks``); None when not asked for.
        names: Names of the people the sample shows, by Id.
    """

    source: str
    as_of: dt.datetime
    people: dict[str, int]
    changes: dict[str, pl.DataFrame]
    tasks: pl.DataFrame | None = None
    names: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> dict[str, int]:
        """Records that would change, per table."""
        return {t: frame.height for t, frame in self.changes.items()}

    def unchanged(self, table: str) -> int:
        """People of ``table`` whose values already match."""
        return self.people[table] - self.changed[table]

    def sample(self, size: int = SAMPLE_SIZE) -> list[str]:
        """The first changes of each table in words, e.g. ``Contact Ada Lovelace: score ...``."""
        lines = []
        for table, frame in self.changes.items():
            what = schema.table(table).sobject
            for row in frame.head(size).iter_rows(named=True):  # at most ``size`` rows
                said = [
                    f"{_LABELS[c]} {_word(row['was_' + c])} -> {_word(row[c])}"
                    for c in SUMMARY_COLUMNS
                    if c != "engagement_summary_as_of" and row["was_" + c] != row[c]
                ]
                name = self.names.get(row["id"]) or "(no name)"
                lines.append(f"{what} {name}: " + ("; ".join(said) or "summary date only"))
        return lines

    def __str__(self) -> str:
        lines = [f"Write-back plan for {self.source}, summary as of {_word(self.as_of)}:"]
        for table in self.changes:
            label = schema.table(table).sobject + "s"
            lines.append(
                f"  {label}: {self.changed[table]:,} to write, {self.unchanged(table):,} "
                f"unchanged (of {self.people[table]:,} with IERs)"
            )
        if self.tasks is not None:
            lines.append(f"  Tasks: {self.tasks.height:,} to create (one per person per day)")
        sample = self.sample()
        if sample:
            lines.append("  for example:")
            lines.extend(f"    {line}" for line in sample)
        return "\n".join(lines)


def _word(value: object) -> str:
    """A value in words: none, a UTC time to the minute, a score with two decimals."""
    if value is None:
        return "none"
    if isinstance(value, dt.datetime):
        return f"{clock.to_utc(value):%Y-%m-%d %H:%M} UTC"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def changed_records(org: Org, table: str, summary: pl.LazyFrame) -> pl.LazyFrame:
    """Records of ``table`` whose held values differ from ``summary`` (``summarise`` output).

    Returns:
        ``id``, the six new values, the six held now as ``was_<name>``; sorted by highest new
        score, then ``id``.
    """
    held = org.table(table).select("id", *(pl.col(c).alias(f"was_{c}") for c in SUMMARY_COLUMNS))
    differs = pl.any_horizontal(
        pl.col(c).round(2).ne_missing(pl.col(f"was_{c}").round(2))
        if c == "engagement_score"
        else pl.col(c).ne_missing(pl.col(f"was_{c}"))
        for c in SUMMARY_COLUMNS
    )
    return (
        summary.rename({"recipient_id": "id"})
        .join(held, on="id", how="inner")
        .filter(differs)
        .sort(["engagement_score", "id"], descending=[True, False])
    )


def read_afresh(org: Org) -> None:
    """Make ``org`` read its tables again: a write-back compares with what the org holds now.

    ``SalesforceOrg`` keeps the tables it pulled for the whole session (``refresh`` forgets
    them); without this a second run in one session would compare with values from before the
    first and write (and create Tasks) again. Orgs that read their tables on each call have
    nothing to forget.
    """
    refresh = getattr(org, "refresh", None)
    if callable(refresh):
        refresh()


def plan_writeback(
    org: Org,
    *,
    as_of: dt.datetime | None = None,
    params: signal.SignalParams | None = None,
    tasks: bool = False,
    summary: pl.LazyFrame | None = None,
) -> WritebackPlan:
    """Compute the summary and what writing it would change; nothing is written.

    Args:
        org: The org to write to.
        as_of: The instant the summary describes; the org's own (``Org.data_as_of``) when None.
        params: The signal's windows and weights; the defaults when None.
        tasks: Also plan the Tasks for human clicks (off by default: Tasks cost storage).
        summary: The summary at ``as_of`` when the caller has computed it already (from an
            org it has just read afresh); computed here when None.

    Returns:
        The plan; ``str(plan)`` is a readable summary with a sample.
    """
    if summary is None:
        read_afresh(org)
    end = clock.to_utc(as_of or org.data_as_of())
    if summary is None:
        summary = summarise(org, end, params).collect().lazy()
    people: dict[str, int] = {}
    changes: dict[str, pl.DataFrame] = {}
    names: dict[str, str] = {}
    for table in TABLES:
        if not org.has_table(table):
            people[table], changes[table] = 0, _empty_changes()
            continue
        rows = org.table(table)
        people[table] = int(
            summary.join(rows.select(recipient_id="id"), on="recipient_id", how="semi")
            .select(pl.len())
            .collect()
            .item()
        )
        changes[table] = changed_records(org, table, summary).collect()
        shown = changes[table].head(SAMPLE_SIZE).select("id")
        named = rows.join(shown.lazy(), on="id", how="semi").select(
            "id",
            name=pl.concat_str(["first_name", "last_name"], separator=" ", ignore_nulls=True),
        )
        names.update(dict(named.collect().iter_rows()))  # at most SAMPLE_SIZE rows
    planned = missing_tasks(org, end, params) if tasks else None
    return WritebackPlan(org.label, end, people, changes, planned, names)


def _empty_changes() -> pl.DataFrame:
    columns = {n: d for n, d in SUMMARY_SCHEMA.items() if n != "recipient_id"}
    return pl.DataFrame(
        schema={"id": pl.String, **columns, **{f"was_{n}": d for n, d in columns.items()}}
    )
