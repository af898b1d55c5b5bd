"""Bulk API 2.0 ingest jobs of the test server (``tests/sfserver.py``), and its CSV writer.

Modelled on the Bulk API 2.0 guide ("Prepare CSV Files", "Get Job Successful Record Results",
"Get Job Failed Record Results", "Get Job Unprocessed Record Results") and Salesforce's error
codes (SOAP API "StatusCode"):

- ``delete`` / ``hardDelete``: an ``Id`` column; soft-deleted records go to the recycle bin
  (deleting again fails ``ENTITY_IS_DELETED``), unknown Ids fail ``INVALID_CROSS_REFERENCE_KEY``,
  malformed ones ``MALFORMED_ID``; ``FakeSalesforce.delete_failures`` fails chosen Ids.
- ``update``: an ``Id`` column and fields by API name (matched without regard to case). A
  value is parsed as the describe's type says; ``#N/A`` sets null and an empty field leaves the
  field as it is. Per record, first failure wins: ``MALFORMED_ID``, ``ENTITY_IS_DELETED`` /
  ``INVALID_CROSS_REFERENCE_KEY``, ``DUPLICATE_VALUE`` (an Id twice in one job),
  ``INVALID_FIELD_FOR_INSERT_UPDATE`` (a field whose describe says ``updateable: false``: every
  record fails, as field-level security does), ``INVALID_FIELD`` (a value that is not of the
  field's type), ``UNABLE_TO_LOCK_ROW`` (``lock_rows_once``: the first write fails, the next one
  passes), ``FIELD_CUSTOM_VALIDATION_EXCEPTION`` (``fail_validation``: a validation rule).
  A written record gets a new ``SystemModstamp``.
- ``insert``: fields by API name; new Ids with the object's key prefix; ``CreatedDate`` and
  ``SystemModstamp`` now, ``OwnerId`` the API user and fields with a default (``Status``) set
  when not given; ``REQUIRED_FIELD_MISSING`` for a required field (describe ``nillable: false``,
  ``createable``, not ``defaultedOnCreate``) left empty; ``createable: false`` fields fail like
  read-only fields on update.
- A column that is no field of the object fails the whole job (state ``Failed``, ``InvalidBatch
  : Field name not found : X``), every record unprocessed.
- Results: ``sf__Id``, ``sf__Created`` (successful) or ``sf__Error`` (failed), then the uploaded
  columns as uploaded. Salesforce does not promise the upload's order; update and insert
  results come in reverse upload order, so a client that assumes it fails a test.
- ``FakeSalesforce.writes`` counts every record each update or insert wrote.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import polars as pl

from ierkit import ids

if TYPE_CHECKING:
    from tests.sfserver import FakeSalesforce

#: polars (chrono) formats: %3f is milliseconds there, and unknown to Python's strftime.
DATETIME_CSV = "%Y-%m-%dT%H:%M:%S.%3fZ"
#: Bulk API 2.0 ``columnDelimiter`` and ``lineEnding`` values.
DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
#: What sets a field to null in an upload.
NULL = "#N/A"
#: The API user: the owner of records it inserts without an ``OwnerId``.
USER_ID = "005000000000001AAA"
_ID = r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?"
#: Fields Salesforce fills on insert when the upload leaves them empty.
DEFAULTS = {"Status": "Not Started", "Priority": "Normal"}


def bulk_csv(
    frame: pl.DataFrame,
    *,
    delimiter: str = "COMMA",
    line_ending: str = "LF",
    null_style: str = "quoted",
) -> bytes:
    """Bulk CSV: every value quoted and a null as ``""`` (``quoted``), or the older style with
    nulls as bare empty fields and numbers and booleans unquoted (``bare``)."""
    return frame.write_csv(
        separator=DELIMITERS[delimiter],
        line_terminator=LINE_ENDINGS[line_ending],
        datetime_format=DATETIME_CSV,
        date_format="%Y-%m-%d",
        # polars writes a null as "" under "always", and bare under "non_numeric".
        quote_style="always" if null_style == "quoted" else "non_numeric",
    ).encode()


def process_ingest(org: FakeSalesforce, job: dict[str, Any]) -> None:
    """Carry out a closed ingest job (not a big object insert) and store its result files."""
    if job["operation"] in ("delete", "hardDelete"):
        _delete(org, job)
    else:
        _write(org, job)


def _results(job: dict[str, Any], ok: pl.DataFrame, failed: pl.DataFrame, rest: bytes) -> None:
    fmt = {"delimiter": job["columnDelimiter"], "line_ending": job["lineEnding"]}
    job["numberRecordsProcessed"] = ok.height + failed.height
    job["numberRecordsFailed"] = failed.height
    job["results"] = {
        "successfulResults": bulk_csv(ok, **fmt),
        "failedResults": bulk_csv(failed, **fmt),
        "unprocessedrecords": rest,
    }
    job["state"] = "JobComplete"


def _delete(org: FakeSalesforce, job: dict[str, Any]) -> None:
    rows = (
        pl.read_csv(
            io.BytesIO(job["data"]),
            schema={"Id": pl.String},
            separator=DELIMITERS[job["columnDelimiter"]],
        )
        if job["data"]
        else pl.DataFrame(schema={"Id": pl.String})
    )
    with org.lock:
        obj = org.objects[job["object"]]
        live = set(obj.records.get_column("Id").to_list())
        binned = set(obj.deleted.get_column("Id").to_list())
        ok, failed, seen = [], [], set()
        for record_id in rows.get_column("Id").to_list():
            # Per-record outcomes: a small loop over a test-sized upload.
            if record_id in org.delete_failures:
                failed.append((record_id, org.delete_failures[record_id], record_id))
            elif record_id is None or not re.fullmatch(_ID, record_id):
                failed.append(("", f"MALFORMED_ID:bad id {record_id}:--", record_id))
                continue
            elif record_id in seen or (record_id in binned and job["operation"] == "delete"):
                failed.append((record_id, "ENTITY_IS_DELETED:entity is deleted:--", record_id))
            elif record_id in live or (record_id in binned and job["operation"] == "hardDelete"):
                ok.append(record_id)
                seen.add(record_id)
            else:
                failed.append(
                    (
                        record_id,
                        "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--",
                        record_id,
                    )
                )
        gone = obj.records.filter(pl.col("Id").is_in(ok))
        obj.records = obj.records.filter(~pl.col("Id").is_in(ok))
        if job["operation"] == "delete":
            obj.deleted = pl.concat([obj.deleted, gone])
        else:
            obj.deleted = obj.deleted.filter(~pl.col("Id").is_in(ok))
    success = pl.DataFrame(
        {"sf__Id": ok, "sf__Created": ["false"] * len(ok), "Id": ok},
        schema={"sf__Id": pl.String, "sf__Created": pl.String, "Id": pl.String},
    )
    failure = pl.DataFrame(
        {
            "sf__Id": [f[0] for f in failed],
            "sf__Error": [f[1] for f in failed],
            "Id": [f[2] for f in failed],
        },
        schema={"sf__Id": pl.String, "sf__Error": pl.String, "Id": pl.String},
    )
    _results(job, success, failure, b"Id" + LINE_ENDINGS[job["lineEnding"]].encode())


def _parsed(text: pl.Expr, kind: str, dtype: pl.DataType) -> pl.Expr:
    """A CSV text value as the describe's type says (null where it is not one)."""
    if kind == "datetime":
        return text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False).cast(dtype)
    if kind == "date":
        return text.str.to_date("%Y-%m-%d", strict=False)
    if kind in ("double", "int", "currency", "percent"):
        return text.cast(pl.Float64, strict=False).cast(dtype, strict=False)
    if kind == "boolean":
        lowered = text.str.to_lowercase()
        return (
            pl.when(lowered.is_in(["true", "1"]))
            .then(True)
            .when(lowered.is_in(["false", "0"]))
            .then(False)
        )
    return text.cast(dtype)


_XSD = {"datetime": "dateTime", "date": "date", "boolean": "boolean"}


def _write(org: FakeSalesforce, job: dict[str, Any]) -> None:
    """An ``update`` or ``insert`` job: per-record checks, then the records changed at once."""
    data: bytes = job["data"] or b""
    rows = (
        pl.read_csv(
            io.BytesIO(data), infer_schema=False, separator=DELIMITERS[job["columnDelimiter"]]
        )
        if data.strip()
        else pl.DataFrame(schema={"Id": pl.String})
    )
    insert = job["operation"] == "insert"
    with org.lock:
        obj = org.objects[job["object"]]
        described = {f["name"].lower(): f for f in obj.fields}
        fields: dict[str, dict[str, Any]] = {}
        for column in rows.columns:
            about = described.get(column.lower())
            if about is None or (insert and column.lower() == "id"):
                job.update(
                    state="Failed",
                    errorMessage=f"InvalidBatch : Field name not found : {column}",
                    results={"unprocessedrecords": data},
                )
                return
            fields[column] = about
        values = [c for c in rows.columns if c.lower() != "id"]
        given = {c: pl.col(c).is_not_null() & (pl.col(c) != "") for c in values}
        typed = {
            c: pl.when(pl.col(c) != NULL).then(
                _parsed(pl.col(c), fields[c]["type"], obj.records.schema[fields[c]["name"]])
            )
            for c in values
        }
        problems: list[pl.Expr] = []
        record_id = pl.col("Id") if "Id" in rows.columns else pl.lit(None, pl.String)
        if not insert:
            live = obj.records.get_column("Id")
            problems += [
                pl.when(record_id.is_null() | ~record_id.str.contains(f"^{_ID}$")).then(
                    pl.format("MALFORMED_ID:Id: id value of incorrect type: {}:Id --", record_id)
                ),
                pl.when(~record_id.is_in(live.implode())).then(
                    pl.when(record_id.is_in(obj.deleted.get_column("Id").implode()))
                    .then(pl.lit("ENTITY_IS_DELETED:entity is deleted:--"))
                    .otherwise(pl.lit("INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"))
                ),
                pl.when(record_id.is_duplicated() & ~record_id.is_first_distinct()).then(
                    pl.format("DUPLICATE_VALUE:Duplicate id in list: {}:--", record_id)
                ),
            ]
        locked = [
            f["name"] for c, f in fields.items() if c in values and not _writable(f, insert=insert)
        ]
        if locked:
            names = ", ".join(locked)
            problems.append(
                pl.lit(
                    f"INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: {names}. "
                    "Please check the security settings of this field and verify that it is "
                    f"read/write for your profile or permission set.:{names} --"
                )
            )
        for position, c in enumerate(rows.columns, start=1):
            if c not in values:
                continue
            kind = fields[c]["type"]
            problems.append(
                pl.when(given[c] & (pl.col(c) != NULL) & typed[c].is_null()).then(
                    pl.format(
                        f"INVALID_FIELD:Failed to deserialize field at col {position}. Due to, "
                        f"'{{}}' is not a valid value for the type xsd:{_XSD.get(kind, kind)}:--",
                        pl.col(c),
                    )
                )
            )
        if insert:
            for about in obj.fields:
                if not _required(about):
                    continue
                present = [c for c in values if fields[c] is about]
                empty = (
                    ~given[present[0]] | (pl.col(present[0]) == NULL) if present else pl.lit(True)
                )
                problems.append(
                    pl.when(empty).then(
                        pl.lit(
                            "REQUIRED_FIELD_MISSING:Required fields are missing: "
                            f"[{about['name']}]:{about['name']} --"
                        )
                    )
                )
        else:
            problems += [
                pl.when(_among(record_id, org.locked_once)).then(
                    pl.format(
                        "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record "
                        "or 1 records: {}:--",
                        record_id,
                    )
                ),
                pl.when(_among(record_id, org.validation_failures)).then(
                    pl.concat_str(
                        pl.lit("FIELD_CUSTOM_VALIDATION_EXCEPTION:"),
                        record_id.replace_strict(
                            org.validation_failures, default=None, return_dtype=pl.String
                        ),
                        pl.lit(":--"),
                    )
                ),
            ]
        checked = rows.with_row_index("_row").with_columns(
            _error=pl.coalesce(problems) if problems else pl.lit(None, pl.String)
        )
        good = checked.filter(pl.col("_error").is_null())
        now = dt.datetime.now(dt.UTC)
        if insert:
            new_ids = _new_ids(org, obj.key_prefix, good.height)
            good = good.with_columns(Id=pl.Series(new_ids, dtype=pl.String))
            _insert(obj, good, fields, values, typed, given, now)
        else:
            org.locked_once -= set(
                checked.filter(pl.col("_error").str.starts_with("UNABLE_TO_LOCK_ROW"))
                .get_column("Id")
                .to_list()
            )
            _update(obj, good, fields, values, typed, given, now)
        org.writes.update(good.get_column("Id").to_list())
    uploaded = rows.columns
    ok = good.sort("_row", descending=True).select(
        pl.col("Id").alias("sf__Id"),
        pl.lit("true" if insert else "false").alias("sf__Created"),
        *uploaded,
    )
    failed = (
        checked.filter(pl.col("_error").is_not_null())
        .sort("_row", descending=True)
        .select(
            (pl.lit("") if insert else pl.col("Id")).alias("sf__Id"),
            pl.col("_error").alias("sf__Error"),
            *uploaded,
        )
    )
    _results(job, ok, failed, b"")


def _among(value: pl.Expr, chosen: Iterable[str]) -> pl.Expr:
    return value.is_in(pl.Series(list(chosen), dtype=pl.String).implode())


def _writable(about: dict[str, Any], *, insert: bool) -> bool:
    return bool(about.get("createable" if insert else "updateable", True))


def _required(about: dict[str, Any]) -> bool:
    return (
        not about.get("nillable", True)
        and bool(about.get("createable", True))
        and not about.get("defaultedOnCreate", False)
    )


def _new_ids(org: FakeSalesforce, prefix: str, count: int) -> list[str]:
    start = org.next_record
    org.next_record += count
    return [ids.to_18(f"{prefix}{n:012d}") for n in range(start, start + count)]


def _update(
    obj: Any,
    good: pl.DataFrame,
    fields: dict[str, dict[str, Any]],
    values: list[str],
    typed: dict[str, pl.Expr],
    given: dict[str, pl.Expr],
    now: dt.datetime,
) -> None:
    changes = good.select(
        "Id",
        *(typed[c].alias(f"_v{i}") for i, c in enumerate(values)),
        *(given[c].alias(f"_g{i}") for i, c in enumerate(values)),
    )
    records = obj.records.join(changes, on="Id", how="left")
    stamps = [c for c in ("SystemModstamp", "LastModifiedDate") if c in obj.records.columns]
    obj.records = records.with_columns(
        *(
            pl.when(pl.col(f"_g{i}").fill_null(False))
            .then(pl.col(f"_v{i}"))
            .otherwise(pl.col(fields[c]["name"]))
            .alias(fields[c]["name"])
            for i, c in enumerate(values)
        ),
        *(
            pl.when(pl.col("Id").is_in(good.get_column("Id").implode()))
            .then(pl.lit(now).cast(obj.records.schema[s]))
            .otherwise(pl.col(s))
            .alias(s)
            for s in stamps
        ),
    ).select(obj.records.columns)


def _insert(
    obj: Any,
    good: pl.DataFrame,
    fields: dict[str, dict[str, Any]],
    values: list[str],
    typed: dict[str, pl.Expr],
    given: dict[str, pl.Expr],
    now: dt.datetime,
) -> None:
    names = {fields[c]["name"]: c for c in values}
    # What Salesforce fills when the upload leaves a field empty.
    defaults = {
        "CreatedDate": pl.lit(now),
        "SystemModstamp": pl.lit(now),
        "OwnerId": pl.lit(USER_ID),
        **{k: pl.lit(v) for k, v in DEFAULTS.items()},
    }
    columns = [pl.col("Id")]
    for name, dtype in obj.records.schema.items():
        if name == "Id":
            continue
        value: pl.Expr = pl.lit(None)
        if name in names:
            value = pl.when(given[names[name]]).then(typed[names[name]])
        if name in defaults:
            value = value.fill_null(defaults[name])
        columns.append(value.cast(dtype).alias(name))
    obj.records = pl.concat([obj.records, good.select(columns).select(obj.records.columns)])
