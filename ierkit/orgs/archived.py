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
from ierkit.orgs.base import Org, StorageLimits
from ierkit.orgs.local import LocalOrg


class ArchivedOrg(Org):
    """``org`` with the records of an ierkit cleanup archive added to its IER and link tables.

    Args:
        org: The live org; deletes go to it.
        archive: Archive folder or fsspec URL (see ``ierkit.archive``).
    """

    def __init__(self, org: Org, archive: str | os.PathLike[str]) -> None:
        self.org = org
        self.store = ArchiveStore(archive)
        self.label = f"{org.label}+archive:{self.store.location}"
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
        return self.org.has_table(name) or (
            name in ARCHIVED_TABLES and bool(self.store.archived_files(name))
        )

    def table(self, name: str) -> pl.LazyFrame:
        if name not in ARCHIVED_TABLES:
            return self.org.table(name)
        archived = self.store.scan(name).unique(subset="id", keep="any")
        if not self.org.has_table(name):
            return archived
        live = self.org.table(name)
        return pl.concat([live, archived.join(live.select("id"), on="id", how="anti")])

    def archived_table(self, name: str) -> pl.LazyFrame:
        """Only the archived records of ``name`` (not in the live org)."""
        live = self.org.table(name).select("id")
        return self.store.scan(name).unique(subset="id", keep="any").join(live, on="id", how="anti")

    def delete(self, table_name: str, ids: Iterable[str], *, hard: bool = False) -> pl.DataFrame:
        """Deletes go to the live org; the archive is read-only."""
        return self.org.delete(table_name, ids, hard=hard)

    def storage_limits(self) -> StorageLimits | None:
        return self.org.storage_limits()

    def table_problems(self, names: Iterable[str] | None = None) -> list[str]:
        """Why tables cannot be read: the live org's problems (a local org's; see
        ``LocalOrg.table_problems``), then archive files that no longer match their manifest."""
        problems = self.org.table_problems(names) if isinstance(self.org, LocalOrg) else []
        try:
            for manifest in self.store.manifests():
                for table in ARCHIVED_TABLES:
                    if names is None or table in names:
                        problems += check_files(self.store, manifest_files(manifest, table))
        except ArchiveError as error:
            problems.append(str(error))
        return problems
