import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from ierkit import schema

REQUIRED_IER_COLUMNS = [
    "id",
    "contact_id",
    "lead_id",
    "email_send_id",
    "triggered_send_id",
    "job_id",
    "batch_id",
    "subscriber_key",
    "date_sent",
    "opened",
    "date_opened",
    "open_count",
    "last_opened",
    "total_clicks",
    "unique_clicks",
    "hard_bounce",
    "soft_bounce",
    "date_bounced",
    "unsubscribed",
    "date_unsubscribed",
    "tracking_as_of",
    "created_date",
]
REQUIRED_LINK_COLUMNS = [
    "id",
    "individual_email_result_id",
    "job_id",
    "batch_id",
    "subscriber_key",
    "link_url",
    "link_name",
    "total_clicks",
    "last_clicked",
]


def test_ier_and_link_tables_carry_the_required_columns() -> None:
    assert set(REQUIRED_IER_COLUMNS) <= set(schema.INDIVIDUAL_EMAIL_RESULTS.column_names)
    assert set(REQUIRED_LINK_COLUMNS) <= set(schema.INDIVIDUAL_LINKS.column_names)


def test_columns_salesforce_does_not_store_have_no_api_name() -> None:
    ier = schema.INDIVIDUAL_EMAIL_RESULTS
    for name in ("subscriber_key", "open_count", "last_opened"):
        assert ier.column(name).api_name is None
    assert ier.column("job_id").api_name == "et4ae5__JobId__c"
    assert ier.sobject == "et4ae5__IndividualEmailResult__c"
    assert schema.EMAIL_SENDS.sobject == "et4ae5__SendDefinition__c"
    assert schema.TRIGGERED_SENDS.sobject == "et4ae5__Automated_Send__c"


def test_every_table_is_known_and_has_an_id() -> None:
    assert set(schema.TABLES) == {
        "users",
        "contacts",
        "leads",
        "campaigns",
        "campaign_members",
        "email_sends",
        "triggered_sends",
        "individual_email_results",
        "individual_links",
        "tasks",
    }
    for spec in schema.TABLES.values():
        assert spec.column_names[0] == "id"
        assert len(set(spec.column_names)) == len(spec.column_names)
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in spec.column_names)


def test_no_other_module_spells_a_package_api_name() -> None:
    package = Path(schema.__file__).parent
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "schema.py" and "et4ae5__" in path.read_text()
    ]
    assert offenders == []


def _users(**overrides: object) -> pl.DataFrame:
    data = {
        "id": ["005000000000001AAA", "005000000000002AAA"],
        "name": ["Ann", "Bo"],
        "email": ["ann@example.com", None],
        "is_active": [True, False],
        "created_date": [dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2)],
        "system_modstamp": [None, None],
    }
    data.update(overrides)
    return pl.DataFrame(data)


def test_validate_casts_orders_and_drops_extra_columns() -> None:
    frame = _users().select(reversed(_users().columns)).with_columns(extra=pl.lit(1))
    result = schema.validate("users", frame)
    assert result.columns == schema.USERS.column_names
    assert result.schema["created_date"] == pl.Datetime("us", "UTC")
    assert result.schema["system_modstamp"] == pl.Datetime("us", "UTC")  # was all-null
    # Naive datetimes are read as UTC, not shifted.
    assert result["created_date"][0] == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_validate_converts_other_time_zones_to_utc() -> None:
    stamp = pl.Series([dt.datetime(2026, 1, 1, 6)]).dt.replace_time_zone("America/Chicago")
    frame = _users(created_date=stamp.extend(stamp))
    result = schema.validate("users", frame)
    assert result["created_date"][0] == dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


def test_validate_lists_every_problem_in_one_error() -> None:
    frame = (
        _users()
        .drop("name", "email")
        .with_columns(is_active=pl.lit("yes"), created_date=pl.lit("2026-01-01"))
    )
    with pytest.raises(schema.SchemaError) as caught:
        schema.validate("users", frame)
    message = str(caught.value)
    assert message.startswith("users: ")
    for part in (
        "missing column 'name'",
        "missing column 'email'",
        "column 'is_active' is String, expected Boolean",
        "column 'created_date' is String",
    ):
        assert part in message


def test_validate_lazy_frame_stays_lazy() -> None:
    result = schema.validate("users", _users().lazy())
    assert isinstance(result, pl.LazyFrame)
    assert result.collect_schema() == schema.USERS.polars_schema


def test_validate_rejects_null_and_duplicate_ids() -> None:
    with pytest.raises(schema.SchemaError, match=r"'id' is null in 1 rows \(rows 1\)"):
        schema.validate("users", _users(id=["005000000000001AAA", None]))
    with pytest.raises(schema.SchemaError, match="1 duplicated ids"):
        schema.validate("users", _users(id=["005000000000001AAA"] * 2))


def test_unknown_table_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known tables: users"):
        schema.validate("contcats", _users())


def test_integer_overflow_is_an_error_not_a_wrap() -> None:
    iers = schema.INDIVIDUAL_EMAIL_RESULTS.empty().to_dict(as_series=False)
    frame = pl.DataFrame(iers, schema=schema.INDIVIDUAL_EMAIL_RESULTS.polars_schema).with_columns(
        pl.col("total_clicks").cast(pl.Int64)
    )
    frame = pl.concat(
        [
            frame,
            frame.clear(1).with_columns(
                id=pl.lit("a0R000000000001AAA"), total_clicks=pl.lit(2**40)
            ),
        ]
    )
    with pytest.raises(pl.exceptions.InvalidOperationError):
        schema.validate("individual_email_results", frame)


def test_conform_orders_casts_and_fills_absent_columns_with_typed_nulls() -> None:
    frame = pl.LazyFrame({"extra": [1], "total_clicks": [3], "id": ["a0L1"]})
    conformed = schema.conform("individual_links", frame, keep=["extra"]).collect()
    spec = schema.table("individual_links")
    assert conformed.columns == [*spec.column_names, "extra"]
    assert conformed.schema["total_clicks"] == spec.polars_schema["total_clicks"]
    assert conformed.row(0, named=True)["link_url"] is None
    assert conformed.schema["link_url"] == pl.String


def test_columns_added_later_read_as_null_from_older_tables() -> None:
    # A snapshot taken before users had ManagerId and TimeZoneSidKey still reads.
    older = _users().drop("manager_id", "time_zone", strict=False)
    result = schema.validate("users", older)
    assert result["manager_id"].to_list() == [None, None]
    assert result.schema["time_zone"] == pl.String
    with pytest.raises(schema.SchemaError, match="missing column 'email'"):
        schema.validate("users", older.drop("email"))
