"""Restore: archived records put back into a local org."""

from __future__ import annotations

import os

import polars as pl

from ierkit import schema
from ierkit.archive import ARCHIVED_TABLES, ArchiveStore
from ierkit.cleanup._errors import CleanupError
from ierkit.orgs.base import Org
from ierkit.orgs.local import LocalOrg


def restore_archive(
    org: Org, archive: str | os.PathLike[str], *, run_id: str | None = None
) -> pl.DataFrame:
    """Put archived IERs and link details back into a local org (parents first).

    Records already in the org are left alone, so a restore can be repeated.

    Salesforce: not done by ierkit. Restoring there means inserting new records (deleted Ids
    cannot be reused once the Recycle Bin is emptied or after hardDelete; undelete works only
    from the Recycle Bin), and each IER needs its parent Email Send (or Triggered Send) and its
    Contact or Lead to still exist, the Email Send lookup set (a validation rule requires exactly
    one of the two sends), and link details re-pointed to the new IER Ids (match on MergeId).
    Marketing Cloud Connect may also overwrite restored IERs on its next tracking sync.

    Args:
        org: A ``LocalOrg``.
        archive: Archive folder or fsspec URL.
        run_id: Restore one run's records; every run's when None.

    Returns:
        ``table``, ``archived``, ``restored``, ``already_present``, one row per table.

    Raises:
        CleanupError: When ``org`` is not a local org.
    """
    if not isinstance(org, LocalOrg):
        raise CleanupError(
            f"restore works on a local org, not {org!r}: in Salesforce, restored IERs are new "
            "records whose Email Send, Contact or Lead must still exist (see "
            "ierkit.cleanup.restore_archive)"
        )
    store = ArchiveStore(archive)
    rows = []
    for table in reversed(ARCHIVED_TABLES):  # parents first
        archived = store.scan(table, run_id=run_id).unique(subset="id", keep="any")
        live = org.table(table) if org.has_table(table) else schema.table(table).empty().lazy()
        new = archived.join(live.select("id"), on="id", how="anti").collect()
        n_archived = archived.select(pl.len()).collect().item()
        if new.height:
            org.write_table(table, pl.concat([live, new.lazy()]))
        rows.append(
            {
                "table": table,
                "archived": n_archived,
                "restored": new.height,
                "already_present": n_archived - new.height,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "table": pl.String,
            "archived": pl.Int64,
            "restored": pl.Int64,
            "already_present": pl.Int64,
        },
    )
