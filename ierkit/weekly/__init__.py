"""The unattended weekly run: report notebooks, offline HTML, and one worklist per rep.

``run_weekly`` executes the suite's report notebooks with papermill into
``outputs/<ISO week>/``: each executed notebook, an HTML version without code cells and without
scripts (charts are embedded as images, so it opens offline), and the engagement worklist split
per owner as CSV (formula-like cells neutralised) and HTML, with one email message per owner
(``.eml`` files to review; sent over SMTP with ``email=True``, recorded in the week's delivery
ledger so a rerun sends only what was not sent). Everything in the week's folder is readable by
its owner only.

One run at a time writes a week (a lock; a second run waits, then stops naming the holder). The
week is built in a staging folder and swapped in when complete, so a reader never sees a
half-written week. A failing notebook stops the run with ``WeeklyRunError`` naming the notebook
and the cell, and its executed copy is kept in a ``<week>.failed-<time>`` folder. An owner whose
email address is not exactly one plain address is skipped (listed in the week's ``skipped.txt``
and ``run.log``), never the whole run.
"""

from ierkit.weekly._delivery import (
    DEFAULT_SMTP_TIMEOUT,
    LEDGER_NAME,
    SMTP_ENV,
    DeliveryReport,
    SmtpSettings,
    deliver,
    read_ledger,
    send_messages,
    sender_from_env,
)
from ierkit.weekly._documents import (
    AddressError,
    OwnerDocument,
    SkippedOwner,
    TeamDocument,
    build_message,
    check_address,
    file_stem,
    flat_columns,
    owner_documents,
    team_documents,
)
from ierkit.weekly._email import EMAIL_WIDTH_PX, EmailBody, manager_email, rep_email, team_rollup
from ierkit.weekly._errors import DeliveryError, WeeklyRunError
from ierkit.weekly._index import earlier_weeks, write_index
from ierkit.weekly._notebooks import (
    WEEKLY_NOTEBOOKS,
    execute_notebook,
    notebook_to_html,
    notebooks_dir,
)
from ierkit.weekly._run import (
    DEFAULT_LOCK_WAIT,
    LOG_NAME,
    SKIPPED_NAME,
    OrgContext,
    WeeklyResult,
    iso_week_label,
    recover_week,
    run_weekly,
)

__all__ = [
    "DEFAULT_LOCK_WAIT",
    "DEFAULT_SMTP_TIMEOUT",
    "EMAIL_WIDTH_PX",
    "LEDGER_NAME",
    "LOG_NAME",
    "SKIPPED_NAME",
    "SMTP_ENV",
    "WEEKLY_NOTEBOOKS",
    "AddressError",
    "DeliveryError",
    "DeliveryReport",
    "EmailBody",
    "OrgContext",
    "OwnerDocument",
    "SkippedOwner",
    "SmtpSettings",
    "TeamDocument",
    "WeeklyResult",
    "WeeklyRunError",
    "build_message",
    "check_address",
    "deliver",
    "earlier_weeks",
    "execute_notebook",
    "file_stem",
    "flat_columns",
    "iso_week_label",
    "manager_email",
    "notebook_to_html",
    "notebooks_dir",
    "owner_documents",
    "read_ledger",
    "recover_week",
    "rep_email",
    "run_weekly",
    "send_messages",
    "sender_from_env",
    "team_documents",
    "team_rollup",
    "write_index",
]
