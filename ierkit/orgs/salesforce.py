"""A Salesforce org, through simple-salesforce: the same interface as a local org.

Reads stream page by page into Parquet, so ten million IERs never sit in memory as Python
objects: the large objects through Bulk API 2.0 query jobs (CSV pages fetched with a locator),
the small ones through REST query (``nextRecordsUrl`` pages). Only the fields the canonical
schema needs are asked for; fields the org lacks (older Marketing Cloud Connect versions have no
``JobId``/``BatchId``; most orgs have no lifecycle-stage field) are found from describe and come
back null, with a note in ``SalesforceOrg.notes``.

Tables are pulled on first use into a cache folder (a local org) and read from there;
``snapshot(folder)`` pulls into a folder you keep, and later snapshots into the same folder pull
only records changed since (``SystemModstamp``), then drop records deleted since.

Deletes, updates and inserts run as Bulk API 2.0 ingest jobs (``ierkit.orgs._sf_write``): one
job per request, per-record results in the order given, and a job Id handed to the caller
before any record is sent, so ``finish_write`` can collect a job after a crash.

Every call retries transient failures (HTTP 5xx, connection errors, ``REQUEST_LIMIT_EXCEEDED``)
with exponential backoff; each wait is logged at WARNING on the ``ierkit.salesforce`` logger and
kept in ``SalesforceOrg.events``. An expired session (``INVALID_SESSION_ID``) is renewed by
logging in again, except for a session id given in the environment, which cannot be renewed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession
from simple_salesforce.format import format_soql

from ierkit import _files, clock, schema
from ierkit.orgs._sf_adapter import (
    Bulk2Client,
    ColumnDelimiter,
    LineEnding,
    Operation,
    QueryResult,
    bulk_client,
    stop_silent_relogin,
)
from ierkit.orgs._sf_csv import (
    DEFAULT_BULK_CSV,
    BulkCsv,
    FieldValueError,
    scan_page,
    write_page,
)
from ierkit.orgs._sf_write import Jobs, delete_ids, finish_job, write_records
from ierkit.orgs.base import Org, OrgError, OrgUnavailableError, StorageLimits
from ierkit.orgs.local import SNAPSHOT_MANIFEST, LocalOrg
from ierkit.orgs.salesforce_auth import Credentials, SalesforceAuthError, redact

__all__ = [
    "BULK_TABLES",
    "BulkCsv",
    "FieldValueError",
    "RetryPolicy",
    "SalesforceAuthError",
    "SalesforceOrg",
]

log = logging.getLogger("ierkit.salesforce")
T = TypeVar("T")

#: Tables read with Bulk API 2.0 query jobs: those that grow with sends and audiences. The rest
#: (users, campaigns, email sends, triggered sends) stay small and are read with REST query.
BULK_TABLES = frozenset(
    {
        "contacts",
        "leads",
        "campaign_members",
        "individual_email_results",
        "individual_links",
        "tasks",
    }
)
#: Records per Bulk API 2.0 results page (``maxRecords``); Salesforce advises setting it on large
#: results to avoid timeouts. 50,000 is simple-salesforce's default.
BULK_PAGE_RECORDS = 50_000
#: Ids per Bulk API 2.0 delete job. An upload may be 150 MB (an 18-character Id and a newline
#: are 19 bytes); Salesforce processes each job in batches of 10,000 and allows 15,000 batches a
#: day, so 100,000 Ids (1.9 MB, 10 batches) keeps jobs small and the count of jobs low.
DELETE_CHUNK_IDS = 100_000
#: Error codes worth waiting for (besides HTTP 5xx).
TRANSIENT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait on transient failures.

    Attributes:
        attempts: Tries per call before giving up (the first try included).
        base_delay: Seconds before the second try; doubled each time after.
        max_delay: Longest wait between tries.
        limit_delay: Wait after ``REQUEST_LIMIT_EXCEEDED`` (the org's API request limit).
    """

    attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 60.0
    limit_delay: float = 120.0


def _error_code(error: SalesforceError) -> tuple[str, str]:
    # Typed as bytes by simple-salesforce, but it holds the parsed JSON body (a list or a dict).
    content: object = error.content
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    if isinstance(content, Mapping):
        return str(content.get("errorCode", content.get("error", ""))), str(
            content.get("message", "")
        )
    return "", str(content)[:200]


class SalesforceOrg(Org):
    """A Salesforce org read and written through simple-salesforce.

    Args:
        credentials: How to log in (usually ``Credentials.from_env()``).
        session: A requests session to use (proxies, certificates); a new one when None.
        cache_dir: Where pulled tables are kept for this org object; a temporary folder (removed
            when the org object goes) when None.
        retry: Backoff policy for transient failures.
        sleep: Called with seconds to wait (tests pass a function that records and returns).
        poll_interval: Seconds between Bulk job status polls at first (grows to 10 s).
        page_records: Records per Bulk query results page.
        delete_chunk: Ids per Bulk delete job.
        bulk_csv: The CSV format Bulk query jobs are asked for (comma and LF by default).
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        session: requests.Session | None = None,
        cache_dir: str | Path | None = None,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 1.0,
        page_records: int = BULK_PAGE_RECORDS,
        delete_chunk: int = DELETE_CHUNK_IDS,
        bulk_csv: BulkCsv = DEFAULT_BULK_CSV,
    ) -> None:
        self.credentials = credentials
        self.retry = retry
        self.poll_interval = poll_interval
        self.page_records = page_records
        self.delete_chunk = delete_chunk
        self.bulk_csv = bulk_csv
        self.notes: list[str] = []
        self.events: list[str] = []
        self._sleep = sleep
        self._session = session
        self._sf: Salesforce | None = None
        self._describes: dict[str, dict[str, Any] | None] = {}
        self._sobject_names: set[str] | None = None
        self._pulled: set[str] = set()
        if cache_dir is None:
            folder = Path(tempfile.mkdtemp(prefix="ierkit-salesforce-"))
            weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        else:
            folder = Path(cache_dir)
        self._cache = LocalOrg(folder)
        sf = self._client()
        self.label = f"Salesforce {sf.sf_instance}"
        self._instance_url = f"https://{sf.sf_instance}"

    @property
    def instance_url(self) -> str | None:
        """The org's instance (its My Domain) as a URL, as simple-salesforce logged in to it."""
        return self._instance_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **options: Any) -> SalesforceOrg:
        """Log in with credentials from the environment (see ``ierkit.orgs.salesforce_auth``).

        Raises:
            SalesforceAuthError: Naming a missing variable, or saying the login was refused.
        """
        return cls(Credentials.from_env(env), **options)

    # --- calls, retries, sessions -------------------------------------------------------------

    def _client(self) -> Salesforce:
        if self._sf is None:
            # Renewal happens in ``_call`` instead, for REST and Bulk, where it is reported.
            self._sf = stop_silent_relogin(self.credentials.login(self._session))
        return self._sf

    def _secrets(self) -> list[str]:
        found = self.credentials.secrets()
        if self._sf is not None and self._sf.session_id:
            found.append(self._sf.session_id)
        return found

    def _report(self, message: str) -> None:
        message = redact(message, self._secrets())
        self.events.append(message)
        log.warning(message)

    def _note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)
            log.info(message)

    def _call(self, what: str, fn: Callable[[Salesforce], T], *, retry: bool = True) -> T:
        """Run ``fn`` with a live client, renewing the session and retrying transient errors.

        Args:
            what: The request, as errors and progress name it.
            fn: The request.
            retry: False for a request that must not be sent twice (``OrgUnavailableError`` on
                the first transient failure).
        """
        attempts = self.retry.attempts if retry else 1
        attempt, renewed = 1, False
        while True:
            try:
                return fn(self._client())
            except SalesforceExpiredSession:
                if not self.credentials.renewable:
                    raise OrgError(
                        f"{what}: the Salesforce session expired (INVALID_SESSION_ID); a session "
                        "id from SF_SESSION_ID cannot be renewed: set a fresh one, or use the JWT "
                        "bearer flow (SF_USERNAME, SF_CONSUMER_KEY, SF_PRIVATE_KEY_FILE)"
                    ) from None
                if renewed:
                    raise OrgError(
                        f"{what}: Salesforce rejected a fresh session (INVALID_SESSION_ID)"
                    ) from None
                self._report(f"{what}: session expired (INVALID_SESSION_ID); logging in again")
                self._sf, renewed = None, True
                continue
            except SalesforceError as error:
                code, message = _error_code(error)
                transient = error.status >= 500 or code in TRANSIENT_CODES
                if not transient:
                    raise OrgError(
                        redact(
                            f"{what}: Salesforce answered HTTP {error.status} {code}: {message}",
                            self._secrets(),
                        )
                    ) from None
                reason = f"HTTP {error.status} {code}".strip()
            except (requests.ConnectionError, requests.Timeout) as error:
                reason = type(error).__name__
                code = ""
            if attempt >= attempts:
                tries = f"{attempt} tries" if attempt > 1 else "1 try"
                raise OrgUnavailableError(f"{what}: gave up after {tries} ({reason})")
            if code == "REQUEST_LIMIT_EXCEEDED":
                delay = self.retry.limit_delay
            else:
                delay = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
            self._report(
                f"{what}: {reason}; waiting {delay:g} s before try {attempt + 1} of "
                f"{self.retry.attempts}"
            )
            self._sleep(delay)
            attempt += 1

    def _bulk(self, sf: Salesforce, sobject: str) -> Bulk2Client:
        return bulk_client(sf, sobject)

    def _wait_for_job(self, sobject: str, job_id: str, *, is_query: bool) -> dict[str, Any]:
        delay = self.poll_interval
        while True:
            info = self._call(
                f"Bulk job {job_id} on {sobject}",
                lambda sf: self._bulk(sf, sobject).get_job(job_id, is_query),
            )
            if info["state"] in ("JobComplete", "Failed", "Aborted"):
                return dict(info)
            self._sleep(delay)
            delay = min(10.0, delay * 1.5)

    # --- describe -----------------------------------------------------------------------------

    can_describe = True

    def sobject_names(self) -> set[str]:
        """API names of the objects the user can query (describe global)."""
        if self._sobject_names is None:
            result = self._call("describe global", lambda sf: sf.describe())
            self._sobject_names = {
                o["name"] for o in (result or {}).get("sobjects", []) if o.get("queryable", True)
            }
        return self._sobject_names

    def describe(self, sobject: str) -> dict[str, Any] | None:
        """The describe of an object, or None when the org has no such object (cached)."""
        if sobject not in self._describes:
            if sobject not in self.sobject_names():
                self._describes[sobject] = None
            else:
                self._describes[sobject] = self._call(
                    f"describe {sobject}",
                    lambda sf: sf.restful(f"sobjects/{sobject}/describe"),
                )
        return self._describes[sobject]

    def describe_layouts(self, sobject: str) -> dict[str, Any] | None:
        """``sobjects/<sobject>/describe/layouts``: page layouts with their related lists."""
        described: dict[str, Any] | None = self._call(
            f"describe layouts of {sobject}",
            lambda sf: sf.restful(f"sobjects/{sobject}/describe/layouts"),
        )
        return described

    def has_field(self, sobject: str, path: str) -> bool:
        """Whether ``path`` (a field or a parent path like ``Account.Name``) can be read."""
        described = self.describe(sobject)
        *parents, last = path.split(".")
        for relationship in parents:
            if described is None:
                return False
            lookup = next(
                (f for f in described["fields"] if f.get("relationshipName") == relationship),
                None,
            )
            if lookup is None or not lookup.get("referenceTo"):
                return False
            described = self.describe(lookup["referenceTo"][0])
        if described is None:
            return False
        return any(f["name"].lower() == last.lower() for f in described["fields"])

    def has_table(self, name: str) -> bool:
        return schema.table(name).sobject in self.sobject_names()

    def _columns(self, spec: schema.Table) -> tuple[list[schema.Column], list[schema.Column]]:
        """(columns the org can give, stored columns it lacks), noting the missing ones."""
        if not self.has_table(spec.name):
            raise OrgError(
                f"the org has no object {spec.sobject} (table {spec.name!r}), or the user "
                "cannot read it: is Marketing Cloud Connect installed, and does the user's "
                "permission set give read access?"
            )
        present: list[schema.Column] = []
        missing: list[schema.Column] = []
        for column in spec.stored_columns:
            (present if self.has_field(spec.sobject, column.sf_field) else missing).append(column)
        for column in missing:
            self._note(
                f"{spec.sobject} has no readable field {column.sf_field}: "
                f"{spec.name}.{column.name} "
                "is null (older Marketing Cloud Connect versions lack JobId, BatchId, ListId and "
                "SubscriberId; custom fields may not exist in this org)"
            )
        return present, missing

    # --- reading ------------------------------------------------------------------------------

    def _bulk_pages(
        self, spec: schema.Table, soql: str, present: Sequence[schema.Column], tmp: Path
    ) -> list[Path]:
        sobject = spec.sobject
        what = f"Bulk query of {sobject}"
        fmt = self.bulk_csv
        job = self._call(
            what,
            lambda sf: self._bulk(sf, sobject).create_job(
                Operation.query,
                query=soql,
                column_delimiter=ColumnDelimiter(fmt.delimiter),
                line_ending=LineEnding(fmt.line_ending),
            ),
        )
        job_id = job["id"]
        info = self._wait_for_job(sobject, job_id, is_query=True)
        if info["state"] != "JobComplete":
            raise OrgError(
                f"{what}: job {job_id} ended {info['state']}: "
                f"{info.get('errorMessage') or 'no message from Salesforce'}"
            )
        # The job info says how its results are written; it wins over what was asked.
        delimiter = str(info.get("columnDelimiter") or fmt.delimiter)
        parts: list[Path] = []
        locator = ""
        while True:

            def download(sf: Salesforce, loc: str = locator) -> QueryResult:
                return self._bulk(sf, sobject).download_job_data(
                    str(tmp), job_id, loc, self.page_records
                )

            result = self._call(f"{what} (page {len(parts) + 1})", download)
            csv_path = Path(result["file"])
            part = tmp / f"part-{len(parts):06d}.parquet"
            raw = scan_page(csv_path, [c.sf_field for c in present], delimiter=delimiter)
            write_page(spec, raw, present, part)
            csv_path.unlink()
            parts.append(part)
            locator = result["locator"]
            if not locator:
                return parts

    def _rest_pages(
        self, spec: schema.Table, soql: str, present: Sequence[schema.Column], tmp: Path
    ) -> list[Path]:
        what = f"REST query of {spec.sobject}"
        result = self._call(what, lambda sf: sf.query(soql))
        parts: list[Path] = []
        while True:
            records = result.get("records", [])
            flat = pl.json_normalize(records, separator=".", infer_schema_length=None)
            raw = pl.LazyFrame(
                [
                    (
                        flat.get_column(c.sf_field).cast(pl.String)
                        if c.sf_field in flat.columns
                        else pl.Series(c.sf_field, [None] * len(records), dtype=pl.String)
                    )
                    for c in present
                ]
            )
            part = tmp / f"part-{len(parts):06d}.parquet"
            write_page(spec, raw, present, part)
            parts.append(part)
            next_url = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return parts

            def more(sf: Salesforce, url: str = next_url) -> dict[str, Any]:
                page: dict[str, Any] = sf.query_more(url, identifier_is_url=True)
                return page

            result = self._call(f"{what} (page {len(parts) + 1})", more)

    def _pull(
        self,
        name: str,
        dest: Path,
        *,
        since: tuple[str, dt.datetime] | None = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        """Pull one table into ``dest``: only some columns, or only records whose field
        ``since[0]`` is on or after ``since[1]`` (to the second: SOQL datetimes drop
        milliseconds, so a few records just before may come too)."""
        spec = schema.table(name)
        present, _missing = self._columns(spec)
        if columns is not None:
            present = [c for c in present if c.name in columns]
            spec = schema.Table(
                spec.name, spec.sobject, tuple(c for c in spec.columns if c.name in columns)
            )
        # Names come from the schema; the one value (a datetime) is quoted by format_soql.
        fields = ", ".join(c.sf_field for c in present)
        soql = format_soql("SELECT {:literal} FROM {:literal}", fields, spec.sobject)
        if since is not None:
            soql += format_soql(" WHERE {:literal} >= {}", since[0], clock.to_utc(since[1]))
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".pull-", dir=dest.parent) as folder:
            tmp = Path(folder)
            pages = self._bulk_pages if name in BULK_TABLES else self._rest_pages
            parts = pages(spec, soql, present, tmp)
            _files.write_parquet(pl.scan_parquet(parts), dest)

    def table(self, name: str) -> pl.LazyFrame:
        """The canonical table, pulled from the org on first use and read from Parquet after."""
        if name not in self._pulled:
            self._pull(name, self._cache.table_path(name))
            self._pulled.add(name)
        return self._cache.table(name)

    def table_since(self, name: str, column: str, since: dt.datetime) -> pl.LazyFrame:
        """Rows of a table whose ``column`` (a stored datetime) is on or after ``since``.

        Pulls only those rows (a SOQL filter), for checks that need recent records only.
        """
        spec = schema.table(name)
        api_name = spec.column(column).api_name
        if api_name is None or "." in api_name:
            raise ValueError(f"{name}.{column} is not a field of {spec.sobject}")
        if not self.has_field(spec.sobject, api_name):
            return self.table(name).filter(pl.col(column) >= since)
        stamp = since.strftime("%Y%m%dT%H%M%S")
        dest = self._cache.path / "filtered" / f"{name}-{column}-{stamp}.parquet"
        if not dest.is_file():
            self._pull(name, dest, since=(api_name, since))
        return schema.validate(name, pl.scan_parquet(dest)).filter(pl.col(column) >= since)

    def refresh(self) -> None:
        """Forget pulled tables: the next ``table`` call reads the org again."""
        self._pulled.clear()

    def snapshot(
        self,
        path: str | Path,
        *,
        tables: Iterable[str] | None = None,
        incremental: bool = True,
    ) -> LocalOrg:
        """Pull the org into a local org folder, to explore offline and re-run without API calls.

        When the folder already holds a snapshot of a table taken with the same fields, only
        records changed since its latest ``SystemModstamp`` are pulled, plus the list of Ids to
        drop records deleted since (hard deletes and emptied Recycle Bins included).

        Args:
            path: The folder (created if needed).
            tables: Canonical table names; every table the org has when None.
            incremental: False pulls every table in full.

        Returns:
            The snapshot as a ``LocalOrg``.
        """
        started = clock.now()
        local = LocalOrg(path)
        local.path.mkdir(parents=True, exist_ok=True)
        # One writer of the folder at a time: a second snapshot (or a cleanup) waits.
        with local.lock():
            manifest_path = local.path / SNAPSHOT_MANIFEST
            manifest: dict[str, Any] = (
                json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
            )
            names = (
                list(tables)
                if tables is not None
                else [t for t in schema.TABLES if self.has_table(t)]
            )
            for name in names:
                spec = schema.table(name)
                present, _ = self._columns(spec)
                fields = sorted(c.sf_field for c in present)
                entry = manifest.get("tables", {}).get(name)
                since = entry.get("max_system_modstamp") if entry else None
                unchanged = entry is not None and entry.get("fields") == fields
                if incremental and since and unchanged and local.has_table(name):
                    self._pull_changes(local, name, dt.datetime.fromisoformat(since))
                    mode = "incremental"
                else:
                    self._pull(name, local.table_path(name))
                    mode = "full"
                stats = (
                    local.table(name)
                    .select(rows=pl.len(), latest=pl.col("system_modstamp").max())
                    .collect()
                )
                latest = stats.item(0, "latest")
                manifest.setdefault("tables", {})[name] = {
                    "sobject": spec.sobject,
                    "fields": fields,
                    "rows": int(stats.item(0, "rows")),
                    "max_system_modstamp": latest.isoformat() if latest else None,
                    "pulled_at": clock.now().isoformat(),
                    "mode": mode,
                }
            # What the snapshot describes: the org as it was when this pull began.
            manifest["pulled_at"] = started.isoformat()
            manifest["instance"] = self.label
            manifest["instance_url"] = self.instance_url
            manifest["notes"] = list(self.notes)
            _files.write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True))
        return local

    def _pull_changes(self, local: LocalOrg, name: str, since: dt.datetime) -> None:
        with tempfile.TemporaryDirectory(prefix=".changes-", dir=local.path) as folder:
            changed_path, ids_path = Path(folder) / "changed.parquet", Path(folder) / "ids.parquet"
            # ">=": a record saved in the same millisecond as the last pull is pulled again and
            # replaces its old copy, rather than being missed.
            self._pull(name, changed_path, since=("SystemModstamp", since))
            self._pull(name, ids_path, columns=["id"])
            changed = schema.validate(name, pl.scan_parquet(changed_path))
            current = pl.scan_parquet(ids_path)
            merged = pl.concat(
                [local.table(name).join(changed.select("id"), on="id", how="anti"), changed]
            ).join(current, on="id", how="semi")
            # Materialise before replacing the file the plan reads from.
            local.write_table(name, merged.collect())

    # --- storage facts ------------------------------------------------------------------------

    def record_counts(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """Record counts from ``/limits/recordCount``: Salesforce's own cached counts.

        They are what Setup > Storage Usage shows: approximate, refreshed by Salesforce at
        intervals, and without the Recycle Bin.
        """
        wanted = [
            n for n in (list(schema.TABLES) if names is None else list(names)) if self.has_table(n)
        ]
        if not wanted:
            return {}
        objects = ",".join(schema.table(n).sobject for n in wanted)
        result = self._call(
            "record counts",
            lambda sf: sf.restful("limits/recordCount", params={"sObjects": objects}),
        )
        counts = {o["name"]: int(o["count"]) for o in (result or {}).get("sObjects", [])}
        return {n: counts.get(schema.table(n).sobject, 0) for n in wanted}

    def data_as_of(self) -> dt.datetime:
        """A live org describes now."""
        return clock.now()

    def storage_limits(self) -> StorageLimits:
        """``DataStorageMB`` from ``/limits``."""
        result = self._call("storage limits", lambda sf: sf.limits())
        storage = result["DataStorageMB"]
        return StorageLimits(max_mb=float(storage["Max"]), remaining_mb=float(storage["Remaining"]))

    # --- deleting -----------------------------------------------------------------------------

    def delete(self, table_name: str, ids: Iterable[str], *, hard: bool = False) -> pl.DataFrame:
        """Delete by Id through Bulk API 2.0 ingest jobs (``delete`` or ``hardDelete``).

        Ids go in chunks of ``delete_chunk`` per job. Failures do not raise: each Id gets its
        own row, with Salesforce's error (``CODE:message:fields``) when it failed. The same Id
        twice in one request fails the second time, as in a local org. ``hard`` skips the
        Recycle Bin and needs the "Bulk API Hard Delete" permission.
        """
        spec = schema.table(table_name)
        if not self.has_table(table_name):
            raise OrgError(f"cannot delete from {spec.sobject}: the org has no such object")
        return delete_ids(self._jobs(), spec.sobject, ids, hard=hard, chunk=self.delete_chunk)

    # --- writing ------------------------------------------------------------------------------

    def _jobs(self) -> Jobs:
        return Jobs(
            call=self._call,
            wait=lambda sobject, job_id: self._wait_for_job(sobject, job_id, is_query=False),
            report=self._report,
        )

    def update(
        self,
        table_name: str,
        records: pl.DataFrame,
        *,
        on_submit: Callable[[str], None] | None = None,
    ) -> pl.DataFrame:
        """Set fields by Id through one Bulk API 2.0 ``update`` job (see ``Org.update``).

        A null clears the field (sent as ``#N/A``), and so does an empty text. ``on_submit``
        gets the job Id once the job exists, before any record is sent.

        Raises:
            OrgError: When the object or one of the fields does not exist for the user (deploy
                the fields first), or a column cannot be written.
        """
        return self._write(table_name, records, Operation.update, on_submit)

    def insert(
        self,
        table_name: str,
        records: pl.DataFrame,
        *,
        on_submit: Callable[[str], None] | None = None,
    ) -> pl.DataFrame:
        """Create records through one Bulk API 2.0 ``insert`` job (see ``Org.insert``).

        Raises:
            OrgError: As for ``update``.
        """
        return self._write(table_name, records, Operation.insert, on_submit)

    def _write(
        self,
        table_name: str,
        records: pl.DataFrame,
        operation: Operation,
        on_submit: Callable[[str], None] | None,
    ) -> pl.DataFrame:
        spec = schema.table(table_name)
        if not self.has_table(table_name):
            raise OrgError(f"cannot {operation.value} {spec.sobject}: the org has no such object")
        return write_records(
            self._jobs(),
            table_name,
            records,
            operation,
            on_submit=on_submit,
            has_field=lambda name: self.has_field(spec.sobject, name),
        )

    def finish_write(self, reference: str) -> pl.DataFrame | None:
        """The results of a Bulk job submitted before a crash (``on_submit``'s job Id).

        A job never closed is aborted and gives None (send its records again); one still
        running is waited for. Rows come in the order of Salesforce's result files, not
        necessarily as uploaded: ``id`` is the record's Id for an update (the new Id for an
        insert), so a caller matches by it.
        """
        return finish_job(self._jobs(), reference)

    def field_writable(self, sobject: str, field_name: str) -> bool | None:
        """Describe's ``updateable`` for the field: False when the object or field is absent,
        None when the describe does not say."""
        described = self.describe(sobject)
        found = next(
            (
                f
                for f in (described or {}).get("fields", [])
                if str(f.get("name", "")).lower() == field_name.lower()
            ),
            None,
        )
        if found is None:
            return False
        value = found.get("updateable")
        return None if value is None else bool(value)
