"""The canonical tables of ierkit: column names, polars types and Salesforce API names.

This is the only module that spells a Salesforce API name (``et4ae5__...``). Every other module
works with the snake_case column names defined here, whatever the data came from: a local org
(Parquet), a Salesforce org, or Marketing Cloud tracking extracts aggregated into IERs.

Times are UTC everywhere inside ierkit (``Datetime("us", "UTC")``).

A column whose ``api_name`` is None is not stored by Salesforce: it is null when the table came
from an org, and filled when ierkit built the table itself (from a tracking extract or the demo).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import polars as pl

from ierkit.errors import IerkitError

UTC_DATETIME = pl.Datetime("us", "UTC")

# Salesforce Ids and other text keys.
ID = pl.String
# Marketing Cloud numeric keys (JobID/SendID, BatchID, ListID, SubscriberID).
MC_KEY = pl.Int64
# Number(6,0) fields.
COUNT = pl.Int32

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


class SchemaError(IerkitError, ValueError):
    """A frame does not match a canonical table; the message lists every problem found."""


@dataclass(frozen=True)
class Column:
    """One canonical column.

    Attributes:
        name: Canonical snake_case name.
        dtype: Polars type the column has after validation.
        api_name: Salesforce field API name (a relationship path such as ``Account.Name`` for
            fields read through a lookup), or None where Salesforce does not store the value.
        description: What the column means, in a few words.
        nullable: False for columns that must be filled on every row (the record Id).
        optional: A column added after tables were first written: a frame without it (a
            snapshot taken before) reads it as all null instead of failing.
    """

    name: str
    dtype: pl.DataType
    api_name: str | None
    description: str = ""
    nullable: bool = True
    optional: bool = False

    @property
    def sf_field(self) -> str:
        """The Salesforce field API name of a stored column.

        Raises:
            ValueError: For a column Salesforce does not store (``api_name`` is None).
        """
        if self.api_name is None:
            raise ValueError(
                f"column {self.name!r} is computed by ierkit, not stored in Salesforce"
            )
        return self.api_name


@dataclass(frozen=True)
class Table:
    """One canonical table and the Salesforce object it comes from."""

    name: str
    sobject: str
    columns: tuple[Column, ...]
    description: str = ""
    _by_name: Mapping[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    @property
    def column_names(self) -> list[str]:
        """Canonical column names in canonical order."""
        return [c.name for c in self.columns]

    @property
    def polars_schema(self) -> pl.Schema:
        """The polars schema of the validated table."""
        return pl.Schema({c.name: c.dtype for c in self.columns})

    @property
    def stored_columns(self) -> list[Column]:
        """Columns that Salesforce stores (those with an API name)."""
        return [c for c in self.columns if c.api_name is not None]

    def column(self, name: str) -> Column:
        """The column called ``name``; KeyError naming the table when there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"table {self.name!r} has no column {name!r}") from None

    def empty(self) -> pl.DataFrame:
        """An empty frame with this table's schema."""
        return pl.DataFrame(schema=self.polars_schema)


def _c(
    name: str,
    dtype: pl.DataType | type[pl.DataType],
    api_name: str | None,
    description: str = "",
    *,
    nullable: bool = True,
    optional: bool = False,
) -> Column:
    # polars accepts a type class (pl.String) where it means the type: store the instance.
    instance = dtype if isinstance(dtype, pl.DataType) else dtype()
    return Column(name, instance, api_name, description, nullable, optional)


def _id(description: str = "Salesforce record Id (18 characters)") -> Column:
    return _c("id", ID, "Id", description, nullable=False)


_AUDIT = (
    _c("created_date", UTC_DATETIME, "CreatedDate", "when the record was created"),
    _c("system_modstamp", UTC_DATETIME, "SystemModstamp", "last change, for incremental pulls"),
)

_SEND_TOTALS = (
    _c("number_sent", pl.Int64, "et4ae5__NumberSent__c", "recipients sent"),
    _c("number_hard_bounces", pl.Int64, "et4ae5__NumberofHardBounces__c", "hard bounces"),
    _c("number_soft_bounces", pl.Int64, "et4ae5__NumberofSoftBounces__c", "soft bounces"),
    _c("number_unique_opens", pl.Int64, "et4ae5__NumberofUniqueOpens__c", "unique opens"),
    _c("number_unique_clicks", pl.Int64, "et4ae5__NumberofUniqueClicks__c", "unique clicks"),
    _c("number_unsubscribed", pl.Int64, "et4ae5__NumberUnsubscribed__c", "unsubscribes"),
)

# The engagement summary ierkit writes back onto Contacts and Leads (``ierkit writeback``), so
# the signal outlives the IERs a cleanup deletes. Custom fields shipped by ``ierkit metadata``;
# optional: an org or snapshot without them reads them as null.
_ENGAGEMENT_SUMMARY = (
    _c(
        "engagement_last_open",
        UTC_DATETIME,
        "Ierkit_Last_Email_Open__c",
        "last email open (machine opens excluded)",
        optional=True,
    ),
    _c(
        "engagement_last_human_click",
        UTC_DATETIME,
        "Ierkit_Last_Human_Click__c",
        "last click not flagged as automated",
        optional=True,
    ),
    _c(
        "engagement_human_clicks_90d",
        COUNT,
        "Ierkit_Human_Clicks_90d__c",
        "human clicks in the 90 days before the summary",
        optional=True,
    ),
    _c(
        "engagement_score",
        pl.Float64,
        "Ierkit_Engagement_Score__c",
        "ierkit's engagement score (Number(8,2))",
        optional=True,
    ),
    _c(
        "engagement_last_link",
        pl.String,
        "Ierkit_Last_Link_Clicked__c",
        "name of the last link clicked by a person",
        optional=True,
    ),
    _c(
        "engagement_summary_as_of",
        UTC_DATETIME,
        "Ierkit_Engagement_As_Of__c",
        "the instant the summary describes",
        optional=True,
    ),
)

USERS = Table(
    "users",
    "User",
    (
        _id(),
        _c("name", pl.String, "Name"),
        _c("email", pl.String, "Email"),
        _c("is_active", pl.Boolean, "IsActive"),
        _c(
            "manager_id",
            pl.String,
            "ManagerId",
            "the user's manager: gets the team roll-up",
            optional=True,
        ),
        _c(
            "time_zone",
            pl.String,
            "TimeZoneSidKey",
            "IANA zone (America/New_York): times in the user's email",
            optional=True,
        ),
        *_AUDIT,
    ),
    "Record owners: the reps a worklist goes to.",
)

CONTACTS = Table(
    "contacts",
    "Contact",
    (
        _id(),
        _c("first_name", pl.String, "FirstName"),
        _c("last_name", pl.String, "LastName"),
        _c("email", pl.String, "Email"),
        _c("company", pl.String, "Account.Name", "account name"),
        _c("industry", pl.String, "Account.Industry", "segment: the account's industry"),
        _c(
            "lifecycle_stage",
            pl.String,
            "Lifecycle_Stage__c",
            "segment: lifecycle stage (a custom field; null in orgs that lack it)",
        ),
        _c("lead_source", pl.String, "LeadSource"),
        _c("owner_id", ID, "OwnerId", "owning user"),
        *_ENGAGEMENT_SUMMARY,
        *_AUDIT,
    ),
)

LEADS = Table(
    "leads",
    "Lead",
    (
        _id(),
        _c("first_name", pl.String, "FirstName"),
        _c("last_name", pl.String, "LastName"),
        _c("email", pl.String, "Email"),
        _c("company", pl.String, "Company"),
        _c("industry", pl.String, "Industry", "segment: industry"),
        _c(
            "lifecycle_stage",
            pl.String,
            "Lifecycle_Stage__c",
            "segment: lifecycle stage (a custom field; null in orgs that lack it)",
        ),
        _c("lead_source", pl.String, "LeadSource"),
        _c("status", pl.String, "Status"),
        _c("owner_id", ID, "OwnerId", "owning user (or queue)"),
        _c("is_converted", pl.Boolean, "IsConverted"),
        _c("converted_contact_id", ID, "ConvertedContactId", "contact the lead became"),
        _c("converted_date", pl.Date, "ConvertedDate"),
        *_ENGAGEMENT_SUMMARY,
        *_AUDIT,
    ),
)

CAMPAIGNS = Table(
    "campaigns",
    "Campaign",
    (
        _id(),
        _c("name", pl.String, "Name"),
        _c("type", pl.String, "Type"),
        _c("status", pl.String, "Status"),
        _c("start_date", pl.Date, "StartDate"),
        _c("owner_id", ID, "OwnerId"),
        *_AUDIT,
    ),
)

CAMPAIGN_MEMBERS = Table(
    "campaign_members",
    "CampaignMember",
    (
        _id(),
        _c("campaign_id", ID, "CampaignId"),
        _c("contact_id", ID, "ContactId"),
        _c("lead_id", ID, "LeadId"),
        _c("status", pl.String, "Status"),
        *_AUDIT,
    ),
)

EMAIL_SENDS = Table(
    "email_sends",
    "et4ae5__SendDefinition__c",
    (
        _id(),
        _c("name", pl.String, "Name", "auto-number"),
        _c("job_id", MC_KEY, "et4ae5__JobId__c", "Marketing Cloud JobID (SendID)"),
        _c("campaign_id", ID, "et4ae5__Campaign__c"),
        _c("date_sent", UTC_DATETIME, "et4ae5__DateSent__c"),
        _c("email_name", pl.String, "et4ae5__EmailName__c"),
        _c("subject_line", pl.String, "et4ae5__SubjectLine__c"),
        _c("send_status", pl.String, "et4ae5__SendStatus__c", "Completed, Sending, ..."),
        _c(
            "individual_tracking_disabled",
            pl.Boolean,
            "et4ae5__Individual_Tracking_Disabled__c",
            "per-send switch: no IERs when true",
        ),
        _c(
            "dedupe_subscribers",
            pl.Boolean,
            "et4ae5__DedupeSubscribers__c",
            "on by default: of recipients sharing an email address only the first is sent to",
        ),
        _c("tracking_as_of", UTC_DATETIME, "et4ae5__Tracking_As_Of__c"),
        *_SEND_TOTALS,
        *_AUDIT,
    ),
    "Email Sends: one per list send from Marketing Cloud Connect.",
)

TRIGGERED_SENDS = Table(
    "triggered_sends",
    "et4ae5__Automated_Send__c",
    (
        _id(),
        _c("name", pl.String, "Name"),
        _c(
            "individual_tracking_disabled",
            pl.Boolean,
            "et4ae5__Individual_Tracking_Disabled__c",
            "per-send switch: no IERs when true",
        ),
        # The package's Triggered Send has no Tracking_As_Of__c (unlike Email Send): null from an
        # org, kept so triggered and list sends share a shape.
        _c("tracking_as_of", UTC_DATETIME, None, "not stored on Triggered Send"),
        *_SEND_TOTALS,
        *_AUDIT,
    ),
    "Triggered Sends (Automated Sends): one per triggered send definition, many batches.",
)

INDIVIDUAL_EMAIL_RESULTS = Table(
    "individual_email_results",
    "et4ae5__IndividualEmailResult__c",
    (
        _id(),
        _c("name", pl.String, "Name", "email name"),
        _c("contact_id", ID, "et4ae5__Contact__c"),
        _c("lead_id", ID, "et4ae5__Lead__c"),
        _c("email_send_id", ID, "et4ae5__SendDefinition__c"),
        _c("triggered_send_id", ID, "et4ae5__TriggeredSendDefinition__c"),
        _c("campaign_member_id", ID, "et4ae5__CampaignMemberId__c", "text, not a lookup"),
        _c("merge_id", pl.String, "et4ae5__MergeId__c"),
        _c("job_id", MC_KEY, "et4ae5__JobId__c", "absent before the 2023 package"),
        _c("batch_id", MC_KEY, "et4ae5__BatchId__c", "absent before the 2023 package"),
        _c("list_id", MC_KEY, "et4ae5__ListId__c", "absent before the 2023 package"),
        _c("subscriber_id", MC_KEY, "et4ae5__SubscriberId__c", "absent before the 2023 package"),
        _c("subscriber_key", pl.String, None, "Marketing Cloud Subscriber Key"),
        _c("from_name", pl.String, "et4ae5__FromName__c"),
        _c("from_address", pl.String, "et4ae5__FromAddress__c"),
        _c("subject_line", pl.String, "et4ae5__SubjectLine__c"),
        _c("date_sent", UTC_DATETIME, "et4ae5__DateSent__c"),
        _c("opened", pl.Boolean, "et4ae5__Opened__c"),
        _c("date_opened", UTC_DATETIME, "et4ae5__DateOpened__c"),
        _c("open_count", COUNT, None, "opens, from tracking extracts only"),
        _c("last_opened", UTC_DATETIME, None, "last open, from tracking extracts only"),
        _c("total_clicks", COUNT, "et4ae5__NumberOfTotalClicks__c", "all clicks"),
        _c("unique_clicks", COUNT, "et4ae5__NumberOfUniqueClicks__c", "links clicked"),
        _c("clicked", pl.Boolean, "et4ae5__Clicked__c", "formula: unique_clicks > 0"),
        _c("hard_bounce", pl.Boolean, "et4ae5__HardBounce__c"),
        _c("soft_bounce", pl.Boolean, "et4ae5__SoftBounce__c"),
        _c("date_bounced", UTC_DATETIME, "et4ae5__DateBounced__c"),
        _c("unsubscribed", pl.Boolean, None, "derived: date_unsubscribed is set"),
        _c("date_unsubscribed", UTC_DATETIME, "et4ae5__DateUnsubscribed__c"),
        _c("tracking_as_of", UTC_DATETIME, "et4ae5__Tracking_As_Of__c"),
        *_AUDIT,
    ),
    "Individual Email Results: one per recipient per send.",
)

INDIVIDUAL_LINKS = Table(
    "individual_links",
    "et4ae5__IndividualLink__c",
    (
        _id(),
        _c("individual_email_result_id", ID, "et4ae5__Individual_Email_Result__c", "SetNull"),
        _c("job_id", MC_KEY, "et4ae5__Individual_Email_Result__r.et4ae5__JobId__c"),
        _c("batch_id", MC_KEY, "et4ae5__Individual_Email_Result__r.et4ae5__BatchId__c"),
        _c("subscriber_key", pl.String, None, "Marketing Cloud Subscriber Key"),
        _c("link_url", pl.String, "et4ae5__LinkURL__c"),
        _c("link_name", pl.String, "Name"),
        _c("total_clicks", COUNT, "et4ae5__NumberOfTotalClicks__c"),
        _c("last_clicked", UTC_DATETIME, "et4ae5__Last_Clicked__c"),
        _c("exact_target_link_id", pl.String, "et4ae5__ExactTargetLinkID__c"),
        _c("unique_link_id", pl.String, "et4ae5__Unique_Link_ID__c", "unique external id"),
        *_AUDIT,
    ),
    "Individual Link Level Details: one per IER per link clicked.",
)

TASKS = Table(
    "tasks",
    "Task",
    (
        _id(),
        _c("who_id", ID, "WhoId", "the Contact or Lead"),
        _c("what_id", ID, "WhatId"),
        _c("owner_id", ID, "OwnerId"),
        _c("subject", pl.String, "Subject"),
        _c("status", pl.String, "Status"),
        _c("type", pl.String, "Type"),
        _c("activity_date", pl.Date, "ActivityDate"),
        *_AUDIT,
    ),
    "Tasks: the follow-ups reps logged.",
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        USERS,
        CONTACTS,
        LEADS,
        CAMPAIGNS,
        CAMPAIGN_MEMBERS,
        EMAIL_SENDS,
        TRIGGERED_SENDS,
        INDIVIDUAL_EMAIL_RESULTS,
        INDIVIDUAL_LINKS,
        TASKS,
    )
}


def table(name: str) -> Table:
    """The canonical table called ``name``.

    Raises:
        KeyError: With the list of known tables when ``name`` is not one of them.
    """
    try:
        return TABLES[name]
    except KeyError:
        known = ", ".join(TABLES)
        raise KeyError(f"unknown table {name!r}; known tables: {known}") from None


def _castable(source: pl.DataType, target: pl.DataType) -> bool:
    """Whether ``source`` may be cast to ``target`` without reinterpreting the values."""
    if source == target or source == pl.Null:
        return True
    if target.is_integer():
        return source.is_integer()
    if target.is_float():
        return source.is_numeric()
    if isinstance(target, pl.Datetime):
        return isinstance(source, pl.Datetime)
    if target == pl.Date:
        return source == pl.Date
    if target == pl.String:
        return source in (pl.String, pl.Categorical, pl.Enum) or isinstance(
            source, pl.Categorical | pl.Enum
        )
    return False


def _cast_expr(column: Column, source: pl.DataType) -> pl.Expr:
    expr = pl.col(column.name)
    if source == column.dtype:
        # No cast at all: a filter on the column then reaches the Parquet scan (row groups
        # skipped by their statistics) instead of running after every row is decoded.
        return expr
    if isinstance(column.dtype, pl.Datetime) and isinstance(source, pl.Datetime):
        if source.time_zone is None:
            # A naive timestamp inside ierkit is UTC by convention.
            expr = expr.dt.replace_time_zone("UTC")
        return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    return expr.cast(column.dtype, strict=True)


def conform(table_name: str, frame: FrameT, *, keep: Sequence[str] = ()) -> FrameT:
    """The canonical columns of ``table_name``, in order and cast, the ones ``frame`` lacks as
    typed nulls, then the ``keep`` columns.

    Unlike ``validate`` nothing is checked: this is for frames the package builds itself.
    """
    present = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    columns = [
        pl.col(column.name).cast(column.dtype)
        if column.name in present
        else pl.lit(None, column.dtype).alias(column.name)
        for column in table(table_name).columns
    ]
    return frame.select(*columns, *keep)


def validate(table_name: str, frame: FrameT) -> FrameT:
    """Cast ``frame`` to the canonical schema of ``table_name`` and check it.

    Columns are matched by name and returned in canonical order; columns the table does not
    define are dropped. Safe casts are made (integer widths, datetime units and zones, naive
    datetimes read as UTC, all-null columns); anything else is reported. For an eager frame, the
    Id column is also checked for nulls and duplicates.

    Args:
        table_name: One of the canonical table names (see ``TABLES``).
        frame: A DataFrame or LazyFrame. A LazyFrame stays lazy: value errors (an integer that
            overflows) surface when it is collected.

    Returns:
        The frame, cast, with exactly the canonical columns.

    Raises:
        SchemaError: Listing every missing and every mistyped column at once.
        KeyError: When ``table_name`` is not a canonical table.
    """
    spec = table(table_name)
    actual = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    problems: list[str] = []
    exprs: list[pl.Expr] = []
    for column in spec.columns:
        if column.name not in actual:
            if column.optional:
                exprs.append(pl.lit(None, column.dtype).alias(column.name))
                continue
            problems.append(f"missing column {column.name!r} ({column.dtype})")
            continue
        source = actual[column.name]
        if not _castable(source, column.dtype):
            problems.append(f"column {column.name!r} is {source}, expected {column.dtype}")
            continue
        exprs.append(_cast_expr(column, source))
    if problems:
        raise SchemaError(f"{table_name}: " + "; ".join(problems))
    result = frame.select(exprs)
    if isinstance(result, pl.DataFrame):
        _check_ids(table_name, result)
    return result


def _check_ids(table_name: str, frame: pl.DataFrame) -> None:
    problems: list[str] = []
    for column in table(table_name).columns:
        if column.nullable:
            continue
        null_rows = frame.select(pl.col(column.name).is_null().arg_true()).to_series()
        if len(null_rows):
            rows = ", ".join(str(r) for r in null_rows.head(5).to_list())
            problems.append(
                f"column {column.name!r} is null in {len(null_rows)} rows (rows {rows})"
            )
    duplicated = frame.filter(pl.col("id").is_duplicated()).get_column("id").unique().sort()
    if len(duplicated):
        ids = ", ".join(duplicated.head(5).to_list())
        problems.append(f"{len(duplicated)} duplicated ids (e.g. {ids})")
    if problems:
        raise SchemaError(f"{table_name}: " + "; ".join(problems))
