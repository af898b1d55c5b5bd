"""An org seen together with its cleanup archive: live records plus the archived ones.

``open_org("demo+archive:/path/to/archive")`` wraps the demo org so that reports read archived
IERs and link details with the live ones and history is not lost to reporting. A record that is
both live and archived (restored after archiving) is read once, from the org.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from typing import Any

import polars as pl

from ierkit.archive import (
    ARCHIVED_TABLES,
    ArchiveError,
    ArchiveStore,
    check_files,
    manifest_files,
)
from ierkit.orgs.base import Org, OrgError, StorageLimits
from ierkit.orgs.local import LocalOrg


class _BigObjectReader:
    """The records of an org's ierkit big objects, read once (a whole-archive query each)."""

    def __init__(self, org: Org) -> None:
        from ierkit.orgs._bigobject import BigObjectArchive
        from ierkit.orgs.salesforce import SalesforceOrg

        if not isinstance(org, SalesforceOrg):
            raise OrgError(
                f"'+archive:bigobject' reads a Salesforce org's big objects; {org.label} is not "
                "a Salesforce org (use salesforce+archive:bigobject)"
            )
        self.archive = BigObjectArchive(org)
        self.archive.check_deployed()
        self.location = "bigobject"
        self._read: dict[str, pl.DataFrame] = {}

    def scan(self, name: str) -> pl.LazyFrame:
        if name not in self._read:
            self._read[name] = self.archive.scan(name).drop("run_id")
        return self._read[name].lazy()


class ArchivedOrg(Org):
    """``org`` with the records of an ierkit cleanup archive added to its IER and link tables.

    Args:
        org: The live org; deletes go to it.
        archive: Archive folder or fsspec URL (see ``ierkit.archive``), or ``"bigobject"``:
            the big objects of ``org`` (a Salesforce org), read whole on first use.
    """

    def __init__(self, org: Org, archive: str | os.PathLike[str]) -> None:
        self.org = org
        self.big = _BigObjectReader(org) if os.fspath(archive) == "bigobject" else None
        self.store = ArchiveStore(archive) if self.big is None else None
        where = self.store.location if self.store is not None else "bigobject"
        self.label = f"{org.label}+archive:{where}"
        self.can_describe = org.can_describe

    # The describe capabilities are the live org's: the archive adds records, not objects.
    def sobject_names(self) -> set[str] | None:
        return self.org.sobject_names()

    def has_field(self, sobject: str, path: str) -> bool | None:
        return self.org.has_field(sobject, path)

    def describe_layouts(self, sobject: str) -> dict[str, Any] | None:
        return self.org.describe_layouts(sobject)

    def data_as_of(self) -> dt.datetime:
        return self.org.data_as_of()

    def has_table(self, name: str) -> bool:
        if self.org.has_table(name):
            return True
        if name not in ARCHIVED_TABLES:
            return False
        return self.big is not None or bool(self._store().archived_files(name))

    def _store(self) -> ArchiveStore:
        if self.store is None:  # pragma: no cover - callers check self.big first
            raise OrgError("a big object archive has no archive folder")
        return self.store

    def _archived(self, name: str) -> pl.LazyFrame:
        if self.big is not None:
            return self.big.scan(name)
        return self._store().scan(name).unique(subset="id", keep="any")

    def table(self, name: str) -> pl.LazyFrame:
        if name not in ARCHIVED_TABLES:
            return self.org.table(name)
        archived = self._archived(name)
        if not self.org.has_table(name):
            return archived
        live = self.org.table(name)
        return pl.concat([live, archived.join(live.select("id"), on="id", how="anti")])

    def archived_table(self, name: str) -> pl.LazyFrame:
        """Only the archived records of ``name`` (not in the live org)."""
        live = self.org.table(name).select("id")
        return self._archived(name).join(live, on="id", how="anti")

    def delete(self, table_name: str, ids: Iterable[str], *, hard: bool = False) -> pl.DataFrame:
        """Deletes go to the live org; the archive is read-only."""
        return self.org.delete(table_name, ids, hard=hard)

    def storage_limits(self) -> StorageLimits | None:
        return self.org.storage_limits()

    def table_problems(self, names: Iterable[str] | None = None) -> list[str]:
        """Why tables cannot be read: the live org's problems (a local org's; see
        ``LocalOrg.table_problems``), then archive files that no longer match their manifest."""
        problems = self.org.table_problems(names) if isinstance(self.org, LocalOrg) else []
        if self.store is None:
            return problems  # big objects: Salesforce keeps them whole
        try:
            store = self.store
            for manifest in store.manifests():
                for table in ARCHIVED_TABLES:
                    if names is None or table in names:
                        problems += check_files(store, manifest_files(manifest, table))
        except ArchiveError as error:
            problems.append(str(error))
        return problems
