"""The org interface: where every table ierkit reads comes from, and where deletes go."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

from ierkit import schema
from ierkit.errors import IerkitError


class OrgError(IerkitError):
    """An org cannot hand over a table or carry out a request; the message says which and why."""


class OrgUnavailableError(OrgError):
    """The org did not answer a request after its retries (a server error, a dropped connection).

    The request may or may not have been carried out: only the org can tell.
    """


# Columns of the frame that ``Org.delete`` returns: one row per requested Id.
DELETE_RESULT_SCHEMA = pl.Schema({"id": pl.String, "success": pl.Boolean, "error": pl.String})

# Columns of the frame that ``Org.update`` and ``Org.insert`` return: one row per record given,
# in the order given; for an insert ``id`` is the new record's Id (null when it failed).
WRITE_RESULT_SCHEMA = DELETE_RESULT_SCHEMA


@dataclass(frozen=True)
class StorageLimits:
    """Data storage as the org reports it (REST ``/limits`` ``DataStorageMB``)."""

    max_mb: float
    remaining_mb: float

    @property
    def used_mb(self) -> float:
        """Storage in use."""
        return self.max_mb - self.remaining_mb


class Org(abc.ABC):
    """Something that hands over the canonical tables and can delete records by Id.

    Two implementations: ``LocalOrg`` (a folder of Parquet tables) and ``SalesforceOrg``.
    Everything downstream takes an ``Org`` and works on either.
    """

    #: Short human-readable description of where the data comes from, for report headers.
    label: str = "org"

    #: Whether the org answers describe calls (objects, fields, page layouts). The describe
    #: methods below are optional capabilities: an org without them says "cannot tell" (None).
    can_describe: bool = False

    @abc.abstractmethod
    def table(self, name: str) -> pl.LazyFrame:
        """One canonical table (see ``ierkit.schema.TABLES``) as a LazyFrame in its schema."""

    @abc.abstractmethod
    def has_table(self, name: str) -> bool:
        """Whether the org holds the table (a snapshot may hold only some)."""

    @abc.abstractmethod
    def delete(self, table_name: str, ids: Iterable[str], *, hard: bool = False) -> pl.DataFrame:
        """Delete records of one table by Id.

        Args:
            table_name: Canonical table name.
            ids: Record Ids to delete.
            hard: Skip the Recycle Bin (Salesforce hardDelete); a local org ignores it.

        Returns:
            One row per requested Id with ``id``, ``success`` and ``error`` (null on success).
        """

    def update(
        self,
        table_name: str,
        records: pl.DataFrame,
        *,
        on_submit: Callable[[str], None] | None = None,
    ) -> pl.DataFrame:
        """Set fields of existing records by Id, in one request (callers chunk by
        ``write_batch_size``).

        Args:
            table_name: Canonical table name.
            records: An ``id`` column and the canonical columns to set; a null clears the field.
            on_submit: Called with a reference to the request (a Bulk job Id) once the org has
                it and before it is carried out, so a ledger can record it: after a crash,
                ``finish_write`` collects that request's results instead of sending it again.
                An org whose write is a single atomic step never calls it.

        Returns:
            One row per record given, in order, with ``id``, ``success`` and ``error`` (null on
            success; Salesforce's ``CODE:message:fields`` otherwise). Failures do not raise.

        Raises:
            OrgError: When the org cannot write at all (an archive, a read-only source).
        """
        raise OrgError(f"{self.label} cannot update records: it is read-only")

    def insert(
        self,
        table_name: str,
        records: pl.DataFrame,
        *,
        on_submit: Callable[[str], None] | None = None,
    ) -> pl.DataFrame:
        """Create records (the write-back's optional Tasks).

        Args:
            table_name: Canonical table name.
            records: Canonical columns without ``id``.
            on_submit: As for ``update``.

        Returns:
            One row per record given, in order: ``id`` (the new Id, null when it failed),
            ``success`` and ``error``. Failures do not raise.

        Raises:
            OrgError: When the org cannot write at all.
        """
        raise OrgError(f"{self.label} cannot insert records: it is read-only")

    def finish_write(self, reference: str) -> pl.DataFrame | None:
        """Wait for a write submitted earlier (``on_submit``'s reference) and return its results.

        Returns:
            The per-record results (``WRITE_RESULT_SCHEMA``) in the org's order, not the
            upload's: Salesforce keeps no copy of the upload to match against. For an update
            ``id`` is the record; for an insert the new record (match inserts by their values).
            None when the org does not know the reference or never carried it out: the caller
            then sends those records again.
        """
        return None

    @property
    def write_batch_size(self) -> int:
        """Records one ``update``/``insert`` request should hold at most.

        10,000: Bulk API 2.0 processes ingest jobs in batches of 10,000 records, and a ledger
        entry per request keeps a resumed run's repeat small.
        """
        return 10_000

    def field_writable(self, sobject: str, field_name: str) -> bool | None:
        """Whether the user can update a field (describe's ``updateable``); None: cannot tell."""
        return None

    def sobject_names(self) -> set[str] | None:
        """API names of the objects the user can query; None when the org cannot tell."""
        return None

    def has_field(self, sobject: str, path: str) -> bool | None:
        """Whether a field (or a parent path like ``Account.Name``) is readable; None: unknown."""
        return None

    def describe_layouts(self, sobject: str) -> dict[str, Any] | None:
        """The page layouts of an object with their related lists; None when it cannot tell."""
        return None

    def record_counts(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """Record count per canonical table (all tables the org holds when ``names`` is None)."""
        wanted = list(schema.TABLES) if names is None else list(names)
        return {
            name: int(self.table(name).select(pl.len()).collect().item())
            for name in wanted
            if self.has_table(name)
        }

    def data_as_of(self) -> dt.datetime:
        """The instant the org's data describes, for judging "recent" when no date is given.

        A local org is frozen when it was pulled or generated: its last change to a send or
        an IER (sent, created, modified or tracked); now when it holds none. A live org
        overrides this with now.
        """
        stamps = ("date_sent", "created_date", "system_modstamp", "tracking_as_of")
        latest = [
            self.table(name).select(pl.max_horizontal(*(pl.col(c).max() for c in stamps)))
            for name in ("email_sends", "individual_email_results")
            if self.has_table(name)
        ]
        if not latest:
            return dt.datetime.now(dt.UTC)
        values = [v for v in pl.concat(latest).collect().to_series().to_list() if v]
        return max(values) if values else dt.datetime.now(dt.UTC)

    @property
    def instance_url(self) -> str | None:
        """The org's My Domain URL (``https://acme.my.salesforce.com``) for record links.

        None when the org does not know it: reports then show names without links.
        """
        return None

    def storage_limits(self) -> StorageLimits | None:
        """The org's reported data storage, or None where the org does not report it."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"

    @property
    def delete_batch_size(self) -> int | None:
        """Ids a delete request should hold at most, or None: all Ids of a table in one request.

        10,000 by default: Bulk API 2.0 processes ingest jobs in batches of 10,000 records. An
        org whose delete costs about the same however many Ids it is given (a local org
        rewrites its table) says None, and a cleanup then deletes each table in one request.
        """
        return 10_000
