"""Prerequisites check: does the org meet what Individual Email Results need?

IERs are written only when Marketing Cloud Connect's objects exist and the integration user can
read them, the send has individual tracking on, and the Subscriber Key is the 18-character
Contact or Lead Id; users see them only when the related list is on the Contact and Lead page
layouts. The write-back (``ierkit writeback``) needs its six fields on Contact and Lead, editable
by the user. ``check_prerequisites`` checks each of these against an org and says pass, fail or
cannot tell, with the fix in words.

Checks that need describe calls (objects, fields, page layouts) run on a Salesforce org only; on
a local org (the demo, a snapshot) they say "cannot tell". Checks on data run on either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Final

import polars as pl

from ierkit import clock, ids, reasons, schema
from ierkit.metadata import WRITEBACK_PERMISSION_SET
from ierkit.orgs.base import Org, OrgError

PASS: Final = "pass"
FAIL: Final = "fail"
CANNOT_TELL: Final = "cannot tell"

#: Columns of the frame ``check_prerequisites`` returns.
CHECK_SCHEMA: Final = pl.Schema(
    {"check": pl.String, "status": pl.String, "detail": pl.String, "fix": pl.String}
)

# The Marketing Cloud Connect objects the three prerequisites rest on.
_PACKAGE_TABLES: Final = (
    "individual_email_results",
    "individual_links",
    "email_sends",
    "triggered_sends",
)
# IER fields that only package versions from 2023 on have: missing is not a failure.
_OPTIONAL_IER_COLUMNS: Final = frozenset({"job_id", "batch_id", "list_id", "subscriber_id"})

Row = tuple[str, str, str, str]


def _row(check: str, status: str, detail: str, fix: str = "") -> Row:
    return (check, status, detail, fix)


def _cannot_describe(name: str) -> Row:
    """The row of a check that needs describe calls, on an org that cannot make them."""
    return _row(
        name,
        CANNOT_TELL,
        "needs describe calls: run against a Salesforce org",
        "Run `ierkit check --source salesforce`.",
    )


def _check_objects(org: Org) -> Row:
    name = "Marketing Cloud Connect objects readable"
    if not org.can_describe:
        return _cannot_describe(name)
    missing = [schema.table(t).sobject for t in _PACKAGE_TABLES if not org.has_table(t)]
    if missing:
        return _row(
            name,
            FAIL,
            "not visible to this user: " + ", ".join(missing),
            "Install Marketing Cloud Connect, and give the integration user read access to "
            "its objects (the package's permission set, or Read on each object).",
        )
    return _row(
        name,
        PASS,
        "all four objects exist and can be queried: "
        + ", ".join(schema.table(t).sobject for t in _PACKAGE_TABLES),
    )


def _check_fields(org: Org) -> Row:
    name = "IER fields readable"
    if not org.can_describe:
        return _cannot_describe(name)
    spec = schema.INDIVIDUAL_EMAIL_RESULTS
    if not org.has_table(spec.name):
        return _row(
            name, CANNOT_TELL, f"{spec.sobject} is not visible", "Fix the object check first."
        )
    missing = [
        c.api_name
        for c in spec.stored_columns
        if c.api_name and not org.has_field(spec.sobject, c.api_name)
    ]
    optional_names = {spec.column(n).api_name for n in _OPTIONAL_IER_COLUMNS}
    required = [name for name in missing if name not in optional_names]
    optional = [name for name in missing if name in optional_names]
    if required:
        return _row(
            name,
            FAIL,
            "cannot read: " + ", ".join(required),
            "Give the integration user field-level Read access to these fields.",
        )
    detail = f"all {len(spec.stored_columns)} fields ierkit reads are readable"
    if optional:
        detail = (
            "readable, except fields older package versions lack (they will be null): "
            + ", ".join(optional)
        )
    return _row(
        name, PASS, detail, "Upgrade Marketing Cloud Connect to get them." if optional else ""
    )


def _check_layouts(org: Org, sobject: str) -> Row:
    name = f"IER related list on {sobject} page layouts"
    if not org.can_describe:
        return _cannot_describe(name)
    ier = schema.INDIVIDUAL_EMAIL_RESULTS.sobject
    try:
        described = org.describe_layouts(sobject)
    except OrgError as error:
        return _row(
            name,
            CANNOT_TELL,
            f"describe layouts failed: {error}",
            "Give the integration user 'View Setup and Configuration'.",
        )
    layouts = (described or {}).get("layouts") or []
    if not layouts:
        return _row(
            name,
            CANNOT_TELL,
            "no layouts returned (several record types?)",
            "Check each record type's page layout in Setup.",
        )
    without = [
        str(layout.get("id"))
        for layout in layouts
        if not any(r.get("sobject") == ier for r in layout.get("relatedLists") or [])
    ]
    if without:
        return _row(
            name,
            FAIL,
            f"{len(without)} of {len(layouts)} layouts lack it: " + ", ".join(without),
            f"Setup > Object Manager > {sobject} > Page Layouts: drag 'Individual Email Results' "
            "into Related Lists on each layout.",
        )
    return _row(name, PASS, f"on all {len(layouts)} layouts")


#: The fix when the write-back fields are missing or not editable.
WRITEBACK_FIX: Final = (
    "Deploy the fields with `ierkit metadata --out DIR` then `sf project deploy start` in DIR, "
    "and assign the permission set {permset} to the integration user."
)


def _check_writeback_fields(org: Org, spec: schema.Table) -> Row:
    """Whether the six engagement summary fields exist on ``spec``'s object and can be written."""
    name = f"write-back fields on {spec.sobject}"
    fields = [c.sf_field for c in spec.columns if c.name.startswith("engagement_")]
    exists = {f: org.has_field(spec.sobject, f) for f in fields}
    writable = {f: org.field_writable(spec.sobject, f) for f in fields}
    fix = WRITEBACK_FIX.format(permset=WRITEBACK_PERMISSION_SET)
    missing = [f for f in fields if exists[f] is False]
    if missing:
        return _row(name, FAIL, "missing: " + ", ".join(missing), fix)
    locked = [f for f in fields if writable[f] is False]
    if locked:
        return _row(name, FAIL, "this user cannot edit: " + ", ".join(locked), fix)
    if all(writable[f] for f in fields):  # writable implies the field exists
        return _row(name, PASS, f"all {len(fields)} exist and can be written")
    if all(exists.values()):
        return _row(
            name, CANNOT_TELL, "the fields exist; whether this user can edit them is not known", fix
        )
    return _cannot_describe(name)


def _recent_iers(org: Org, since: dt.datetime) -> pl.LazyFrame:
    table_since: Callable[..., pl.LazyFrame] | None = getattr(org, "table_since", None)
    if table_since is not None:
        # A Salesforce org pulls only the recent rows (a SOQL filter), not ten million IERs.
        return table_since("individual_email_results", "date_sent", since)
    return org.table("individual_email_results").filter(pl.col("date_sent") >= since)


def _check_tracking(org: Org, as_of: dt.datetime, since: dt.datetime, days: int) -> Row:
    name = "individual tracking on recent sends"
    if not org.has_table("email_sends"):
        return _row(name, CANNOT_TELL, "no email sends table", "")
    sends = (
        org.table("email_sends")
        .filter(pl.col("date_sent").is_between(since, as_of))
        .select("email_name", "date_sent", "individual_tracking_disabled")
        .sort("date_sent", "email_name")
        .collect()
    )
    if sends.height == 0:
        return _row(
            name,
            CANNOT_TELL,
            f"no sends in the {days} days before {as_of:%Y-%m-%d}",
            "Run the check after the next send.",
        )
    off = sends.filter(pl.col("individual_tracking_disabled").fill_null(False))
    if off.height:
        names = ", ".join(off.get_column("email_name").fill_null("(no name)").head(5).to_list())
        return _row(
            name,
            FAIL,
            f"{off.height} of {sends.height} recent sends had it off: {names}",
            reasons.FIX[reasons.TRACKING_OFF],
        )
    return _row(name, PASS, f"on for all {sends.height} sends in the last {days} days")


def _check_arriving(org: Org, as_of: dt.datetime, since: dt.datetime, days: int) -> Row:
    name = "IERs arriving for recent sends"
    if not (org.has_table("email_sends") and org.has_table("individual_email_results")):
        return _row(name, CANNOT_TELL, "needs the email sends and IER tables", "")
    sends = (
        org.table("email_sends")
        .filter(
            pl.col("date_sent").is_between(since, as_of - clock.SYNC_GRACE),
            ~pl.col("individual_tracking_disabled").fill_null(False),
        )
        .select("id", "email_name", "date_sent", "number_sent")
    )
    per_send = (
        _recent_iers(org, since)
        .group_by("email_send_id")
        .agg(iers=pl.len(), latest=pl.col("tracking_as_of").max())
    )
    joined = (
        sends.join(per_send, left_on="id", right_on="email_send_id", how="left")
        .with_columns(pl.col("iers").fill_null(0))
        .sort("date_sent", "email_name")
        .collect()
    )
    if joined.height == 0:
        return _row(
            name,
            CANNOT_TELL,
            f"no tracked sends between {days} days and {clock.SYNC_GRACE} "
            f"before {as_of:%Y-%m-%d %H:%M} UTC",
            "Run the check after the next tracked send.",
        )
    empty = joined.filter(pl.col("iers") == 0)
    newest = joined.get_column("latest").max()
    latest = newest if isinstance(newest, dt.datetime) else None
    sent = joined.get_column("number_sent").sum()
    share = f"{joined.get_column('iers').sum():,} IERs for {sent:,} sent" if sent else ""
    if empty.height:
        names = ", ".join(empty.get_column("email_name").fill_null("(no name)").head(5).to_list())
        return _row(
            name,
            FAIL,
            f"{empty.height} of {joined.height} tracked sends older than {clock.SYNC_GRACE} "
            f"have no IERs: {names}",
            "Check the Marketing Cloud Connect tracking settings (Individual Tracking on, "
            "frequency) and that the audience came from Salesforce; see sync_health.",
        )
    return _row(
        name,
        PASS,
        f"all {joined.height} tracked sends have IERs ({share}); "
        f"latest update {latest:%Y-%m-%d %H:%M} UTC"
        if latest
        else f"all {joined.height} tracked sends have IERs",
    )


def _check_keys(org: Org, events: pl.LazyFrame | None) -> Row:
    name = "Subscriber Keys are 18-character Contact or Lead Ids"
    if events is None:
        return _row(
            name,
            CANNOT_TELL,
            "no tracking extract given",
            "Pass a recent tracking extract (`ierkit check --extract FILE.zip`).",
        )
    kinds = (
        events.filter(pl.col("event_type").cast(pl.String) == "Sent")
        .select(pl.col("subscriber_key"))
        .with_columns(kind=ids.classify_subscriber_key_expr("subscriber_key"))
    )
    known: list[pl.LazyFrame] = [
        org.table(t).select("id") for t in ("contacts", "leads") if org.has_table(t)
    ]
    if known:
        # An 18-character Id of no Contact or Lead in the org is a key that matches nothing.
        people = pl.concat(known).unique()
        kinds = kinds.join(
            people, left_on="subscriber_key", right_on="id", how="left", coalesce=False
        ).with_columns(
            kind=pl.when((pl.col("kind") == ids.KEY_CONTACT_OR_LEAD_ID) & pl.col("id").is_null())
            .then(pl.lit(reasons.UNKNOWN_ID))
            .otherwise(pl.col("kind"))
        )
    counts = kinds.group_by("kind").agg(n=pl.len()).sort("kind").collect()
    total = int(counts.get_column("n").sum())
    if total == 0:
        return _row(
            name, CANNOT_TELL, "the extract has no Sent rows", "Extract a period with sends."
        )
    good = int(counts.filter(pl.col("kind") == ids.KEY_CONTACT_OR_LEAD_ID).get_column("n").sum())
    if good == total:
        return _row(
            name, PASS, f"all {total:,} sent rows" + (" match a Contact or Lead" if known else "")
        )
    bad = counts.filter(pl.col("kind") != ids.KEY_CONTACT_OR_LEAD_ID)
    detail = ", ".join(f"{k}: {n:,}" for k, n in bad.iter_rows())  # a handful of kinds
    fixes = {
        ids.KEY_EMAIL: reasons.FIX[reasons.EMAIL_KEY],
        ids.KEY_ID15: reasons.FIX[reasons.ID15_KEY],
        reasons.UNKNOWN_ID: reasons.FIX[reasons.UNKNOWN_ID],
        ids.KEY_BLANK: "Blank keys: subscribers deleted in Marketing Cloud.",
        ids.KEY_OTHER: "Use the 18-character Contact or Lead Id as Subscriber Key.",
    }
    fix = " ".join(fixes[k] for k in bad.get_column("kind").to_list() if k in fixes)
    return _row(name, FAIL, f"{total - good:,} of {total:,} sent rows are not: {detail}", fix)


def check_prerequisites(
    org: Org,
    *,
    events: pl.LazyFrame | None = None,
    as_of: dt.datetime | None = None,
    days: int = 30,
) -> pl.DataFrame:
    """Check what Individual Email Results need, against an org (and a tracking extract).

    Args:
        org: A Salesforce org (every check) or a local org (describe checks say "cannot tell").
        events: Tracking events in ``ierkit.extract.EVENT_SCHEMA`` (``extract.read_extract``);
            the Subscriber Key check says "cannot tell" without them.
        as_of: The moment to judge "recent" from (UTC). Default: now for a Salesforce org; the
            latest change to a send or IER in a local org, which is frozen when it was pulled.
        days: How far back "recent sends" go.

    Returns:
        One row per check, in a fixed order: ``check``, ``status`` (``pass``, ``fail``,
        ``cannot tell``), ``detail`` and ``fix`` (what to do, in words; empty on a pass).
    """
    when = clock.to_utc(as_of or org.data_as_of())
    since = when - dt.timedelta(days=days)
    rows = [
        _check_objects(org),
        _check_fields(org),
        _check_layouts(org, "Contact"),
        _check_layouts(org, "Lead"),
        _check_tracking(org, when, since, days),
        _check_arriving(org, when, since, days),
        _check_keys(org, events),
        _check_writeback_fields(org, schema.CONTACTS),
        _check_writeback_fields(org, schema.LEADS),
    ]
    return pl.DataFrame(rows, schema=CHECK_SCHEMA, orient="row")
