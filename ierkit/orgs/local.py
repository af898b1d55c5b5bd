"""A local org: a folder of Parquet files, one per canonical table.

Used for the demo org, for snapshots pulled from Salesforce, and for aggregation output. Every
write goes to a temporary file in the same folder that is then renamed over the table, so an
interrupted write never leaves a half-written table behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from ierkit import schema
from ierkit.orgs.base import DELETE_RESULT_SCHEMA, Org, OrgError


def atomic_write_parquet(frame: pl.DataFrame | pl.LazyFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` so that readers see the old file or the new, never half.

    A LazyFrame is streamed to disk with ``sink_parquet``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp)
        else:
            frame.write_parquet(tmp)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalOrg(Org):
    """A folder of Parquet tables named ``<table>.parquet``.

    Args:
        path: The folder. It need not exist yet when the org is only written to.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.label = str(self.path)

    def table_path(self, name: str) -> Path:
        """Where the table ``name`` lives."""
        schema.table(name)
        return self.path / f"{name}.parquet"

    def has_table(self, name: str) -> bool:
        return self.table_path(name).is_file()

    def table(self, name: str) -> pl.LazyFrame:
        path = self.table_path(name)
        if not path.is_file():
            raise OrgError(f"{self.path}: no table {name!r} (expected the file {path.name})")
        return schema.validate(name, pl.scan_parquet(path))

    def write_table(self, name: str, frame: pl.DataFrame | pl.LazyFrame) -> None:
        """Validate ``frame`` against the table's schema and replace the table atomically."""
        validated = schema.validate(name, frame)
        atomic_write_parquet(validated, self.table_path(name))

    def delete(self, table_name: str, ids: Iterable[str], *, hard: bool = False) -> pl.DataFrame:
        requested = pl.DataFrame({"id": list(ids)}, schema={"id": pl.String})
        current = self.table(table_name).collect()
        present = requested.join(current.select("id"), on="id", how="semi")
        if len(present):
            remaining = current.join(present.unique(), on="id", how="anti")
            self.write_table(table_name, remaining)
        present_ids = present.get_column("id").unique().to_frame().with_columns(
            pl.lit(True).alias("_found")
        )
        return (
            requested.join(present_ids, on="id", how="left", maintain_order="left")
            .with_columns(first=pl.col("id").is_first_distinct())
            .select(
                "id",
                success=pl.col("_found").fill_null(False) & pl.col("first"),
                # The same Id twice in one request: the second fails as it would in Salesforce.
                error=pl.when(~pl.col("first"))
                .then(pl.lit("ENTITY_IS_DELETED: entity is deleted"))
                .when(pl.col("_found").is_null())
                .then(pl.lit("NOT_FOUND: no such record"))
                .otherwise(None),
            )
            .cast(DELETE_RESULT_SCHEMA)
        )
