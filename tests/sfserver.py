"""A Salesforce-like HTTPS server on loopback, for tests that talk to "Salesforce" over real HTTP.

It is stateful and backed by a local org's tables (canonical Parquet tables, renamed to their
Salesforce API names with ``ierkit.schema``), and answers the endpoints that simple-salesforce
calls for ierkit's flows. Response shapes follow Salesforce's REST API, Bulk API 2.0 and OAuth
documentation (developer.salesforce.com: "Query", "Get Results for a Query Job", "Upload
Complete", "Get Job Failed Record Results", "Record Count", "sObject Layouts", "OAuth 2.0 JWT
Bearer Flow", SOAP ``login()``).

Behaviours modelled:

- TLS only (a throwaway certificate authority from ``trustme``; clients verify against it).
- Logins: SOAP ``login()`` (username + password + security token; ``INVALID_LOGIN`` fault on a
  mismatch), OAuth JWT bearer (RS256 assertion verified against the connected app's public key;
  ``iss``, ``sub``, ``aud``, ``exp`` checked) and OAuth client credentials (Basic auth). Each
  login issues a new access token; ``expire_sessions()`` invalidates them all, after which every
  API call answers 401 ``INVALID_SESSION_ID`` until the client logs in again.
- REST ``query`` with ``nextRecordsUrl`` paging (``page_size`` records a page, 2,000 like
  Salesforce by default); records carry ``attributes`` and parent relationships nest as objects.
- ``sobjects`` (describe global), ``sobjects/<X>/describe`` (fields with type, referenceTo,
  relationshipName) and ``sobjects/<X>/describe/layouts`` (related lists per layout).
- ``limits`` (``DataStorageMB``: 2 KB a record) and ``limits/recordCount?sObjects=``.
- Bulk API 2.0 query jobs: create (state ``UploadComplete``), poll (``InProgress`` for
  ``polls_until_complete`` polls, then ``JobComplete``), results as CSV pages with
  ``Sforce-Locator`` (``null`` on the last page) and ``Sforce-NumberOfRecords``; results are a
  snapshot taken when the job was created. Results asked for before ``JobComplete`` get HTTP
  412. The CSV is written as Salesforce documents it: every value quoted, header included, a
  null as an empty quoted string ``""`` (``null_style="bare"`` writes the older, unquoted empty
  field instead, so tests can read both), in the job's ``columnDelimiter`` (COMMA, TAB, PIPE,
  SEMICOLON, CARET, BACKQUOTE) and ``lineEnding`` (LF, CRLF); any other value is refused.
- Bulk API 2.0 ingest jobs (``delete``, ``hardDelete``, ``update``, ``insert``): create
  (``Open``, with ``contentUrl``), upload CSV in the job's delimiter and line ending (201; a
  ``Content-Length`` body or ``Transfer-Encoding: chunked``), close (``UploadComplete``), poll,
  abort, ``successfulResults`` / ``failedResults`` / ``unprocessedrecords`` CSV. What each
  operation does to the records, and its per-record errors, is in ``tests/sfserver_ingest.py``.
  Describe gives ``createable``, ``updateable`` and ``defaultedOnCreate`` per field; Contact
  and Lead carry the six engagement summary fields unless ``drop_writeback_fields()``.
- Job info as Salesforce gives it (``jobType`` V2Query / V2Ingest, times like
  ``2026-11-28T20:03:37.000+0000``, processing times, ``retries``); ``DELETE`` of a finished or
  closed job (204, then 404); ``GET jobs/query`` and ``GET jobs/ingest`` list jobs
  (``done``, ``records``, ``nextRecordsUrl``; filter by ``jobType`` and ``concurrencyMode``).
- SOQL subset: ``SELECT <fields and parent paths> FROM <object> [WHERE <field> <op> <literal>
  [AND ...]] [ORDER BY <field> [ASC|DESC]] [LIMIT n]`` with ops ``= != < <= > >= IN`` and
  string, number, boolean, null, date and datetime literals. Anything else is answered with
  Salesforce's error shape (``MALFORMED_QUERY``, ``INVALID_FIELD``, ``INVALID_TYPE``), never a
  guessed result.
- Faults a test switches on: expired sessions, the next N calls failing with 503 or
  ``REQUEST_LIMIT_EXCEEDED``, the next job failing, chosen Ids failing to delete, fields an
  older package lacks (``drop_field``), a page layout without the IER related list, a field the
  user cannot edit (``make_read_only``), a validation rule (``fail_validation``), row locks
  (``lock_rows_once``), required fields (``require_field``), update and insert jobs held
  ``InProgress`` (``stall_jobs``, so a test can kill a client mid-job), a data upload taken
  whose answer is lost (``lose_upload_answers``; a second upload into the job adds its rows).
  ``writes`` counts how often each record was written by an update or insert.

Not modelled: compression, PK chunking, parallel results, sharing rules, field-level security
beyond dropped fields, API version differences, the 150 MB upload limit, paging of job lists,
the exact error body of a 412 (Salesforce documents the status only).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
import secrets
import ssl
import threading
import traceback
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import jwt
import polars as pl
import requests
import trustme

from ierkit import schema
from tests.sfserver_ingest import (
    DELIMITERS,
    LINE_ENDINGS,
    USER_ID,
    process_ingest,
)
from tests.sfserver_ingest import bulk_csv as _csv

API_VERSION = "59.0"
ORG_ID = "00D000000000001EAA"
DATETIME_JSON = "%Y-%m-%dT%H:%M:%S.%3f+0000"
NULL_STYLES = ("quoted", "bare")
#: Salesforce counts most records as 2 KB of data storage.
RECORD_KB = 2

# Parent relationships ierkit reads through: (object, lookup field) -> (parent, relationship).
RELATIONSHIPS: dict[tuple[str, str], tuple[str, str]] = {
    ("Contact", "AccountId"): ("Account", "Account"),
    (
        schema.INDIVIDUAL_LINKS.sobject,
        schema.INDIVIDUAL_LINKS.column("individual_email_result_id").api_name,
    ): (schema.INDIVIDUAL_EMAIL_RESULTS.sobject, "et4ae5__Individual_Email_Result__r"),
}
_MC_KEYS = {"job_id", "batch_id", "list_id", "subscriber_id"}
_INGEST_OPERATIONS = ("delete", "hardDelete", "update", "insert")
#: Fields Salesforce sets itself: never createable or updateable.
_SYSTEM_FIELDS = {"Id", "CreatedDate", "SystemModstamp", "LastModifiedDate"}
#: Required fields Salesforce fills when an insert leaves them empty (Task status, owners).
_DEFAULTED = {"OwnerId", "Status"}


def json_time(value: dt.datetime) -> str:
    """A Salesforce REST time: ``2026-11-28T20:03:37.000+0000`` (UTC, milliseconds)."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


class SoqlError(Exception):
    """A query the server does not answer: carries Salesforce's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _sf_type(table_name: str, column: schema.Column) -> str:
    if column.api_name == "Id":
        return "id"
    if column.name == "campaign_member_id":
        return "string"  # Text(100), not a lookup
    if column.dtype == schema.ID and column.name.endswith("_id"):
        return "reference"
    if column.name in _MC_KEYS:
        return "string"  # Text(50)/Text(100) in the package
    if column.dtype.is_integer():
        return "double"  # Number(n, 0)
    if column.dtype == pl.Boolean:
        return "boolean"
    if column.dtype == pl.Date:
        return "date"
    if isinstance(column.dtype, pl.Datetime):
        return "datetime"
    return "string"


@dataclass
class SObject:
    """One object: its records (columns named by API path), recycle bin and describe."""

    name: str
    records: pl.DataFrame
    fields: list[dict[str, Any]]
    key_prefix: str
    deleted: pl.DataFrame = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.deleted is None:
            self.deleted = self.records.clear()


def _api_frame(table: schema.Table, frame: pl.DataFrame) -> pl.DataFrame:
    """A canonical frame with its stored columns renamed to API names, as the server keeps it."""
    exprs = []
    for column in table.stored_columns:
        expr = pl.col(column.name)
        if column.name in _MC_KEYS:
            expr = expr.cast(pl.String)
        elif column.dtype.is_integer():
            expr = expr.cast(pl.Float64)
        exprs.append(expr.alias(column.api_name))
    return frame.select(exprs)


def _describe_fields(table: schema.Table) -> list[dict[str, Any]]:
    fields = []
    for column in table.stored_columns:
        if "." in column.api_name:
            continue
        kind = _sf_type(table.name, column)
        # The user may set every field but the Id and the audit fields (field-level security
        # and formula fields are switched per test with ``make_read_only``).
        settable = column.api_name not in _SYSTEM_FIELDS
        entry: dict[str, Any] = {
            "name": column.api_name,
            "label": column.description or column.name,
            "type": kind,
            "nillable": column.nullable and column.api_name not in _DEFAULTED,
            "custom": column.api_name.endswith("__c"),
            "referenceTo": [],
            "relationshipName": None,
            "createable": settable,
            "updateable": settable,
            "defaultedOnCreate": column.api_name in _DEFAULTED,
        }
        parent = RELATIONSHIPS.get((table.sobject, column.api_name))
        if parent:
            entry["referenceTo"], entry["relationshipName"] = [parent[0]], parent[1]
        fields.append(entry)
    if table.sobject == "Contact":
        fields.append(
            {
                "name": "AccountId",
                "label": "Account",
                "type": "reference",
                "nillable": True,
                "custom": False,
                "referenceTo": ["Account"],
                "relationshipName": "Account",
                "createable": True,
                "updateable": True,
                "defaultedOnCreate": False,
            }
        )
    return fields


class FakeSalesforce:
    """The state of one fake org, and the switches tests use to inject faults.

    Args:
        tables: Canonical tables by canonical name (e.g. read from a local org folder).
        username, password, security_token: The SOAP login credentials that succeed.
        consumer_key, public_key_pem: A connected app for the JWT bearer flow.
        client_id, client_secret: A connected app for the client credentials flow.
        page_size: REST query page size.
        storage_max_mb: ``DataStorageMB.Max``.
        null_style: How Bulk query CSV writes a null: ``"quoted"`` (``""``, as Salesforce
            documents) or ``"bare"`` (an empty, unquoted field, non-text values unquoted).
    """

    def __init__(
        self,
        tables: dict[str, pl.DataFrame | pl.LazyFrame],
        *,
        username: str = "integration@example.com",
        password: str = "password",
        security_token: str = "TOKEN",
        consumer_key: str | None = None,
        public_key_pem: bytes | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        page_size: int = 2000,
        storage_max_mb: float = 10_240.0,
        null_style: str = "quoted",
    ) -> None:
        if null_style not in NULL_STYLES:
            raise ValueError(f"null_style must be one of {NULL_STYLES}, not {null_style!r}")
        self.null_style = null_style
        self.username, self.password, self.security_token = username, password, security_token
        self.consumer_key, self.public_key_pem = consumer_key, public_key_pem
        self.client_id, self.client_secret = client_id, client_secret
        self.page_size = page_size
        self.storage_max_mb = storage_max_mb
        self.polls_until_complete = 1
        self.lock = threading.RLock()
        self.tokens: set[str] = set()
        self.logins: list[str] = []
        self.requests: list[tuple[str, str, int]] = []
        self.faults: list[tuple[int, str, str, str]] = []  # (status, code, message, path part)
        self.fail_next_job_message: str | None = None
        self.lost_upload_answers = 0
        self.delete_failures: dict[str, str] = {}
        self.validation_failures: dict[str, str] = {}
        self.locked_once: set[str] = set()
        self.writes: Counter[str] = Counter()
        self.stalled = False
        self.next_record = 10**11
        self.cursors: dict[str, tuple[str, pl.LazyFrame]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.objects: dict[str, SObject] = {}
        self.layouts: dict[str, list[dict[str, Any]]] = {}
        self.base_url = ""
        # Standard objects exist in every org; the package's objects only where given.
        standard = {
            n: schema.table(n).empty()
            for n, t in schema.TABLES.items()
            if not t.sobject.startswith("et4ae5__")
        }
        for name, frame in {**standard, **tables}.items():
            table = schema.table(name)
            data = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
            data = schema.validate(name, data)
            records = _api_frame(table, data)
            if table.sobject == "Contact":
                records = records.with_columns(AccountId=pl.lit(None, pl.String))
            prefix = data.get_column("id").head(1).str.slice(0, 3).to_list() or [
                {"Contact": "003", "Lead": "00Q", "User": "005", "Task": "00T"}.get(
                    table.sobject, "a00"
                )
            ]
            self.objects[table.sobject] = SObject(
                table.sobject, records, _describe_fields(table), prefix[0]
            )
        self.objects.setdefault(
            "Account",
            SObject(
                "Account",
                pl.DataFrame(schema={"Id": pl.String, "Name": pl.String, "Industry": pl.String}),
                [
                    {
                        "name": n,
                        "label": n,
                        "type": t,
                        "nillable": n != "Id",
                        "custom": False,
                        "referenceTo": [],
                        "relationshipName": None,
                    }
                    for n, t in (("Id", "id"), ("Name", "string"), ("Industry", "string"))
                ],
                "001",
            ),
        )
        ier = schema.INDIVIDUAL_EMAIL_RESULTS
        for sobject, column in (("Contact", "contact_id"), ("Lead", "lead_id")):
            self.layouts[sobject] = [
                {
                    "id": f"00h00000000000{sobject[0]}AAA",
                    "name": f"{sobject} Layout",
                    "related": [
                        {
                            "sobject": ier.sobject,
                            "field": ier.column(column).api_name,
                            "name": "et4ae5__IndividualEmailResults__r",
                            "label": "Individual Email Results",
                        }
                    ],
                }
            ]

    # --- switches for tests -----------------------------------------------------------------

    def expire_sessions(self) -> None:
        """Invalidate every access token issued so far (a session timeout)."""
        with self.lock:
            self.tokens.clear()

    def fail_next(
        self,
        count: int,
        *,
        status: int = 503,
        code: str = "SERVER_UNAVAILABLE",
        message: str = "Service Unavailable",
        path_contains: str = "",
    ) -> None:
        """The next ``count`` API calls whose path contains ``path_contains`` fail."""
        with self.lock:
            self.faults.extend([(status, code, message, path_contains)] * count)

    def lose_upload_answers(self, count: int = 1) -> None:
        """The next ``count`` Bulk data uploads are taken but their answer is lost: the
        connection closes without a response, as when a network drops the 201."""
        with self.lock:
            self.lost_upload_answers += count

    def fail_next_job(self, message: str = "InternalServerError: job failed") -> None:
        """The next Bulk job created ends in state ``Failed`` with this ``errorMessage``."""
        self.fail_next_job_message = message

    def drop_field(self, sobject: str, field_name: str) -> None:
        """Remove a field, as in an org on an older package version (and paths through it)."""
        with self.lock:
            obj = self.objects[sobject]
            obj.records = obj.records.drop(field_name)
            obj.deleted = obj.deleted.drop(field_name)
            obj.fields = [f for f in obj.fields if f["name"] != field_name]
            for (child, _), (parent, rel) in RELATIONSHIPS.items():
                if parent == sobject and child in self.objects:
                    path = f"{rel}.{field_name}"
                    other = self.objects[child]
                    other.records = other.records.drop(path, strict=False)
                    other.deleted = other.deleted.drop(path, strict=False)

    def drop_writeback_fields(self) -> None:
        """Remove the six engagement summary fields from Contact and Lead (not yet deployed)."""
        for table in (schema.CONTACTS, schema.LEADS):
            for column in table.columns:
                if column.name.startswith("engagement_"):
                    self.drop_field(table.sobject, column.sf_field)

    def make_read_only(self, sobject: str, field_name: str) -> None:
        """The user cannot set the field (describe ``createable``/``updateable`` false)."""
        with self.lock:
            for entry in self.objects[sobject].fields:
                if entry["name"] == field_name:
                    entry["createable"] = entry["updateable"] = False

    def require_field(self, sobject: str, field_name: str) -> None:
        """An insert must give the field (describe ``nillable`` false, no default)."""
        with self.lock:
            for entry in self.objects[sobject].fields:
                if entry["name"] == field_name:
                    entry["nillable"], entry["defaultedOnCreate"] = False, False

    def fail_validation(self, ids: list[str], message: str) -> None:
        """A validation rule that refuses every write to these records, with ``message``."""
        with self.lock:
            self.validation_failures.update(dict.fromkeys(ids, message))

    def lock_rows_once(self, ids: list[str]) -> None:
        """The next write to each of these records fails ``UNABLE_TO_LOCK_ROW``; later ones
        pass (another transaction held the row)."""
        with self.lock:
            self.locked_once.update(ids)

    def stall_jobs(self, stalled: bool = True) -> None:
        """Closed update and insert jobs stay ``InProgress`` (nothing written) until released."""
        self.stalled = stalled

    def remove_related_list(self, layout_sobject: str) -> None:
        """Take the Individual Email Results related list off every layout of an object."""
        for layout in self.layouts[layout_sobject]:
            layout["related"] = []

    def count(self, sobject: str) -> int:
        """Live records of an object."""
        return self.objects[sobject].records.height

    # --- SOQL -------------------------------------------------------------------------------

    def run_query(self, soql: str) -> tuple[str, pl.LazyFrame, list[str]]:
        """Evaluate ``soql``: (object, result rows with columns named as selected, fields)."""
        query = parse_soql(soql)
        obj = self.objects.get(_match_name(query.sobject, self.objects))
        if obj is None:
            raise SoqlError(
                "INVALID_TYPE",
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use "
                "a custom object, be sure to append the '__c' after the entity name.",
            )
        columns = {c.lower(): c for c in obj.records.columns}

        def resolve(name: str) -> str:
            real = columns.get(name.lower())
            if real is None:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"No such column '{name}' on entity '{obj.name}'. If you are attempting to "
                    "use a custom field, be sure to append the '__c' after the custom field name.",
                )
            return real

        fields = [resolve(f) for f in query.fields]
        big = big_object_defs(self).get(obj.name)
        if big is not None:
            check_big_object_query(query, big)
        frame = obj.records.lazy() if big is None else big_object_sort(obj.records.lazy(), big)
        schema_ = obj.records.schema
        for name, op, value in query.where:
            real = resolve(name)
            frame = frame.filter(_condition(real, schema_[real], op, value))
        if query.order_by:
            real = resolve(query.order_by)
            frame = frame.sort(real, descending=query.descending, nulls_last=not query.descending)
        if query.limit is not None:
            frame = frame.head(query.limit)
        return obj.name, frame.select(fields), fields


def _match_name(name: str, names: dict[str, Any]) -> str:
    for candidate in names:
        if candidate.lower() == name.lower():
            return candidate
    return name


@dataclass
class Soql:
    fields: list[str]
    sobject: str
    where: list[tuple[str, str, Any]]
    order_by: str | None = None
    descending: bool = False
    limit: int | None = None


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>'(?:[^'\\]|\\.)*')
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<num>-?\d+(?:\.\d+)?)
    |(?P<op><=|>=|!=|<>|=|<|>)
    |(?P<punct>[,()])
    |(?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


def _tokens(soql: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, soql.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token at: '{text[pos : pos + 20]}'")
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def parse_soql(soql: str) -> Soql:
    """Parse the SOQL subset the server answers; ``SoqlError(MALFORMED_QUERY)`` otherwise."""
    toks = _tokens(soql)
    i = 0

    def peek(word: str) -> bool:
        return i < len(toks) and toks[i][0] == "word" and toks[i][1].upper() == word

    def expect_word(word: str) -> None:
        nonlocal i
        if not peek(word):
            got = toks[i][1] if i < len(toks) else "end of query"
            raise SoqlError("MALFORMED_QUERY", f"expecting '{word}', unexpected token: '{got}'")
        i += 1

    expect_word("SELECT")
    fields: list[str] = []
    while True:
        if i >= len(toks) or toks[i][0] != "word" or (i + 1 < len(toks) and toks[i + 1][1] == "("):
            got = toks[i][1] if i < len(toks) else "end of query"
            raise SoqlError("MALFORMED_QUERY", f"unsupported select item: '{got}'")
        fields.append(toks[i][1])
        i += 1
        if i < len(toks) and toks[i][1] == ",":
            i += 1
            continue
        break
    expect_word("FROM")
    if i >= len(toks) or toks[i][0] != "word":
        raise SoqlError("MALFORMED_QUERY", "expecting an object name after FROM")
    sobject = toks[i][1]
    i += 1
    query = Soql(fields, sobject, [])
    if peek("WHERE"):
        i += 1
        while True:
            if i >= len(toks):
                raise SoqlError("MALFORMED_QUERY", "incomplete WHERE clause")
            name_kind, name = toks[i]
            if name_kind != "word":
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{name}'")
            i += 1
            if peek("IN"):
                i += 1
                if i >= len(toks) or toks[i][1] != "(":
                    raise SoqlError("MALFORMED_QUERY", "expecting '(' after IN")
                i += 1
                values = []
                while i < len(toks) and toks[i][1] != ")":
                    values.append(_literal(toks[i]))
                    i += 1
                    if i < len(toks) and toks[i][1] == ",":
                        i += 1
                if i >= len(toks):
                    raise SoqlError("MALFORMED_QUERY", "expecting ')'")
                i += 1
                query.where.append((name, "IN", values))
            else:
                if i >= len(toks) or toks[i][0] != "op" or i + 1 >= len(toks):
                    raise SoqlError("MALFORMED_QUERY", f"unsupported condition on '{name}'")
                op = "!=" if toks[i][1] == "<>" else toks[i][1]
                query.where.append((name, op, _literal(toks[i + 1])))
                i += 2
            if peek("AND"):
                i += 1
                continue
            break
    if peek("ORDER"):
        i += 1
        expect_word("BY")
        if i >= len(toks) or toks[i][0] != "word":
            raise SoqlError("MALFORMED_QUERY", "expecting a field after ORDER BY")
        query.order_by = toks[i][1]
        i += 1
        if peek("ASC") or peek("DESC"):
            query.descending = toks[i][1].upper() == "DESC"
            i += 1
    if peek("LIMIT"):
        i += 1
        if i >= len(toks) or toks[i][0] != "num":
            raise SoqlError("MALFORMED_QUERY", "expecting a number after LIMIT")
        query.limit = int(toks[i][1])
        i += 1
    if i != len(toks):
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{toks[i][1]}'")
    return query


def _literal(token: tuple[str, str]) -> Any:
    kind, text = token
    if kind == "str":
        return text[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    if kind == "num":
        return float(text) if "." in text else int(text)
    if kind == "datetime":
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value.astimezone(dt.UTC)
    if kind == "date":
        return dt.date.fromisoformat(text)
    if kind == "word" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if kind == "word" and text.lower() == "null":
        return None
    raise SoqlError("MALFORMED_QUERY", f"unexpected literal: '{text}'")


def _condition(column: str, dtype: pl.DataType, op: str, value: Any) -> pl.Expr:
    col = pl.col(column)
    if op == "IN":
        return col.is_in(value)
    if value is None:
        if op == "=":
            return col.is_null()
        if op == "!=":
            return col.is_not_null()
        raise SoqlError("MALFORMED_QUERY", f"null can only be compared with = or != ('{column}')")
    if isinstance(dtype, pl.Datetime) != isinstance(value, dt.datetime):
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{column}' must be of type {dtype} "
            "and should not be enclosed in quotes",
        )
    lit = pl.lit(value)
    return {
        "=": col == lit,
        "!=": col != lit,
        "<": col < lit,
        "<=": col <= lit,
        ">": col > lit,
        ">=": col >= lit,
    }[op].fill_null(False)


# --- response formatting ------------------------------------------------------------------


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.col(pl.Datetime).dt.convert_time_zone("UTC").dt.strftime(DATETIME_JSON),
        pl.col(pl.Date).dt.strftime("%Y-%m-%d"),
    )


def _json_records(sobject: str, page: pl.DataFrame) -> list[dict[str, Any]]:
    rows = _as_text(page).to_dicts()
    records = []
    for row in rows:
        record: dict[str, Any] = {
            "attributes": {
                "type": sobject,
                "url": f"/services/data/v{API_VERSION}/sobjects/{sobject}/{row.get('Id')}",
            }
        }
        for key, value in row.items():
            if "." in key:
                rel, name = key.split(".", 1)
                parent = record.setdefault(rel, {"attributes": {"type": rel}})
                parent[name] = value
            else:
                record[key] = value
        for key, value in list(record.items()):
            # A parent whose fields are all null is a null lookup.
            if (
                isinstance(value, dict)
                and key != "attributes"
                and all(v is None for k, v in value.items() if k != "attributes")
            ):
                record[key] = None
        records.append(record)
    return records


def _error(code: str, message: str) -> list[dict[str, str]]:
    return [{"message": message, "errorCode": code}]


# --- HTTP ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as real web servers set it: the headers and the body leave in two writes,
    # and with Nagle's algorithm on, the body waits for the client's delayed ACK of the
    # headers (about 40 ms on Linux), which made every request here take 40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # Plumbing.
    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _chunked_body(self) -> bytes:
        """A ``Transfer-Encoding: chunked`` body (RFC 9112 7.1): size lines, data, trailers."""
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            body += self.rfile.read(size)
            self.rfile.readline(8)  # the CRLF after each chunk
        while self.rfile.readline(8192).strip():  # trailer fields, up to the empty line
            pass
        return bytes(body)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        # Recorded before the answer leaves, so a client that has it sees it in ``requests``.
        with self.server.org.lock:
            self.server.org.requests.append((self.command, self.path, status))
        self.send_response(status)
        if status != 204:  # No Content carries neither a type nor a length
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json;charset=UTF-8", headers)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        org = self.server.org
        parsed = urllib.parse.urlsplit(self.path)
        path, params = parsed.path.rstrip("/"), dict(urllib.parse.parse_qsl(parsed.query))
        body = self._body()
        try:
            if path == "/services/oauth2/token" and self.command == "POST":
                return self._oauth(body)
            if path.startswith("/services/Soap/u/") and self.command == "POST":
                return self._soap_login(body)
            prefix = f"/services/data/v{API_VERSION}"
            if not path.startswith(prefix):
                return self._json(404, _error("NOT_FOUND", "The requested resource does not exist"))
            with org.lock:
                for index, (status, code, message, part) in enumerate(org.faults):
                    if part in path:
                        del org.faults[index]
                        return self._json(status, _error(code, message))
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
            if token not in org.tokens:
                return self._json(401, _error("INVALID_SESSION_ID", "Session expired or invalid"))
            self._api(path[len(prefix) :], params, body)
        except SoqlError as error:
            self._json(400, _error(error.code, error.message))
        except Exception:  # a server bug: say so loudly rather than drop the connection
            traceback.print_exc()
            self._json(500, _error("UNKNOWN_EXCEPTION", "sfserver failed; see stderr"))

    # Logins.
    def _session(self, how: str) -> str:
        org = self.server.org
        token = f"{ORG_ID}!{secrets.token_urlsafe(24)}"
        with org.lock:
            org.tokens.add(token)
            org.logins.append(f"{how}@{self.headers.get('X-Sfserver-Login-Host', '')}")
        return token

    def _oauth(self, body: bytes) -> None:
        org = self.server.org
        form = dict(urllib.parse.parse_qsl(body.decode()))
        grant = form.get("grant_type", "")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            try:
                claims = jwt.decode(
                    form.get("assertion", ""),
                    org.public_key_pem,
                    algorithms=["RS256"],
                    options={"verify_aud": False, "require": ["exp", "iss", "sub", "aud"]},
                )
            except Exception:  # any invalid assertion: Salesforce says invalid_grant
                return self._json(
                    400, {"error": "invalid_grant", "error_description": "invalid assertion"}
                )
            if claims["iss"] != org.consumer_key:
                return self._json(
                    400,
                    {
                        "error": "invalid_client_id",
                        "error_description": "client identifier invalid",
                    },
                )
            if claims["sub"] != org.username:
                return self._json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "user hasn't approved this consumer",
                    },
                )
            if not str(claims["aud"]).startswith("https://") or not str(claims["aud"]).endswith(
                "salesforce.com"
            ):
                return self._json(
                    400, {"error": "invalid_grant", "error_description": "audience is invalid"}
                )
            token = self._session("jwt")
        elif grant == "client_credentials":
            auth = (self.headers.get("Authorization") or "").removeprefix("Basic ")
            try:
                key, _, secret = base64.b64decode(auth).decode().partition(":")
            except ValueError:
                key, secret = "", ""
            if key != org.client_id or secret != org.client_secret or not key:
                return self._json(
                    400,
                    {"error": "invalid_client", "error_description": "invalid client credentials"},
                )
            token = self._session("client_credentials")
        else:
            return self._json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
            )
        self._json(
            200,
            {
                "access_token": token,
                "instance_url": org.base_url,
                "id": f"{org.base_url}/id/{ORG_ID}/{USER_ID}",
                "token_type": "Bearer",
                "issued_at": str(int(dt.datetime.now(dt.UTC).timestamp() * 1000)),
                "scope": "api",
            },
        )

    def _soap_login(self, body: bytes) -> None:
        org = self.server.org
        text = body.decode()
        user = re.search(r"<(?:\w+:)?username>(.*?)</(?:\w+:)?username>", text, re.S)
        word = re.search(r"<(?:\w+:)?password>(.*?)</(?:\w+:)?password>", text, re.S)
        expected = escape(org.password + org.security_token)
        if (
            not user
            or not word
            or user.group(1) != escape(org.username)
            or word.group(1) != expected
        ):
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
                "<faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid "
                "username, password, security token; or user locked out.</faultstring><detail>"
                "<sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
                "<sf:exceptionMessage>Invalid username, password, security token; or user "
                "locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>"
                "</soapenv:Body></soapenv:Envelope>"
            )
            return self._send(500, fault.encode(), "text/xml;charset=UTF-8")
        token = self._session("soap")
        ok = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<metadataServerUrl>{org.base_url}/services/Soap/m/{API_VERSION}/{ORG_ID}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
            f"<serverUrl>{org.base_url}/services/Soap/u/{API_VERSION}/{ORG_ID}</serverUrl>"
            f"<sessionId>{token}</sessionId><userId>{USER_ID}</userId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        self._send(200, ok.encode(), "text/xml;charset=UTF-8")

    # The API.
    def _api(self, path: str, params: dict[str, str], body: bytes) -> None:
        org = self.server.org
        parts = path.strip("/").split("/")
        method = self.command
        if parts == ["query"] and method == "GET":
            sobject, frame, _ = org.run_query(params.get("q", ""))
            cursor = f"01g{secrets.token_hex(6)}"
            with org.lock:
                org.cursors[cursor] = (sobject, frame)
            return self._query_page(cursor, 0)
        if len(parts) == 2 and parts[0] == "query" and method == "GET":
            cursor, _, offset = parts[1].rpartition("-")
            if cursor not in org.cursors or not offset.isdigit():
                return self._json(400, _error("INVALID_QUERY_LOCATOR", "invalid query locator"))
            return self._query_page(cursor, int(offset))
        if parts == ["sobjects"] and method == "GET":
            return self._json(
                200,
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": 200,
                    "sobjects": [
                        {
                            "name": o.name,
                            "label": o.name,
                            "keyPrefix": o.key_prefix,
                            "queryable": True,
                            "custom": o.name.endswith("__c"),
                            "deletable": True,
                        }
                        for o in org.objects.values()
                    ],
                },
            )
        if (
            len(parts) >= 3
            and parts[0] == "sobjects"
            and parts[2] == "describe"
            and method == "GET"
        ):
            name = _match_name(parts[1], org.objects)
            if name not in org.objects:
                return self._json(404, _error("NOT_FOUND", "The requested resource does not exist"))
            obj = org.objects[name]
            if parts[3:] == ["layouts"]:
                return self._json(
                    200,
                    {
                        "layouts": [
                            {
                                "id": lay["id"],
                                "detailLayoutSections": [],
                                "editLayoutSections": [],
                                "relatedLists": lay["related"],
                                "saveOptions": [],
                            }
                            for lay in org.layouts.get(name, [])
                        ],
                        "recordTypeMappings": [],
                        "recordTypeSelectorRequired": [False],
                    },
                )
            if len(parts) == 3:
                return self._json(
                    200,
                    {
                        "name": obj.name,
                        "label": obj.name,
                        "queryable": True,
                        "keyPrefix": obj.key_prefix,
                        "fields": obj.fields,
                    },
                )
        if parts == ["limits"] and method == "GET":
            used_kb = (
                sum(o.records.height + o.deleted.height for o in org.objects.values()) * RECORD_KB
            )
            return self._json(
                200,
                {
                    "DataStorageMB": {
                        "Max": org.storage_max_mb,
                        "Remaining": org.storage_max_mb - used_kb / 1024,
                    },
                    "DailyApiRequests": {"Max": 100000, "Remaining": 99000},
                },
            )
        if parts == ["limits", "recordCount"] and method == "GET":
            wanted = [n for n in params.get("sObjects", "").split(",") if n]
            return self._json(
                200,
                {
                    "sObjects": [
                        {"count": o.records.height, "name": o.name}
                        for o in org.objects.values()
                        if not wanted or o.name in wanted
                    ]
                },
            )
        if parts[:1] == ["jobs"] and len(parts) >= 2:
            return self._jobs(parts[1], parts[2:], params, body)
        self._json(404, _error("NOT_FOUND", "The requested resource does not exist"))

    def _query_page(self, cursor: str, offset: int) -> None:
        org = self.server.org
        sobject, frame = org.cursors[cursor]
        total = frame.select(pl.len()).collect().item()
        page = frame.slice(offset, org.page_size).collect()
        done = offset + page.height >= total
        payload: dict[str, Any] = {
            "totalSize": total,
            "done": done,
            "records": _json_records(sobject, page),
        }
        if not done:
            payload["nextRecordsUrl"] = (
                f"/services/data/v{API_VERSION}/query/{cursor}-{offset + page.height}"
            )
        self._json(200, payload)

    # Bulk API 2.0.
    _CREATED_KEYS = (
        "id",
        "operation",
        "object",
        "createdById",
        "createdDate",
        "systemModstamp",
        "state",
        "externalIdFieldName",
        "concurrencyMode",
        "contentType",
        "apiVersion",
        "contentUrl",
        "lineEnding",
        "columnDelimiter",
    )
    _INFO_KEYS = (
        *_CREATED_KEYS,
        "jobType",
        "numberRecordsProcessed",
        "numberRecordsFailed",
        "retries",
        "totalProcessingTime",
        "apiActiveProcessingTime",
        "apexProcessingTime",
        "isPkChunkingSupported",
        "errorMessage",
    )

    def _job_info(self, job: dict[str, Any], *, created: bool = False) -> dict[str, Any]:
        """What Salesforce answers about a job: the create response, or the full job info."""
        keys = self._CREATED_KEYS if created else self._INFO_KEYS
        return {k: job[k] for k in keys if k in job}

    def _jobs(self, kind: str, rest: list[str], params: dict[str, str], body: bytes) -> None:
        org = self.server.org
        method = self.command
        if kind not in ("query", "ingest"):
            return self._json(404, _error("NOT_FOUND", "The requested resource does not exist"))
        if not rest and method == "GET":
            return self._list_jobs(kind, params)
        if not rest and method == "POST":
            spec = json.loads(body or b"{}")
            line_ending = spec.get("lineEnding", "LF")
            delimiter = spec.get("columnDelimiter", "COMMA")
            if line_ending not in LINE_ENDINGS or delimiter not in DELIMITERS:
                return self._json(
                    400,
                    _error(
                        "INVALIDJOB",
                        f"Invalid lineEnding {line_ending!r} or columnDelimiter {delimiter!r}",
                    ),
                )
            now = json_time(dt.datetime.now(dt.UTC))
            job: dict[str, Any] = {
                "id": f"750{secrets.token_hex(6)[:12]}AAA"[:18],
                "operation": spec.get("operation"),
                "createdById": USER_ID,
                "createdDate": now,
                "systemModstamp": now,
                "concurrencyMode": "Parallel",
                "contentType": "CSV",
                "apiVersion": float(API_VERSION),
                "jobType": "V2Query" if kind == "query" else "V2Ingest",
                "lineEnding": line_ending,
                "columnDelimiter": delimiter,
                "numberRecordsProcessed": 0,
                "retries": 0,
                "totalProcessingTime": 0,
                "polls": 0,
                "kind": kind,
            }
            if kind == "query":
                job["isPkChunkingSupported"] = False
            else:
                job.update(
                    numberRecordsFailed=0,
                    apiActiveProcessingTime=0,
                    apexProcessingTime=0,
                    contentUrl=f"services/data/v{API_VERSION}/jobs/ingest/{job['id']}/batches",
                )
            if kind == "query":
                if spec.get("operation") not in ("query", "queryAll"):
                    return self._json(
                        400, _error("INVALIDJOB", "Invalid operation for a query job")
                    )
                sobject, frame, _ = org.run_query(spec.get("query", ""))
                # "soql" stays server-side (tests read it); job info shows the documented keys.
                job.update(object=sobject, state="UploadComplete", frame=frame, soql=spec["query"])
            else:
                big = big_object_defs(org).get(_match_name(spec.get("object", ""), org.objects))
                if big is not None and spec.get("operation") != "insert":
                    return self._json(
                        400,
                        _error(
                            "INVALIDJOB",
                            f"Entity '{big.name}' is a big object: only insert is supported",
                        ),
                    )
                if big is None and spec.get("operation") not in _INGEST_OPERATIONS:
                    return self._json(
                        400,
                        _error(
                            "INVALIDJOB",
                            "This server models delete, hardDelete, update and insert only",
                        ),
                    )
                name = _match_name(spec.get("object", ""), org.objects)
                if name not in org.objects:
                    return self._json(
                        400, _error("INVALIDJOB", f"Invalid object: {spec.get('object')}")
                    )
                job.update(object=name, state="Open", data=b"")
            if org.fail_next_job_message:
                job["fail"], org.fail_next_job_message = org.fail_next_job_message, None
            with org.lock:
                org.jobs[job["id"]] = job
            return self._json(200, self._job_info(job, created=True))
        job = org.jobs.get(rest[0]) if rest else None
        if job is None or job["kind"] != kind:
            return self._json(404, _error("NOT_FOUND", "The requested resource does not exist"))
        tail = rest[1:]
        if not tail and method == "DELETE":
            if job["state"] not in ("UploadComplete", "JobComplete", "Aborted", "Failed"):
                return self._json(
                    400,
                    _error("INVALIDJOBSTATE", f"Cannot delete a job in state {job['state']}"),
                )
            with org.lock:
                del org.jobs[job["id"]]
            return self._send(204, b"", "")
        if not tail and method == "GET":
            self._advance(job)
            return self._json(200, self._job_info(job))
        if not tail and method == "PATCH":
            state = json.loads(body or b"{}").get("state")
            if state == "Aborted":
                job["state"] = "Aborted"
            elif state == "UploadComplete" and kind == "ingest" and job["state"] == "Open":
                job["state"] = "UploadComplete"
            else:
                return self._json(400, _error("INVALIDJOBSTATE", f"cannot set state {state}"))
            return self._json(200, self._job_info(job))
        if tail == ["batches"] and method == "PUT" and kind == "ingest":
            if job["state"] != "Open":
                return self._json(400, _error("INVALIDJOBSTATE", "Job is not open"))
            job["data"] += body  # a second upload adds its rows (the worst case)
            with org.lock:
                lost, org.lost_upload_answers = (
                    org.lost_upload_answers > 0,
                    max(0, org.lost_upload_answers - 1),
                )
            if lost:  # the rows are in, the 201 never reaches the client
                self.close_connection = True
                return None
            return self._send(201, b"", "text/plain")
        if tail == ["results"] and method == "GET" and kind == "query":
            if job["state"] != "JobComplete":
                # Salesforce documents 412 Precondition Failed here (not the body).
                return self._json(
                    412,
                    _error(
                        "INVALIDJOBSTATE",
                        f"Job is in state {job['state']}; results come after JobComplete",
                    ),
                )
            return self._results_page(job, params)
        if (
            kind == "ingest"
            and len(tail) == 1
            and method == "GET"
            and tail[0] in ("successfulResults", "failedResults", "unprocessedrecords")
        ):
            results = job.get("results", {})
            return self._send(
                200,
                results.get(tail[0], b"Id\n" if tail[0] == "unprocessedrecords" else b""),
                "text/csv",
            )
        self._json(404, _error("NOT_FOUND", "The requested resource does not exist"))

    def _list_jobs(self, kind: str, params: dict[str, str]) -> None:
        """``GET jobs/query`` / ``GET jobs/ingest``: every job of that kind, one page."""
        org = self.server.org
        with org.lock:
            jobs = [j for j in org.jobs.values() if j["kind"] == kind]
        for key in ("jobType", "concurrencyMode"):
            if params.get(key):
                jobs = [j for j in jobs if j.get(key) == params[key]]
        records = [self._job_info(j) for j in jobs]
        self._json(200, {"done": True, "records": records, "nextRecordsUrl": None})

    def _advance(self, job: dict[str, Any]) -> None:
        """Move a job on one poll: InProgress for a while, then its outcome."""
        org = self.server.org
        if job["state"] not in ("UploadComplete", "InProgress"):
            return
        job["polls"] += 1
        if job["polls"] <= org.polls_until_complete:
            job["state"] = "InProgress"
            return
        if "fail" in job:
            job.update(state="Failed", errorMessage=job["fail"])
            if job["kind"] == "ingest":
                job["results"] = {"unprocessedrecords": job["data"] or b"Id\n"}
            return
        if job["kind"] == "query":
            job["total"] = job["frame"].select(pl.len()).collect().item()
            job["numberRecordsProcessed"] = job["total"]
            job["state"] = "JobComplete"
        elif job["object"] in big_object_defs(org):
            process_big_object_insert(org, job)
        elif org.stalled and job["operation"] in ("update", "insert"):
            job["state"] = "InProgress"
        else:
            process_ingest(org, job)

    def _results_page(self, job: dict[str, Any], params: dict[str, str]) -> None:
        try:
            offset = (
                int(base64.urlsafe_b64decode(params["locator"]).decode())
                if params.get("locator")
                else 0
            )
            size = int(params.get("maxRecords") or 50_000)
        except (ValueError, KeyError):
            return self._json(400, _error("INVALIDLOCATOR", "invalid locator"))
        page = job["frame"].slice(offset, size).collect()
        end = offset + page.height
        locator = (
            "null" if end >= job["total"] else base64.urlsafe_b64encode(str(end).encode()).decode()
        )
        self._send(
            200,
            _csv(
                page,
                delimiter=job["columnDelimiter"],
                line_ending=job["lineEnding"],
                null_style=self.server.org.null_style,
            ),
            "text/csv",
            {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(page.height)},
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    org: FakeSalesforce


@dataclass
class RunningServer:
    """A started server: its org, its base URL and the CA file clients must trust."""

    org: FakeSalesforce
    base_url: str
    ca_path: Path
    _server: _Server

    def session(self) -> requests.Session:
        """A requests session that trusts the test CA and sends ``*.salesforce.com`` here."""
        return LoopbackSession(self.base_url, self.ca_path)


class LoopbackSession(requests.Session):
    """Sends login calls for ``https://<domain>.salesforce.com`` to the loopback server.

    simple-salesforce builds login URLs from the domain (``login``, ``test`` or a My Domain);
    this keeps the path and records the host asked for, so tests can check the domain used.
    """

    def __init__(self, base_url: str, ca_path: Path) -> None:
        super().__init__()
        self._base = base_url
        self.verify = str(ca_path)
        # REQUESTS_CA_BUNDLE (and proxies) from the environment would override the test CA.
        self.trust_env = False

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urllib.parse.urlsplit(url)
        if parts.hostname and parts.hostname.endswith("salesforce.com"):
            headers = dict(kwargs.pop("headers", None) or {})
            headers["X-Sfserver-Login-Host"] = parts.hostname
            kwargs["headers"] = headers
            url = self._base + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().request(method, url, *args, **kwargs)


@contextmanager
def serve(org: FakeSalesforce, workdir: Path) -> Iterator[RunningServer]:
    """Run ``org`` on 127.0.0.1 over TLS (a throwaway CA) until the block ends."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = Path(workdir) / "sfserver-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.org = org
    org.base_url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RunningServer(org, org.base_url, ca_path, server)
    finally:
        server.shutdown()
        server.server_close()


def load_local_org(path: Path) -> dict[str, pl.DataFrame]:
    """Every canonical table found in a local org folder."""
    return {
        name: pl.read_parquet(Path(path) / f"{name}.parquet")
        for name in schema.TABLES
        if (Path(path) / f"{name}.parquet").is_file()
    }


# --- big objects ------------------------------------------------------------------------------
#
# Modelled from Salesforce's Big Objects guide and SOQL reference ("SOQL with Big Objects"):
# an object defined by metadata (the files ierkit ships, read here as deployed); queries that
# filter on index fields from the first one without a gap, ``=`` or ``IN`` (``IN`` once) on
# any of them and a range only on the last one used; no ``!=``, ``LIKE`` or aggregates; results
# in index order. Bulk API 2.0 ``insert`` overwrites a record whose index values exist; a
# missing required (index) field fails the record ``REQUIRED_FIELD_MISSING``. No Bulk or SOQL
# delete: records go only through Apex ``Database.deleteImmediate()``, which ierkit never calls
# and which is not modelled. The exact text of Salesforce's refusal of a query that breaks the
# index rules is not documented; the code (``MALFORMED_QUERY``) and the rule named are.

_MD = "{http://soap.sforce.com/2006/04/metadata}"
_BIG_TYPES = {
    "Text": pl.String,
    "LongTextArea": pl.String,
    "Number": pl.Float64,
    "DateTime": pl.Datetime("us", "UTC"),
}


@dataclass
class BigObjectDef:
    """A deployed big object: its fields (type, length, required) and its index."""

    name: str
    fields: dict[str, dict[str, Any]]
    index: list[str]


def big_object_defs(org: FakeSalesforce) -> dict[str, BigObjectDef]:
    """The big objects deployed in ``org`` (empty until ``deploy_big_objects``)."""
    defs: dict[str, BigObjectDef] | None = getattr(org, "big_object_defs", None)
    if defs is None:
        defs = {}
        org.big_object_defs = defs  # type: ignore[attr-defined]
    return defs


def deploy_big_objects(org: FakeSalesforce) -> list[str]:
    """Deploy the big objects ierkit ships (its metadata files, parsed as Salesforce would)."""
    import xml.etree.ElementTree as ET

    from ierkit.metadata import packaged_files

    files = packaged_files(["big-objects"])
    parsed: dict[str, BigObjectDef] = {}
    for path, data in sorted(files.items()):
        parts = path.split("/")
        if parts[0] != "objects":
            continue
        name = parts[1]
        spec = parsed.setdefault(name, BigObjectDef(name, {}, []))
        root = ET.fromstring(data)
        if root.tag == f"{_MD}CustomField":
            spec.fields[root.findtext(f"{_MD}fullName") or ""] = {
                "type": root.findtext(f"{_MD}type"),
                "length": int(root.findtext(f"{_MD}length") or 0),
                "required": root.findtext(f"{_MD}required") == "true",
            }
        elif root.tag == f"{_MD}Index":
            spec.index = [f.findtext(f"{_MD}name") or "" for f in root.findall(f"{_MD}fields")]
    with org.lock:
        for name, spec in parsed.items():
            big_object_defs(org)[name] = spec
            columns = {
                "Id": pl.String,
                **{f: _BIG_TYPES[d["type"]] for f, d in spec.fields.items()},
            }
            described = [
                {
                    "name": f,
                    "label": f,
                    "type": {"Text": "string", "LongTextArea": "textarea", "Number": "double"}.get(
                        d["type"], "datetime"
                    ),
                    "nillable": not d["required"],
                    "custom": True,
                    "referenceTo": [],
                    "relationshipName": None,
                }
                for f, d in spec.fields.items()
            ]
            org.objects[name] = SObject(name, pl.DataFrame(schema=columns), described, "")
    return sorted(parsed)


def check_big_object_query(query: Soql, spec: BigObjectDef) -> None:
    """``SoqlError`` unless ``query`` keeps the big object's index rules."""

    def refuse(rule: str) -> None:
        raise SoqlError(
            "MALFORMED_QUERY",
            f"{spec.name}: {rule}. Filter on index fields in index order ({', '.join(spec.index)})"
            ", from the first one without a gap, with = or IN, and a range only on the last one",
        )

    index = [f.lower() for f in spec.index]
    used: list[str] = []
    ins = 0
    for name, op, _ in query.where:
        field = name.lower()
        if field not in index:
            refuse(f"{name} is not a field of the index")
        if op == "!=":
            refuse("!= is not valid in a big object query")
        if op == "IN":
            ins += 1
        if not used or used[-1] != field:
            if field in used:
                refuse(f"{name} is filtered twice, apart")
            used.append(field)
    if ins > 1:
        refuse("IN can be used only once")
    if used != index[: len(used)]:
        refuse(f"the filters leave a gap before {index[len(used) - 1] if used else ''}")
    for name, op, _ in query.where:
        if op in ("<", "<=", ">", ">=") and name.lower() != used[-1]:
            refuse(f"a range on {name} is allowed only on the last index field filtered")
    if query.order_by and query.order_by.lower() != index[0]:
        refuse("ORDER BY is allowed only in index order")


def big_object_sort(frame: pl.LazyFrame, spec: BigObjectDef) -> pl.LazyFrame:
    """Results as a big object returns them: in index order."""
    return frame.sort(spec.index, nulls_last=True)


def process_big_object_insert(org: FakeSalesforce, job: dict[str, Any]) -> None:
    """A Bulk API 2.0 ``insert`` into a big object: per-record checks, then overwrite by index."""
    spec = big_object_defs(org)[job["object"]]
    data = job["data"] or b""
    rows = (
        pl.read_csv(
            io.BytesIO(data), infer_schema=False, separator=DELIMITERS[job["columnDelimiter"]]
        )
        if data.strip()
        else pl.DataFrame()
    )
    unknown = [c for c in rows.columns if c not in spec.fields]
    if unknown:
        job.update(
            state="Failed",
            errorMessage=f"InvalidBatch : Field name not found : {unknown[0]}",
            results={"unprocessedrecords": data},
        )
        return
    rows = rows.with_columns(
        pl.lit(None, pl.String).alias(f) for f in spec.fields if f not in rows.columns
    )
    problems = []
    for name, about in spec.fields.items():
        value = pl.col(name)
        if about["required"]:
            problems.append(
                pl.when(value.is_null()).then(
                    pl.lit(
                        f"REQUIRED_FIELD_MISSING:Required fields are missing: [{name}]:{name} --"
                    )
                )
            )
        if about["type"] == "Text":
            problems.append(
                pl.when(value.str.len_chars() > about["length"]).then(
                    pl.lit(f"STRING_TOO_LONG:{name}: data value too large:{name} --")
                )
            )
        if about["type"] == "Number":
            problems.append(
                pl.when(value.is_not_null() & value.cast(pl.Float64, strict=False).is_null()).then(
                    pl.lit(f"INVALID_TYPE_ON_FIELD_IN_RECORD:{name}: value not of required type")
                )
            )
        if about["type"] == "DateTime":
            parsed = value.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_zone="UTC", strict=False)
            problems.append(
                pl.when(value.is_not_null() & parsed.is_null()).then(
                    pl.lit(f"INVALID_TYPE_ON_FIELD_IN_RECORD:{name}: value not of required type")
                )
            )
    checked = rows.with_columns(
        sf__Error=pl.coalesce(problems) if problems else pl.lit(None, pl.String)
    )
    good = checked.filter(pl.col("sf__Error").is_null()).drop("sf__Error")
    bad = checked.filter(pl.col("sf__Error").is_not_null())
    typed = good.select(
        pl.lit(None, pl.String).alias("Id"),
        *(
            pl.col(f).str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_zone="UTC", time_unit="us")
            if d["type"] == "DateTime"
            else pl.col(f).cast(_BIG_TYPES[d["type"]])
            for f, d in spec.fields.items()
        ),
    )
    # The last of several rows with the same index in one upload wins, as later writes do.
    typed = typed.unique(subset=spec.index, keep="last", maintain_order=True)
    with org.lock:
        obj = org.objects[job["object"]]
        kept = obj.records.join(
            typed.select(spec.index), on=spec.index, how="anti", nulls_equal=True
        )
        obj.records = pl.concat([kept, typed.select(obj.records.columns)])
    job["numberRecordsProcessed"] = rows.height
    job["numberRecordsFailed"] = bad.height
    fmt = {"delimiter": job["columnDelimiter"], "line_ending": job["lineEnding"]}
    success = good.select(
        pl.lit("000000000000000AAA").alias("sf__Id"),
        pl.lit("true").alias("sf__Created"),
        *good.columns,
    )
    failure = bad.select(pl.lit("").alias("sf__Id"), "sf__Error", *good.columns)
    job["results"] = {
        "successfulResults": _csv(success, **fmt),
        "failedResults": _csv(failure, **fmt),
        "unprocessedrecords": b"",
    }
    job["state"] = "JobComplete"
