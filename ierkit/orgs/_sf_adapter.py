"""The one place ierkit relies on simple-salesforce's private names.

simple-salesforce's public Bulk API 2.0 interface (``sf.bulk2.<Object>.download``, ``.delete``)
creates a job, waits for it and fetches every page in one call, with the session id it copied
once: ierkit could neither retry a single failed page nor renew an expired session halfway
through ten million IERs. ierkit drives the same client class (``_Bulk2Client``) step by step
instead. And a client logs in again silently on a REST 401 through the private
``_salesforce_login_partial``; ierkit switches that off and renews sessions itself, reported.

Everything private is used through this module only. ``REQUIRED`` lists the names and
parameters relied on; ``tests/test_sf_adapter.py`` checks them against the installed
simple-salesforce, so an upgrade that moves or renames one fails a test rather than a user's
run, and ``pyproject.toml`` bounds simple-salesforce below the next minor version.
"""

from __future__ import annotations

from typing import Final

from simple_salesforce.api import Salesforce
from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding, Operation, QueryResult
from simple_salesforce.bulk2 import _Bulk2Client as Bulk2Client

__all__ = [
    "REQUIRED",
    "Bulk2Client",
    "ColumnDelimiter",
    "LineEnding",
    "Operation",
    "QueryResult",
    "bulk_client",
    "stop_silent_relogin",
]

#: Private names ierkit uses, with the leading parameters each call passes (after ``self``).
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "_Bulk2Client.__init__": ("object_name", "bulk2_url", "headers", "session"),
    "_Bulk2Client.create_job": ("operation", "query", "column_delimiter", "line_ending"),
    "_Bulk2Client.get_job": ("job_id", "is_query"),
    "_Bulk2Client.close_job": ("job_id",),
    "_Bulk2Client.abort_job": ("job_id", "is_query"),
    "_Bulk2Client.upload_job_data": ("job_id", "data"),
    "_Bulk2Client.download_job_data": ("path", "job_id", "locator", "max_records"),
    "_Bulk2Client.get_ingest_results": ("job_id", "results_type"),
    # An attribute every logged-in client carries; None means "never log in again by itself".
    "Salesforce._salesforce_login_partial": (),
}


def bulk_client(sf: Salesforce, sobject: str) -> Bulk2Client:
    """A Bulk API 2.0 client for ``sobject`` on ``sf``'s current session.

    Built per call: simple-salesforce's own Bulk 2.0 handler copies the session id once and
    never renews it.
    """
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Bearer " + sf.session_id,
        "X-PrettyPrint": "1",
    }
    return Bulk2Client(sobject, sf.bulk2_url, headers, sf.session)


def stop_silent_relogin(sf: Salesforce) -> Salesforce:
    """``sf`` with its automatic re-login on REST 401 switched off (returned for chaining).

    simple-salesforce would log in again without a word on a REST 401 (and never for Bulk);
    ierkit renews the session itself, for both, and reports it.
    """
    sf._salesforce_login_partial = None
    return sf
