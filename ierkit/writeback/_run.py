"""A write-back run: the changed summaries written in chunks, with a ledger to resume from.

Steps, each in the run's ledger (``ierkit._ledger.Ledger``, one JSON object a line, fsynced):

1. ``plan``: the summary's instant and what it would change, recorded once: a resumed run
   summarises at the same instant, so what it compares is what the first attempt compared.
2. ``write:<table>:<k>``: chunk ``k`` of ``Org.write_batch_size`` changed records: ``start``,
   then ``submitted`` with the org's reference (a Bulk job Id, from ``on_submit``), then
   ``done`` with the per-record failures. ``write:<table>`` ``done`` closes the table.
3. ``retry:<table>:<k>``: the records that failed, once more (a row lock passes the second
   time; a validation rule fails again and is listed).
4. The same for ``tasks`` (inserts) when Tasks are asked for.
5. ``finish``: the counts.

Resuming (the same run id after a kill): a chunk the org got (a reference, no results) is
collected with ``Org.finish_write``; a chunk without a reference, or one the org never got, is
dropped, and the diff is computed again against the org, so records already written (their
values now match) are not written again and the rest are. Every record is written once.
One process at a time runs a run id (the ledger's lock).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from ierkit import _files, clock, schema, signal
from ierkit._files import LockHeldError, crash_point
from ierkit._ledger import LOCK_WAIT_SECONDS, Ledger
from ierkit.errors import IerkitError
from ierkit.orgs.base import Org
from ierkit.writeback._plan import (
    TABLES,
    WritebackPlan,
    changed_records,
    plan_writeback,
    read_afresh,
)
from ierkit.writeback._summary import SUMMARY_COLUMNS, summarise
from ierkit.writeback._tasks import TASK_KEY, missing_tasks

#: The pseudo-table of the optional Tasks in the ledger and the result.
TASKS: Final = "tasks"

#: Failures listed in the printed result; all are in ``failures.csv`` in the run folder.
FAILURES_SHOWN: Final = 10


class WritebackError(IerkitError):
    """A write-back cannot run as asked; the message says why and what to do."""


#: Columns of ``WritebackResult.failures``.
FAILURE_SCHEMA: Final = pl.Schema({"table": pl.String, "id": pl.String, "error": pl.String})


@dataclass(frozen=True)
class WritebackResult:
    """What a write-back did (or, in a dry run, would do).

    Attributes:
        run_id: The run's id (None for a dry run).
        folder: The run folder with the ledger and ``failures.csv`` (None for a dry run).
        plan: The plan, for a dry run; None after an execution.
        as_of: The summary's instant.
        source: The org's label.
        written: Records written per table (``contacts``, ``leads``, ``tasks``).
        unchanged: Records whose values already matched, per table.
        failures: ``table``, ``id`` (the record; for a Task, the person), ``error``: records
            that failed twice.
    """

    run_id: str | None
    folder: Path | None
    plan: WritebackPlan | None
    as_of: dt.datetime
    source: str
    written: dict[str, int]
    unchanged: dict[str, int]
    failures: pl.DataFrame

    def __str__(self) -> str:
        if self.plan is not None:
            return f"{self.plan}\nDry run: nothing was written. Run again with --execute to write."
        lines = [
            f"Write-back to {self.source}, summary as of {self.as_of:%Y-%m-%d %H:%M} UTC "
            f"(run {self.run_id})"
        ]
        failed = dict(self.failures.group_by("table").len().iter_rows())  # three tables at most
        for table, written in self.written.items():
            label = "Tasks" if table == TASKS else schema.table(table).sobject + "s"
            verb = "created" if table == TASKS else "written"
            unchanged = (
                "" if table == TASKS else f", {self.unchanged.get(table, 0):,} already up to date"
            )
            lines.append(
                f"  {label}: {written:,} {verb}{unchanged}, {failed.get(table, 0):,} failed"
            )
        if self.failures.height:
            lines.append("Failed after one retry (record Id: Salesforce's error):")
            for table, record, error in self.failures.head(FAILURES_SHOWN).iter_rows():
                lines.append(f"  {record} ({table}): {error}")
            more = self.failures.height - FAILURES_SHOWN
            where = self.folder / "failures.csv" if self.folder else "the run folder"
            if more > 0:
                lines.append(f"  ... and {more:,} more")
            lines.append(f"All failures: {where}")
        return "\n".join(lines)


def new_run_id() -> str:
    """A run id from the current time (UTC)."""
    return f"writeback-{clock.now():%Y%m%dT%H%M%S%fZ}"


def run_folder(run_id: str, ledger_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a run keeps its ledger: ``<ledger_dir>/<run_id>``, by default under the cache."""
    root = Path(ledger_dir).expanduser() if ledger_dir else _files.cache_dir() / "writeback"
    return root / run_id


def run_writeback(
    org: Org,
    *,
    as_of: dt.datetime | dt.date | None = None,
    params: signal.SignalParams | None = None,
    tasks: bool = False,
    execute: bool = False,
    run_id: str | None = None,
    ledger_dir: str | os.PathLike[str] | None = None,
    lock_wait: float = LOCK_WAIT_SECONDS,
) -> WritebackResult:
    """Write the engagement summary onto Contacts and Leads (a dry run unless ``execute``).

    Args:
        org: The org to write to.
        as_of: The summary's instant (a date: the end of that day, UTC); the org's own
            when None. A resumed run keeps the instant its first attempt recorded.
        params: The signal's windows and weights; the defaults when None.
        tasks: Also create one Task per person per day of a human click.
        execute: Write; without it, only the plan is computed and nothing is written anywhere.
        run_id: Resume this run, or name a new one; a new id when None.
        ledger_dir: Folder of run folders; ``<cache>/writeback`` when None.
        lock_wait: Seconds to wait for another process running the same run id.

    Returns:
        The result; ``str(result)`` reads for a RevOps lead.

    Raises:
        WritebackError: Another process runs this run id, or the run recorded another instant.
    """
    if as_of is not None and not isinstance(as_of, dt.datetime):
        as_of = clock.end_of_day(as_of)
    if not execute:
        plan = plan_writeback(org, as_of=as_of, params=params, tasks=tasks)
        return WritebackResult(
            None,
            None,
            plan,
            plan.as_of,
            plan.source,
            dict(plan.changed),
            {t: plan.unchanged(t) for t in TABLES},
            FAILURE_SCHEMA.to_frame(),
        )
    run = run_id or new_run_id()
    folder = run_folder(run, ledger_dir)
    ledger = Ledger(folder / "ledger.jsonl", what="write-back run")
    try:
        ledger.open(wait=lock_wait)
    except LockHeldError as error:
        raise WritebackError(str(error)) from None
    try:
        read_afresh(org)  # after the lock: what an earlier run in this session wrote is read
        return _Run(org, ledger, run, folder, params).execute(as_of=as_of, tasks=tasks)
    finally:
        ledger.close()


class _Run:
    def __init__(
        self,
        org: Org,
        ledger: Ledger,
        run_id: str,
        folder: Path,
        params: signal.SignalParams | None,
    ) -> None:
        self.org = org
        self.ledger = ledger
        self.run_id = run_id
        self.folder = folder
        self.params = params
        self.as_of = dt.datetime.min
        self._summary: pl.LazyFrame | None = None

    def execute(self, *, as_of: dt.datetime | None, tasks: bool) -> WritebackResult:
        plan = self.ledger.last("plan")
        if plan is None:
            self.as_of = clock.to_utc(as_of or self.org.data_as_of())
            # The summary is computed once per run: the plan's counts and the writes share it.
            counts = plan_writeback(
                self.org, as_of=self.as_of, params=self.params, summary=self._summary_frame()
            )
            plan = self.ledger.write(
                "plan",
                "done",
                as_of=self.as_of.isoformat(),
                tasks=tasks,
                source=self.org.label,
                people=counts.people,
                changed=counts.changed,
            )
        else:
            self.as_of = dt.datetime.fromisoformat(plan["as_of"])
            if as_of is not None and clock.to_utc(as_of) != self.as_of:
                raise WritebackError(
                    f"run {self.run_id} summarises as of {self.as_of:%Y-%m-%d %H:%M:%S} UTC; "
                    "resume it without --as-of, or start a new run (another --run-id)"
                )
        if self.ledger.state("finish") != "done":
            self._reconcile()
            for table in TABLES:
                for phase in ("write", "retry"):
                    self._phase(table, phase)
            if plan["tasks"]:
                for phase in ("write", "retry"):
                    self._phase(TASKS, phase)
            result = self._result(plan)
            _files.write_text(self.folder / "failures.csv", result.failures.write_csv(None))
            self.ledger.write("finish", "done", written=result.written)
            return result
        return self._result(plan)

    # --- resuming -------------------------------------------------------------------------

    def _open_steps(self) -> dict[str, dict[str, Any]]:
        """Chunk steps whose last entry is ``start`` or ``submitted`` (a kill came between)."""
        last: dict[str, dict[str, Any]] = {}
        for entry in self.ledger.entries:
            if entry["step"].count(":") == 2:
                last[entry["step"]] = entry
        return {s: e for s, e in last.items() if e["event"] in ("start", "submitted")}

    def _reconcile(self) -> None:
        for step, entry in self._open_steps().items():
            reference = entry.get("reference")
            results = self.org.finish_write(reference) if reference else None
            if results is None:
                # Never carried out (or an atomic write whose outcome the diff will show):
                # the records are compared with the org again and sent if still different.
                self.ledger.write(step, "abandoned")
                continue
            keys = entry.get("keys") or results.get_column("id").to_list()
            self._end(step, results, keys)

    # --- writing --------------------------------------------------------------------------

    def _summary_frame(self) -> pl.LazyFrame:
        if self._summary is None:
            self._summary = summarise(self.org, self.as_of, self.params).collect().lazy()
        return self._summary

    def _failed_keys(self, table: str, phase: str) -> dict[str, str]:
        """Keys of records that failed in finished chunks of ``table``'s ``phase``."""
        failed: dict[str, str] = {}
        for entry in self.ledger.entries:
            if entry["event"] == "done" and entry["step"].startswith(f"{phase}:{table}:"):
                failed.update((key, error) for key, error in entry.get("failed", []))
        return failed

    def _candidates(self, table: str) -> pl.DataFrame:
        """The records still to write, with a ``_key`` column (the Id; for a Task its key)."""
        if table == TASKS:
            planned = missing_tasks(self.org, self.as_of, self.params)
            return planned.with_columns(_key=_task_key())
        records = changed_records(self.org, table, self._summary_frame()).select(
            "id", *SUMMARY_COLUMNS
        )
        return records.collect().with_columns(_key=pl.col("id"))

    def _phase(self, table: str, phase: str) -> None:
        step = f"{phase}:{table}"
        if self.ledger.state(step) == "done":
            return
        tried = set(self._failed_keys(table, phase))
        if phase == "retry":
            wanted = set(self._failed_keys(table, "write")) - tried
            if not wanted:  # nothing failed: no need to compare with the org again
                self.ledger.write(step, "done")
                return
            candidates = self._candidates(table).filter(pl.col("_key").is_in(list(wanted)))
        else:
            candidates = self._candidates(table)
            candidates = candidates.filter(~pl.col("_key").is_in(list(tried)))
        done = sum(1 for e in self.ledger.entries if e["step"].startswith(f"{step}:"))
        for n, chunk in enumerate(_chunks(candidates, self.org.write_batch_size), start=done):
            self._write_chunk(table, f"{step}:{n + 1}", chunk)
        self.ledger.write(step, "done")

    def _write_chunk(self, table: str, step: str, chunk: pl.DataFrame) -> None:
        keys = chunk.get_column("_key").to_list()
        records = chunk.drop("_key")
        entry: dict[str, Any] = {"records": chunk.height}
        if table == TASKS:
            entry["keys"] = keys  # an insert's results carry new Ids, not the record's key
        self.ledger.write(step, "start", **entry)
        crash_point(f"writeback/{step}/started")

        def submitted(reference: str) -> None:
            self.ledger.write(step, "submitted", reference=reference, **entry)
            crash_point(f"writeback/{step}/submitted")

        if table == TASKS:
            results = self.org.insert("tasks", records, on_submit=submitted)
        else:
            results = self.org.update(table, records, on_submit=submitted)
        crash_point(f"writeback/{step}/written")
        self._end(step, results, keys)

    def _end(self, step: str, results: pl.DataFrame, keys: list[str]) -> None:
        """Record a chunk's results: how many succeeded and each failure with its error."""
        failed = [
            [keys[i], error or "no result for this record"]
            for i, (ok, error) in enumerate(
                zip(results.get_column("success"), results.get_column("error"), strict=True)
            )
            if not ok
        ]
        self.ledger.write(step, "done", written=results.height - len(failed), failed=failed)

    # --- the result -----------------------------------------------------------------------

    def _result(self, plan: dict[str, Any]) -> WritebackResult:
        tables = [*TABLES, TASKS] if plan["tasks"] else list(TABLES)
        written = {
            t: sum(
                e.get("written", 0)
                for e in self.ledger.entries
                if e["event"] == "done"
                and e["step"].count(":") == 2
                and e["step"].split(":")[1] == t
            )
            for t in tables
        }
        rows = []
        for table in tables:
            for key, error in self._failed_keys(table, "retry").items():
                record = key.split("|", 1)[0]
                rows.append((table, record, error))
        failures = pl.DataFrame(rows, schema=FAILURE_SCHEMA, orient="row").sort("table", "id")
        unchanged = {t: plan["people"][t] - plan["changed"][t] for t in TABLES}
        return WritebackResult(
            self.run_id,
            self.folder,
            None,
            self.as_of,
            plan.get("source", self.org.label),
            written,
            unchanged,
            failures,
        )


def _task_key() -> pl.Expr:
    """A Task's key in the ledger: person, day and subject (``TASK_KEY``), joined by ``|``."""
    return pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in TASK_KEY], separator="|")


def _chunks(frame: pl.DataFrame, size: int) -> Iterator[pl.DataFrame]:
    for start in range(0, frame.height, size):
        yield frame.slice(start, size)
