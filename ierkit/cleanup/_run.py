"""The run: plan, archive, manifest, verify and delete, each step in the ledger (a state machine).

See ``ierkit.cleanup`` for the steps and how a killed run resumes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ierkit import clock, schema
from ierkit.archive import (
    ARCHIVED_TABLES,
    MANIFEST_VERSION,
    ArchiveError,
    ArchiveStore,
    check_files,
    check_run_id,
    describe_files,
    first_line,
    table_entry,
    utc_now,
)
from ierkit.cleanup import _guard
from ierkit.cleanup._bigobject import (
    BIGOBJECT_VERIFY_SCHEMA,
    bigobject_archive,
    insert_staged,
    is_bigobject,
    staging_store,
    verify_bigobject,
)
from ierkit.cleanup._errors import CleanupError, VerificationError
from ierkit.cleanup._ledger import LOCK_WAIT_SECONDS, Ledger, ledger_path
from ierkit.cleanup._plan import CleanupPlan, plan_cleanup
from ierkit.cleanup._selection import (
    IERS,
    LINKS,
    CleanupCriteria,
    select_iers,
    select_links,
    selection_query,
)
from ierkit.cleanup._verify import VERIFY_SCHEMA, verify_archive
from ierkit.orgs._bigobject import BigObjectArchive
from ierkit.orgs.archived import ArchivedOrg
from ierkit.orgs.base import DELETE_RESULT_SCHEMA, Org
from ierkit.orgs.local import LocalOrg
from ierkit.storage import RECORD_KB

#: Ids per ledger step (and per delete request) when neither the caller nor the org says:
#: Bulk API 2.0's batch of 10,000 records keeps a failed chunk small and the ledger fine-grained.
DELETE_CHUNK_SIZE = 10_000

# Delete errors that mean the record is already gone: nothing is left behind.
_GONE_ERRORS = ("ENTITY_IS_DELETED", "NOT_FOUND")

#: ``progress(phase, done, total)``: called as a run advances (phase e.g. "delete
#: individual_links"); ``done`` and ``total`` count records.
ProgressCallback = Callable[[str, int, int], None]

# A delete step of the ledger and its Ids.
_Chunk = tuple[str, pl.Series]


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
    return f"cleanup-{clock.now():%Y%m%dT%H%M%S%fZ}"


def run_cleanup(
    org: Org,
    *,
    archive: str | os.PathLike[str],
    criteria: CleanupCriteria,
    run_id: str | None = None,
    execute: bool = False,
    hard_delete: bool = False,
    chunk_size: int | None = None,
    progress: ProgressCallback | None = None,
    lock_wait: float = LOCK_WAIT_SECONDS,
    require_writeback: bool = False,
) -> CleanupResult:
    """Plan, archive, verify and delete; or with ``execute=False`` only plan.

    Started again with the id of a finished run, it deletes nothing new but retries the
    deletes that failed (the ledger lists their Ids), once more each time.

    Args:
        org: The org to clean up (any ``Org``: a local org or Salesforce).
        archive: Archive folder or fsspec URL, or ``"bigobject"``: the org's own big objects
            (a Salesforce org with ierkit's metadata deployed; see ``ierkit.cleanup._bigobject``).
        criteria: The selection (see ``cleanup_criteria``).
        run_id: Resume this run, or start a run with this id; a new id when None.
        execute: Archive and delete. False (the default) writes and deletes nothing.
        hard_delete: Ask the org for a hard delete (Salesforce hardDelete: no Recycle Bin).
        chunk_size: Ids per ledger step, and per delete request for an org that takes deletes
            in batches; the org's ``delete_batch_size`` (else ``DELETE_CHUNK_SIZE``) when None.
            An org without a batch size (a local org) gets all Ids of a table in one request.
        progress: Called as records are archived and deleted (see ``ProgressCallback``).
        lock_wait: Seconds to wait while another process runs the same run id.
        require_writeback: Refuse (dry run too) while a selected IER's person has no
            engagement summary covering it (``ierkit writeback``; see ``_guard``).

    Returns:
        The result; ``str(result)`` is a readable summary.

    Raises:
        VerificationError: The archive did not match the selection; nothing was deleted.
        CleanupError: The run id belongs to a run with other criteria, another process ran
            it for all of ``lock_wait`` (the message names that process), or
            ``require_writeback`` found people without a summary (named).
    """
    if require_writeback:
        _guard.require_writeback(org, criteria)
    store, big = _archive_target(org, archive)
    if not execute:
        shown = _label(store, big)
        return CleanupResult(plan=plan_cleanup(org, criteria), dry_run=True, archive=shown)
    if chunk_size is None:
        chunk_size = org.delete_batch_size or DELETE_CHUNK_SIZE
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
        lock_wait,
        big,
    )
    return run.execute()


def archive_and_verify(
    org: Org,
    *,
    archive: str | os.PathLike[str],
    criteria: CleanupCriteria,
    run_id: str | None = None,
    progress: ProgressCallback | None = None,
    lock_wait: float = LOCK_WAIT_SECONDS,
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
        lock_wait: Seconds to wait while another process runs the same run id.

    Returns:
        The result with ``verification`` and the manifest; ``deleted`` counts are zero.

    Raises:
        VerificationError: The archive did not match the selection.
    """
    store, big = _archive_target(org, archive)
    run_id = check_run_id(run_id or new_run_id())
    run = _Run(org, store, criteria, run_id, False, 1, progress, lock_wait, big)
    return run.execute(delete=False)


def _archive_target(
    org: Org, archive: str | os.PathLike[str]
) -> tuple[ArchiveStore, BigObjectArchive | None]:
    """Where records are written: an archive store, or the big objects and their staging."""
    if is_bigobject(archive):
        return staging_store(org), bigobject_archive(org)
    return ArchiveStore(archive), None


def _label(store: ArchiveStore, big: BigObjectArchive | None) -> str:
    return store.location if big is None else f"{big.label} (staged in {store.location})"


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
        lock_wait: float = LOCK_WAIT_SECONDS,
        big: BigObjectArchive | None = None,
    ) -> None:
        self.org, self.store, self.criteria, self.run_id = org, store, criteria, run_id
        self.big = big
        self.hard, self.chunk_size = hard, chunk_size
        self.progress = progress or (lambda phase, done, total: None)
        self.lock_wait = lock_wait
        self.ledger = Ledger(ledger_path(store, run_id))
        self.resumed = False

    def execute(self, *, delete: bool = True) -> CleanupResult:
        """Go through the steps with the ledger locked; a remote archive gets a copy of it."""
        # The lock comes before the first read of the ledger: a run that waited for another
        # with the same id sees every step that one recorded, never a stale list.
        self.ledger.open(wait=self.lock_wait)
        self.resumed = bool(self.ledger.entries)
        try:
            return self._go(delete=delete)
        except pl.exceptions.PolarsError as error:
            # polars names neither the table nor the file: find which, when the org can say.
            if not isinstance(self.org, LocalOrg | ArchivedOrg):
                raise
            problems = self.org.table_problems(ARCHIVED_TABLES)
            if not problems:
                raise
            raise CleanupError(
                f"run {self.run_id} stopped ({first_line(error)}): {'; '.join(problems[:5])}. "
                "Run again with the same run id once the tables are fixed: it resumes"
            ) from None
        finally:
            self.ledger.close()
            if not self.store.is_local and self.ledger.path.exists():
                self.store.fs.put_file(
                    str(self.ledger.path),
                    self.store.path(f"{self.store.run_dir(self.run_id)}/ledger.jsonl"),
                )

    def _go(self, *, delete: bool) -> CleanupResult:
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
        elif delete:
            # A finished run started again: its deletes that failed are tried once more.
            manifest = self.store.read_json(self.store.manifest_path(self.run_id))
            for table in ARCHIVED_TABLES:  # children first
                self._retry_again(table, manifest)
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
        table = pl.DataFrame(schema=VERIFY_SCHEMA)
        if not problems and self.big is not None:
            # Into the big objects, then read back through the index: verified from the org.
            insert_staged(self.big, self.store, self.ledger, manifest, self.run_id)
            table, found = verify_bigobject(self.org, self.big, self.store, manifest, self.criteria)
            problems += found
        elif not problems:
            try:
                table = verify_archive(self.org, self.store, manifest, self.criteria)
            except (pl.exceptions.PolarsError, OSError) as error:
                problems.append(f"archive {self.store.location} cannot be read back: {error}")
            problems += [
                f"{r['table']} {r['year']}-{r['month']:02d}: {r['selected']:,} selected in the "
                f"org, {r['archived']:,} archived{'' if r['ids_match'] else ', Ids differ'}"
                for r in table.filter(~pl.col("ok")).iter_rows(named=True)  # only the failures
            ]
        rows = table.to_dicts()
        if problems:
            self.ledger.write("verify", "failed", problems=problems, rows=rows)
            # Nothing was deleted: the next attempt with this run id archives afresh.
            inserts = [e["step"] for e in self.ledger.entries if e["step"].startswith("insert:")]
            for step in ("manifest", *(f"archive:{t}" for t in ARCHIVED_TABLES), *inserts):
                self.ledger.write(step, "invalidated")
            raise VerificationError(
                f"archive {_label(self.store, self.big)}, run {self.run_id}: verification failed, "
                "nothing "
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
        for request in self._requests(table, files):
            for outcome in self._delete_chunks(table, request):
                failed += outcome["failures"]
            done += sum(len(ids) for _, ids in request)
            self.progress(phase, done, total)
        retry_step = f"retry:{table}"
        if failed and self.ledger.state(retry_step) != "done":
            self._delete_chunks(table, [(retry_step, pl.Series("id", [i for i, _ in failed]))])

    def _retry_again(self, table: str, manifest: dict[str, Any]) -> None:
        """One more retry round of a finished run's failed deletes of ``table``.

        Rounds are the ledger steps ``retry:<table>`` (the run's own retry), then
        ``retry:<table>:2``, ``:3``, ... one per rerun. A round killed part-way is finished
        (reconciled like any started step) before a new one would begin.
        """
        rounds = self._retry_rounds(table)
        failed = self._final_failures(table)
        if not failed:
            return
        # The Ids come from the ledger: delete only while the archive still holds them intact.
        problems = check_files(self.store, manifest["tables"][table]["files"])
        if problems:
            raise VerificationError(f"retry of failed deletes stopped: {'; '.join(problems)}")
        unfinished = rounds and self.ledger.state(rounds[-1]) != "done"
        step = rounds[-1] if unfinished else f"retry:{table}:{len(rounds) + 1}"
        self.progress(f"retry {table}", 0, len(failed))
        self._delete_chunks(table, [(step, pl.Series("id", [i for i, _ in failed]))])
        self.progress(f"retry {table}", len(failed), len(failed))

    def _retry_rounds(self, table: str) -> list[str]:
        """The retry steps of ``table`` in the ledger, in the order they were first begun."""
        first, more = f"retry:{table}", f"retry:{table}:"
        steps = (e["step"] for e in self.ledger.entries)
        return list(dict.fromkeys(s for s in steps if s == first or s.startswith(more)))

    def _final_failures(self, table: str) -> list[list[str]]:
        """``[id, error]`` of the records of ``table`` whose delete failed last time it was tried:
        the latest finished retry round's failures, else the delete chunks' failures."""
        done = [r for r in self._retry_rounds(table) if self.ledger.state(r) == "done"]
        if done:
            return list(self._done_entry(done[-1])["failures"])
        return [f for e in self._chunk_entries(table) for f in e["failures"]]

    def _chunk_entries(self, table: str) -> list[dict[str, Any]]:
        """The latest ``done`` entry of each delete chunk of ``table``."""
        latest = {
            e["step"]: e
            for e in self.ledger.entries
            if e["event"] == "done" and e["step"].startswith(f"delete:{table}:")
        }
        return list(latest.values())

    def _chunks(self, table: str, files: list[dict[str, Any]]) -> Iterator[_Chunk]:
        """A table's delete steps and their Ids, file by file, in chunks of ``chunk_size``."""
        for file_no, entry in enumerate(files):
            # Only Ids read from a file whose bytes still match the verified manifest are deleted.
            problems = check_files(self.store, [entry])
            if problems:
                raise VerificationError(f"deletion stopped: {'; '.join(problems)}")
            ids = self.store.file_ids(entry["path"])
            for chunk_no, start in enumerate(range(0, len(ids), self.chunk_size)):
                yield f"delete:{table}:{file_no}.{chunk_no}", ids.slice(start, self.chunk_size)

    def _requests(self, table: str, files: list[dict[str, Any]]) -> Iterator[list[_Chunk]]:
        """The chunks grouped into delete requests to the org.

        An org that takes deletes in batches (Salesforce) gets one chunk per request. One that
        takes any number at about the same cost (a local org rewrites its whole table per
        request) gets every chunk of the table in one request: a single rewrite, not one per
        chunk. The ledger keeps its steps per chunk either way.
        """
        chunks = self._chunks(table, files)
        if self.org.delete_batch_size is not None:
            yield from ([chunk] for chunk in chunks)
            return
        every = list(chunks)
        if every:
            yield every

    def _delete_chunks(self, table: str, chunks: list[_Chunk]) -> list[dict[str, Any]]:
        """Delete the Ids of ``chunks`` (ledger steps) in one request to the org.

        Each step not done yet is begun before the request and ended after it, so a kill at any
        moment leaves every step either done (skipped on resume) or started (reconciled then).

        Returns:
            Each chunk's ``done`` ledger entry, in order.
        """
        states = {step: self.ledger.state(step) for step, _ in chunks}
        todo = [(step, ids) for step, ids in chunks if states[step] != "done"]
        started = [ids for step, ids in todo if states[step] == "start"]
        # Killed between asking and recording: delete only what the org still has.
        still = self._still_present(table, pl.concat(started)) if started else None
        pending: list[tuple[str, pl.Series, int]] = []
        for step, ids in todo:
            already = 0
            if still is not None and states[step] == "start":
                kept = ids.filter(ids.is_in(still.implode()))
                already, ids = len(ids) - len(kept), kept
            self.ledger.begin(step, records=len(ids))
            pending.append((step, ids, already))
        requested = [ids for _, ids, _ in pending if len(ids)]
        result = (
            self.org.delete(table, pl.concat(requested).to_list(), hard=self.hard)
            if requested
            else pl.DataFrame(schema=DELETE_RESULT_SCHEMA)
        )
        parts = _split_result(result, [ids for _, ids, _ in pending])
        ended = {
            step: self._end_chunk(step, part, already)
            for (step, _, already), part in zip(pending, parts, strict=True)
        }
        return [ended.get(step) or self._done_entry(step) for step, _ in chunks]

    def _still_present(self, table: str, ids: pl.Series) -> pl.Series:
        """Those of ``ids`` the org still holds."""
        return (
            self.org.table(table)
            .select("id")
            .join(ids.to_frame().lazy(), on="id", how="semi", build_side="force_right")
            .collect()
            .get_column("id")
        )

    def _end_chunk(self, step: str, result: pl.DataFrame, already: int) -> dict[str, Any]:
        """Record what the org answered for one step's Ids."""
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

    def _done_entry(self, step: str) -> dict[str, Any]:
        entry = self.ledger.last(step)
        if entry is None:  # pragma: no cover - only steps found done are read back
            raise CleanupError(f"ledger {self.ledger.path}: step {step} has no entry")
        return entry

    # result

    def _result(self, plan: CleanupPlan) -> CleanupResult:
        manifest = self.store.read_json(self.store.manifest_path(self.run_id))
        verify = self.ledger.last("verify")
        rows = []
        failure_rows = []
        for table in ARCHIVED_TABLES:
            rounds = [r for r in self._retry_rounds(table) if self.ledger.state(r) == "done"]
            entries = self._chunk_entries(table) + [self._done_entry(r) for r in rounds]
            deleted = sum(e["deleted"] for e in entries)
            already = sum(e["already_deleted"] for e in entries)
            final = self._final_failures(table)
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
            archive=_label(self.store, self.big),
            run_id=self.run_id,
            resumed=self.resumed,
            verification=pl.DataFrame(
                verify["rows"],
                schema=VERIFY_SCHEMA if self.big is None else BIGOBJECT_VERIFY_SCHEMA,
            )
            if verify
            else None,
            deleted=pl.DataFrame(rows, schema=_DELETED_SCHEMA),
            failures=pl.DataFrame(failure_rows, schema=_FAILURES_SCHEMA).sort("table", "id"),
            ledger_path=self.ledger.path,
            manifest=manifest,
        )


_DELETED_SCHEMA = pl.Schema(
    {
        "table": pl.String,
        "archived": pl.Int64,
        "deleted": pl.Int64,
        "already_deleted": pl.Int64,
        "failed": pl.Int64,
    }
)
_FAILURES_SCHEMA = pl.Schema({"table": pl.String, "id": pl.String, "error": pl.String})


def _split_result(result: pl.DataFrame, requests: list[pl.Series]) -> list[pl.DataFrame]:
    """The org's answer to one request, split into the parts of the chunks it joined.

    The org answers one row per requested Id, not necessarily in order: rows are matched to
    chunks by Id (and, for an Id asked twice, by its occurrence).
    """
    if len(requests) <= 1:
        return [result] * len(requests)
    occurrence = pl.int_range(pl.len()).over("id").alias("_occurrence")
    owners = pl.concat(
        [ids.to_frame().with_columns(_chunk=pl.lit(n, pl.Int64)) for n, ids in enumerate(requests)]
    ).with_columns(occurrence)
    tagged = result.with_columns(occurrence).join(
        owners, on=["id", "_occurrence"], how="left", maintain_order="left"
    )
    return [
        tagged.filter(pl.col("_chunk") == n).select(result.columns) for n in range(len(requests))
    ]
