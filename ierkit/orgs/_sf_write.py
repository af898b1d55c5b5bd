"""Bulk API 2.0 ingest jobs for ``SalesforceOrg``: one way to run a job and read its results.

``delete_ids`` (delete, hardDelete) and ``write_records`` (update, insert) both go through
``run_job``: create the job, hand its Id to the caller (``on_submit``, for a ledger), upload
the CSV, close the job, wait for it, then read ``successfulResults``, ``failedResults`` and
``unprocessedrecords`` into one result row per uploaded row, in upload order. ``finish_job``
picks up a job that a process submitted before it died.

The CSV is what Bulk API 2.0 takes for writes ("Prepare CSV Files" in the Bulk API 2.0 guide):
columns named by API name, comma and LF, a null written ``#N/A`` (an empty field leaves the
field as it is), datetimes ``2026-11-20T10:30:00.000Z``, dates ``2026-11-20``, booleans
``true``/``false``, numbers plain.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

import polars as pl
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceResourceNotFound

from ierkit import schema
from ierkit.orgs._sf_adapter import Operation, bulk_client
from ierkit.orgs.base import (
    DELETE_RESULT_SCHEMA,
    WRITE_RESULT_SCHEMA,
    OrgError,
    OrgUnavailableError,
)

__all__ = [
    "CSV_DATETIME",
    "NULL",
    "OUTCOME_SCHEMA",
    "Jobs",
    "delete_ids",
    "finish_job",
    "run_job",
    "upload_frame",
    "write_records",
]

T = TypeVar("T")

#: What sets a field to null in a Bulk API 2.0 upload; an empty field leaves it unchanged.
NULL = "#N/A"
#: Bulk CSV datetimes: UTC with milliseconds (polars' ``%3f``).
CSV_DATETIME = "%Y-%m-%dT%H:%M:%S.%3fZ"
#: One row per uploaded row: the Id Salesforce reports (``sf__Id``: the new Id of an insert,
#: empty for a record it could not read), whether it was written, and its error.
OUTCOME_SCHEMA = pl.Schema({"sf_id": pl.String, "success": pl.Boolean, "error": pl.String})
#: Jobs tried for one upload whose answer is lost (each aborted before the next is made).
UPLOAD_ATTEMPTS: Final = 3
#: Job states after which nothing changes any more.
_FINAL = ("JobComplete", "Failed", "Aborted")


class Caller(Protocol):
    """``SalesforceOrg._call``: run ``fn`` with a live client, retrying transient failures
    (only once with ``retry=False``: ``OrgUnavailableError`` then)."""

    def __call__(self, what: str, fn: Callable[[Salesforce], T], /, *, retry: bool = True) -> T: ...


@dataclass(frozen=True)
class Jobs:
    """What running an ingest job needs from the org.

    Attributes:
        call: Runs one API call with retries and session renewal.
        wait: Polls a job until it ends; takes the object and the job Id, returns the job info.
        report: Logs an event a user should see (a job that failed, one aborted on resume).
    """

    call: Caller
    wait: Callable[[str, str], dict[str, Any]]
    report: Callable[[str], None]


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    value = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            value = value.dt.replace_time_zone("UTC")  # naive means UTC inside ierkit
        text = value.dt.convert_time_zone("UTC").dt.strftime(CSV_DATETIME)
    elif dtype == pl.Date:
        text = value.dt.strftime("%Y-%m-%d")
    elif dtype == pl.Null:
        text = pl.lit(None, pl.String)
    elif dtype == pl.String:
        # Bulk CSV cannot tell an empty text from "leave as is": an empty text clears.
        text = pl.when(value != "").then(value)
    else:
        text = value.cast(pl.String)  # numbers plain; booleans as true / false
    return text.fill_null(NULL)


def upload_frame(table_name: str, records: pl.DataFrame, *, operation: Operation) -> pl.DataFrame:
    """``records`` as the text a Bulk API 2.0 ``update`` or ``insert`` takes.

    Args:
        table_name: Canonical table name.
        records: Canonical columns; ``id`` (the record to change) for an update, none for an
            insert.
        operation: ``Operation.update`` or ``Operation.insert``.

    Returns:
        The same rows as text, columns renamed to their API names, nulls as ``#N/A``.

    Raises:
        OrgError: For a column the table lacks or Salesforce does not store, an ``id`` column
            missing from an update (or given to an insert), a null Id, or a NaN number.
    """
    spec = schema.table(table_name)
    if operation == Operation.update and "id" not in records.columns:
        raise OrgError(f"update of {table_name}: the records have no 'id' column")
    if operation == Operation.insert and "id" in records.columns:
        raise OrgError(f"insert into {table_name}: new records cannot carry an 'id' column")
    texts: list[pl.Expr] = []
    for name, dtype in records.schema.items():
        try:
            api_name = spec.column(name).api_name
        except KeyError:
            raise OrgError(f"{table_name} has no column {name!r} to write") from None
        if api_name is None or "." in api_name:
            raise OrgError(
                f"{table_name}.{name} cannot be written: it is "
                + ("computed by ierkit" if api_name is None else f"read through {api_name}")
            )
        bad: list[int] = []
        if name == "id":
            bad = records.select(pl.col(name).is_null().arg_true()).to_series().to_list()
        elif dtype.is_float():
            bad = records.select(pl.col(name).is_nan().arg_true()).to_series().to_list()
        if bad:
            what = "null" if name == "id" else "NaN, which Salesforce cannot store"
            raise OrgError(f"{table_name}.{name} is {what} in row {bad[0]} of the records")
        texts.append(_as_text(name, dtype).alias(api_name))
    return records.select(texts)


def _unprocessed(job_id: str, info: dict[str, Any]) -> str:
    text = f"UNPROCESSED: job {job_id} ended {info['state']}"
    if info.get("errorMessage"):
        text += f": {info['errorMessage']}"
    return text


def _outcome(
    frame: pl.DataFrame, sf_id: pl.Expr, success: bool, error: pl.Expr
) -> pl.DataFrame | None:
    if not frame.width:
        return None
    return frame.select(
        sf_id.alias("sf_id"),
        pl.lit(success).alias("success"),
        error.alias("error"),
        *[c for c in frame.columns if not c.startswith("sf__")],
    )


def _reported(jobs: Jobs, sobject: str, job_id: str, info: dict[str, Any]) -> pl.DataFrame:
    """The job's three result files as one frame: the uploaded columns (as text) and outcome."""
    what = f"Bulk job {job_id} on {sobject}"

    def read(kind: str) -> pl.DataFrame:
        text = jobs.call(
            f"{what}: {kind}", lambda sf: bulk_client(sf, sobject).get_ingest_results(job_id, kind)
        )
        if not text.strip():
            return pl.DataFrame()
        return pl.read_csv(io.StringIO(text), infer_schema=False)

    ok, failed, unprocessed = (
        read(k) for k in ("successfulResults", "failedResults", "unprocessedrecords")
    )
    frames = [
        _outcome(ok, pl.col("sf__Id"), True, pl.lit(None, pl.String)),
        _outcome(failed, pl.col("sf__Id"), False, pl.col("sf__Error")),
        _outcome(unprocessed, pl.lit(None, pl.String), False, pl.lit(_unprocessed(job_id, info))),
    ]
    present = [f for f in frames if f is not None]
    if not present:
        return pl.DataFrame(schema=OUTCOME_SCHEMA)
    return pl.concat(present, how="diagonal")


def _normalised(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    # "", "#N/A" and an absent value all mean null, whichever way the results spell them.
    return frame.with_columns(
        pl.when(pl.col(k).is_in(["", NULL])).then(None).otherwise(pl.col(k)).alias(k) for k in keys
    )


def _match(upload: pl.DataFrame, reported: pl.DataFrame, unprocessed: str) -> pl.DataFrame:
    """One outcome per uploaded row, in upload order.

    Salesforce does not promise its result files in upload order, and they carry no row number,
    only ``sf__Id`` and the uploaded columns as uploaded. So a result row is matched to the
    uploaded row with the same values: by ``Id`` where the upload has one (update, delete),
    else by every uploaded column (insert). The k-th of several identical rows is matched to the
    k-th identical result row: identical rows are interchangeable (the same values, so the same
    record whichever new Id it got). A row no result file names was not processed.
    """
    keys = ["Id"] if "Id" in upload.columns else list(upload.columns)
    reported = reported.with_columns(
        pl.lit(None, pl.String).alias(k) for k in keys if k not in reported.columns
    )
    nth = pl.int_range(pl.len()).over(keys).alias("_nth")
    left = _normalised(upload.select(keys), keys).with_row_index("_row").with_columns(nth)
    right = _normalised(
        reported.select(*keys, *OUTCOME_SCHEMA.names()).cast(
            pl.Schema({**{k: pl.String() for k in keys}, **OUTCOME_SCHEMA})
        ),
        keys,
    ).with_columns(nth)
    return (
        left.join(right, on=[*keys, "_nth"], how="left", nulls_equal=True)
        .sort("_row")
        .select(
            "sf_id",
            success=pl.col("success").fill_null(False),
            error=pl.when(pl.col("success").is_null())
            .then(pl.lit(unprocessed))
            .otherwise(pl.col("error")),
        )
    )


def _open_job(jobs: Jobs, what: str, sobject: str, operation: Operation, refused_hint: str) -> str:
    """A new ingest job's Id."""
    try:
        job = jobs.call(what, lambda sf: bulk_client(sf, sobject).create_job(operation))
    except OrgError as error:
        if refused_hint:
            raise OrgError(f"{error} ({refused_hint})") from None
        raise
    return str(job["id"])


def _upload_once(jobs: Jobs, what: str, sobject: str, job_id: str, data: str) -> None:
    """Send a job's rows once; when no answer comes, abort the job and raise.

    Never sent twice into one job: when the answer is lost, Salesforce may have taken the rows,
    and a second upload could add them again (an insert made twice). An aborted job never
    runs, so its rows can go in a new job.

    Raises:
        OrgUnavailableError: No answer came (the job is aborted).
    """
    try:
        jobs.call(
            what, lambda sf: bulk_client(sf, sobject).upload_job_data(job_id, data), retry=False
        )
    except OrgUnavailableError:
        try:
            jobs.call(what, lambda sf: bulk_client(sf, sobject).abort_job(job_id, False))
        except OrgError as error:
            # Not a reason to try a new job: the run stops; an open job never runs, and a
            # resumed run aborts it (``finish_job``).
            raise OrgError(
                f"{error} (aborting job {job_id}, which got no answer to its upload)"
            ) from None
        raise


def run_job(
    jobs: Jobs,
    sobject: str,
    operation: Operation,
    upload: pl.DataFrame,
    *,
    on_submit: Callable[[str], None] | None = None,
    refused_hint: str = "",
) -> pl.DataFrame:
    """Run one ingest job over ``upload`` and return one outcome per row, in upload order.

    Args:
        jobs: The org's calls.
        sobject: The object written to.
        operation: ``delete``, ``hardDelete``, ``update`` or ``insert``.
        upload: The rows as text, columns named by API name (see ``upload_frame``).
        on_submit: Called with the job Id after the job exists and before any data is sent:
            a process that dies after this finds the job Open (nothing sent: ``finish_job``
            aborts it) or closed (``finish_job`` waits for it), never a job it cannot find.
        refused_hint: Added to the error when Salesforce refuses to create the job.

    Returns:
        ``OUTCOME_SCHEMA`` rows. Per-record failures do not raise.
    """
    what = f"Bulk {operation.value} on {sobject}"
    data = upload.write_csv(quote_style="necessary")
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        job_id = _open_job(jobs, what, sobject, operation, refused_hint)
        if on_submit is not None:
            on_submit(job_id)
        try:
            _upload_once(jobs, what, sobject, job_id, data)
            break
        except OrgUnavailableError as error:
            if attempt == UPLOAD_ATTEMPTS:
                raise OrgUnavailableError(
                    f"{error}; job {job_id} aborted, nothing of it was written"
                ) from None
            jobs.report(
                f"{what}: no answer to the upload of job {job_id} ({error}); job aborted, "
                "its rows go in a new job"
            )
    jobs.call(what, lambda sf: bulk_client(sf, sobject).close_job(job_id))
    info = jobs.wait(sobject, job_id)
    if info["state"] != "JobComplete":
        jobs.report(f"{what}: job {job_id} ended {info['state']}: {info.get('errorMessage') or ''}")
    reported = _reported(jobs, sobject, job_id, info)
    return _match(upload, reported, _unprocessed(job_id, info))


def delete_ids(
    jobs: Jobs, sobject: str, ids: Iterable[str], *, hard: bool, chunk: int
) -> pl.DataFrame:
    """``Org.delete``: one ``delete`` (or ``hardDelete``) job per ``chunk`` distinct Ids.

    Returns:
        ``DELETE_RESULT_SCHEMA`` rows, one per Id given, in order; the same Id a second time
        fails as already deleted, as in a local org.
    """
    requested = pl.DataFrame({"id": list(ids)}, schema={"id": pl.String}).with_row_index("_order")
    unique = requested.filter(pl.col("id").is_first_distinct()).select("id")
    operation = Operation.hard_delete if hard else Operation.delete
    hint = "hard deletes need the 'Bulk API Hard Delete' permission" if hard else ""
    outcomes = [
        pl.concat(
            [
                part,
                run_job(jobs, sobject, operation, part.rename({"id": "Id"}), refused_hint=hint),
            ],
            how="horizontal",
        ).drop("sf_id")
        for part in (unique.slice(start, chunk) for start in range(0, unique.height, chunk))
    ]
    outcome = (
        pl.concat(outcomes) if outcomes else pl.DataFrame(schema=DELETE_RESULT_SCHEMA)
    ).unique("id", keep="first")
    return (
        requested.with_columns(first=pl.col("id").is_first_distinct())
        .join(outcome, on="id", how="left")
        .sort("_order")
        .select(
            "id",
            success=pl.col("success").fill_null(False) & pl.col("first"),
            error=pl.when(~pl.col("first"))
            .then(pl.lit("ENTITY_IS_DELETED: entity is deleted"))
            .otherwise(pl.col("error")),
        )
        .cast(DELETE_RESULT_SCHEMA)
    )


def write_records(
    jobs: Jobs,
    table_name: str,
    records: pl.DataFrame,
    operation: Operation,
    *,
    on_submit: Callable[[str], None] | None,
    has_field: Callable[[str], bool],
) -> pl.DataFrame:
    """``Org.update`` / ``Org.insert`` through one job: ``WRITE_RESULT_SCHEMA`` rows in order.

    Raises:
        OrgError: When a field is not there for the user (``has_field`` says so for an API
            name): nothing could be written, so it is not a per-record failure.
    """
    spec = schema.table(table_name)
    upload = upload_frame(table_name, records, operation=operation)
    missing = [f for f in upload.columns if not has_field(f)]
    if missing:
        raise OrgError(
            f"cannot {operation.value} {spec.sobject}: the org has no field "
            f"{', '.join(missing)} the user can see; deploy the fields (`ierkit metadata`, then "
            "`sf project deploy start`) and assign the permission set to the user"
        )
    if not records.height:
        return pl.DataFrame(schema=WRITE_RESULT_SCHEMA)
    outcome = run_job(jobs, spec.sobject, operation, upload, on_submit=on_submit)
    if operation == Operation.update:
        ids = records.get_column("id")
    else:
        new = pl.col("sf_id")
        ids = outcome.select(pl.when(pl.col("success") & (new != "")).then(new)).to_series()
    return outcome.select(id=ids, success="success", error="error").cast(WRITE_RESULT_SCHEMA)


def finish_job(jobs: Jobs, job_id: str) -> pl.DataFrame | None:
    """The results of an ingest job submitted earlier, or None when nothing of it was written.

    A job still Open was never closed (its submitter died before or while uploading): it is
    aborted, so it can never run, and None tells the caller to send its records again. A job
    closed but not finished is waited for. A job Salesforce does not know, or one aborted
    before it processed a record, also gives None.

    Returns:
        One row per record the job reported, in the order of its result files (successful,
        failed, unprocessed; Salesforce keeps no copy of the upload to order them by): ``id``
        (the record's Id; for an insert the new Id, null when it failed), ``success`` and
        ``error``.
    """
    what = f"Bulk job {job_id}"

    def get(sf: Salesforce) -> dict[str, Any] | None:
        try:
            # The object name only matters when creating a job.
            return dict(bulk_client(sf, "").get_job(job_id, False))
        except SalesforceResourceNotFound:
            return None

    info = jobs.call(what, get)
    if info is None:
        return None
    sobject = str(info.get("object") or "")
    if info["state"] == "Open":
        jobs.call(what, lambda sf: bulk_client(sf, sobject).abort_job(job_id, False))
        jobs.report(f"{what} on {sobject} was never closed: aborted, its records go again")
        return None
    if info["state"] == "Aborted" and not int(info.get("numberRecordsProcessed") or 0):
        return None
    if info["state"] not in _FINAL:
        info = jobs.wait(sobject, job_id)
    reported = _reported(jobs, sobject, job_id, info)
    if "Id" not in reported.columns:
        reported = reported.with_columns(Id=pl.lit(None, pl.String))
    record_id = (
        pl.when(pl.col("success") & (pl.col("sf_id") != "")).then(pl.col("sf_id"))
        if info.get("operation") == Operation.insert.value
        else pl.coalesce(pl.col("Id"), pl.col("sf_id"))
    )
    return reported.select(id=record_id, success="success", error="error").cast(WRITE_RESULT_SCHEMA)
