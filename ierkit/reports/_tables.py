"""The tables bundle the reports (and sync health, decision, storage) read, and its checks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from ierkit import clock, schema
from ierkit.errors import IerkitError
from ierkit.orgs.base import Org

#: Owner name shown for records whose owner is missing or not in ``users``.
NO_OWNER = "(no owner)"
#: Campaign name shown for sends without a campaign (triggered sends, or no campaign set).
NO_CAMPAIGN = "(no campaign)"
#: Segment value shown for recipients whose segment field is empty.
NO_SEGMENT = "(not set)"

#: Segment fields a summary may group by: present on both Contact and Lead.
SEGMENT_FIELDS = tuple(
    name
    for name in schema.CONTACTS.column_names
    if name in schema.LEADS.column_names
    and name not in {"id", "first_name", "last_name", "email", "owner_id"}
    and schema.CONTACTS.column(name).dtype == pl.String
)

_TABLE_FIELDS = {
    "iers": "individual_email_results",
    "links": "individual_links",
    "contacts": "contacts",
    "leads": "leads",
    "users": "users",
    "tasks": "tasks",
    "email_sends": "email_sends",
    "triggered_sends": "triggered_sends",
    "campaigns": "campaigns",
}


class ReportError(IerkitError, ValueError):
    """A report was asked for with parameters it cannot use; the message says which."""


def _empty(table_name: str) -> pl.LazyFrame:
    return schema.table(table_name).empty().lazy()


def _conform(table_name: str, frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Add the canonical columns ``frame`` lacks (as nulls) and cast it to the canonical schema."""
    lazy = frame.lazy()
    present = lazy.collect_schema()
    missing = [
        pl.lit(None, dtype=c.dtype).alias(c.name)
        for c in schema.table(table_name).columns
        if c.name not in present
    ]
    return schema.validate(table_name, lazy.with_columns(missing) if missing else lazy)


@dataclass(frozen=True)
class ReportTables:
    """The canonical tables the reports read, as LazyFrames (empty tables by default).

    Build it with ``from_org`` for an org, or ``of`` for inline frames (tests, notebooks).
    """

    iers: pl.LazyFrame = field(default_factory=lambda: _empty("individual_email_results"))
    links: pl.LazyFrame = field(default_factory=lambda: _empty("individual_links"))
    contacts: pl.LazyFrame = field(default_factory=lambda: _empty("contacts"))
    leads: pl.LazyFrame = field(default_factory=lambda: _empty("leads"))
    users: pl.LazyFrame = field(default_factory=lambda: _empty("users"))
    tasks: pl.LazyFrame = field(default_factory=lambda: _empty("tasks"))
    email_sends: pl.LazyFrame = field(default_factory=lambda: _empty("email_sends"))
    triggered_sends: pl.LazyFrame = field(default_factory=lambda: _empty("triggered_sends"))
    campaigns: pl.LazyFrame = field(default_factory=lambda: _empty("campaigns"))

    @classmethod
    def from_org(cls, org: Org) -> ReportTables:
        """The org's tables; a table the org does not hold (e.g. a partial snapshot) is empty."""
        return cls(
            **{
                attr: org.table(name) if org.has_table(name) else _empty(name)
                for attr, name in _TABLE_FIELDS.items()
            }
        )

    @classmethod
    def of(cls, **frames: pl.DataFrame | pl.LazyFrame) -> ReportTables:
        """Tables from partial frames: missing columns become nulls, types are made canonical.

        Args:
            **frames: Keyed by field name (``iers``, ``links``, ``contacts``, ...).

        Raises:
            ReportError: For a key that is not a field.
            SchemaError: When a given column has a type that cannot be cast.
        """
        unknown = sorted(set(frames) - set(_TABLE_FIELDS))
        if unknown:
            known = ", ".join(_TABLE_FIELDS)
            raise ReportError(f"unknown report tables {unknown}; known: {known}")
        return cls(**{k: _conform(_TABLE_FIELDS[k], v) for k, v in frames.items()})


def as_tables(source: ReportTables | Org) -> ReportTables:
    """The tables of a source: ``ReportTables`` as given, or read from an ``Org``."""
    if isinstance(source, ReportTables):
        return source
    if isinstance(source, Org):
        return ReportTables.from_org(source)
    raise ReportError(f"expected ReportTables or an Org, got {type(source).__name__}")


def _utc(instant: dt.datetime | dt.date, name: str) -> dt.datetime:
    """A UTC instant; a date means the start (00:00 UTC) of that day."""
    if isinstance(instant, dt.datetime):
        return clock.to_utc(instant)
    if isinstance(instant, dt.date):
        return dt.datetime.combine(instant, dt.time(), tzinfo=clock.UTC)
    raise ReportError(f"{name} must be a datetime or a date (UTC), got {instant!r}")


def _as_of(as_of: dt.datetime | dt.date) -> dt.datetime:
    """The report's "now": an instant, or a report date's end (``ierkit.clock.as_of_instant``)."""
    if isinstance(as_of, dt.date):
        return clock.as_of_instant(as_of)
    raise ReportError(f"as_of must be a datetime or a date (UTC), got {as_of!r}")


def _days(value: int | float | dt.timedelta, name: str) -> dt.timedelta:
    delta = value if isinstance(value, dt.timedelta) else dt.timedelta(days=value)
    if delta < dt.timedelta(0):
        raise ReportError(f"{name} must not be negative, got {value!r}")
    return delta


def _check_segment(name: str) -> None:
    if name not in SEGMENT_FIELDS:
        raise ReportError(
            f"segment field {name!r} is not a text field on both Contact and Lead; "
            f"choose one of: {', '.join(SEGMENT_FIELDS)}"
        )
