"""Restore: archived records put back into a local org, after the archive is verified."""

from __future__ import annotations

import os
from typing import Any

import polars as pl

from ierkit import schema
from ierkit.archive import (
    ARCHIVED_TABLES,
    ArchiveError,
    ArchiveStore,
    check_manifest,
    first_line,
    manifest_files,
)
from ierkit.cleanup._errors import CleanupError
from ierkit.orgs.base import Org
from ierkit.orgs.local import LocalOrg

_COUNTS_SCHEMA = pl.Schema(
    {"table": pl.String, "archived": pl.Int64, "restored": pl.Int64, "already_present": pl.Int64}
)


def restore_archive(
    org: Org, archive: str | os.PathLike[str], *, run_id: str | None = None
) -> pl.DataFrame:
    """Put archived IERs and link details back into a local org (parents first).

    Every file of the runs restored is checked against its manifest (sha256 of its bytes, its
    record count, readable as Parquet) before anything is written: an archive changed since
    the cleanup wrote it is refused whole, naming the files. Records already in the org are
    left alone, so a restore can be repeated.

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
        ArchiveError: The archive is missing, holds no such run, or a file does not match its
            manifest; nothing was written.
    """
    if not isinstance(org, LocalOrg):
        raise CleanupError(
            f"restore works on a local org, not {org!r}: in Salesforce, restored IERs are new "
            "records whose Email Send, Contact or Lead must still exist (see "
            "ierkit.cleanup.restore_archive)"
        )
    store = ArchiveStore(archive)
    manifests = _manifests(store, run_id)
    problems = [problem for manifest in manifests for problem in check_manifest(store, manifest)]
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ArchiveError(
            f"archive {store.location}: {len(problems)} problem{'s' if len(problems) > 1 else ''} "
            f"against the manifest, nothing restored: {shown}{more}"
        )
    # The org's lock covers the read and the write: no other writer slips in between.
    with org.lock():
        # Read everything first, write after: a read that fails leaves the org as it was.
        restores = []
        for table in reversed(ARCHIVED_TABLES):  # parents first
            files = sorted({f["path"] for m in manifests for f in manifest_files(m, table)})
            archived = store.scan_files(table, files).unique(subset="id", keep="any")
            live = org.table(table) if org.has_table(table) else schema.table(table).empty().lazy()
            try:
                new = archived.join(live.select("id"), on="id", how="anti").collect()
                n_archived = archived.select(pl.len()).collect().item()
            except pl.exceptions.PolarsError as error:
                raise ArchiveError(
                    f"archive {store.location}: {table} files {', '.join(files[:3])} could not be "
                    f"read ({first_line(error)}); nothing restored"
                ) from None
            restores.append((table, live, new, n_archived))
        return write_restored(org, restores)


def write_restored(
    org: LocalOrg, restores: list[tuple[str, pl.LazyFrame, pl.DataFrame, int]]
) -> pl.DataFrame:
    """Add each table's archived records the org lacks; call it holding ``org.lock()``.

    Args:
        org: The local org restored into.
        restores: Per table, parents first: its name, the live table, the archived records
            the org lacks (read in full before anything is written), and how many were archived.

    Returns:
        ``table``, ``archived``, ``restored``, ``already_present``, one row per table.
    """
    rows = []
    for table, live, new, archived in restores:
        if new.height:
            org.write_table(table, pl.concat([live, new.lazy()]))
        rows.append(
            {
                "table": table,
                "archived": archived,
                "restored": new.height,
                "already_present": archived - new.height,
            }
        )
    return pl.DataFrame(rows, schema=_COUNTS_SCHEMA)


def _manifests(store: ArchiveStore, run_id: str | None) -> list[dict[str, Any]]:
    """The manifests to restore from; an ArchiveError that says why when there are none."""
    if store.is_local and not os.path.isdir(store.root):
        raise ArchiveError(f"archive {store.location} does not exist")
    if run_id is None:
        manifests = store.manifests()
        if not manifests:
            raise ArchiveError(
                f"{store.location} holds no cleanup run (no runs/<run id>/manifest.json): is it "
                "the folder given to ierkit cleanup --archive?"
            )
        return manifests
    if store.exists(store.manifest_path(run_id)):
        return [store.read_json(store.manifest_path(run_id))]
    if store.exists(store.run_dir(run_id)):
        raise ArchiveError(
            f"run {run_id} in {store.location} has no manifest: it stopped before its archive "
            "was complete, so nothing of it was deleted and there is nothing to restore"
        )
    runs = sorted(m.get("run_id", "?") for m in store.manifests())
    raise ArchiveError(
        f"{store.location} holds no run {run_id!r} (runs there: {', '.join(runs) or 'none'})"
    )
