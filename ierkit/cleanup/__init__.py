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
   read from verified archive files; then ``retry:<table>`` once for per-record failures. Each
   chunk is one delete request to an org that takes deletes in batches (Salesforce); an org that
   does not (a local org, ``Org.delete_batch_size`` None) gets all chunks of a table in one
   request, its steps begun before it and ended after it.

One process at a time runs a run id: the run's lock (``runs/<run_id>/ledger.lock``, naming its
holder) is taken before the ledger is first read and held to the end; a second process waits
up to ``lock_wait`` seconds, then stops with a message naming the holder. Started again after
it finished, a run retries the deletes that failed (one more round each time).

A run killed at any point and started again with the same run id resumes: finished steps are
skipped; a delete chunk that started but never finished is reconciled against the org (only the
Ids still present are deleted), so no record is deleted twice and none is left behind. Before
verification nothing has been deleted, so archive steps are simply redone.

Dry run (``execute=False``, the default) computes the plan and writes nothing anywhere.

Modules: ``_selection`` (criteria, what they select, the SOQL), ``_plan`` (counts), ``_ledger``
(the run's steps on disk), ``_run`` (the state machine), ``_verify`` (archive against org) and
``_restore`` (archive back into a local org), ``_bigobject`` (``archive="bigobject"``: the
org's own big objects instead of a folder; see that module).
"""

from __future__ import annotations

from ierkit.cleanup._bigobject import (
    BIGOBJECT,
    BIGOBJECT_VERIFY_SCHEMA,
    bigobject_archive,
    is_bigobject,
    restore_bigobject,
    staging_store,
)
from ierkit.cleanup._errors import CleanupError, VerificationError
from ierkit.cleanup._ledger import CRASH_ENV, LOCK_WAIT_SECONDS, Ledger, ledger_path
from ierkit.cleanup._plan import ORPHANED_PROGRAMME, CleanupPlan, plan_cleanup
from ierkit.cleanup._restore import restore_archive
from ierkit.cleanup._run import (
    DELETE_CHUNK_SIZE,
    CleanupResult,
    ProgressCallback,
    archive_and_verify,
    new_run_id,
    run_cleanup,
)
from ierkit.cleanup._selection import (
    IERS,
    LINKS,
    CleanupCriteria,
    cleanup_criteria,
    orphaned_links,
    select_iers,
    select_links,
    selection_query,
)
from ierkit.cleanup._verify import verify_archive

__all__ = [
    "BIGOBJECT",
    "BIGOBJECT_VERIFY_SCHEMA",
    "CRASH_ENV",
    "DELETE_CHUNK_SIZE",
    "IERS",
    "LINKS",
    "LOCK_WAIT_SECONDS",
    "ORPHANED_PROGRAMME",
    "CleanupCriteria",
    "CleanupError",
    "CleanupPlan",
    "CleanupResult",
    "Ledger",
    "ProgressCallback",
    "VerificationError",
    "archive_and_verify",
    "bigobject_archive",
    "cleanup_criteria",
    "is_bigobject",
    "ledger_path",
    "new_run_id",
    "orphaned_links",
    "plan_cleanup",
    "restore_archive",
    "restore_bigobject",
    "run_cleanup",
    "select_iers",
    "select_links",
    "selection_query",
    "staging_store",
    "verify_archive",
]
