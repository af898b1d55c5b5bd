"""A notebook's session: its parameters read, one cached org per source, the report date.

The notebooks stay thin: parameters, a ``Session``, calls into the package, tables and charts.
A ``Session`` reads lazily: ``Session.tables`` holds LazyFrames scanned from the org (a local
org's Parquet files; a Salesforce org's tables pulled once into its Parquet cache), so a
notebook reads a table only when a report it runs needs it, and only the columns and rows that
report asks for. Widgets that redraw a view on a slider tick re-run that view's plan.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ierkit import _files, clock, display, present
from ierkit.errors import IerkitError
from ierkit.orgs import LocalOrg, Org, default_as_of, open_org
from ierkit.reports import ReportTables


class ParameterError(IerkitError):
    """A notebook parameter has a value the notebook cannot use; the message names it."""


def report_date(as_of: str | dt.date | None, source: str) -> dt.date:
    """The report date from a notebook parameter.

    Args:
        as_of: ``YYYY-MM-DD``, a date, or empty/None for the default.
        source: The source; the default is the day of its own instant
            (``ierkit.orgs.default_as_of``).

    Raises:
        ParameterError: When ``as_of`` is not a date.
    """
    try:
        parsed = clock.parse_as_of(as_of, name="parameter as_of")
    except clock.ClockError as error:
        raise ParameterError(str(error)) from None
    if parsed is None:
        return default_as_of(str(source))
    if isinstance(parsed, dt.datetime):
        raise ParameterError(f"parameter as_of: {as_of!r} is a time; give a date (YYYY-MM-DD)")
    return parsed


def list_parameter(value: str) -> list[str] | None:
    """A comma-separated parameter as a list of its non-empty items; None when it has none."""
    return [item.strip() for item in value.split(",") if item.strip()] or None


@functools.cache
def cached_org(source: str) -> Org:
    """The org of a source, opened once per kernel."""
    return open_org(source)


@functools.cache
def _cached_tables(source: str) -> ReportTables:
    # Lazy scans of the org's tables: nothing is read until a report collects its plan.
    return ReportTables.from_org(cached_org(source))


@dataclass(frozen=True)
class Session:
    """One notebook's data: the org, its tables (lazy scans), the report date, how it shows.

    Attributes:
        source: The source, as the ``source`` parameter names it.
        day: The report date.
        timezone: The zone the report's times are shown in (IANA name).
        tables_dir: Where the full tables of cut tables go as CSV; None writes none.
    """

    source: str
    day: dt.date
    timezone: str = "UTC"
    tables_dir: Path | None = None

    @classmethod
    def open(
        cls,
        source: str,
        as_of: str | dt.date | None = None,
        *,
        timezone: str = "UTC",
        tables_dir: str | Path | None = None,
    ) -> Session:
        """Open the source (cached per kernel) for a report dated ``as_of``.

        Args:
            source: ``demo``, ``salesforce`` or a folder of Parquet tables.
            as_of: The report date (``YYYY-MM-DD``); empty: the source's own date.
            timezone: The zone times are shown in (notebook parameter ``timezone``).
            tables_dir: Folder for the full tables as CSV (notebook parameter
                ``tables_dir``); empty: none are written.

        Raises:
            ParameterError: A date or zone the notebook cannot use.
        """
        try:
            present.zone(timezone or "UTC")
        except present.PresentError as error:
            raise ParameterError(f"parameter timezone: {error}") from None
        folder = Path(tables_dir).expanduser() if tables_dir else None
        return cls(str(source), report_date(as_of, str(source)), timezone or "UTC", folder)

    @property
    def org(self) -> Org:
        """The org (cached)."""
        return cached_org(self.source)

    @property
    def tables(self) -> ReportTables:
        """The org's tables as LazyFrames scanned from the org (built once per kernel)."""
        return _cached_tables(self.source)

    @property
    def as_of(self) -> dt.datetime:
        """The end of the report date, UTC."""
        return clock.end_of_day(self.day)

    @property
    def look(self) -> present.Look:
        """How this report shows tables: its zone, the org's record links, where CSVs go."""
        return report_look(self.org, timezone=self.timezone, tables_dir=self.tables_dir)

    def header(self, title: str) -> None:
        """Show which data and which date a notebook describes."""
        display.header(title, self.source, str(self.day), timezone=self.timezone)

    def show(
        self, frame: pl.DataFrame | pl.LazyFrame, *, name: str, title: str | None = None
    ) -> None:
        """Show a report frame as a table for people (full table as ``<name>.csv`` if cut)."""
        display.show(frame, look=self.look, name=name, title=title)


def report_look(
    org: Org, *, timezone: str = "UTC", tables_dir: str | Path | None = None
) -> present.Look:
    """How a report on ``org`` shows tables: zone, the org's record links, where CSVs go.

    Raises:
        ParameterError: ``timezone`` is not an IANA zone name.
    """
    try:
        return present.Look(
            timezone=timezone or "UTC",
            instance_url=org.instance_url,
            rows=display.SHOW_ROWS,
            csv_dir=Path(tables_dir).expanduser() if tables_dir else None,
        )
    except present.PresentError as error:
        raise ParameterError(f"parameter timezone: {error}") from None


def outputs_dir() -> Path:
    """Where notebooks write run results.

    ``$IERKIT_OUTPUTS_DIR`` when set, else the project's ``outputs/``.
    """
    configured = os.environ.get("IERKIT_OUTPUTS_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path(__file__).resolve().parent.parent / "outputs"


def cleanup_target(session: Session, *, execute: bool) -> Org:
    """The org a cleanup notebook works on.

    An executed cleanup on the demo works on a copy in ``outputs/demo-cleanup-org`` (made on
    first use), so the shared demo that every other notebook reads is never changed.
    """
    if session.source != "demo" or not execute:
        return session.org
    demo_org = session.org
    if not isinstance(demo_org, LocalOrg):
        raise ParameterError(f"source 'demo' opened {demo_org.label}, not a local folder")
    copy = outputs_dir() / "demo-cleanup-org"
    if not copy.is_dir():
        staging = copy.with_name(copy.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(demo_org.path, staging)
        _files.replace_folder(staging, copy)
    return LocalOrg(copy)
