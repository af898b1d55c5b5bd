"""A local org that writes like Salesforce's Bulk jobs, for the write-back tests; and a worker.

``FlakyOrg`` wraps ``LocalOrg``: each ``update``/``insert`` is a "job" kept on disk under
``<org>/_jobs`` before ``on_submit(reference)`` is called and carried out after it, so
``finish_write(reference)`` can carry out or read back a job whose client was killed. Ids named
in ``<org>/_faults.json`` fail: ``always`` with a validation rule every time, ``once`` with a
row lock the first time only. Every record written is appended (fsynced) to ``<org>/_writes.log``
and every attempt to ``<org>/_attempts.log``, so a test can count them across kills.

As a worker (real subprocess, for the SIGKILL tests):
``python -m tests.writeback_org ORG_DIR LEDGER_DIR RUN_ID KIND [--tasks]`` runs
``run_writeback(..., execute=True)`` on ``FlakyOrg`` (KIND ``flaky``) or a plain ``LocalOrg``
(KIND ``local``) with batches of 2; ``IERKIT_CRASH_AT`` kills it at a crash point.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import polars as pl

from ierkit import _files
from ierkit.orgs import LocalOrg
from ierkit.orgs.base import WRITE_RESULT_SCHEMA

VALIDATION = "FIELD_CUSTOM_VALIDATION_EXCEPTION:Email Opt Out blocks updates:"
ROW_LOCK = "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:"


def _append(path: Path, lines: list[str]) -> None:
    with open(path, "a") as handle:
        handle.writelines(f"{line}\n" for line in lines)
        handle.flush()
        os.fsync(handle.fileno())


def read_log(path: Path) -> list[str]:
    """The lines of a log (empty when it does not exist)."""
    return path.read_text().splitlines() if path.exists() else []


class FlakyOrg(LocalOrg):
    """A local org with Bulk-like jobs, chosen per-record failures and a write log."""

    def __init__(self, path: str | os.PathLike[str], *, batch_size: int = 2) -> None:
        super().__init__(path)
        self.batch_size = batch_size
        faults_path = self.path / "_faults.json"
        faults = json.loads(faults_path.read_text()) if faults_path.exists() else {}
        self.always = set(faults.get("always", []))
        self.once = set(faults.get("once", []))

    @staticmethod
    def set_faults(path: Path, *, always: list[str] = (), once: list[str] = ()) -> None:  # type: ignore[assignment]
        _files.write_text(path / "_faults.json", json.dumps({"always": always, "once": once}))

    @property
    def write_batch_size(self) -> int:
        return self.batch_size

    @property
    def writes(self) -> list[str]:
        return read_log(self.path / "_writes.log")

    @property
    def attempts(self) -> list[str]:
        return read_log(self.path / "_attempts.log")

    def _job(self, reference: str) -> Path:
        return self.path / "_jobs" / reference

    def update(
        self,
        table_name: str,
        records: pl.DataFrame,
        *,
        on_submit: Callable[[str], None] | None = None,
    ) -> pl.DataFrame:
        return self._submit("update", table_name, records, on_submit)

    def insert(
        self,
        table_name: str,
        records: pl.DataFrame,
        *,
        on_submit: Callable[[str], None] | None = None,
    ) -> pl.DataFrame:
        return self._submit("insert", table_name, records, on_submit)

    def _submit(
        self,
        operation: str,
        table_name: str,
        records: pl.DataFrame,
        on_submit: Callable[[str], None] | None,
    ) -> pl.DataFrame:
        reference = uuid.uuid4().hex
        job = self._job(reference)
        job.mkdir(parents=True)
        _files.write_parquet(records, job / "records.parquet")
        _files.write_text(job / "job.json", json.dumps({"op": operation, "table": table_name}))
        if on_submit is not None:
            on_submit(reference)
        return self._carry_out(reference)

    def finish_write(self, reference: str) -> pl.DataFrame | None:
        return self._carry_out(reference) if (self._job(reference) / "job.json").exists() else None

    def _carry_out(self, reference: str) -> pl.DataFrame:
        job = self._job(reference)
        done = job / "results.parquet"
        if done.exists():
            return pl.read_parquet(done)
        spec = json.loads((job / "job.json").read_text())
        records = pl.read_parquet(job / "records.parquet")
        if spec["op"] == "insert":
            keys = records.select(
                pl.concat_str(["who_id", "activity_date", "subject"], separator="|")
            ).to_series()
            _append(self.path / "_attempts.log", keys.to_list())
            results = super().insert(spec["table"], records)
            _append(self.path / "_writes.log", keys.to_list())
        else:
            ids = records.get_column("id").to_list()
            _append(self.path / "_attempts.log", ids)
            failed_before = set(read_log(self.path / "_row_locks.log"))
            errors = [
                VALIDATION
                if i in self.always
                else ROW_LOCK
                if i in self.once and i not in failed_before
                else None
                for i in ids
            ]
            _append(
                self.path / "_row_locks.log",
                [i for i, e in zip(ids, errors, strict=True) if e == ROW_LOCK],
            )
            good = records.filter(pl.Series([e is None for e in errors]))
            written = super().update(spec["table"], good)
            _append(self.path / "_writes.log", written.filter("success").get_column("id").to_list())
            by_id = dict(zip(written["id"], written["error"], strict=True))
            results = pl.DataFrame(
                {
                    "id": ids,
                    "success": [
                        e is None and by_id.get(i) is None for i, e in zip(ids, errors, strict=True)
                    ],
                    "error": [e or by_id.get(i) for i, e in zip(ids, errors, strict=True)],
                },
                schema=WRITE_RESULT_SCHEMA,
            )
        _files.write_parquet(results, done)
        return results


def main(argv: list[str]) -> int:
    from ierkit.writeback import run_writeback

    org_dir, ledger_dir, run_id, kind = argv[:4]
    org = FlakyOrg(org_dir) if kind == "flaky" else _SmallBatches(org_dir)
    result = run_writeback(
        org, execute=True, run_id=run_id, ledger_dir=ledger_dir, tasks="--tasks" in argv
    )
    print(result)
    return 1 if result.failures.height else 0


class _SmallBatches(LocalOrg):
    """A plain local org (atomic writes, no ``on_submit``) taking two records a request."""

    @property
    def write_batch_size(self) -> int:
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
