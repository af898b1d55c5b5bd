"""Cleanup into the org's own big objects (``--archive bigobject``), and restore from them.

The run is the usual one (``ierkit.cleanup``) with two differences:

- The records a run archives are first staged as Parquet in a private folder of the local cache
  (``bigobject-runs/<org>/``, laid out like any archive, with its manifest and ledger): the
  delete steps read their Ids from these files, checked against the manifest, exactly as from an
  external archive. The staged files are the run's own record of what it archived and deleted.
- Before verification, each staged file is inserted into the big objects through Bulk API 2.0
  (ledger steps ``insert:<table>:<file>``; insert overwrites by index, so a step redone after a
  kill changes nothing). Verification then reads every record back through index queries and
  compares every field with the staged copy, and per send the count and an Id checksum with
  the selection in the org. Any difference stops the run before anything is deleted.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import polars as pl

from ierkit._files import cache_dir
from ierkit.archive import ARCHIVED_TABLES, ArchiveStore, check_files
from ierkit.cleanup._errors import CleanupError, VerificationError
from ierkit.cleanup._ledger import Ledger
from ierkit.cleanup._restore import write_restored
from ierkit.cleanup._selection import IERS, LINKS, CleanupCriteria, select_iers, select_links
from ierkit.metadata import NO_PARENT, big_object
from ierkit.orgs._bigobject import RUN_ID, BigObjectArchive
from ierkit.orgs.base import Org
from ierkit.orgs.local import LocalOrg
from ierkit.orgs.salesforce import SalesforceOrg

#: The ``--archive`` value that archives into the org's big objects.
BIGOBJECT = "bigobject"

#: Columns of the verification table of a big object run: one row per table and send.
BIGOBJECT_VERIFY_SCHEMA = pl.Schema(
    {
        "table": pl.String,
        "send_id": pl.String,
        "selected": pl.Int64,
        "archived": pl.Int64,
        "ids_match": pl.Boolean,
        "fields_match": pl.Boolean,
        "ok": pl.Boolean,
    }
)


def is_bigobject(archive: str | os.PathLike[str]) -> bool:
    """Whether ``archive`` names the org's big objects rather than a folder or URL."""
    return os.fspath(archive) == BIGOBJECT


def bigobject_archive(org: Org) -> BigObjectArchive:
    """The big objects of ``org``; CleanupError unless it is a Salesforce org that has them."""
    if not isinstance(org, SalesforceOrg):
        raise CleanupError(
            f"--archive bigobject archives into a Salesforce org's big objects; the source "
            f"{org.label} is not a Salesforce org: use --source salesforce, or a folder archive"
        )
    archive = BigObjectArchive(org)
    archive.check_deployed()
    return archive


def staging_store(org: Org) -> ArchiveStore:
    """The private local folder where a big object run stages its records, per org."""
    key = hashlib.sha256(org.label.encode()).hexdigest()[:16]
    return ArchiveStore(cache_dir() / "bigobject-runs" / key)


def send_key(table: str, frame: pl.LazyFrame, iers: pl.LazyFrame) -> pl.LazyFrame:
    """``frame`` with ``send_id``: an IER's Email or Triggered Send; a link detail's, through
    its parent IER in ``iers``; ``NO_PARENT`` when there is none."""
    if table == IERS:
        send = pl.coalesce("email_send_id", "triggered_send_id", pl.lit(NO_PARENT))
        return frame.with_columns(send_id=send)
    parents = iers.select(
        individual_email_result_id="id",
        send_id=pl.coalesce("email_send_id", "triggered_send_id", pl.lit(NO_PARENT)),
    )
    return frame.join(parents, on="individual_email_result_id", how="left").with_columns(
        pl.col("send_id").fill_null(NO_PARENT)
    )


def insert_staged(
    archive: BigObjectArchive,
    store: ArchiveStore,
    ledger: Ledger,
    manifest: dict[str, Any],
    run_id: str,
) -> None:
    """Insert every staged file of the run into the big objects, one ledger step per file.

    Raises:
        VerificationError: A file no longer matches the manifest, or Salesforce refused
            records (named); nothing was deleted.
    """
    for table in reversed(ARCHIVED_TABLES):  # parents first, as people read them
        for number, entry in enumerate(manifest["tables"][table]["files"]):
            step = f"insert:{table}:{number}"
            if ledger.state(step) == "done":
                continue
            problems = check_files(store, [entry])
            if problems:
                raise VerificationError(f"insert stopped: {'; '.join(problems)}")
            ledger.begin(step)
            records = store.scan_files(table, [entry["path"]]).collect()
            failures = archive.insert(table, records, run_id=run_id)
            if failures.height:
                shown = [f"{i}: {e}" for i, e in failures.head(5).iter_rows()]  # five shown
                ledger.write(step, "failed", failures=failures.rows())
                raise VerificationError(
                    f"{archive.label}: {failures.height:,} {table} records were refused, nothing "
                    f"was deleted: {'; '.join(shown)}. Fix the cause, then run again with run id "
                    f"{run_id}"
                )
            ledger.end(step, records=records.height)


def verify_bigobject(
    org: Org,
    archive: BigObjectArchive,
    store: ArchiveStore,
    manifest: dict[str, Any],
    criteria: CleanupCriteria,
) -> tuple[pl.DataFrame, list[str]]:
    """Read the run's records back from the big objects and match them.

    Every field of every record is compared with the staged copy; per table and send, the
    count and an Id checksum with the selection in the org (the reference: nothing is deleted
    yet).

    Returns:
        The table (``BIGOBJECT_VERIFY_SCHEMA``) and the problems found (empty when all match).
    """
    rows: list[pl.DataFrame] = []
    problems: list[str] = []
    staged: dict[str, pl.DataFrame] = {}
    for table in reversed(ARCHIVED_TABLES):
        files = [f["path"] for f in manifest["tables"][table]["files"]]
        staged[table] = store.scan_files(table, files).collect()
    selected_iers = select_iers(org, criteria)
    selections = {
        IERS: selected_iers,
        LINKS: select_links(org, criteria, parents=selected_iers).select(*staged[LINKS].columns),
    }
    for table in reversed(ARCHIVED_TABLES):
        big = big_object(table)
        mine = staged[table]
        key = pl.coalesce(*(pl.col(c) for c in big.key_sources[0][1]), pl.lit(NO_PARENT))
        keys = mine.select(key.unique()).to_series().drop_nulls().to_list()
        back = archive.read(table, keys).drop(RUN_ID)
        back = back.join(mine.select("id"), on="id", how="semi")
        problems += _field_differences(table, mine, back)
        differs = _differing_ids(mine, back)
        parents = staged[IERS].lazy()
        expected = _per_send(send_key(table, selections[table], parents))
        actual = _per_send(send_key(table, back.lazy(), parents))
        bad_sends = send_key(table, mine.lazy().filter(pl.col("id").is_in(differs)), parents)
        merged = (
            expected.join(actual, on="send_id", how="full", coalesce=True, suffix="_archived")
            .join(
                bad_sends.select("send_id").unique().with_columns(differs=pl.lit(True)),
                on="send_id",
                how="left",
            )
            .select(
                pl.lit(table).alias("table"),
                "send_id",
                selected=pl.col("records").fill_null(0),
                archived=pl.col("records_archived").fill_null(0),
                ids_match=(pl.col("sum_lo") == pl.col("sum_lo_archived"))
                & (pl.col("sum_hi") == pl.col("sum_hi_archived"))
                & (pl.col("xor") == pl.col("xor_archived")),
                fields_match=pl.col("differs").is_null(),
            )
            .with_columns(pl.col("ids_match").fill_null(False))
            .with_columns(
                ok=pl.col("ids_match")
                & pl.col("fields_match")
                & (pl.col("selected") == pl.col("archived"))
            )
            .collect()
        )
        rows.append(merged)
        problems += [
            f"{table}, send {r['send_id']}: {r['selected']:,} selected in the org, "
            f"{r['archived']:,} read back from {big.api_name}"
            f"{'' if r['ids_match'] else ', Ids differ'}"
            for r in merged.filter(~pl.col("ok") & pl.col("fields_match")).iter_rows(named=True)
        ]
    return pl.concat(rows).cast(BIGOBJECT_VERIFY_SCHEMA).sort("table", "send_id"), problems


def _per_send(frame: pl.LazyFrame) -> pl.LazyFrame:
    h = pl.col("id").hash(seed=0)
    return frame.group_by("send_id").agg(
        records=pl.len().cast(pl.Int64),
        sum_lo=(h % 2**32).sum(),
        sum_hi=(h // 2**32).sum(),
        xor=h.bitwise_xor(),
    )


def _differing_ids(mine: pl.DataFrame, back: pl.DataFrame) -> pl.Series:
    """Ids whose record read back differs in any field from the staged one (or is missing)."""
    joined = mine.join(back, on="id", how="left", suffix="_back", validate="1:1")
    same = pl.all_horizontal(
        pl.col(c).eq_missing(pl.col(f"{c}_back")) for c in mine.columns if c != "id"
    )
    return joined.filter(~same).get_column("id")


def _field_differences(table: str, mine: pl.DataFrame, back: pl.DataFrame) -> list[str]:
    """Up to five readable lines naming a record and a field that did not come back intact."""
    joined = mine.join(back, on="id", how="left", suffix="_back")
    problems: list[str] = []
    for column in mine.columns:
        if column == "id" or len(problems) >= 5:
            continue
        bad = joined.filter(~pl.col(column).eq_missing(pl.col(f"{column}_back"))).head(1)
        if bad.height:
            problems.append(
                f"{table} {bad['id'][0]}: {column} is {bad[column][0]!r} in the org, "
                f"{bad[f'{column}_back'][0]!r} in the big object"
            )
    return problems


def restore_bigobject(
    org: Org, archive: BigObjectArchive, *, run_id: str | None = None
) -> pl.DataFrame:
    """Put the records of the big objects (one run's, or all) back into a local org.

    Records already in the org are left alone, so a restore can be repeated.

    Returns:
        ``table``, ``archived``, ``restored``, ``already_present``, one row per table.

    Raises:
        CleanupError: ``org`` is not a local org.
    """
    if not isinstance(org, LocalOrg):
        raise CleanupError(f"restore works on a local org (a folder), not {org!r}")
    # The org's lock covers the read and the write: no other writer slips in between.
    with org.lock():
        found = []
        for table in reversed(ARCHIVED_TABLES):  # read everything before writing anything
            records = archive.scan(table)
            if run_id is not None:
                records = records.filter(pl.col(RUN_ID) == run_id)
            records = records.drop(RUN_ID)
            live = org.table(table) if org.has_table(table) else records.clear().lazy()
            new = records.lazy().join(live.select("id"), on="id", how="anti").collect()
            found.append((table, live, new, records.height))
        return write_restored(org, found)
