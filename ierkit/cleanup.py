"""Cleanup runs: select old IERs and their link details, archive them, verify, then delete.

A run goes through these steps, each written to the run's ledger before and after it happens:

1. ``plan``: the selection (IERs sent before the cutoff, optionally of chosen programmes or
   sends, their Individual Link Level Details, and link details already orphaned) and its counts.
2. ``archive:individual_email_results``, ``archive:individual_links``: the selected records with
   all their fields, streamed to Parquet partitioned by year and month of the send
   (see ``ierkit.archive``).
3. ``manifest``: record counts, sha256 of every file and of every file's Id list, the query and
   cutoff used.
4. ``verify``: every file is read back and hashed, and the Ids of each month are matched against
   the selection in the org (count, and a checksum over the Ids). A mismatch stops the run before
   anything is deleted.
5. ``delete:<table>:<file>.<chunk>``: children first (link details, then IERs), in chunks of Ids
   read from verified archive files; then ``retry:<table>`` once for per-record failures.

A run killed at any point and started again with the same run id resumes: finished steps are
skipped; a delete chunk that started but never finished is reconciled against the org (only the
Ids still present are deleted), so no record is deleted twice and none is left behind. Before
verification nothing has been deleted, so archive steps are simply redone.

Dry run (``execute=False``, the default) computes the plan and writes nothing anywhere.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import signal
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ierkit import schema
from ierkit.archive import (
    ARCHIVED_TABLES,
    MANIFEST_VERSION,
    ArchiveError,
    ArchiveStore,
    check_files,
    check_run_id,
    describe_files,
    table_entry,
    utc_now,
)
from ierkit.errors import IerkitError
from ierkit.orgs.base import Org
from ierkit.programmes import programme_expr
from ierkit.storage import KB_PER_MB, RECORD_KB

IERS = schema.INDIVIDUAL_EMAIL_RESULTS.name
LINKS = schema.INDIVIDUAL_LINKS.name


# Bulk API 2.0 processes ingest jobs in batches of 10,000 records (Bulk API 2.0 limits): one
# chunk per batch keeps a failed chunk small and the ledger fine-grained.
DELETE_CHUNK_SIZE = 10_000

#: Environment variable naming a crash point ("<step>/started" or "<step>/finished") at which a
#: run kills itself with SIGKILL. For crash tests only.
CRASH_ENV = "IERKIT_CRASH_AT"

# Delete errors that mean the record is already gone: nothing is left behind.
_GONE_ERRORS = ("ENTITY_IS_DELETED", "NOT_FOUND")

#: ``progress(phase, done, total)``: called as a run advances (phase e.g. "delete
#: individual_links"); ``done`` and ``total`` count records.
ProgressCallback = Callable[[str, int, int], None]

_PARTITION_KEYS = ("year", "month")


class CleanupError(IerkitError):
    """A cleanup cannot start or go on; the message says why and what to do."""


class VerificationError(CleanupError, ArchiveError):
    """The archive does not match the selection: nothing was deleted."""


# --- selection ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanupCriteria:
    """What a cleanup selects.

    Attributes:
        retention_days: IERs sent at least this many days before ``as_of`` are selected.
        as_of: The day the retention window ends on; the cutoff is its midnight UTC minus
            ``retention_days``.
        programmes: Only IERs whose email name starts with one of these programmes
            (``"<Programme> - <detail>"``); all programmes when None.
        sends: Only IERs of these Email Send or Triggered Send Ids; all sends when None.
        include_orphans: Also select link details whose IER is already gone.
    """

    retention_days: int
    as_of: dt.date
    programmes: tuple[str, ...] | None = None
    sends: tuple[str, ...] | None = None
    include_orphans: bool = True

    def __post_init__(self) -> None:
        if self.retention_days < 0:
            raise CleanupError(f"retention days must be 0 or more, not {self.retention_days}")

    @property
    def cutoff(self) -> dt.datetime:
        """IERs sent before this instant (UTC) are selected."""
        midnight = dt.datetime.combine(self.as_of, dt.time(), tzinfo=dt.UTC)
        return midnight - dt.timedelta(days=self.retention_days)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for the ledger and the manifest."""
        return {
            "retention_days": self.retention_days,
            "as_of": self.as_of.isoformat(),
            "cutoff": self.cutoff.isoformat(),
            "programmes": list(self.programmes) if self.programmes is not None else None,
            "sends": list(self.sends) if self.sends is not None else None,
            "include_orphans": self.include_orphans,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleanupCriteria:
        """The criteria ``to_dict`` wrote."""
        return cls(
            retention_days=int(data["retention_days"]),
            as_of=dt.date.fromisoformat(data["as_of"]),
            programmes=tuple(data["programmes"]) if data.get("programmes") is not None else None,
            sends=tuple(data["sends"]) if data.get("sends") is not None else None,
            include_orphans=bool(data.get("include_orphans", True)),
        )


def cleanup_criteria(
    retention_days: int,
    *,
    as_of: dt.date | None = None,
    programmes: Sequence[str] | None = None,
    sends: Sequence[str] | None = None,
    include_orphans: bool = True,
) -> CleanupCriteria:
    """Criteria with ``as_of`` defaulting to today (UTC) and filters sorted and de-duplicated."""
    return CleanupCriteria(
        retention_days=retention_days,
        as_of=as_of or dt.datetime.now(dt.UTC).date(),
        programmes=tuple(sorted(set(programmes))) if programmes is not None else None,
        sends=tuple(sorted(set(sends))) if sends is not None else None,
        include_orphans=include_orphans,
    )


def _partition_columns(send_date: pl.Expr) -> list[pl.Expr]:
    return [
        send_date.dt.year().cast(pl.Int32).alias("year"),
        send_date.dt.month().cast(pl.Int32).alias("month"),
    ]


def select_iers(org: Org, criteria: CleanupCriteria) -> pl.LazyFrame:
    """The IERs a cleanup selects, in the canonical schema.

    IERs without a send date are never selected: their age is unknown.
    """
    keep = pl.col("date_sent") < criteria.cutoff
    if criteria.programmes is not None:
        keep &= programme_expr("name").is_in(list(criteria.programmes))
    if criteria.sends is not None:
        sends = list(criteria.sends)
        keep &= pl.col("email_send_id").is_in(sends) | pl.col("triggered_send_id").is_in(sends)
    return org.table(IERS).filter(keep)


def select_links(
    org: Org, criteria: CleanupCriteria, *, parents: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """The link details a cleanup selects: children of the selected IERs, and orphans.

    Args:
        org: The org.
        criteria: The selection.
        parents: The selected IERs (at least ``id``, ``name``, ``date_sent``, ``email_send_id``,
            ``triggered_send_id``); ``select_iers(org, criteria)`` when None. A run passes its
            archived IERs, so the link details archived are exactly the children of the IERs
            archived.

    Returns:
        Canonical link columns plus ``send_date`` (the parent's send date; for an orphan, the
        link's own created date, its send being gone), ``programme``, ``send_id`` (null for
        orphans) and ``orphaned``.
    """
    links = org.table(LINKS)
    if parents is None:
        parents = select_iers(org, criteria)
    parent_columns = parents.select(
        pl.col("id").alias("_parent"),
        pl.col("date_sent").alias("send_date"),
        programme_expr("name"),
        pl.coalesce("email_send_id", "triggered_send_id").alias("send_id"),
    )
    # Link details are far fewer than IERs: hash them, stream the IERs (memory stays flat).
    children = links.join(
        parent_columns,
        left_on="individual_email_result_id",
        right_on="_parent",
        how="inner",
        build_side="force_left",
    ).with_columns(orphaned=pl.lit(False))
    if not criteria.include_orphans:
        return children
    orphans = orphaned_links(org).with_columns(
        send_date=pl.coalesce("created_date", "last_clicked"),
        programme=pl.lit(None, pl.String),
        send_id=pl.lit(None, pl.String),
        orphaned=pl.lit(True),
    )
    return pl.concat([children, orphans.select(children.collect_schema().names())])


def orphaned_links(org: Org) -> pl.LazyFrame:
    """Link details whose IER is gone: the lookup is empty (Salesforce clears it on delete) or
    points to an IER the org no longer has (a local org does not clear it)."""
    links = org.table(LINKS)
    pointing = links.filter(pl.col("individual_email_result_id").is_not_null())
    # Parents that exist, found by hashing the link details' lookups and streaming the IERs.
    existing = (
        org.table(IERS)
        .select("id")
        .join(
            pointing.select("individual_email_result_id"),
            left_on="id",
            right_on="individual_email_result_id",
            how="semi",
            build_side="force_right",
        )
    )
    dangling = pointing.join(
        existing,
        left_on="individual_email_result_id",
        right_on="id",
        how="anti",
        build_side="force_right",
    )
    return pl.concat([links.filter(pl.col("individual_email_result_id").is_null()), dangling])


def selection_query(criteria: CleanupCriteria) -> dict[str, str]:
    """The selection written as SOQL, for the manifest (what a Salesforce admin would run)."""
    ier, link = schema.INDIVIDUAL_EMAIL_RESULTS, schema.INDIVIDUAL_LINKS

    def api(table: schema.Table, name: str) -> str:
        return str(table.column(name).api_name)

    where = [f"{api(ier, 'date_sent')} < {criteria.cutoff:%Y-%m-%dT%H:%M:%SZ}"]
    if criteria.programmes is not None:
        likes = " OR ".join(f"Name LIKE '{p} - %'" for p in criteria.programmes)
        where.append(f"({likes})")
    if criteria.sends is not None:
        ids = ", ".join(f"'{s}'" for s in criteria.sends)
        where.append(
            f"({api(ier, 'email_send_id')} IN ({ids}) OR "
            f"{api(ier, 'triggered_send_id')} IN ({ids}))"
        )
    ier_fields = ", ".join(c.api_name for c in ier.stored_columns if "." not in str(c.api_name))
    link_fields = ", ".join(c.api_name for c in link.stored_columns if "." not in str(c.api_name))
    ier_query = f"SELECT {ier_fields} FROM {ier.sobject} WHERE {' AND '.join(where)}"
    lookup = api(link, "individual_email_result_id")
    link_query = f"SELECT {link_fields} FROM {link.sobject} WHERE {lookup} IN (<selected IERs>)"
    if criteria.include_orphans:
        link_query += f" OR {lookup} = null"
    return {IERS: ier_query, LINKS: link_query}


# --- plan --------------------------------------------------------------------------------------


def _storage_mb(records: pl.Expr) -> pl.Expr:
    return (records * RECORD_KB / KB_PER_MB).round(2)


@dataclass(frozen=True)
class CleanupPlan:
    """What a cleanup will archive and delete.

    Attributes:
        criteria: The selection.
        source: The org's label.
        counts: ``object`` (table), ``records``, ``storage_mb``; children first.
        by_programme: ``programme``, ``iers``, ``links``, ``storage_mb`` (orphans under
            ``"(orphaned link details)"``).
        by_month: ``month`` (first day, Date), ``iers``, ``links``, ``storage_mb``.
        by_send: ``send_id``, ``email_name``, ``date_sent``, ``iers``, ``links``: the sends whose
            IER-based reports change.
        impacts: Reports, related lists and roll-ups that change, in words.
        query: The selection as SOQL, per table.
    """

    criteria: CleanupCriteria
    source: str
    counts: pl.DataFrame
    by_programme: pl.DataFrame
    by_month: pl.DataFrame
    by_send: pl.DataFrame
    impacts: tuple[str, ...]
    query: dict[str, str]

    @property
    def records(self) -> dict[str, int]:
        """Records selected per table."""
        return dict(zip(self.counts["object"], self.counts["records"], strict=True))

    @property
    def total_records(self) -> int:
        """Records selected over both tables."""
        return int(self.counts["records"].sum())

    @property
    def storage_mb(self) -> float:
        """Data storage the cleanup frees, in MB (2 KB a record)."""
        return round(self.total_records * RECORD_KB / KB_PER_MB, 2)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the run keeps it beside its ledger)."""
        return {
            "criteria": self.criteria.to_dict(),
            "source": self.source,
            "counts": self.counts.to_dicts(),
            "by_programme": self.by_programme.to_dicts(),
            "by_month": self.by_month.with_columns(pl.col("month").cast(pl.String)).to_dicts(),
            "by_send": self.by_send.with_columns(pl.col("date_sent").cast(pl.String)).to_dicts(),
            "impacts": list(self.impacts),
            "query": self.query,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleanupPlan:
        """The plan ``to_dict`` wrote."""
        return cls(
            criteria=CleanupCriteria.from_dict(data["criteria"]),
            source=data["source"],
            counts=pl.DataFrame(data["counts"], schema=_COUNTS_SCHEMA),
            by_programme=pl.DataFrame(data["by_programme"], schema=_BY_PROGRAMME_SCHEMA),
            by_month=pl.DataFrame(
                data["by_month"], schema={**_BY_MONTH_SCHEMA, "month": pl.String}
            ).with_columns(pl.col("month").str.to_date("%Y-%m-%d")),
            by_send=pl.DataFrame(
                data["by_send"], schema={**_BY_SEND_SCHEMA, "date_sent": pl.String}
            ).with_columns(pl.col("date_sent").str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z")),
            impacts=tuple(data["impacts"]),
            query=data["query"],
        )

    def __str__(self) -> str:
        c = self.criteria
        lines = [
            f"Cleanup plan for {self.source}: IERs sent before {c.cutoff:%Y-%m-%d %H:%M} UTC "
            f"(as of {c.as_of}, retention {c.retention_days} days)",
        ]
        if c.programmes is not None:
            lines.append(f"  programmes: {', '.join(c.programmes)}")
        if c.sends is not None:
            lines.append(f"  sends: {', '.join(c.sends)}")
        for row in self.counts.iter_rows(named=True):  # two rows: one per table
            lines.append(f"  {row['object']}: {row['records']:,} records, {row['storage_mb']:,} MB")
        lines.append(f"  storage freed: {self.storage_mb:,} MB (2 KB a record)")
        lines.append("  by month:")
        for row in self.by_month.iter_rows(named=True):  # one row per month
            lines.append(f"    {row['month']:%Y-%m}: {row['iers']:,} IERs, {row['links']:,} links")
        lines.append("  what changes:")
        lines.extend(f"    - {impact}" for impact in self.impacts)
        return "\n".join(lines)


_COUNTS_SCHEMA = {"object": pl.String, "records": pl.Int64, "storage_mb": pl.Float64}
_BY_PROGRAMME_SCHEMA = {
    "programme": pl.String,
    "iers": pl.Int64,
    "links": pl.Int64,
    "storage_mb": pl.Float64,
}
_BY_MONTH_SCHEMA = {"month": pl.Date, "iers": pl.Int64, "links": pl.Int64, "storage_mb": pl.Float64}
_BY_SEND_SCHEMA = {
    "send_id": pl.String,
    "email_name": pl.String,
    "date_sent": schema.UTC_DATETIME,
    "iers": pl.Int64,
    "links": pl.Int64,
}
ORPHANED_PROGRAMME = "(orphaned link details)"


def plan_cleanup(org: Org, criteria: CleanupCriteria) -> CleanupPlan:
    """Count what a cleanup selects, per object, programme, month and send; nothing changes.

    Args:
        org: The org to clean up.
        criteria: The selection (see ``cleanup_criteria``).

    Returns:
        The plan; ``str(plan)`` is a readable summary.
    """
    iers = select_iers(org, criteria).with_columns(
        programme=programme_expr("name"),
        send_id=pl.coalesce("email_send_id", "triggered_send_id"),
        month=pl.col("date_sent").dt.truncate("1mo").dt.date(),
    )
    links = select_links(org, criteria).with_columns(
        programme=pl.col("programme").fill_null(ORPHANED_PROGRAMME),
        month=pl.col("send_date").dt.truncate("1mo").dt.date(),
    )
    ier_groups = (
        iers.group_by("programme", "month", "send_id")
        .agg(
            iers=pl.len().cast(pl.Int64),
            email_name=pl.col("name").min(),
            date_sent=pl.col("date_sent").min(),
        )
        .collect()
    )
    link_groups = (
        links.group_by("programme", "month", "send_id").agg(links=pl.len().cast(pl.Int64)).collect()
    )
    groups = ier_groups.join(
        link_groups,
        on=["programme", "month", "send_id"],
        how="full",
        coalesce=True,
        nulls_equal=True,
    ).with_columns(pl.col("iers", "links").fill_null(0))

    def rollup(keys: list[str]) -> pl.DataFrame:
        return (
            groups.group_by(keys)
            .agg(pl.col("iers", "links").sum())
            .with_columns(storage_mb=_storage_mb(pl.col("iers") + pl.col("links")))
            .sort(keys, nulls_last=True)
        )

    n_iers, n_links = int(groups["iers"].sum()), int(groups["links"].sum())
    counts = pl.DataFrame(
        {"object": [LINKS, IERS], "records": [n_links, n_iers]}, schema_overrides=_COUNTS_SCHEMA
    ).with_columns(storage_mb=_storage_mb(pl.col("records")))
    by_send = (
        groups.filter(pl.col("send_id").is_not_null())
        .group_by("send_id")
        .agg(
            pl.col("email_name").min(),
            pl.col("date_sent").min(),
            pl.col("iers", "links").sum(),
        )
        .sort("date_sent", "send_id")
        .select(list(_BY_SEND_SCHEMA))
        .cast(_BY_SEND_SCHEMA)
    )
    # Distinct recipients: memory grows with the contacts and leads, not with the IERs.
    contacts, leads = (
        iers.select(
            pl.col("contact_id").drop_nulls().n_unique(), pl.col("lead_id").drop_nulls().n_unique()
        )
        .collect()
        .row(0)
    )
    orphans = int(groups.filter(pl.col("programme") == ORPHANED_PROGRAMME)["links"].sum())
    cutoff = f"{criteria.cutoff:%Y-%m-%d}"
    impacts = (
        f"IER-based reports on sends before {cutoff} lose {n_iers:,} IERs and "
        f"{n_links - orphans:,} link details across {by_send.height:,} sends; ierkit reads them "
        f"back from the archive with source '<source>+archive:<archive folder>'.",
        f"Related lists: {contacts:,} contacts and {leads:,} leads lose Individual Email Results.",
        f"{orphans:,} link details already orphaned by earlier deletes are archived and deleted.",
        "Email Send and Triggered Send totals (sent, opens, clicks, bounces, unsubscribes) stay: "
        "Marketing Cloud Connect writes them on the send; they are not roll-ups of IERs.",
        "Roll-up summary fields, flows, triggers and reports your org built on Individual Email "
        "Results or Individual Link Level Details recalculate or lose rows: ierkit cannot see "
        "them, check them in Setup before executing.",
    )
    return CleanupPlan(
        criteria=criteria,
        source=org.label,
        counts=counts,
        by_programme=rollup(["programme"]).cast(_BY_PROGRAMME_SCHEMA),
        by_month=rollup(["month"]).filter(pl.col("month").is_not_null()).cast(_BY_MONTH_SCHEMA),
        by_send=by_send,
        impacts=impacts,
        query=selection_query(criteria),
    )


# --- ledger ------------------------------------------------------------------------------------


def _crash_point(name: str) -> None:
    """Kill this process with SIGKILL when ``$IERKIT_CRASH_AT`` names this point (tests only)."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Ledger:
    """A run's steps, one JSON object a line, appended and fsynced before and after each step.

    A line cut short by a kill is ignored when read. The file is locked while a run is going, so
    two processes cannot run the same run id at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[dict[str, Any]] = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    self.entries.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # the last line of a killed write
        self._handle: Any = None

    def open(self) -> None:
        """Create and lock the file for appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a+b")  # noqa: SIM115 - held open and locked until close()
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.close()
            raise CleanupError(f"{self.path}: another process is running this run") from None
        self._handle.seek(0, os.SEEK_END)
        if self._handle.tell() and not self.path.read_bytes().endswith(b"\n"):
            self._handle.write(b"\n")  # end the line a kill cut short

    def close(self) -> None:
        """Unlock and close."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def write(self, step: str, event: str, **fields: Any) -> dict[str, Any]:
        """Append one entry and make it durable."""
        entry = {"at": utc_now(), "step": step, "event": event, **fields}
        self._handle.write((json.dumps(entry, default=str) + "\n").encode())
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.entries.append(entry)
        return entry

    def last(self, step: str) -> dict[str, Any] | None:
        """The latest entry of ``step``."""
        for entry in reversed(self.entries):
            if entry["step"] == step:
                return entry
        return None

    def state(self, step: str) -> str | None:
        """``"start"``, ``"done"``, ``"failed"``, ``"invalidated"`` or None (never run)."""
        entry = self.last(step)
        return entry["event"] if entry else None

    def begin(self, step: str, **fields: Any) -> None:
        """Record that ``step`` starts."""
        self.write(step, "start", **fields)
        _crash_point(f"{step}/started")

    def end(self, step: str, **fields: Any) -> dict[str, Any]:
        """Record that ``step`` finished."""
        _crash_point(f"{step}/finished")
        return self.write(step, "done", **fields)


def ledger_path(store: ArchiveStore, run_id: str) -> Path:
    """Where a run's ledger lives: in the archive folder, or for an archive in object storage
    (no appends there) in the local cache, copied to the archive when the run ends."""
    if store.is_local:
        return Path(store.path(store.run_dir(run_id))) / "ledger.jsonl"
    from ierkit._files import cache_dir

    key = hashlib.sha256(store.location.encode()).hexdigest()[:16]
    return cache_dir() / "cleanup-ledgers" / key / run_id / "ledger.jsonl"


# --- the run -----------------------------------------------------------------------------------


@dataclass
class CleanupResult:
    """What a cleanup run did (or, for a dry run, would do).

    Attributes:
        plan: The selection and its counts.
        dry_run: True when nothing was written or deleted.
        archive: The archive location.
        run_id: The run id (None for a dry run); pass it again to resume.
        resumed: The run went on from an earlier, interrupted attempt.
        verification: Per table and month: ``selected`` (org), ``archived`` and whether counts and
            Id checksums match (``ok``).
        deleted: Per table: ``archived``, ``deleted``, ``already_deleted``, ``failed``.
        failures: ``table``, ``id``, ``error`` of records that still failed after one retry.
        ledger_path: The run's ledger.
    """

    plan: CleanupPlan
    dry_run: bool
    archive: str
    run_id: str | None = None
    resumed: bool = False
    verification: pl.DataFrame | None = None
    deleted: pl.DataFrame | None = None
    failures: pl.DataFrame | None = None
    ledger_path: Path | None = None
    manifest: dict[str, Any] | None = field(default=None, repr=False)

    def __str__(self) -> str:
        lines = [str(self.plan), ""]
        if self.dry_run:
            lines.append(
                f"Dry run: nothing archived or deleted. Add --execute to archive to "
                f"{self.archive} and delete {self.plan.total_records:,} records."
            )
            return "\n".join(lines)
        resumed = " (resumed)" if self.resumed else ""
        lines.append(f"Run {self.run_id}{resumed}: archive {self.archive}")
        if self.verification is not None:
            ok = bool(self.verification["ok"].all())
            lines.append(f"  archive verified: {'yes' if ok else 'NO'}")
        if self.deleted is not None:
            for row in self.deleted.iter_rows(named=True):  # one row per table
                lines.append(
                    f"  {row['table']}: {row['deleted']:,} deleted, {row['already_deleted']:,} "
                    f"already gone, {row['failed']:,} failed (of {row['archived']:,} archived)"
                )
        if self.failures is not None and self.failures.height:
            lines.append("  failures after one retry:")
            for row in self.failures.head(20).iter_rows(named=True):  # at most 20 shown
                lines.append(f"    {row['table']} {row['id']}: {row['error']}")
        lines.append(f"  ledger: {self.ledger_path}")
        return "\n".join(lines)


def new_run_id() -> str:
    """A run id from the current time (UTC)."""
    return f"cleanup-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}"


def run_cleanup(
    org: Org,
    *,
    archive: str | os.PathLike[str],
    criteria: CleanupCriteria,
    run_id: str | None = None,
    execute: bool = False,
    hard_delete: bool = False,
    chunk_size: int = DELETE_CHUNK_SIZE,
    progress: ProgressCallback | None = None,
) -> CleanupResult:
    """Plan, archive, verify and delete; or with ``execute=False`` only plan.

    Args:
        org: The org to clean up (any ``Org``: a local org or Salesforce).
        archive: Archive folder or fsspec URL.
        criteria: The selection (see ``cleanup_criteria``).
        run_id: Resume this run, or start a run with this id; a new id when None.
        execute: Archive and delete. False (the default) writes and deletes nothing.
        hard_delete: Ask the org for a hard delete (Salesforce hardDelete: no Recycle Bin).
        chunk_size: Ids per delete request.
        progress: Called as records are archived and deleted (see ``ProgressCallback``).

    Returns:
        The result; ``str(result)`` is a readable summary.

    Raises:
        VerificationError: The archive did not match the selection; nothing was deleted.
        CleanupError: The run id belongs to a run with other criteria, or is running elsewhere.
    """
    store = ArchiveStore(archive)
    if not execute:
        return CleanupResult(plan=plan_cleanup(org, criteria), dry_run=True, archive=store.location)
    if chunk_size < 1:
        raise CleanupError(f"chunk size must be 1 or more, not {chunk_size}")
    run = _Run(
        org,
        store,
        criteria,
        check_run_id(run_id or new_run_id()),
        hard_delete,
        chunk_size,
        progress,
    )
    run.ledger.open()
    try:
        return run.go()
    finally:
        run.ledger.close()
        if not store.is_local and run.ledger.path.exists():
            store.fs.put_file(
                str(run.ledger.path), store.path(f"{store.run_dir(run.run_id)}/ledger.jsonl")
            )


def archive_and_verify(
    org: Org,
    *,
    archive: str | os.PathLike[str],
    criteria: CleanupCriteria,
    run_id: str | None = None,
    progress: ProgressCallback | None = None,
) -> CleanupResult:
    """The first half of a run: plan, archive, manifest and verification; nothing is deleted.

    The steps go to the run's ledger like those of ``run_cleanup``: calling ``run_cleanup`` with
    ``execute=True`` and the same run id later deletes what this verified, without archiving
    again. Lets a notebook show the verified archive before anyone decides to delete.

    Args:
        org: The org.
        archive: Archive folder or fsspec URL.
        criteria: The selection.
        run_id: Resume this run, or start a run with this id; a new id when None.
        progress: See ``ProgressCallback``.

    Returns:
        The result with ``verification`` and the manifest; ``deleted`` counts are zero.

    Raises:
        VerificationError: The archive did not match the selection.
    """
    store = ArchiveStore(archive)
    run = _Run(org, store, criteria, check_run_id(run_id or new_run_id()), False, 1, progress)
    run.ledger.open()
    try:
        return run.go(delete=False)
    finally:
        run.ledger.close()
        if not store.is_local and run.ledger.path.exists():
            store.fs.put_file(
                str(run.ledger.path), store.path(f"{store.run_dir(run.run_id)}/ledger.jsonl")
            )


class _Run:
    def __init__(
        self,
        org: Org,
        store: ArchiveStore,
        criteria: CleanupCriteria,
        run_id: str,
        hard: bool,
        chunk_size: int,
        progress: ProgressCallback | None,
    ) -> None:
        self.org, self.store, self.criteria, self.run_id = org, store, criteria, run_id
        self.hard, self.chunk_size = hard, chunk_size
        self.progress = progress or (lambda phase, done, total: None)
        self.ledger = Ledger(ledger_path(store, run_id))
        self.resumed = bool(self.ledger.entries)

    def go(self, *, delete: bool = True) -> CleanupResult:
        self._check_resume()
        plan = self._plan()
        if self.ledger.state("finish") != "done":
            if self.ledger.state("verify") != "done":
                self._archive()
                self._manifest()
                self._verify()
            if not delete:
                return self._result(plan)
            manifest = self.store.read_json(self.store.manifest_path(self.run_id))
            for table in ARCHIVED_TABLES:  # children first
                self._delete(table, manifest)
            self.ledger.begin("finish")
            self.ledger.end("finish")
        return self._result(plan)

    # steps

    def _check_resume(self) -> None:
        started = self.ledger.last("plan")
        if started is None:
            return
        earlier = started.get("criteria")
        if earlier != self.criteria.to_dict():
            raise CleanupError(
                f"run {self.run_id} was started with {earlier}; this call asks for "
                f"{self.criteria.to_dict()}: pass the same options to resume, or a new run id"
            )

    def _plan(self) -> CleanupPlan:
        path = f"{self.store.run_dir(self.run_id)}/plan.json"
        if self.ledger.state("plan") == "done":
            try:
                return CleanupPlan.from_dict(self.store.read_json(path))
            except ArchiveError as error:
                # The ledger outlived the archive (a remote archive's ledger is kept locally).
                raise CleanupError(
                    f"run {self.run_id} was planned before (ledger {self.ledger.path}), but the "
                    f"archive no longer holds its plan ({error}): was it emptied or replaced? "
                    "Nothing was deleted; start again with a new run id"
                ) from None
        self.ledger.begin("plan", criteria=self.criteria.to_dict(), source=self.org.label)
        plan = plan_cleanup(self.org, self.criteria)
        self.store.write_json(path, plan.to_dict())
        self.ledger.end("plan", criteria=self.criteria.to_dict(), records=plan.records)
        return plan

    def _archive(self) -> None:
        total = len(ARCHIVED_TABLES)
        for done, table in enumerate((IERS, LINKS)):  # parents first: links follow them
            step = f"archive:{table}"
            self.progress("archive", done, total)
            if self.ledger.state(step) == "done":
                continue
            self.ledger.begin(step)
            self.store.remove_run_files(table, self.run_id)
            # Month by month, file by file: memory stays flat as the selection grows.
            if table == IERS:
                iers = select_iers(self.org, self.criteria)
                files = self.store.write_partitioned(
                    table, self.run_id, iers, date_column="date_sent"
                )
            else:
                archived_iers = self.store.scan_files(IERS, self.store.run_files(IERS, self.run_id))
                links = select_links(self.org, self.criteria, parents=archived_iers)
                columns = [*schema.table(table).column_names, "send_date"]
                # The link selection joins the IERs: stream it once to a local staging file
                # rather than running the join again for every month and file.
                with tempfile.TemporaryDirectory(prefix="ierkit-links-") as staging:
                    staged = Path(staging) / "links.parquet"
                    links.select(columns).sink_parquet(staged)
                    files = self.store.write_partitioned(
                        table, self.run_id, pl.scan_parquet(staged), date_column="send_date"
                    )
            self.ledger.end(step, files=len(files))
        self.progress("archive", total, total)

    def _manifest(self) -> None:
        if self.ledger.state("manifest") == "done":
            return
        self.ledger.begin("manifest")
        tables = {
            table: table_entry(describe_files(self.store, self.store.run_files(table, self.run_id)))
            for table in ARCHIVED_TABLES
        }
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "run_id": self.run_id,
            "created_at": utc_now(),
            "source": self.org.label,
            "criteria": self.criteria.to_dict(),
            "cutoff": self.criteria.cutoff.isoformat(),
            "query": selection_query(self.criteria),
            "storage_kb_per_record": RECORD_KB,
            "partitioning": "year and month (UTC) of the send; orphaned link details by their "
            "own created date",
            "tables": tables,
        }
        self.store.write_json(self.store.manifest_path(self.run_id), manifest)
        self.ledger.end("manifest", records={t: e["records"] for t, e in tables.items()})

    def _verify(self) -> None:
        self.ledger.begin("verify")
        manifest = self.store.read_json(self.store.manifest_path(self.run_id))
        # Bytes first: a file changed since the manifest is not read for Ids at all.
        problems = check_files(
            self.store, [f for t in ARCHIVED_TABLES for f in manifest["tables"][t]["files"]]
        )
        table = pl.DataFrame(schema=_VERIFY_SCHEMA)
        if not problems:
            try:
                table = verify_archive(self.org, self.store, manifest, self.criteria)
            except (pl.exceptions.PolarsError, OSError) as error:
                problems.append(f"archive {self.store.location} cannot be read back: {error}")
        problems += [
            f"{r['table']} {r['year']}-{r['month']:02d}: {r['selected']:,} selected in the org, "
            f"{r['archived']:,} archived{'' if r['ids_match'] else ', Ids differ'}"
            for r in table.filter(~pl.col("ok")).iter_rows(named=True)  # only the failures
        ]
        rows = table.to_dicts()
        if problems:
            self.ledger.write("verify", "failed", problems=problems, rows=rows)
            # Nothing was deleted: the next attempt with this run id archives afresh.
            for step in ("manifest", *(f"archive:{t}" for t in ARCHIVED_TABLES)):
                self.ledger.write(step, "invalidated")
            raise VerificationError(
                f"archive {self.store.location}, run {self.run_id}: verification failed, nothing "
                f"was deleted: {'; '.join(problems[:5])}"
            )
        self.ledger.end("verify", rows=rows)

    def _delete(self, table: str, manifest: dict[str, Any]) -> None:
        files = manifest["tables"][table]["files"]
        total = manifest["tables"][table]["records"]
        phase = f"delete {table}"
        done = 0
        failed: list[list[str]] = []
        self.progress(phase, 0, total)
        for file_no, entry in enumerate(files):
            # Only Ids read from a file whose bytes still match the verified manifest are deleted.
            problems = check_files(self.store, [entry])
            if problems:
                raise VerificationError(f"deletion stopped: {'; '.join(problems)}")
            ids = self.store.file_ids(entry["path"])
            for chunk_no, start in enumerate(range(0, len(ids), self.chunk_size)):
                chunk = ids.slice(start, self.chunk_size)
                outcome = self._delete_chunk(f"delete:{table}:{file_no}.{chunk_no}", table, chunk)
                failed += outcome["failures"]
                done += len(chunk)
                self.progress(phase, done, total)
        retry_step = f"retry:{table}"
        if failed and self.ledger.state(retry_step) != "done":
            self._delete_chunk(retry_step, table, pl.Series("id", [i for i, _ in failed]))

    def _delete_chunk(self, step: str, table: str, ids: pl.Series) -> dict[str, Any]:
        state = self.ledger.state(step)
        if state == "done":
            return self.ledger.last(step)  # type: ignore[return-value]
        already = 0
        if state == "start":
            # Killed between asking and recording: delete only what the org still has.
            still = (
                self.org.table(table)
                .select("id")
                .join(ids.to_frame().lazy(), on="id", how="semi", build_side="force_right")
                .collect()
                .get_column("id")
            )
            already = len(ids) - len(still)
            ids = ids.filter(ids.is_in(still.implode()))
        self.ledger.begin(step, records=len(ids))
        result = (
            self.org.delete(table, ids.to_list(), hard=self.hard)
            if len(ids)
            else pl.DataFrame(schema={"id": pl.String, "success": pl.Boolean, "error": pl.String})
        )
        gone = ~pl.col("success") & pl.col("error").str.starts_with(_GONE_ERRORS[0])
        for code in _GONE_ERRORS[1:]:
            gone |= ~pl.col("success") & pl.col("error").str.starts_with(code)
        failures = result.filter(~pl.col("success") & ~gone).sort("id")
        return self.ledger.end(
            step,
            deleted=int(result["success"].sum()),
            already_deleted=already + result.filter(gone).height,
            failures=[[i, e] for i, e in zip(failures["id"], failures["error"], strict=True)],
        )

    # result

    def _result(self, plan: CleanupPlan) -> CleanupResult:
        manifest = self.store.read_json(self.store.manifest_path(self.run_id))
        verify = self.ledger.last("verify")
        rows = []
        failure_rows = []
        for table in ARCHIVED_TABLES:
            chunks = [
                e
                for e in self.ledger.entries
                if e["event"] == "done" and e["step"].startswith(f"delete:{table}:")
            ]
            latest = {e["step"]: e for e in chunks}.values()
            retry = self.ledger.last(f"retry:{table}")
            deleted = sum(e["deleted"] for e in latest) + (retry["deleted"] if retry else 0)
            already = sum(e["already_deleted"] for e in latest) + (
                retry["already_deleted"] if retry else 0
            )
            final = retry["failures"] if retry else [f for e in latest for f in e["failures"]]
            failure_rows += [{"table": table, "id": i, "error": e} for i, e in final]
            rows.append(
                {
                    "table": table,
                    "archived": manifest["tables"][table]["records"],
                    "deleted": deleted,
                    "already_deleted": already,
                    "failed": len(final),
                }
            )
        return CleanupResult(
            plan=plan,
            dry_run=False,
            archive=self.store.location,
            run_id=self.run_id,
            resumed=self.resumed,
            verification=pl.DataFrame(verify["rows"], schema=_VERIFY_SCHEMA) if verify else None,
            deleted=pl.DataFrame(rows, schema=_DELETED_SCHEMA),
            failures=pl.DataFrame(failure_rows, schema=_FAILURES_SCHEMA).sort("table", "id"),
            ledger_path=self.ledger.path,
            manifest=manifest,
        )


_VERIFY_SCHEMA = {
    "table": pl.String,
    "year": pl.Int32,
    "month": pl.Int32,
    "selected": pl.Int64,
    "archived": pl.Int64,
    "ids_match": pl.Boolean,
    "ok": pl.Boolean,
}
_DELETED_SCHEMA = {
    "table": pl.String,
    "archived": pl.Int64,
    "deleted": pl.Int64,
    "already_deleted": pl.Int64,
    "failed": pl.Int64,
}
_FAILURES_SCHEMA = {"table": pl.String, "id": pl.String, "error": pl.String}


# --- verification ------------------------------------------------------------------------------


def _id_checksums(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Per year and month: record count and an order-free checksum of the Ids (the sums of the
    low and high halves of a 64-bit hash, and their XOR). Streams: memory does not grow with the
    count."""
    h = pl.col("id").hash(seed=0)
    return frame.group_by(_PARTITION_KEYS).agg(
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
        IERS: selected_iers.with_columns(_partition_columns(pl.col("date_sent"))),
        LINKS: select_links(org, criteria, parents=selected_iers).with_columns(
            _partition_columns(pl.col("send_date"))
        ),
    }
    for table in ARCHIVED_TABLES:
        files = [f["path"] for f in manifest["tables"][table]["files"]]
        if files:
            archived = pl.scan_parquet(
                [store.url(f) for f in files], hive_partitioning=True
            ).with_columns(pl.col(_PARTITION_KEYS).cast(pl.Int32))
        else:
            archived = pl.LazyFrame(schema={"id": pl.String, "year": pl.Int32, "month": pl.Int32})
        expected = _id_checksums(selections[table].select("id", *_PARTITION_KEYS)).collect()
        actual = _id_checksums(archived.select("id", *_PARTITION_KEYS)).collect()
        merged = expected.join(
            actual, on=list(_PARTITION_KEYS), how="full", coalesce=True, suffix="_archived"
        )
        frames.append(
            merged.select(
                pl.lit(table).alias("table"),
                *_PARTITION_KEYS,
                selected=pl.col("records").fill_null(0),
                archived=pl.col("records_archived").fill_null(0),
                ids_match=(pl.col("sum_lo") == pl.col("sum_lo_archived"))
                & (pl.col("sum_hi") == pl.col("sum_hi_archived"))
                & (pl.col("xor") == pl.col("xor_archived")),
            )
            .with_columns(pl.col("ids_match").fill_null(False))
            .with_columns(ok=pl.col("ids_match") & (pl.col("selected") == pl.col("archived")))
        )
    return pl.concat(frames).cast(_VERIFY_SCHEMA).sort("table", "year", "month")


# --- restore -----------------------------------------------------------------------------------


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
    from ierkit.orgs.local import LocalOrg

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
