"""Verification: the archive of a run, read back, matched against the selection in the org."""

from __future__ import annotations

from typing import Any

import polars as pl

from ierkit.archive import ARCHIVED_TABLES, ArchiveStore
from ierkit.cleanup._selection import (
    IERS,
    LINKS,
    PARTITION_KEYS,
    CleanupCriteria,
    partition_columns,
    select_iers,
    select_links,
)
from ierkit.orgs.base import Org

#: Columns of ``verify_archive``'s table (and of ``CleanupResult.verification``).
VERIFY_SCHEMA = pl.Schema(
    {
        "table": pl.String,
        "year": pl.Int32,
        "month": pl.Int32,
        "selected": pl.Int64,
        "archived": pl.Int64,
        "ids_match": pl.Boolean,
        "ok": pl.Boolean,
    }
)


def _id_checksums(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Per year and month: record count and an order-free checksum of the Ids (the sums of the
    low and high halves of a 64-bit hash, and their XOR). Streams: memory does not grow with the
    count."""
    h = pl.col("id").hash(seed=0)
    return frame.group_by(PARTITION_KEYS).agg(
        records=pl.len().cast(pl.Int64),
        sum_lo=(h % 2**32).sum(),
        sum_hi=(h // 2**32).sum(),
        xor=h.bitwise_xor(),
    )


def verify_archive(
    org: Org, store: ArchiveStore, manifest: dict[str, Any], criteria: CleanupCriteria
) -> pl.DataFrame:
    """Match the archive of one run, read back, against the selection in the org.

    Must run before anything is deleted (the org is the reference).

    Returns:
        One row per table and month: ``selected``, ``archived``, ``ids_match`` and ``ok``.
    """
    frames = []
    selected_iers = select_iers(org, criteria)
    selections = {
        IERS: selected_iers.with_columns(partition_columns(pl.col("date_sent"))),
        LINKS: select_links(org, criteria, parents=selected_iers).with_columns(
            partition_columns(pl.col("send_date"))
        ),
    }
    for table in ARCHIVED_TABLES:
        files = [f["path"] for f in manifest["tables"][table]["files"]]
        if files:
            archived = pl.scan_parquet(
                [store.url(f) for f in files], hive_partitioning=True
            ).with_columns(pl.col(PARTITION_KEYS).cast(pl.Int32))
        else:
            archived = pl.LazyFrame(schema={"id": pl.String, "year": pl.Int32, "month": pl.Int32})
        expected = _id_checksums(selections[table].select("id", *PARTITION_KEYS)).collect()
        actual = _id_checksums(archived.select("id", *PARTITION_KEYS)).collect()
        merged = expected.join(
            actual, on=list(PARTITION_KEYS), how="full", coalesce=True, suffix="_archived"
        )
        frames.append(
            merged.select(
                pl.lit(table).alias("table"),
                *PARTITION_KEYS,
                selected=pl.col("records").fill_null(0),
                archived=pl.col("records_archived").fill_null(0),
                ids_match=(pl.col("sum_lo") == pl.col("sum_lo_archived"))
                & (pl.col("sum_hi") == pl.col("sum_hi_archived"))
                & (pl.col("xor") == pl.col("xor_archived")),
            )
            .with_columns(pl.col("ids_match").fill_null(False))
            .with_columns(ok=pl.col("ids_match") & (pl.col("selected") == pl.col("archived")))
        )
    return pl.concat(frames).cast(VERIFY_SCHEMA).sort("table", "year", "month")
