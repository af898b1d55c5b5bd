"""The archive store: months split into files, every record in exactly one, undated ones refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from ierkit import archive, schema
from ierkit.archive import ArchiveError, ArchiveStore

LINKS = "individual_links"


def _links(n: int, *, month: int = 3, undated: int = 0) -> pl.LazyFrame:
    spec = schema.table(LINKS)
    frame = pl.DataFrame(
        {
            "id": [f"a0L{i:015d}" for i in range(n)],
            "last_clicked": [dt.datetime(2026, month, 1 + i % 28, tzinfo=dt.UTC) for i in range(n)],
        }
    ).with_columns(
        pl.when(pl.int_range(pl.len()) < undated)
        .then(None)
        .otherwise(pl.col("last_clicked"))
        .alias("last_clicked")
    )
    missing = [
        pl.lit(None, c.dtype).alias(c.name) for c in spec.columns if c.name not in frame.columns
    ]
    return schema.validate(LINKS, frame.with_columns(missing)).lazy()


def test_a_month_larger_than_a_file_is_split_without_loss_or_repeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "MAX_ROWS_PER_FILE", 40)
    store = ArchiveStore(tmp_path / "a")
    frame = pl.concat(
        [
            _links(100, month=3),
            _links(30, month=4).with_columns(pl.col("id").str.replace("a0L", "a0M")),
        ]
    )
    files = store.write_partitioned(LINKS, "r1", frame, date_column="last_clicked")
    march = [f for f in files if "month=03" in f]
    april = [f for f in files if "month=04" in f]
    assert len(march) == 3 and len(april) == 1  # ceil(100 / 40) and ceil(30 / 40)
    ids = [store.file_ids(f) for f in files]
    everything = pl.concat(ids)
    assert everything.len() == 130 and everything.n_unique() == 130
    assert sorted(everything.to_list()) == sorted(frame.collect()["id"].to_list())
    # Rows land in the month of their date, field for field.
    archived = store.scan_files(LINKS, files).collect().sort("id")
    assert archived.equals(frame.collect().sort("id"))


def test_records_without_a_date_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "a")
    with pytest.raises(ArchiveError, match="3 records have no last_clicked"):
        store.write_partitioned(LINKS, "r1", _links(10, undated=3), date_column="last_clicked")
    assert not (tmp_path / "a").exists()
