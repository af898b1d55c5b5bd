"""Reading Bulk API 2.0 CSV as Salesforce writes it (ierkit/orgs/_sf_csv.py), over HTTPS.

Every read goes through simple-salesforce to the Salesforce-like server (tests/sfserver.py),
which quotes every value and writes a null as ``""`` (or, switched, as a bare empty field).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from ierkit import schema
from ierkit.errors import IerkitError
from ierkit.orgs import OrgError
from ierkit.orgs._sf_adapter import ColumnDelimiter, LineEnding
from ierkit.orgs._sf_csv import DELIMITERS, LINE_ENDINGS, BulkCsv, FieldValueError, parse
from tests.sfserver import NULL_STYLES, RunningServer, serve
from tests.test_salesforce import (
    IER,
    T0,
    canonical,
    connect,
    fake,
    jwt_env,
    sfid,
    small_org,
    sorted_frame,
)

READ_TABLES = ("contacts", "email_sends", "individual_email_results", "individual_links")


@pytest.fixture(params=NULL_STYLES)
def server(
    request: pytest.FixtureRequest, tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> Iterator[RunningServer]:
    with serve(fake(small_org(), rsa_key, null_style=request.param), tmp_path) as running:
        yield running


@pytest.mark.parametrize(
    ("text", "dtype", "want"),
    [
        (["", "x", None], pl.String, [None, "x", None]),
        (["", "true", "FALSE", None], pl.Boolean, [None, True, False, None]),
        (["", "3", "3.0", None], pl.Int32, [None, 3, 3, None]),
        (["", "2.5"], pl.Float64, [None, 2.5]),
        (["", "2026-10-01"], pl.Date, [None, dt.date(2026, 10, 1)]),
        (
            ["", "2026-10-01T09:00:00.000Z", "2026-10-01T04:00:00.000-0500"],
            schema.UTC_DATETIME,
            [None, T0, T0],
        ),
    ],
)
def test_empty_is_null_for_every_type(text: list, dtype: pl.DataType, want: list) -> None:
    frame = pl.DataFrame({"v": text}, schema={"v": pl.String})
    got = frame.select(parse(pl.col("v"), dtype)).to_series().to_list()
    assert got == want


def test_every_delimiter_and_line_ending_reads_the_same(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    want = small_org()
    for delimiter, line_ending in itertools.product(DELIMITERS, LINE_ENDINGS):
        fmt = BulkCsv(delimiter, line_ending)
        org = connect(server, jwt_env(rsa_key), bulk_csv=fmt, page_records=100)
        for name in READ_TABLES:
            got = sorted_frame(schema.validate(name, org.table(name)))
            assert got.equals(sorted_frame(want[name])), (delimiter, line_ending, name)
        # Each Bulk job asked for the format, and the server wrote it.
        jobs = [j for j in server.org.jobs.values() if j["kind"] == "query"][-3:]
        assert {(j["columnDelimiter"], j["lineEnding"]) for j in jobs} == {(delimiter, line_ending)}
    assert len([j for j in server.org.jobs.values() if j["kind"] == "query"]) == 12 * 3


@pytest.mark.parametrize(
    ("delimiter", "line_ending"), [("PIPE", "CRLF"), ("TAB", "LF"), ("BACKQUOTE", "CRLF")]
)
def test_raw_bulk_csv_is_written_as_salesforce_documents(
    server: RunningServer, rsa_key: tuple[Path, bytes], delimiter: str, line_ending: str
) -> None:
    """simple-salesforce's public ``sf.bulk2.<Object>.query`` sees Salesforce's format."""
    sf = connect(server, jwt_env(rsa_key))._client()
    pages = list(
        sf.bulk2.Contact.query(
            "SELECT Id, LastName, Account.Name FROM Contact ORDER BY LastName LIMIT 2",
            column_delimiter=ColumnDelimiter(delimiter),
            line_ending=LineEnding(line_ending),
            wait=0,
        )
    )
    sep, end = DELIMITERS[delimiter], LINE_ENDINGS[line_ending]
    # Name0 has no company (null), Name1 works at Acme.
    null = '""' if server.org.null_style == "quoted" else ""
    assert pages == [
        sep.join(['"Id"', '"LastName"', '"Account.Name"'])
        + end
        + sep.join([f'"{sfid("003", 0)}"', '"Name0"', null])
        + end
        + sep.join([f'"{sfid("003", 1)}"', '"Name1"', '"Acme"'])
        + end
    ]


def test_quoted_nulls_read_as_null_not_empty_text(
    tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> None:
    """The failure the issue found: ``""`` for a number (ListId) broke every IER read."""
    with serve(fake(small_org(), rsa_key, null_style="quoted"), tmp_path) as running:
        org = connect(running, jwt_env(rsa_key))
        iers = org.table("individual_email_results").collect()
        contacts = org.table("contacts").collect()
    assert iers.get_column("list_id").null_count() == 250
    assert iers.get_column("date_opened").null_count() == 250 - 84
    assert contacts.get_column("company").null_count() == 10
    assert "" not in contacts.get_column("company").to_list()


# --- values that do not read ----------------------------------------------------------------


def _poison(running: RunningServer, sobject: str, field: str, record_id: str, value: str) -> None:
    """Make one record's field hold text a Salesforce field of another type never would."""
    obj = running.org.objects[sobject]
    column = pl.col(field)
    text = (
        column.dt.strftime("%Y-%m-%dT%H:%M:%S.%3fZ")
        if obj.records.schema[field].is_temporal()
        else column.cast(pl.String)
    )
    obj.records = obj.records.with_columns(
        pl.when(pl.col("Id") == record_id).then(pl.lit(value)).otherwise(text).alias(field)
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("et4ae5__NumberOfTotalClicks__c", "12 clicks"),
        ("et4ae5__NumberOfUniqueClicks__c", "2.5"),
        ("et4ae5__Opened__c", "maybe"),
        ("et4ae5__DateOpened__c", "31/12/2026 10:00"),
        ("et4ae5__ListId__c", "L-17"),
    ],
)
def test_an_unreadable_bulk_value_names_object_field_record_and_value(
    server: RunningServer, rsa_key: tuple[Path, bytes], field: str, value: str
) -> None:
    record = sfid("a0R", 117)
    _poison(server, IER.sobject, field, record, value)
    org = connect(server, jwt_env(rsa_key), page_records=100)
    with pytest.raises(FieldValueError) as raised:
        org.table("individual_email_results")
    message = str(raised.value)
    assert message.startswith(f"{IER.sobject}.{field} (record {record}): value {value!r}")
    assert isinstance(raised.value, OrgError) and isinstance(raised.value, IerkitError)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_an_unreadable_rest_value_is_the_same_error(
    tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> None:
    sends = canonical(
        "email_sends",
        {
            "id": [sfid("a0S", 1), sfid("a0S", 2)],
            "number_sent": [10, 20],
            "system_modstamp": [T0] * 2,
        },
    )
    with serve(fake({"email_sends": sends}, rsa_key), tmp_path) as running:
        field = schema.EMAIL_SENDS.column("number_sent").sf_field
        _poison(running, schema.EMAIL_SENDS.sobject, field, sfid("a0S", 2), "lots")
        org = connect(running, jwt_env(rsa_key))
        with pytest.raises(FieldValueError, match=rf"\.{field} \(record {sfid('a0S', 2)}\): "):
            org.table("email_sends")


def test_bulk_csv_format_is_checked() -> None:
    with pytest.raises(ValueError, match="delimiter 'SPACE' is not one of COMMA, TAB"):
        BulkCsv("SPACE")
    with pytest.raises(ValueError, match="line ending 'CR'"):
        BulkCsv(line_ending="CR")
