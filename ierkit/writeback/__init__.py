"""Keep the signal, drop the records: the engagement summary written onto Contacts and Leads.

Storage is why teams delete IERs, and the deletion takes the engagement history off the record.
``ierkit writeback`` first writes a per-person summary onto each Contact and Lead (six custom
fields, shipped by ``ierkit metadata``), so ``ierkit cleanup --require-writeback`` can then
delete the IERs without losing what they said.

- ``summarise``: the summary per person (``_summary``).
- ``plan_writeback``: what writing it would change, diffed against the org (``_plan``).
- ``run_writeback``: the dry run, or the write in chunks with a ledger to resume from
  (``_run``); optional Tasks for human clicks (``_tasks``).
"""

from ierkit.writeback._plan import TABLES, WritebackPlan, changed_records, plan_writeback
from ierkit.writeback._run import (
    FAILURE_SCHEMA,
    TASKS,
    WritebackError,
    WritebackResult,
    new_run_id,
    run_folder,
    run_writeback,
)
from ierkit.writeback._summary import (
    CLICK_WINDOW,
    SUMMARY_COLUMNS,
    SUMMARY_SCHEMA,
    human_clicks,
    summarise,
    summarise_tables,
)
from ierkit.writeback._tasks import TASK_KEY, missing_tasks

__all__ = [
    "CLICK_WINDOW",
    "FAILURE_SCHEMA",
    "SUMMARY_COLUMNS",
    "SUMMARY_SCHEMA",
    "TABLES",
    "TASKS",
    "TASK_KEY",
    "WritebackError",
    "WritebackPlan",
    "WritebackResult",
    "changed_records",
    "human_clicks",
    "missing_tasks",
    "new_run_id",
    "plan_writeback",
    "run_folder",
    "run_writeback",
    "summarise",
    "summarise_tables",
]
