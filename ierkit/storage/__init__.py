"""Storage: what tracked sends cost in Salesforce data storage, now and over the next months.

Marketing Cloud Connect writes one Individual Email Result (IER) per tracked recipient per send,
plus one Individual Link Level Detail per recipient per link clicked. Both are custom-object
records that count a fixed size against the org's data storage, whatever their content. This
package turns recipients and clicks into records and megabytes, reads the org's allocation and
usage, builds a send plan (by hand, or from the org's history and the tracking decision), and
projects it month by month, with or without a retention window that deletes IERs (and their
link details) older than N days.

- ``_records``: records per send, records -> MB, the org's allocation and current usage;
- ``_plan``: the send plan, its normalisation, the plan from history and the decisions applied;
- ``_projection``: the projection, the threshold date, retention options and the outlook,
  under one ``ProjectionOptions``.

The projection is one vectorised polars query (programmes x months cross join), so a plan of
thousands of programmes projects in well under a second and widgets can recompute it live.

The plan is a frame with one row per programme (see ``PLAN_COLUMNS``):

============================ ======== =========================================================
column                       type     meaning
============================ ======== =========================================================
``programme``                String   name of the programme (required)
``list_size``                Float64  recipients per send (required)
``sends_per_month``          Float64  cadence (required)
``tracked``                  Boolean  individual tracking on; default True
``links_per_recipient``      Float64  link details written per recipient per send (unique
                                      links clicked / recipients); default: the option
``retention_days``           Float64  IERs kept this many days; null: the option (None: kept)
``tracking_mb_now``          Float64  storage the programme's IERs and links use today;
                                      default 0
============================ ======== =========================================================
"""

from __future__ import annotations

from ierkit.storage._plan import (
    PLAN_COLUMNS,
    apply_decisions,
    normalize_plan,
    plan_from_history,
    plan_with_programme,
)
from ierkit.storage._projection import (
    DEFAULT_MONTHS,
    DEFAULT_PRICE_PER_GB_MONTH,
    DEFAULT_RETENTION_CANDIDATES,
    DEFAULT_THRESHOLD,
    ProjectionOptions,
    StorageOutlook,
    project_by_programme,
    project_storage,
    retention_options,
    storage_outlook,
    threshold_date,
)
from ierkit.storage._records import (
    BASE_ALLOCATION_MB,
    DAYS_PER_MONTH,
    KB_PER_MB,
    MB_PER_GB,
    PER_LICENCE_MB,
    RECORD_KB,
    RECORD_KB_BY_TABLE,
    StorageAllocation,
    StorageError,
    StorageInUse,
    allocation_mb,
    current_usage,
    org_allocation,
    records_for_send,
    send_storage,
    send_storage_text,
    storage_mb,
    storage_mb_expr,
)

__all__ = [
    "BASE_ALLOCATION_MB",
    "DAYS_PER_MONTH",
    "DEFAULT_MONTHS",
    "DEFAULT_PRICE_PER_GB_MONTH",
    "DEFAULT_RETENTION_CANDIDATES",
    "DEFAULT_THRESHOLD",
    "KB_PER_MB",
    "MB_PER_GB",
    "PER_LICENCE_MB",
    "PLAN_COLUMNS",
    "RECORD_KB",
    "RECORD_KB_BY_TABLE",
    "ProjectionOptions",
    "StorageAllocation",
    "StorageError",
    "StorageInUse",
    "StorageOutlook",
    "allocation_mb",
    "apply_decisions",
    "current_usage",
    "normalize_plan",
    "org_allocation",
    "plan_from_history",
    "plan_with_programme",
    "project_by_programme",
    "project_storage",
    "records_for_send",
    "retention_options",
    "send_storage",
    "send_storage_text",
    "storage_mb",
    "storage_mb_expr",
    "storage_outlook",
    "threshold_date",
]
