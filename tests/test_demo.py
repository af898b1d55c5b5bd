"""Tests of ierkit/demo/: the demo org, its ground truth and its tracking extract."""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import importlib.util
import io
import json
import zipfile
from pathlib import Path

import polars as pl
import pytest

from ierkit import cli, demo, reasons, schema
from ierkit.demo import _cache as demo_cache
from ierkit.ids import classify_subscriber_key_expr, is_valid_id, to_18
from ierkit.orgs import LocalOrg
from tests.conftest import SMALL_DEMO_SCALE

# Documented Tracking Extract columns (domain.md), in order.
EVENT = [
    "ClientID",
    "SendID",
    "SubscriberKey",
    "EmailAddress",
    "SubscriberID",
    "ListID",
    "EventDate",
    "EventType",
    "BatchID",
    "TriggeredSendExternalKey",
]
EXTRACT_COLUMNS = {
    "SendJobs.csv": [
        "ClientID",
        "SendID",
        "FromName",
        "FromEmail",
        "SchedTime",
        "SentTime",
        "Subject",
        "EmailName",
        "TriggeredSendExternalKey",
        "SendDefinitionExternalKey",
        "JobStatus",
        "PreviewURL",
        "IsMultipart",
        "Additional",
    ],
    "Sent.csv": EVENT,
    "Opens.csv": EVENT,
    "Clicks.csv": [*EVENT, "SendURLID", "URLID", "URL", "Alias"],
    "Bounces.csv": [*EVENT, "BounceCategory", "SMTPCode", "BounceReason"],
    "Unsubs.csv": EVENT,
}
EXTRACT_TYPES = {"SendID": pl.Int64, "SubscriberID": pl.Int64, "BatchID": pl.Int64}
MC_FORMAT = "%m/%d/%Y %I:%M:%S %p"
EVENT_TYPES = {
    "Sent.csv": "Sent",
    "Opens.csv": "Open",
    "Clicks.csv": "Click",
    "Bounces.csv": "Bounce",
    "Unsubs.csv": "Unsub",
}

ID_PREFIXES = {
    "users": {"id": "005"},
    "contacts": {"id": "003", "owner_id": "005"},
    "leads": {"id": "00Q", "owner_id": "005", "converted_contact_id": "003"},
    "campaigns": {"id": "701", "owner_id": "005"},
    "campaign_members": {"id": "00v", "campaign_id": "701", "contact_id": "003", "lead_id": "00Q"},
    "email_sends": {"id": "a0S", "campaign_id": "701"},
    "triggered_sends": {"id": "a0T"},
    "individual_email_results": {
        "id": "a0R",
        "contact_id": "003",
        "lead_id": "00Q",
        "email_send_id": "a0S",
        "triggered_send_id": "a0T",
        "campaign_member_id": "00v",
    },
    "individual_links": {"id": "a0L", "individual_email_result_id": "a0R"},
    "tasks": {"id": "00T", "owner_id": "005"},
}


def read_extract(path: Path, name: str) -> pl.DataFrame:
    """One extract file from the zip, every column as text except the numeric keys."""
    with zipfile.ZipFile(path / "tracking_extract.zip") as archive:
        data = archive.read(name)
    header = data.split(b"\n", 1)[0].decode().split(",")
    overrides = {c: EXTRACT_TYPES.get(c, pl.String) for c in header}
    return pl.read_csv(io.BytesIO(data), schema_overrides=overrides, infer_schema=False)


def utc_from_mc(column: str) -> pl.Expr:
    """Marketing Cloud EventDate text (CST, UTC-6) to UTC."""
    return (
        pl.col(column)
        .str.to_datetime(MC_FORMAT, strict=True)
        .dt.replace_time_zone("Etc/GMT+6")
        .dt.convert_time_zone("UTC")
        .dt.cast_time_unit("us")
    )


@pytest.fixture(scope="module")
def org(small_demo_path: Path) -> LocalOrg:
    return LocalOrg(small_demo_path)


@pytest.fixture(scope="module")
def truth(small_demo_path: Path) -> pl.DataFrame:
    return pl.read_parquet(small_demo_path / "ground_truth.parquet")


@pytest.fixture(scope="module")
def tables(org: LocalOrg) -> dict[str, pl.DataFrame]:
    return {name: org.table(name).collect() for name in schema.TABLES}


def send_job(tables: dict[str, pl.DataFrame], programme: str) -> pl.DataFrame:
    sends = tables["email_sends"]
    return sends.filter(pl.col("email_name").str.starts_with(programme + " - "))


# --- determinism and the output folder ------------------------------------------------------


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(
    tmp_path: Path, small_demo_path: Path
) -> None:
    again = demo.generate(tmp_path / "again", scale=SMALL_DEMO_SCALE)
    other = demo.generate(tmp_path / "other", scale=SMALL_DEMO_SCALE, seed=7)
    a, b, c = digests(small_demo_path), digests(again.path), digests(other.path)
    assert set(a) == {
        *(f"{name}.parquet" for name in schema.TABLES),
        "ground_truth.parquet",
        "signal_truth.parquet",
        "tracking_extract.zip",
        "demo.json",
    }
    assert {name for name in a if a[name] != b[name]} == set()
    for name in ("tracking_extract.zip", "individual_email_results.parquet", "contacts.parquet"):
        assert a[name] != c[name], name


def test_extract_in_utf16_and_pipes_aggregates_like_the_default(tmp_path: Path) -> None:
    from ierkit import aggregate

    default = demo.generate(tmp_path / "default", scale=0.02).path
    shaped = tmp_path / "utf16"
    command = ["demo", "--out", str(shaped), "--scale", "0.02", "--extract-encoding", "utf-16"]
    assert cli.main([*command, "--extract-delimiter", "|"]) == 0
    semicolon = demo.generate(
        tmp_path / "semicolon", scale=0.02, extract_format=demo.ExtractFormat("utf-8", ";")
    ).path
    a, b = digests(default), digests(shaped)
    # Only the extract differs; everything else is byte for byte the default demo.
    assert {n for n in a if a[n] != b[n]} == {"tracking_extract.zip"}
    with zipfile.ZipFile(shaped / "tracking_extract.zip") as archive:
        sent = archive.read("Sent.csv")
    assert sent.startswith(b"\xff\xfe") and sent.decode("utf-16").startswith("ClientID|SendID|")
    results = []
    for folder in (default, shaped, semicolon):
        out = tmp_path / f"out-{folder.name}"
        aggregate.aggregate_extracts([folder / "tracking_extract.zip"], out)
        results.append(
            [
                pl.read_parquet(out / f"{name}.parquet")
                for name in (aggregate.IER_TABLE, aggregate.LINK_TABLE)
            ]
        )
    assert results[0][0].height > 1_000 and results[0][1].height > 100
    for other in results[1:]:
        assert other[0].equals(results[0][0]) and other[1].equals(results[0][1])
    # The link ids of the extract (SendURLID) reach the link details.
    assert results[0][1].get_column("exact_target_link_id").null_count() == 0


def test_generate_refuses_foreign_folder_and_replaces_previous_demo(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(demo.DemoError, match="refusing to overwrite"):
        demo.generate(foreign, scale=0.02)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temporary folder left behind

    out = tmp_path / "demo"
    demo.generate(out, scale=0.02, seed=1)
    first = json.loads((out / "demo.json").read_text())
    demo.generate(out, scale=0.02, seed=2)
    assert json.loads((out / "demo.json").read_text())["seed"] == 2 != first["seed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "mine"]


def test_cli_demo_prints_summary_and_refuses_foreign_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli-demo"
    assert cli.main(["demo", "--out", str(out), "--scale", "0.02", "--as-of", "2026-06-30"]) == 0
    printed = capsys.readouterr().out
    assert "individual_email_results" in printed and "email_key" in printed
    assert json.loads((out / "demo.json").read_text())["as_of"] == "2026-06-30"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.csv").write_text("a\n")
    assert cli.main(["demo", "--out", str(tmp_path / "other"), "--scale", "0.02"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_ensure_demo_caches_by_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IERKIT_CACHE_DIR", str(tmp_path))
    path = demo.ensure_demo(scale=0.02)
    assert path.parent == tmp_path and path.name == f"demo-{demo.fingerprint(scale=0.02)}"
    stamp = (path / "demo.json").stat().st_mtime_ns
    assert demo.ensure_demo(scale=0.02) == path
    assert (path / "demo.json").stat().st_mtime_ns == stamp  # served from the cache
    assert demo.fingerprint(scale=0.02) != demo.fingerprint(scale=0.02, seed=1)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("demo-")] == [path.name]


def test_as_of_instant_is_noon_utc() -> None:
    assert demo.as_of_instant(dt.date(2026, 11, 20)) == dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def _ierkit_imports(path: Path) -> set[str]:
    """The ierkit modules a source file imports (at the top or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ierkit"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "ierkit":
                continue
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                try:
                    is_module = importlib.util.find_spec(candidate) is not None
                except ModuleNotFoundError:  # a name inside a module, not a submodule
                    is_module = False
                found.add(candidate if is_module else node.module)
    return found


def test_fingerprint_covers_every_ierkit_module_the_demo_imports() -> None:
    package = Path(demo.__file__).parent
    seen: set[str] = set()
    todo = [p for p in package.glob("*.py")]
    while todo:
        for name in _ierkit_imports(todo.pop()):
            if name in seen or name == "ierkit" or name.startswith("ierkit.demo"):
                continue
            seen.add(name)
            origin = importlib.util.find_spec(name).origin  # type: ignore[union-attr]
            todo.append(Path(origin))
    assert "ierkit.orgs" not in seen  # orgs imports the demo: that would be a cycle
    assert seen == set(demo_cache.DEPENDENCIES)
    hashed = {p.resolve() for p in demo_cache.source_files()}
    assert {p.resolve() for p in package.glob("*.py")} <= hashed
    for name in demo_cache.DEPENDENCIES:
        assert Path(importlib.util.find_spec(name).origin).resolve() in hashed  # type: ignore[union-attr, arg-type]


# --- tables ----------------------------------------------------------------------------------


def test_every_table_validates_and_ids_are_valid_with_prefixes(
    tables: dict[str, pl.DataFrame],
) -> None:
    for name, frame in tables.items():
        assert frame.height > 0, name
        schema.validate(name, frame)  # eager: also checks null and duplicated Ids
        for column, prefix in ID_PREFIXES[name].items():
            values = frame.get_column(column).drop_nulls()
            assert values.len() > 0 or column in ("converted_contact_id",), (name, column)
            assert values.str.len_chars().eq(18).all(), (name, column)
            assert values.str.starts_with(prefix).all(), (name, column)
            assert all(is_valid_id(v) for v in values.unique().to_list()), (name, column)


def test_shape_users_campaigns_and_programmes(tables: dict[str, pl.DataFrame]) -> None:
    users = tables["users"]
    assert users.height == 27
    assert {"Marketing Ops", "MC Connect Integration"} <= set(users["name"])
    assert tables["campaigns"].height == 20
    programmes = set(
        tables["email_sends"]["email_name"].str.split(" - ").list.first().unique().to_list()
    )
    assert programmes == {
        "Monthly Newsletter",
        "Product Nurture",
        "Sales Outreach",
        "Journey Onboarding",
        "Event Invite",
        "Webinar Follow-up",
        "Product Announcement",
    }
    assert tables["contacts"]["industry"].n_unique() == 8
    assert set(tables["contacts"]["lifecycle_stage"]) <= {
        "Subscriber",
        "Lead",
        "MQL",
        "SQL",
        "Opportunity",
        "Customer",
    }
    campaign_types = dict(zip(tables["campaigns"]["id"], tables["campaigns"]["type"], strict=True))
    newsletter = send_job(tables, "Monthly Newsletter")
    assert newsletter.height == 6
    assert {campaign_types[c] for c in newsletter["campaign_id"]} == {"Newsletter"}
    outreach = send_job(tables, "Sales Outreach")
    assert {campaign_types[c] for c in outreach["campaign_id"]} == {"Sales Outreach"}
    owners = tables["campaigns"].filter(pl.col("type") == "Sales Outreach")["owner_id"]
    assert owners.n_unique() > 1 and set(owners) <= set(users["id"].head(25))


def test_iers_look_as_in_salesforce(tables: dict[str, pl.DataFrame]) -> None:
    iers = tables["individual_email_results"]
    assert (
        iers.select(pl.col("subscriber_key", "open_count", "last_opened").null_count()).row(0)
        == (iers.height,) * 3
    )
    assert iers["job_id"].null_count() == 0 and iers["batch_id"].null_count() == 0
    # Exactly one of the two send lookups is set.
    assert (iers["email_send_id"].is_null() ^ iers["triggered_send_id"].is_null()).all()
    assert (iers["contact_id"].is_null() ^ iers["lead_id"].is_null()).all()
    assert (iers["clicked"] == (iers["unique_clicks"] > 0)).all()
    assert (iers["created_date"] >= iers["date_sent"]).all()
    assert (iers["tracking_as_of"] >= iers["created_date"]).all()
    # Link URLs on example.com, with pricing links.
    links = tables["individual_links"]
    assert links["link_url"].str.starts_with("https://www.example.com/").all()
    assert (links["link_url"] == "https://www.example.com/pricing").any()
    per_ier = links.group_by("individual_email_result_id").agg(
        pl.col("total_clicks").sum().alias("links_total"), pl.len().alias("links")
    )
    joined = iers.join(per_ier, left_on="id", right_on="individual_email_result_id", how="inner")
    assert joined.height == iers.filter(pl.col("clicked")).height
    assert (joined["links_total"] == joined["total_clicks"]).all()
    assert (joined["links"] == joined["unique_clicks"]).all()


def test_sync_delay_follows_hourly_cycles_with_a_throughput(
    small_demo_path: Path, tables: dict[str, pl.DataFrame]
) -> None:
    manifest = json.loads((small_demo_path / "demo.json").read_text())
    throughput = manifest["sync"]["throughput_per_cycle"]
    iers = tables["individual_email_results"]
    cycles = iers.select(
        cycle=pl.col("created_date").dt.truncate("1h") + pl.duration(minutes=15)
    ).with_columns(
        pl.when(pl.col("cycle") > iers["created_date"])
        .then(pl.col("cycle") - pl.duration(hours=1))
        .otherwise(pl.col("cycle"))
    )
    per_cycle = cycles.group_by("cycle").len()
    assert per_cycle["len"].max() == throughput  # big sends fill whole cycles
    assert iers.select((pl.col("created_date") - pl.col("date_sent")).max()).item() > dt.timedelta(
        hours=2
    )


def test_welcome_email_is_one_triggered_send_in_daily_batches(
    tables: dict[str, pl.DataFrame],
) -> None:
    triggered = tables["triggered_sends"]
    assert triggered.height == 1
    welcome = tables["individual_email_results"].filter(pl.col("triggered_send_id").is_not_null())
    assert welcome["email_send_id"].null_count() == welcome.height
    assert welcome["job_id"].n_unique() == 1
    assert welcome["batch_id"].n_unique() > 50 and welcome["batch_id"].min() > 0
    assert triggered["number_sent"].item() >= welcome.height


def test_sales_outreach_iers_carry_campaign_members(tables: dict[str, pl.DataFrame]) -> None:
    iers = tables["individual_email_results"]
    outreach = iers.filter(pl.col("name").str.starts_with("Sales Outreach - "))
    assert outreach.height > 0 and outreach["campaign_member_id"].null_count() == 0
    members = tables["campaign_members"]
    assert outreach["campaign_member_id"].is_in(members["id"].implode()).all()
    assert (
        iers.filter(~pl.col("name").str.starts_with("Sales Outreach - "))[
            "campaign_member_id"
        ].null_count()
        == iers.height - outreach.height
    )
    sizes = send_job(tables, "Sales Outreach")["number_sent"]
    assert sizes.len() >= 40  # about two a week for six months


def test_follow_up_tasks_come_after_engagement(tables: dict[str, pl.DataFrame]) -> None:
    tasks = tables["tasks"].filter(pl.col("subject").str.starts_with("Follow up: "))
    assert tasks.height > 0
    iers = tables["individual_email_results"].with_columns(who=pl.coalesce("contact_id", "lead_id"))
    joined = tasks.with_columns(name=pl.col("subject").str.strip_prefix("Follow up: ")).join(
        iers.filter(pl.col("opened")), left_on=["who_id", "name"], right_on=["who", "name"]
    )
    assert joined.select(pl.col("id").n_unique()).item() == tasks.height
    engaged_before = joined.group_by("id").agg(
        (pl.col("date_opened") < pl.col("created_date")).any().alias("after")
    )
    assert engaged_before["after"].all()
    # Owners follow up their own records.
    people = pl.concat(
        [tables["contacts"].select("id", "owner_id"), tables["leads"].select("id", "owner_id")]
    )
    owned = tasks.join(people, left_on="who_id", right_on="id", suffix="_record")
    assert owned.height == tasks.height and (owned["owner_id"] == owned["owner_id_record"]).all()
    # Sales reps follow up far more often than newsletter readers get a call.
    rate = {}
    for programme in ("Sales Outreach", "Monthly Newsletter"):
        engaged = iers.filter(pl.col("name").str.starts_with(programme) & pl.col("opened")).height
        done = tasks.filter(pl.col("subject").str.starts_with(f"Follow up: {programme}")).height
        rate[programme] = done / engaged
    assert rate["Sales Outreach"] > 0.4 and rate["Monthly Newsletter"] < 0.03


# --- ground truth -------------------------------------------------------------------------


def test_ground_truth_schema_and_ier_ids_match_the_ier_table(
    truth: pl.DataFrame, tables: dict[str, pl.DataFrame]
) -> None:
    assert truth.schema == demo.GROUND_TRUTH_SCHEMA
    assert set(truth["reason"].unique()) == set(reasons.ALL) - {reasons.UNEXPLAINED}
    assert (truth["has_ier"] == truth["ier_id"].is_not_null()).all()
    iers = tables["individual_email_results"]
    assert truth.filter("has_ier")["ier_id"].sort().equals(iers["id"].sort(), check_names=False)
    assert (
        truth.select(
            pl.struct("job_id", "batch_id", "recipient_id", "email").is_duplicated().any()
        ).item()
        is False
    )


def test_key_failures_have_no_ier_and_the_key_says_why(
    truth: pl.DataFrame, tables: dict[str, pl.DataFrame]
) -> None:
    iers = tables["individual_email_results"]
    contacts = tables["contacts"]["id"]
    kinds = truth.with_columns(kind=classify_subscriber_key_expr("subscriber_key"))
    email = kinds.filter(pl.col("reason") == reasons.EMAIL_KEY)
    assert email.height > 0 and not email["has_ier"].any()
    assert (email["kind"] == "email").all() and (email["subscriber_key"] == email["email"]).all()
    assert email["recipient_id"].is_in(contacts.implode()).all()
    id15 = kinds.filter(pl.col("reason") == reasons.ID15_KEY)
    assert id15.height > 0 and not id15["has_ier"].any() and (id15["kind"] == "id15").all()
    assert [to_18(k) for k in id15["subscriber_key"]] == id15["recipient_id"].to_list()
    unknown = kinds.filter(pl.col("reason") == reasons.UNKNOWN_ID)
    assert unknown.height > 0 and not unknown["has_ier"].any()
    assert (unknown["kind"] == "contact_or_lead_id").all()
    assert not unknown["subscriber_key"].is_in(contacts.implode()).any()
    # None of these recipients has an IER for those sends.
    missing = pl.concat([email, id15, unknown]).select("job_id", "recipient_id")
    iers_by_person = iers.select("job_id", recipient_id=pl.coalesce("contact_id", "lead_id"))
    assert missing.join(iers_by_person, on=["job_id", "recipient_id"]).height == 0


def test_tracking_off_send_has_a_send_row_and_no_iers(
    truth: pl.DataFrame, tables: dict[str, pl.DataFrame]
) -> None:
    send = send_job(tables, "Webinar Follow-up")
    assert send.height == 1 and send["individual_tracking_disabled"].item() is True
    job = send["job_id"].item()
    # Dedupe Subscribers applies with tracking off too: those recipients were never sent to.
    rows = truth.filter((pl.col("job_id") == job) & (pl.col("reason") != reasons.DEDUPLICATED))
    assert rows.height == send["number_sent"].item() > 0
    assert (rows["reason"] == reasons.TRACKING_OFF).all() and not rows["has_ier"].any()
    assert tables["individual_email_results"].filter(pl.col("job_id") == job).height == 0
    assert (truth["reason"] == reasons.TRACKING_OFF).sum() == rows.height


def test_csv_audience_send_is_only_in_the_extract(
    small_demo_path: Path, truth: pl.DataFrame, tables: dict[str, pl.DataFrame]
) -> None:
    jobs = read_extract(small_demo_path, "SendJobs.csv")
    partner = jobs.filter(pl.col("EmailName").str.starts_with("Partner Update - "))
    assert partner.height == 1
    job = partner["SendID"].item()
    assert job not in tables["email_sends"]["job_id"].to_list()
    assert tables["individual_email_results"].filter(pl.col("job_id") == job).height == 0
    rows = truth.filter(pl.col("job_id") == job)
    assert (rows["reason"] == reasons.NOT_SALESFORCE_AUDIENCE).all()
    assert rows["recipient_id"].null_count() == rows.height
    assert (rows["subscriber_key"] == rows["email"]).all()
    people = pl.concat([tables["contacts"]["email"], tables["leads"]["email"]])
    assert not rows["email"].is_in(people.implode()).any()
    sent = read_extract(small_demo_path, "Sent.csv").filter(pl.col("SendID") == job)
    assert sent.height == rows.height


def test_in_sync_window_send_has_fewer_iers_than_sent_rows(
    small_demo_path: Path, truth: pl.DataFrame, tables: dict[str, pl.DataFrame]
) -> None:
    send = send_job(tables, "Product Announcement")
    assert send.height == 1 and send["send_status"].item() == "Sending"
    as_of = demo.as_of_instant(demo.DEMO_AS_OF)
    assert as_of - dt.timedelta(hours=4) < send["date_sent"].item() < as_of - dt.timedelta(hours=2)
    job = send["job_id"].item()
    iers = tables["individual_email_results"].filter(pl.col("job_id") == job).height
    sent = read_extract(small_demo_path, "Sent.csv").filter(pl.col("SendID") == job).height
    waiting = truth.filter((pl.col("job_id") == job) & (pl.col("reason") == reasons.IN_SYNC_WINDOW))
    assert 0 < iers < sent and waiting.height > 0 and not waiting["has_ier"].any()
    assert iers + waiting.height <= sent
    assert truth.filter(pl.col("reason") == reasons.IN_SYNC_WINDOW)["job_id"].n_unique() == 1


def test_converted_leads_keep_their_iers(
    truth: pl.DataFrame, tables: dict[str, pl.DataFrame]
) -> None:
    converted = truth.filter(pl.col("reason") == reasons.LEAD_CONVERTED)
    assert converted.height > 0 and converted["has_ier"].all()
    assert converted["recipient_id"].str.starts_with("00Q").all()
    leads = tables["leads"].filter(pl.col("id").is_in(converted["recipient_id"].implode()))
    assert leads["is_converted"].all()
    assert leads["converted_contact_id"].is_in(tables["contacts"]["id"].implode()).all()
    iers = tables["individual_email_results"].filter(
        pl.col("id").is_in(converted["ier_id"].implode())
    )
    assert iers.height == converted.height
    pairs = converted.select("ier_id", "recipient_id").sort("ier_id")
    assert iers.select("id", "lead_id").sort("id").rows() == pairs.rows()
    assert iers["contact_id"].null_count() == iers.height
    # Converted before as-of, after their last send as a lead.
    last_sent = iers.group_by("lead_id").agg(pl.col("date_sent").max())
    dates = last_sent.join(leads, left_on="lead_id", right_on="id")
    assert (dates["converted_date"] >= dates["date_sent"].dt.date()).all()
    share = tables["leads"]["is_converted"].mean()
    assert 0.01 <= share <= 0.05


def test_deleted_in_marketing_cloud_rows(
    small_demo_path: Path, truth: pl.DataFrame, tables: dict[str, pl.DataFrame]
) -> None:
    deleted = truth.filter(pl.col("reason") == reasons.DELETED_IN_MARKETING_CLOUD)
    assert deleted.height > 0 and deleted["has_ier"].all()
    assert deleted["subscriber_key"].null_count() == deleted.height
    iers = tables["individual_email_results"].filter(
        pl.col("id").is_in(deleted["ier_id"].implode())
    )
    assert iers.height == deleted.height
    subscribers = iers.select("job_id", SubscriberID="subscriber_id")
    sent = read_extract(small_demo_path, "Sent.csv")
    assert (
        sent.join(
            subscribers, left_on=["SendID", "SubscriberID"], right_on=["job_id", "SubscriberID"]
        ).height
        == 0
    )
    opens = read_extract(small_demo_path, "Opens.csv")
    blank = opens.filter(pl.col("SubscriberKey").is_null())
    assert blank.height > 0 and blank["EmailAddress"].null_count() == blank.height
    # Every blank-key open belongs to a deleted subscriber of that send.
    matched = blank.join(
        subscribers,
        left_on=["SendID", "SubscriberID"],
        right_on=["job_id", "SubscriberID"],
        how="semi",
    )
    assert matched.height == blank.height
    clicks = read_extract(small_demo_path, "Clicks.csv")
    assert (
        clicks.filter(pl.col("SubscriberKey").is_null())["EmailAddress"].null_count()
        == clicks["SubscriberKey"].null_count()
    )


def test_planted_rates(truth: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> None:
    per_person = (
        truth.filter(pl.col("recipient_id").str.starts_with("003"))
        .group_by("recipient_id")
        .agg(pl.col("reason").first())
    )
    n_contacts = tables["contacts"].height
    for reason, (low, high) in {
        reasons.EMAIL_KEY: (0.002, 0.01),
        reasons.ID15_KEY: (0.001, 0.006),
        reasons.UNKNOWN_ID: (0.0005, 0.005),
    }.items():
        share = (per_person["reason"] == reason).sum() / n_contacts
        assert low <= share <= high, (reason, share)


# --- the extract ----------------------------------------------------------------------------


def test_extract_zip_has_the_documented_files_columns_and_dates(small_demo_path: Path) -> None:
    with zipfile.ZipFile(small_demo_path / "tracking_extract.zip") as archive:
        assert archive.namelist() == list(EXTRACT_COLUMNS)
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())
    for name, columns in EXTRACT_COLUMNS.items():
        frame = read_extract(small_demo_path, name)
        assert frame.columns == columns, name
        assert frame.height > 0, name
        date_columns = ["SchedTime", "SentTime"] if name == "SendJobs.csv" else ["EventDate"]
        for column in date_columns:
            assert (
                frame[column]
                .str.contains(r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2} [AP]M$")
                .all()
            )
            frame.select(pl.col(column).str.to_datetime(MC_FORMAT, strict=True))
        if name != "SendJobs.csv":
            assert set(frame["EventType"]) == {EVENT_TYPES[name]}, name
    bounces = read_extract(small_demo_path, "Bounces.csv")
    assert set(bounces["BounceCategory"]) == {"Hard bounce", "Soft bounce", "Block bounce"}


def test_extract_covers_the_org_sends(
    small_demo_path: Path, tables: dict[str, pl.DataFrame], truth: pl.DataFrame
) -> None:
    jobs = read_extract(small_demo_path, "SendJobs.csv")["SendID"]
    org_jobs = set(tables["email_sends"]["job_id"]) | set(
        tables["individual_email_results"].filter(pl.col("triggered_send_id").is_not_null())[
            "job_id"
        ]
    )
    assert org_jobs < set(jobs) and len(set(jobs) - org_jobs) == 1  # plus the CSV send
    sent = read_extract(small_demo_path, "Sent.csv").group_by("SendID").len()
    # Deduplicated recipients are in the ground truth but were never sent to: no Sent row.
    expected = (
        truth.filter(
            pl.col("subscriber_key").is_not_null() & (pl.col("reason") != reasons.DEDUPLICATED)
        )
        .group_by("job_id")
        .len()
    )
    assert sent.sort("SendID").rename({"SendID": "job_id"}).equals(expected.sort("job_id"))


def test_extract_events_aggregate_to_the_ier_values_of_healthy_recipients(
    small_demo_path: Path, truth: pl.DataFrame, tables: dict[str, pl.DataFrame]
) -> None:
    key = ["SendID", "SubscriberKey"]
    opens = (
        read_extract(small_demo_path, "Opens.csv")
        .group_by(key)
        .agg(date_opened=utc_from_mc("EventDate").min())
    )
    clicks = (
        read_extract(small_demo_path, "Clicks.csv")
        .group_by(key)
        .agg(
            total_clicks=pl.len().cast(pl.Int32),
            unique_clicks=pl.col("URL").n_unique().cast(pl.Int32),
        )
    )
    bounces = read_extract(small_demo_path, "Bounces.csv").select(
        *key,
        hard_bounce=pl.col("BounceCategory") == "Hard bounce",
        soft_bounce=pl.col("BounceCategory").is_in(["Soft bounce", "Block bounce"]),
        date_bounced=utc_from_mc("EventDate"),
    )
    unsubs = read_extract(small_demo_path, "Unsubs.csv").select(
        *key, date_unsubscribed=utc_from_mc("EventDate")
    )
    healthy = truth.filter(pl.col("reason") == reasons.HEALTHY).select(
        SendID="job_id", SubscriberKey="subscriber_key", id="ier_id"
    )
    expected = healthy
    for part in (opens, clicks, bounces, unsubs):
        expected = expected.join(part, on=key, how="left")
    expected = expected.with_columns(
        opened=pl.col("date_opened").is_not_null(),
        total_clicks=pl.col("total_clicks").fill_null(0),
        unique_clicks=pl.col("unique_clicks").fill_null(0),
        hard_bounce=pl.col("hard_bounce").fill_null(False),
        soft_bounce=pl.col("soft_bounce").fill_null(False),
    )
    columns = [
        "id",
        "opened",
        "date_opened",
        "total_clicks",
        "unique_clicks",
        "hard_bounce",
        "soft_bounce",
        "date_bounced",
        "date_unsubscribed",
    ]
    iers = tables["individual_email_results"].join(healthy.select("id"), on="id", how="semi")
    assert iers.height == healthy.height
    assert expected.select(columns).sort("id").equals(iers.select(columns).sort("id"))
    assert iers["opened"].sum() > 0 and iers["total_clicks"].sum() > 0


# --- rates and totals -------------------------------------------------------------------------


def test_rates_are_within_the_spec(tables: dict[str, pl.DataFrame]) -> None:
    sends = tables["email_sends"].filter(pl.col("send_status") == "Completed")
    sent = sends["number_sent"].sum()
    opens = sends["number_unique_opens"].sum() / sent
    clicks = sends["number_unique_clicks"].sum() / sent
    bounces = (sends["number_hard_bounces"].sum() + sends["number_soft_bounces"].sum()) / sent
    unsubs = sends["number_unsubscribed"].sum() / sent
    assert 0.20 <= opens <= 0.45
    assert 0.02 <= clicks <= 0.08
    assert 0.01 <= bounces <= 0.02
    assert unsubs < 0.01
    outreach = send_job(tables, "Sales Outreach")
    assert 0.3 <= outreach["number_unique_opens"].sum() / outreach["number_sent"].sum() <= 0.5


def test_send_totals_match_the_ier_table(
    truth: pl.DataFrame, tables: dict[str, pl.DataFrame]
) -> None:
    iers = tables["individual_email_results"]
    by_send = iers.group_by("job_id").agg(
        ier_count=pl.len(),
        number_hard_bounces=pl.col("hard_bounce").sum().cast(pl.Int64),
        number_soft_bounces=pl.col("soft_bounce").sum().cast(pl.Int64),
        number_unique_opens=pl.col("opened").sum().cast(pl.Int64),
        number_unique_clicks=pl.col("clicked").sum().cast(pl.Int64),
        number_unsubscribed=pl.col("unsubscribed").sum().cast(pl.Int64),
    )
    # Deduplicated recipients were never sent to: not in Marketing Cloud's totals.
    per_job = (
        truth.filter(pl.col("reason") != reasons.DEDUPLICATED)
        .group_by("job_id")
        .agg(
            rows=pl.len(),
            with_ier=pl.col("has_ier").sum(),
            all_healthy=pl.col("reason").is_in([reasons.HEALTHY, reasons.LEAD_CONVERTED]).all(),
        )
    )
    sends = (
        tables["email_sends"]
        .join(per_job, on="job_id")
        .join(by_send, on="job_id", how="left", suffix="_ier")
    )
    # Totals are Marketing Cloud's: every recipient, with or without an IER.
    assert (sends["number_sent"] == sends["rows"]).all()
    assert (sends["with_ier"] == sends["ier_count"].fill_null(0)).all()
    clean = sends.filter("all_healthy")
    assert clean.height > 50
    for total in (
        "number_hard_bounces",
        "number_soft_bounces",
        "number_unique_opens",
        "number_unique_clicks",
        "number_unsubscribed",
    ):
        assert (clean[total] == clean[f"{total}_ier"]).all(), total
    assert (clean["number_sent"] == clean["ier_count"]).all()
    # Sends with planted gaps have fewer IERs than recipients.
    gaps = sends.filter(pl.col("with_ier") < pl.col("rows"))
    assert gaps.height > 0 and (gaps["ier_count"].fill_null(0) < gaps["number_sent"]).all()


def test_demo_json_records_parameters_and_counts(
    small_demo_path: Path, truth: pl.DataFrame
) -> None:
    manifest = json.loads((small_demo_path / "demo.json").read_text())
    assert manifest["generator"] == "ierkit.demo"
    assert manifest["scale"] == 0.1 and manifest["seed"] == demo.DEMO_SEED
    assert manifest["counts"]["ground_truth"] == truth.height
    planted = truth.group_by("reason").len()
    assert dict(zip(planted["reason"], planted["len"], strict=True)) == {
        k: v for k, v in manifest["planted"].items() if v
    }
