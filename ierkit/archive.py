"""The cleanup archive: Parquet files of deleted records, partitioned by the month of the send.

Layout under the archive root (a local folder, or any fsspec URL such as ``s3://bucket/ierkit``)::

    <root>/<table>/year=2026/month=05/<run_id>-0000.parquet   records, all canonical fields
    <root>/runs/<run_id>/manifest.json                       what the run wrote, with hashes
    <root>/runs/<run_id>/ledger.jsonl                        the run's steps (local roots only)

Files hold exactly the canonical columns of their table; ``year`` and ``month`` live only in the
folder names (hive partitioning). Several runs share one root: each run names its files after
its run id, and readers take the files that the runs' manifests list, so the half-written file of
a killed run is never read.

Hashes are sha256: of each file's bytes, and of each file's Ids (sorted, joined by newlines).

A local archive holds personal data (names, email addresses, what each person opened): its folders
are created readable by the owner only (0700) and its files likewise (0600).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import fsspec
import polars as pl

from ierkit import _files, clock, schema
from ierkit.errors import IerkitError

#: Tables a cleanup archives, children first (the order they are deleted in).
ARCHIVED_TABLES: tuple[str, ...] = ("individual_links", "individual_email_results")

#: Rows per archive file, about (a month is split by a hash of the Id): bounds the memory of
#: writing, hashing and deleting one file.
MAX_ROWS_PER_FILE = 500_000

MANIFEST_VERSION = 1

#: The dates Salesforce stores (Data Loader guide, "Data Import Dates": 1700-01-01T00:00:00Z to
#: 4000-12-31T00:00:00Z GMT). A record dated outside came from no org: it is not archived.
SALESFORCE_EARLIEST = dt.datetime(1700, 1, 1, tzinfo=dt.UTC)
SALESFORCE_LATEST = dt.datetime(4000, 12, 31, tzinfo=dt.UTC)

# Files and folders of a local archive: the owner's only (personal data).
_FILE_MODE = 0o600
_DIR_MODE = 0o700

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_BLOCK = 1 << 20


class ArchiveError(IerkitError):
    """The archive is missing, unreadable or does not match what a run selected."""


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is usable in file names; ArchiveError otherwise."""
    if not _RUN_ID.match(run_id):
        raise ArchiveError(
            f"run id {run_id!r}: use 1-100 letters, digits, '.', '_' or '-' (starting with a "
            "letter or digit)"
        )
    return run_id


#: Object-storage protocols polars reads and writes itself (through object_store); fsspec lists
#: and hashes the same files. Other fsspec filesystems are refused rather than misread.
POLARS_PROTOCOLS = frozenset(
    {"s3", "s3a", "gs", "gcs", "gcp", "az", "azure", "abfs", "abfss", "adl"}
)


class ArchiveStore:
    """An archive root on any fsspec filesystem.

    Args:
        location: A local folder (created when missing) or an fsspec URL (``s3://``, ``gs://``,
            ``abfs://``, ``file://``); remote filesystems need their fsspec package (s3fs,
            gcsfs, adlfs) and credentials from the environment.
    """

    def __init__(self, location: str | os.PathLike[str]) -> None:
        text = os.fspath(location)
        self.location = text
        self.fs, root = fsspec.core.url_to_fs(text)
        self.root = root.rstrip("/")
        # Nothing is created here: a dry run must leave the archive location untouched.
        self.is_local = "file" in _protocols(self.fs)
        if self.is_local and os.path.exists(self.root) and not os.path.isdir(self.root):
            raise ArchiveError(f"{text} is a file: an archive is a folder (or an fsspec URL)")
        if not self.is_local and not set(_protocols(self.fs)) & POLARS_PROTOCOLS:
            # polars would take the URL for a local path and write the archive somewhere else.
            raise ArchiveError(
                f"{text}: archives go to a local folder or to object storage polars writes "
                f"natively ({', '.join(sorted(POLARS_PROTOCOLS))}), not {self.fs.protocol!r}"
            )

    def __repr__(self) -> str:
        return f"<ArchiveStore {self.location}>"

    # --- paths -------------------------------------------------------------------------------

    def path(self, relative: str) -> str:
        """The filesystem path (no protocol) of ``relative`` under the root."""
        return f"{self.root}/{relative}" if relative else self.root

    def url(self, relative: str) -> str:
        """What polars reads and writes: a local path, or a URL with its protocol."""
        full = self.path(relative)
        return full if self.is_local else self.fs.unstrip_protocol(full)

    def run_dir(self, run_id: str) -> str:
        """Relative folder of one run's manifest and ledger."""
        return f"runs/{check_run_id(run_id)}"

    # --- small files -------------------------------------------------------------------------

    def exists(self, relative: str) -> bool:
        """Whether ``relative`` exists."""
        return bool(self.fs.exists(self.path(relative)))

    def write_json(self, relative: str, payload: Any) -> None:
        """Write ``payload`` as JSON; readers see the old or the new file, never half."""
        data = (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode()
        target = self.path(relative)
        if not self.is_local:
            # An object store's put is atomic: the object appears whole or not at all.
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(target, data)
            return
        make_private_dirs(target.rsplit("/", 1)[0])
        _files.write_bytes(target, data)  # a temporary file made 0600, renamed into place

    def read_json(self, relative: str) -> Any:
        """The JSON document at ``relative``."""
        try:
            with self.fs.open(self.path(relative), "rb") as handle:
                return json.loads(handle.read())
        except FileNotFoundError:
            raise ArchiveError(f"{self.url(relative)}: not found") from None
        except json.JSONDecodeError as error:
            raise ArchiveError(f"{self.url(relative)}: not valid JSON ({error})") from None

    # --- record files ------------------------------------------------------------------------

    def run_files(self, table_name: str, run_id: str) -> list[str]:
        """Relative paths of the files ``run_id`` wrote for ``table_name``, sorted."""
        pattern = self.path(f"{table_name}/year=*/month=*/{check_run_id(run_id)}-*.parquet")
        prefix = self.root + "/"
        return sorted(p[len(prefix) :] for p in self.fs.glob(pattern))

    def remove_run_files(self, table_name: str, run_id: str) -> int:
        """Delete the files ``run_id`` wrote for ``table_name`` (a redo after a crash)."""
        files = self.run_files(table_name, run_id)
        for relative in files:
            self.fs.rm_file(self.path(relative))
        return len(files)

    def write_partitioned(
        self, table_name: str, run_id: str, frame: pl.LazyFrame, *, date_column: str
    ) -> list[str]:
        """Stream ``frame`` into year/month partitions of ``table_name``, one file at a time.

        Each month is its own query (a range filter on ``date_column``, which a Parquet scan
        answers from row-group statistics), split into files of about ``MAX_ROWS_PER_FILE``
        rows by a hash of the Id, each streamed to disk by a plain ``sink_parquet``. Memory is
        bound by one file, however many records and months the selection holds: polars'
        partitioned sink (``pl.PartitionBy``) held several hundred MiB more, growing with
        the selection. Hashing rather than slicing keeps the split exact when ``frame``'s row
        order differs between runs of the query (joins, in the streaming engine).

        Args:
            table_name: Canonical table name; its folder under the root.
            run_id: Names the files, so several runs can share a partition.
            frame: The records: the canonical columns of the table, plus ``date_column`` when
                it is not one of them (it then becomes a folder name only).
            date_column: The UTC datetime whose year and month name each record's partition.

        Returns:
            Relative paths of the files written, sorted.

        Raises:
            ArchiveError: When some record has no ``date_column`` (its month is unknown) or one
                outside the dates Salesforce stores (the message names the records).
        """
        check_run_id(run_id)
        date = pl.col(date_column)
        _check_dates(table_name, frame, date_column)
        # One cheap pass over the date column only: months and their record counts.
        months = (
            frame.group_by(year=date.dt.year(), month=date.dt.month())
            .agg(records=pl.len())
            .sort("year", "month", nulls_last=True)
            .collect()
        )
        undated = months.filter(pl.col("year").is_null())["records"].sum()
        if undated:
            raise ArchiveError(
                f"{table_name}: {undated:,} records have no {date_column}: their archive month "
                "is unknown"
            )
        columns = schema.table(table_name).column_names
        for year, month, records in months.iter_rows():  # one row per month
            start = dt.datetime(year, month, 1, tzinfo=clock.UTC)
            end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=clock.UTC)
            in_month = frame.filter((date >= start) & (date < end)).select(columns)
            n_files = -(-records // MAX_ROWS_PER_FILE)
            folder = f"{table_name}/year={year:04d}/month={month:02d}"
            for index in range(n_files):
                part = in_month
                if n_files > 1:
                    part = in_month.filter(pl.col("id").hash(seed=0) % n_files == index)
                target = f"{folder}/{run_id}-{index:04d}.parquet"
                if not self.is_local:
                    part.sink_parquet(self.url(target), mkdir=True)
                    continue
                make_private_dirs(self.path(folder))
                part.sink_parquet(self.url(target))
                os.chmod(self.path(target), _FILE_MODE)  # in a 0700 folder meanwhile
        return self.run_files(table_name, run_id)

    def scan_files(self, table_name: str, files: Sequence[str]) -> pl.LazyFrame:
        """The records of ``files`` (relative paths) in the canonical schema of ``table_name``."""
        if not files:
            return schema.table(table_name).empty().lazy()
        return schema.validate(
            table_name,
            pl.scan_parquet([self.url(f) for f in files], hive_partitioning=False),
        )

    def sha256(self, relative: str) -> str:
        """sha256 of the bytes of one file, read in blocks."""
        digest = hashlib.sha256()
        with self.fs.open(self.path(relative), "rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
        return digest.hexdigest()

    def file_ids(self, relative: str) -> pl.Series:
        """The Ids in one file, sorted."""
        return pl.scan_parquet(self.url(relative)).select("id").collect().get_column("id").sort()

    # --- manifests ---------------------------------------------------------------------------

    def manifest_path(self, run_id: str) -> str:
        """Relative path of a run's manifest."""
        return f"{self.run_dir(run_id)}/manifest.json"

    def manifests(self) -> list[dict[str, Any]]:
        """Every run's manifest under the root, by run id."""
        found = self.fs.glob(self.path("runs/*/manifest.json"))
        prefix = self.root + "/"
        return [self.read_json(p[len(prefix) :]) for p in sorted(found)]

    def archived_files(self, table_name: str, *, run_id: str | None = None) -> list[str]:
        """Files of ``table_name`` that manifests list (one run's, or every run's)."""
        if run_id is None:
            manifests = self.manifests()
        else:
            manifests = [self.read_json(self.manifest_path(run_id))]
        return sorted(
            entry["path"]
            for manifest in manifests
            for entry in manifest_files(manifest, table_name)
        )

    def scan(self, table_name: str, *, run_id: str | None = None) -> pl.LazyFrame:
        """Archived records of ``table_name``: every run's, or one run's."""
        return self.scan_files(table_name, self.archived_files(table_name, run_id=run_id))


def make_private_dirs(folder: str | os.PathLike[str]) -> None:
    """Create a local ``folder`` and its missing parents, readable by the owner only (0700).

    Folders that exist already keep their mode: the user chose it.
    """
    path = Path(folder)
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it just now
            created.mkdir(mode=_DIR_MODE)
        os.chmod(created, _DIR_MODE)  # mkdir's mode is narrowed by the umask, never widened


def _check_dates(table_name: str, frame: pl.LazyFrame, date_column: str) -> None:
    """Refuse records dated outside the range Salesforce stores, naming a few of them."""
    date = pl.col(date_column)
    outside = (
        frame.filter((date < SALESFORCE_EARLIEST) | (date > SALESFORCE_LATEST))
        .select("id", date.dt.to_string("%Y-%m-%dT%H:%M:%S"), pl.len().alias("_n"))
        .head(3)
        .collect()
    )
    if outside.height:
        count = int(outside["_n"][0])
        # At most three rows: the examples named in the message.
        examples = ", ".join(f"{i} has {date_column} {d}" for i, d, _ in outside.iter_rows())
        raise ArchiveError(
            f"{table_name}: {count:,} record{'s are' if count > 1 else ' is'} dated outside the "
            f"range Salesforce stores ({SALESFORCE_EARLIEST:%Y-%m-%d} to "
            f"{SALESFORCE_LATEST:%Y-%m-%d}), e.g. {examples}: their archive month is not a "
            "real one. Correct or remove them in the org, then run again; nothing was deleted"
        )


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def ids_sha256(ids: pl.Series) -> str:
    """sha256 of Ids sorted and joined by newlines (an empty list hashes the empty string)."""
    joined = ids.sort().str.join("\n").item() if len(ids) else ""
    return hashlib.sha256(joined.encode()).hexdigest()


def describe_files(store: ArchiveStore, files: Iterable[str]) -> list[dict[str, Any]]:
    """Manifest entries for ``files``: path, year, month, records, sha256 and ids_sha256."""
    entries = []
    for relative in sorted(files):
        ids = store.file_ids(relative)
        match = re.search(r"year=(\d+)/month=(\d+)/", relative)
        year, month = (int(match.group(1)), int(match.group(2))) if match else (None, None)
        entries.append(
            {
                "path": relative,
                "year": year,
                "month": month,
                "records": len(ids),
                "sha256": store.sha256(relative),
                "ids_sha256": ids_sha256(ids),
            }
        )
    return entries


def table_entry(files: list[dict[str, Any]]) -> dict[str, Any]:
    """Manifest entry of one table from its file entries.

    ``ids_sha256`` of a table hashes the lines ``"<path> <ids_sha256>"`` of its files in path
    order: it pins every Id list without sorting all Ids of a large run at once.
    """
    ordered = sorted(files, key=lambda f: f["path"])
    lines = "\n".join(f"{f['path']} {f['ids_sha256']}" for f in ordered)
    return {
        "records": sum(f["records"] for f in files),
        "ids_sha256": hashlib.sha256(lines.encode()).hexdigest(),
        "files": files,
    }


def check_files(store: ArchiveStore, files: Iterable[dict[str, Any]]) -> list[str]:
    """Problems with archive files against their manifest entries (empty when all match)."""
    problems = []
    for entry in files:
        relative = entry["path"]
        if not store.exists(relative):
            problems.append(f"{store.url(relative)}: missing")
            continue
        actual = store.sha256(relative)
        if actual != entry["sha256"]:
            problems.append(
                f"{store.url(relative)}: content hash {actual[:12]}... does not match the "
                f"manifest's {entry['sha256'][:12]}..."
            )
    return problems


def manifest_files(manifest: Any, table_name: str) -> list[dict[str, Any]]:
    """The file entries a run's manifest lists for ``table_name`` (none when it has none).

    Raises:
        ArchiveError: The manifest is not one ierkit wrote (an entry lacks its path, sha256 or
            record count).
    """
    run = manifest.get("run_id") if isinstance(manifest, dict) else None
    try:
        files = manifest["tables"].get(table_name, {"files": []})["files"]
        for entry in files:
            if not (isinstance(entry["path"], str) and isinstance(entry["sha256"], str)):
                raise TypeError(entry)
            int(entry["records"])
    except (KeyError, TypeError, AttributeError, ValueError):
        raise ArchiveError(
            f"the manifest of run {run!r} does not list {table_name}'s files as ierkit writes "
            "them (path, sha256 and records of each): it was edited or is not an ierkit manifest"
        ) from None
    return list(files)


def check_manifest(store: ArchiveStore, manifest: dict[str, Any]) -> list[str]:
    """Problems with a run's archive against its manifest (empty when all match).

    Every file listed must exist with the manifest's sha256, read as Parquet, and hold the
    manifest's record count; each table's files must add up to the table's count.
    """
    problems = []
    for table_name in ARCHIVED_TABLES:
        try:
            files = manifest_files(manifest, table_name)
        except ArchiveError as error:
            problems.append(str(error))
            continue
        for entry in files:
            found = check_files(store, [entry])
            if found:
                problems += found
                continue
            try:
                records = pl.scan_parquet(store.url(entry["path"])).select(pl.len()).collect()
            except pl.exceptions.PolarsError as error:
                reason = first_line(error)
                problems.append(
                    f"{store.url(entry['path'])}: not a readable Parquet file ({reason})"
                )
                continue
            if records.item() != int(entry["records"]):
                problems.append(
                    f"{store.url(entry['path'])}: {records.item():,} records, the manifest says "
                    f"{int(entry['records']):,}"
                )
        listed = manifest["tables"].get(table_name, {}).get("records", 0)
        if listed != sum(int(f["records"]) for f in files):
            problems.append(
                f"run {manifest.get('run_id')!r}, {table_name}: the manifest's total of {listed} "
                "records is not the sum of its files'"
            )
    return problems


def first_line(error: BaseException) -> str:
    """The first line of an error's message (polars adds lines of query plan), or its type."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def utc_now() -> str:
    """The current time as an ISO string in UTC, for manifests and ledgers."""
    return clock.now().isoformat(timespec="milliseconds")
