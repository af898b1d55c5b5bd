"""A local org: a folder of Parquet files, one per canonical table.

Used for the demo org, for snapshots pulled from Salesforce, and for aggregation output. Every
write goes to a temporary file in the same folder that is then renamed over the table, so an
interrupted write never leaves a half-written table behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import string
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

import polars as pl

from ierkit import _files, clock, ids, schema
from ierkit.orgs.base import DELETE_RESULT_SCHEMA, WRITE_RESULT_SCHEMA, Org, OrgError

#: The manifest ``SalesforceOrg.snapshot`` keeps in a snapshot folder.
SNAPSHOT_MANIFEST: Final = "_salesforce_snapshot.json"

#: The lock file of a local org: one writer of its tables at a time (``LocalOrg.lock``).
LOCK_FILE: Final = ".lock"

#: Seconds a writer waits for another writer of the same local org before it stops.
LOCK_WAIT_SECONDS: Final = 60.0

#: The manifest ``ierkit demo`` writes into a demo folder.
DEMO_MANIFEST: Final = "demo.json"


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
        try:
            # Reads the file's footer now: a truncated or foreign file fails here, by name.
            return schema.validate(name, pl.scan_parquet(path))
        except pl.exceptions.ComputeError as error:
            raise OrgError(_unreadable(name, path, error)) from None

    def table_problems(self, names: Iterable[str] | None = None) -> list[str]:
        """Why tables of this folder cannot be read: one line per damaged file or bad value.

        ``table`` reads only a file's footer, and values are cast as they are collected: a
        table whose data pages are corrupt, or that holds a value its canonical type cannot
        (a click count beyond Int32), fails later, in whatever query reads it, with an error
        that names neither the table nor the file. This reads each table in full to say which.

        Args:
            names: The tables to check; every canonical table the folder holds when None.

        Returns:
            One line per problem naming the table and file (and for a value, the record's Id,
            the field and the value); empty when every table reads.
        """
        problems = []
        for name in schema.TABLES if names is None else names:
            path = self.table_path(name)
            if not path.is_file():
                continue
            raw = pl.scan_parquet(path)
            try:
                present = raw.collect_schema()
                # Every value decoded (hashing needs them all); the sum keeps memory flat.
                raw.select(pl.all().hash(seed=0).sum()).collect()
            except pl.exceptions.PolarsError as error:
                problems.append(_unreadable(name, path, error))
                continue
            for column in schema.table(name).columns:
                source = present.get(column.name)
                if source is None or source == column.dtype or not column.dtype.is_numeric():
                    continue
                value = pl.col(column.name)
                # Values the canonical type cannot hold: a strict cast would fail on them.
                bad = (
                    raw.filter(
                        value.is_not_null() & value.cast(column.dtype, strict=False).is_null()
                    )
                    .select("id" if "id" in present else pl.lit(None).alias("id"), value)
                    .head(3)
                    .collect()
                )
                for record, found in bad.iter_rows():  # at most three examples
                    problems.append(
                        f"table {name} ({path}): record {record}: {column.name} = {found} does "
                        f"not fit {column.dtype}; correct the value or remove the record"
                    )
        return problems

    def lock(self, *, wait: float | None = None) -> contextlib.AbstractContextManager[bool]:
        """Hold the folder's lock: one writer of its tables at a time (re-entrant).

        Every write takes it (``write_table``, ``delete``); a whole read-modify-write (a
        restore, a snapshot) holds it around all of its steps. Readers never wait: a table is
        replaced in one step.

        Args:
            wait: Seconds to wait for another writer; ``LOCK_WAIT_SECONDS`` when None.

        Raises:
            LockHeldError: When another process still writes after ``wait`` seconds, naming it.
        """
        return _files.exclusive_lock(
            self.path / LOCK_FILE,
            wait=LOCK_WAIT_SECONDS if wait is None else wait,
            what=f"the local org {self.path}",
        )

    def write_table(self, name: str, frame: pl.DataFrame | pl.LazyFrame) -> None:
        """Validate ``frame`` against the table's schema and replace the table atomically."""
        with self.lock():
            if isinstance(frame, pl.LazyFrame):
                _files.write_parquet(schema.validate(name, frame), self.table_path(name))
            else:
                _files.write_parquet(schema.validate(name, frame), self.table_path(name))

    def recorded_instant(self) -> dt.datetime | None:
        """When the folder was generated (``ierkit demo``) or pulled (a snapshot), if it says."""
        for manifest, key in ((DEMO_MANIFEST, "as_of_instant"), (SNAPSHOT_MANIFEST, "pulled_at")):
            path = self.path / manifest
            if not path.is_file():
                continue
            try:
                value = json.loads(path.read_text()).get(key)
                return clock.to_utc(dt.datetime.fromisoformat(value)) if value else None
            except (ValueError, TypeError, AttributeError) as error:
                raise OrgError(f"{path}: {key} is not readable ({error})") from None
        return None

    @property
    def instance_url(self) -> str | None:
        """The My Domain URL the demo's or snapshot's manifest keeps (``instance_url``), if any."""
        for manifest in (DEMO_MANIFEST, SNAPSHOT_MANIFEST):
            path = self.path / manifest
            if not path.is_file():
                continue
            try:
                value = json.loads(path.read_text()).get("instance_url")
            except (ValueError, AttributeError) as error:
                raise OrgError(f"{path}: instance_url is not readable ({error})") from None
            return str(value) if value else None
        return None

    def data_as_of(self) -> dt.datetime:
        """The instant the folder describes: when it was generated or pulled, if it says.

        A folder that does not say (tables written by other means) describes its last change
        to a send or an IER (``Org.data_as_of``).
        """
        return self.recorded_instant() or super().data_as_of()

    @property
    def delete_batch_size(self) -> int | None:
        """None: a delete rewrites the whole table, so all Ids of a table go in one request."""
        return None

    def delete(self, table_name: str, ids: Iterable[str], *, hard: bool = False) -> pl.DataFrame:
        """Delete records by Id: the table is rewritten once, streamed, whatever the Id count."""
        requested = pl.DataFrame({"id": list(ids)}, schema={"id": pl.String})
        wanted = requested.get_column("id").unique().implode()
        with self.lock():
            present = (
                self.table(table_name).select("id").filter(pl.col("id").is_in(wanted)).collect()
            )
            if len(present):
                # The new table streams to a temporary file beside the old one, then replaces
                # it: memory holds the Ids, not the table.
                gone = present.get_column("id").implode()
                self.write_table(
                    table_name, self.table(table_name).filter(~pl.col("id").is_in(gone))
                )
        present_ids = (
            present.get_column("id").unique().to_frame().with_columns(pl.lit(True).alias("_found"))
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

    def field_writable(self, sobject: str, field_name: str) -> bool | None:
        """True for a field a canonical table of ``sobject`` stores: ``update`` writes any of them.

        None (cannot tell) for any other object or field.
        """
        for spec in schema.TABLES.values():
            if spec.sobject == sobject and any(
                c.api_name == field_name for c in spec.stored_columns
            ):
                return True
        return None

    def update(
        self,
        table_name: str,
        records: pl.DataFrame,
        *,
        on_submit: Callable[[str], None] | None = None,
    ) -> pl.DataFrame:
        """Set fields of existing records by Id; one atomic rewrite of the table.

        Per-record results follow Salesforce: an Id that is not well formed fails with
        ``MALFORMED_ID``, one the table does not hold with ``INVALID_CROSS_REFERENCE_KEY``,
        the same Id twice in one request fails the second time with ``DUPLICATE_VALUE``. A
        null clears the field. ``on_submit`` is never called: the write is one atomic step.

        Raises:
            OrgError: A column the table does not define, or the table is missing.
        """
        spec = schema.table(table_name)
        fields = [c for c in records.columns if c != "id"]
        _check_columns(spec, records, fields, needs_id=True)
        given = records.select(
            pl.col("id").cast(pl.String), *(pl.col(f).cast(spec.column(f).dtype) for f in fields)
        ).with_row_index("_row")
        with self.lock():
            present = (
                self.table(table_name)
                .select("id")
                .join(given.lazy().select("id"), on="id", how="semi")
                .collect()
            )
            checked = given.with_columns(
                error=pl.when(
                    pl.col("id").is_null()
                    | ~pl.col("id").str.contains(r"^[0-9A-Za-z]{15}([0-9A-Za-z]{3})?$")
                )
                .then(pl.lit("MALFORMED_ID: Id is not a Salesforce Id"))
                .when(~pl.col("id").is_in(present.get_column("id").implode()))
                .then(pl.lit("INVALID_CROSS_REFERENCE_KEY: invalid cross reference id"))
                .when(~pl.col("id").is_first_distinct())
                .then(pl.lit("DUPLICATE_VALUE: the same Id twice in one request"))
            )
            good = checked.filter(pl.col("error").is_null()).drop("_row", "error")
            if good.height:
                current = self.table(table_name)
                marked = good.with_columns(_given=pl.lit(True)).lazy()
                changed = pl.col("_given").fill_null(False)
                merged = current.join(
                    marked, on="id", how="left", suffix="_new", maintain_order="left"
                ).with_columns(
                    *(
                        pl.when(changed).then(pl.col(f"{f}_new")).otherwise(pl.col(f)).alias(f)
                        for f in fields
                    ),
                    # As in Salesforce, a change moves the record's SystemModstamp.
                    system_modstamp=pl.when(changed)
                    .then(pl.lit(clock.now(), schema.UTC_DATETIME))
                    .otherwise(pl.col("system_modstamp")),
                )
                self.write_table(table_name, merged.select(spec.column_names))
        return checked.select("id", success=pl.col("error").is_null(), error=pl.col("error")).cast(
            WRITE_RESULT_SCHEMA
        )

    def insert(
        self,
        table_name: str,
        records: pl.DataFrame,
        *,
        on_submit: Callable[[str], None] | None = None,
    ) -> pl.DataFrame:
        """Create records with new Ids of the object's key prefix; one atomic table rewrite.

        ``on_submit`` is never called: the write is one atomic step.

        Raises:
            OrgError: A column the table does not define, an ``id`` given, or an object whose
                key prefix ierkit does not know (a custom object).
        """
        spec = schema.table(table_name)
        if "id" in records.columns:
            raise OrgError(f"insert into {table_name}: records must not carry an id column")
        _check_columns(spec, records, records.columns, needs_id=False)
        prefix = _KEY_PREFIX.get(spec.sobject)
        if prefix is None:
            raise OrgError(f"insert into {table_name}: no key prefix known for {spec.sobject}")
        new_ids = [_new_id(prefix) for _ in range(records.height)]
        now = clock.now()
        rows = records.with_columns(
            id=pl.Series(new_ids, dtype=pl.String),
            created_date=pl.lit(now, schema.UTC_DATETIME),
            system_modstamp=pl.lit(now, schema.UTC_DATETIME),
        )
        # Fields not given are null, as Salesforce leaves them (no defaults here).
        rows = rows.with_columns(
            pl.lit(None, c.dtype).alias(c.name) for c in spec.columns if c.name not in rows.columns
        )
        with self.lock():
            added = schema.validate(table_name, rows)
            if self.has_table(table_name):
                self.write_table(table_name, pl.concat([self.table(table_name), added.lazy()]))
            else:
                self.write_table(table_name, added)
        return pl.DataFrame(
            {"id": new_ids, "success": [True] * len(new_ids), "error": [None] * len(new_ids)},
            schema=WRITE_RESULT_SCHEMA,
        )


#: Key prefix of each standard object (``ierkit.ids.KEY_PREFIXES``, inverted).
_KEY_PREFIX: Final = {sobject: prefix for prefix, sobject in ids.KEY_PREFIXES.items()}

_ID_ALPHABET: Final = string.ascii_letters + string.digits


def _new_id(prefix: str) -> str:
    """A new 18-character Id with ``prefix``: twelve random characters (62**12: no collisions)."""
    return ids.to_18(prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12)))


def _check_columns(
    spec: schema.Table, records: pl.DataFrame, fields: list[str], *, needs_id: bool
) -> None:
    """Stop a write whose columns the table does not define (a caller's mistake, not a record's)."""
    if needs_id and "id" not in records.columns:
        raise OrgError(f"update of {spec.name}: records need an id column")
    known = set(spec.column_names)
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise OrgError(
            f"write to {spec.name}: no column {', '.join(unknown)} (columns: "
            f"{', '.join(spec.column_names)})"
        )


def _unreadable(name: str, path: Path, error: Exception) -> str:
    """The message for a table file polars cannot read."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"table {name} ({path}) cannot be read: {reason}. The file is truncated or damaged: "
        "restore it from a copy, or pull or generate the folder again"
    )
