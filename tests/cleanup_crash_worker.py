"""A cleanup run in its own process, for the crash tests in test_cleanup.py.

Usage: python cleanup_crash_worker.py ORG_DIR ARCHIVE RUN_ID DELETE_LOG [CHUNK_SIZE [LOCK_WAIT
[DELETE_DELAY]]]

Runs ``run_cleanup(..., execute=True)`` on the local org in ORG_DIR with the criteria the tests
use. Every Id the run asks the org to delete is appended (and fsynced) to DELETE_LOG before the
request, so a test can show that no record is requested twice across a kill and a resume. Set
``IERKIT_CRASH_AT`` to make the run kill itself with SIGKILL at a step (see ierkit.cleanup).
LOCK_WAIT is the seconds to wait for another process running the same run id; DELETE_DELAY
makes every delete request wait that many seconds first (the run holds its lock meanwhile), for
the concurrency tests. A refused run prints its error and exits 3.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Iterable

import polars as pl

from ierkit.cleanup import LOCK_WAIT_SECONDS, CleanupError, cleanup_criteria, run_cleanup
from ierkit.orgs import LocalOrg

AS_OF = dt.date(2026, 11, 20)
RETENTION_DAYS = 120


class LoggingOrg(LocalOrg):
    """A local org that records every delete request in a log file before carrying it out."""

    def __init__(self, path: str, log: str, delay: float = 0.0) -> None:
        super().__init__(path)
        self.log, self.delay = log, delay

    def delete(self, table_name: str, ids: Iterable[str], *, hard: bool = False) -> pl.DataFrame:
        ids = list(ids)
        time.sleep(self.delay)
        with open(self.log, "a") as handle:
            handle.writelines(f"{table_name}\t{i}\n" for i in ids)
            handle.flush()
            os.fsync(handle.fileno())
        return super().delete(table_name, ids, hard=hard)


def main(argv: list[str]) -> int:
    org_dir, archive, run_id, log = argv[:4]
    chunk_size = int(argv[4]) if len(argv) > 4 else 3
    lock_wait = float(argv[5]) if len(argv) > 5 else LOCK_WAIT_SECONDS
    delay = float(argv[6]) if len(argv) > 6 else 0.0
    try:
        result = run_cleanup(
            LoggingOrg(org_dir, log, delay),
            archive=archive,
            criteria=cleanup_criteria(RETENTION_DAYS, as_of=AS_OF),
            run_id=run_id,
            execute=True,
            chunk_size=chunk_size,
            lock_wait=lock_wait,
        )
    except CleanupError as error:
        print(error, file=sys.stderr)
        return 3
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
