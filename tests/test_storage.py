"""Tests for ierkit.storage: records, MB, allocation and the month-by-month projection."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from ierkit import cli, storage
from ierkit.orgs import LocalOrg, StorageLimits
from ierkit.schema import table

START = dt.date(2026, 11, 20)


# --- records and bytes ---------------------------------------------------------------------------


def test_fifty_thousand_recipients_write_fifty_thousand_records_97_7_mb() -> None:
    records = storage.records_for_send(50_000)
    assert records == {"iers": 50_000, "links": 0, "records": 50_000}
    assert round(storage.storage_mb(records["records"]), 1) == 97.7
    # 50,000 x 2 KB / 1,024 exactly.
    assert storage.storage_mb(50_000) == pytest.approx(97.65625)


@pytest.mark.parametrize(
    ("recipients", "links_per_recipient", "tracked", "expected"),
    [
        (1_000, 0.0, True, {"iers": 1_000, "links": 0, "records": 1_000}),
        (1_000, 0.05, True, {"iers": 1_000, "links": 50, "records": 1_050}),
        (1_000, 2.5, True, {"iers": 1_000, "links": 2_500, "records": 3_500}),
        (1_000, 0.05, False, {"iers": 0, "links": 0, "records": 0}),
    ],
)
def test_link_details_added_per_click(
    recipients: int, links_per_recipient: float, tracked: bool, expected: dict[str, float]
) -> None:
    got = storage.records_for_send(
        recipients, links_per_recipient=links_per_recipient, tracked=tracked
    )
    assert got == pytest.approx(expected)


def test_record_size_is_a_parameter() -> None:
    assert storage.storage_mb(1_024, record_kb=1.0) == 1.0
    assert storage.storage_mb(1_024, record_kb=8.0) == 8.0


def test_negative_recipients_are_refused() -> None:
    with pytest.raises(storage.StorageError, match="must not be negative"):
        storage.records_for_send(-1)


@pytest.mark.parametrize(
    ("edition", "licences", "expected_mb"),
    [
        ("Enterprise", 20, 10_640),
        ("professional", 10, 10_440),
        ("Unlimited", 20, 12_640),
        ("PERFORMANCE", 0, 10_240),
    ],
)
def test_allocation_by_edition(edition: str, licences: int, expected_mb: float) -> None:
    assert storage.allocation_mb(edition, licences) == expected_mb


def test_unknown_edition_names_the_known_ones() -> None:
    with pytest.raises(storage.StorageError, match="'Essentials' is not one of Enterprise"):
        storage.allocation_mb("Essentials", 5)


# --- the org's allocation and usage --------------------------------------------------------------


def _small_org(tmp_path) -> LocalOrg:
    org = LocalOrg(tmp_path)
    iers = pl.DataFrame({"id": [f"a0R{i:015d}" for i in range(512)]}).with_columns(
        [pl.lit(None, c.dtype).alias(c.name) for c in table("individual_email_results").columns[1:]]
    )
    campaigns = pl.DataFrame({"id": [f"701{i:015d}" for i in range(128)]}).with_columns(
        [pl.lit(None, c.dtype).alias(c.name) for c in table("campaigns").columns[1:]]
    )
    org.write_table("individual_email_results", iers)
    org.write_table("campaigns", campaigns)
    return org


def test_current_usage_counts_each_object_at_its_size(tmp_path) -> None:
    usage = storage.current_usage(_small_org(tmp_path)).collect()
    assert usage.select("table", "records", "record_kb", "mb").rows() == [
        ("campaigns", 128, 8.0, 1.0),  # Campaign records count 8 KB
        ("individual_email_results", 512, 2.0, 1.0),
    ]


def test_org_allocation_prefers_what_the_org_reports(tmp_path, monkeypatch) -> None:
    org = _small_org(tmp_path)
    with pytest.raises(storage.StorageError, match="pass the edition"):
        storage.org_allocation(org)
    estimated = storage.org_allocation(org, edition="Enterprise", licences=20)
    assert (estimated.max_mb, estimated.used_mb, estimated.source) == (10_640, 2.0, "estimated")
    limits = StorageLimits(max_mb=20_000, remaining_mb=5_000)
    monkeypatch.setattr(org, "storage_limits", lambda: limits)
    reported = storage.org_allocation(org, edition="Enterprise", licences=20)
    assert (reported.max_mb, reported.used_mb, reported.source) == (20_000, 15_000, "reported")
    assert reported.used_share == 0.75


# --- projection ----------------------------------------------------------------------------------


def _plan(**columns) -> pl.DataFrame:
    return pl.DataFrame(
        {"programme": ["Weekly"], "list_size": [1_000.0], "sends_per_month": [4.0], **columns}
    )


def test_projection_without_retention_grows_by_a_month_of_sends() -> None:
    got = storage.project_by_programme(
        _plan(), start=START, options=storage.ProjectionOptions(months=3)
    ).collect()
    assert got.get_column("month").to_list() == [0, 1, 2, 3]
    assert got.get_column("month_start").to_list() == [
        dt.date(2026, 11, 20),
        dt.date(2026, 12, 20),
        dt.date(2027, 1, 20),
        dt.date(2027, 2, 20),
    ]
    assert got.get_column("kept_iers").to_list() == [0, 4_000, 8_000, 12_000]
    assert got.get_column("written_records").to_list() == [0, 4_000, 4_000, 4_000]
    assert got.get_column("kept_mb").to_list() == pytest.approx([0, 7.8125, 15.625, 23.4375])


def test_projection_adds_link_details_per_click() -> None:
    got = storage.project_by_programme(
        _plan(),
        start=START,
        options=storage.ProjectionOptions(months=2, links_per_recipient=0.25),
    ).collect()
    assert got.get_column("kept_links").to_list() == [0, 1_000, 2_000]
    assert got.get_column("kept_records").to_list() == [0, 5_000, 10_000]


@pytest.mark.parametrize("retention_days", [30, 60, 90])
def test_retention_caps_ier_count_at_cadence_times_list_size_times_window(
    retention_days: int,
) -> None:
    got = storage.project_by_programme(
        _plan(),
        start=START,
        options=storage.ProjectionOptions(months=24, retention_days=retention_days),
    ).collect()
    cap = 4.0 * 1_000 * retention_days / storage.DAYS_PER_MONTH
    assert got.get_column("kept_iers").max() == pytest.approx(cap)
    assert got.filter(pl.col("month") == 24).item(0, "kept_iers") == pytest.approx(cap)
    # Before the window fills, everything written is kept.
    assert got.filter(pl.col("month") == 1).item(0, "kept_iers") == pytest.approx(min(4_000, cap))


def test_plan_row_retention_overrides_the_keyword_and_untracked_writes_nothing() -> None:
    plan = pl.DataFrame(
        {
            "programme": ["Kept", "Trimmed", "Skipped"],
            "list_size": [1_000.0, 1_000.0, 1_000.0],
            "sends_per_month": [1.0, 1.0, 1.0],
            "tracked": [True, True, False],
            "retention_days": [None, storage.DAYS_PER_MONTH, None],
        }
    )
    got = storage.project_by_programme(
        plan, start=START, options=storage.ProjectionOptions(months=3)
    ).collect()
    last = dict(got.filter(pl.col("month") == 3).select("programme", "kept_iers").rows())
    assert last == pytest.approx({"Kept": 3_000, "Skipped": 0, "Trimmed": 1_000})


def test_retention_trims_existing_records_to_the_window() -> None:
    # 100 MB of IERs today from a programme writing 10 MB a month (5,120 IERs at 2 KB).
    plan = pl.DataFrame(
        {
            "programme": ["Old"],
            "list_size": [5_120.0],
            "sends_per_month": [1.0],
            "tracking_mb_now": [100.0],
        }
    )
    window = 3 * storage.DAYS_PER_MONTH  # three months
    kept = (
        storage.project_by_programme(
            plan, start=START, options=storage.ProjectionOptions(months=6, retention_days=window)
        )
        .collect()
        .get_column("kept_mb")
    )
    # A long history: 30 MB (three months' worth) stays from the first cleanup on.
    assert kept.to_list() == pytest.approx([30.0] * 7)
    kept_all = storage.project_by_programme(
        plan, start=START, options=storage.ProjectionOptions(months=2)
    ).collect()
    assert kept_all.get_column("kept_mb").to_list() == pytest.approx([100.0, 110.0, 120.0])


def test_project_storage_adds_the_plan_to_today_and_prices_the_excess() -> None:
    plan = _plan(list_size=[5_120.0], sends_per_month=[1.0], tracking_mb_now=[40.0])
    got = storage.project_storage(
        plan,
        start=START,
        used_mb=880.0,
        allocation_mb=1_000.0,
        options=storage.ProjectionOptions(months=4, price_per_gb_month=1_024.0),
    ).collect()
    # 10 MB a month on top of 880 MB; 90% of 1,000 MB is 900 MB.
    assert got.get_column("used_mb").to_list() == pytest.approx([880, 890, 900, 910, 920])
    assert got.get_column("over_threshold").to_list() == [False, False, True, True, True]
    assert got.get_column("extra_cost").to_list() == pytest.approx([0, 0, 0, 10, 20])


def test_outlook_dates_the_crossing_and_finds_a_retention_window() -> None:
    plan = _plan(list_size=[5_120.0], sends_per_month=[1.0], tracking_mb_now=[40.0])
    outlook = storage.storage_outlook(
        plan,
        start=START,
        used_mb=885.0,
        allocation_mb=1_000.0,
        options=storage.ProjectionOptions(
            months=24, candidates=(30, 90, 365), price_per_gb_month=1_024.0
        ),
    )
    # 885 -> 895 in the first month, 895 -> 905 in the second: 900 MB half-way through it,
    # 2026-12-20 + 31 days / 2 rounded up.
    assert outlook.threshold_date == dt.date(2027, 1, 5)
    assert outlook.retention_needed
    # 365 days keeps ~120 MB: 845 + 120 = 965 > 900; 90 days keeps ~29.6 MB: under.
    assert outlook.retention_days == 90
    assert outlook.extra_gb_needed == pytest.approx((885 + 240 - 900) / 1_024)
    assert outlook.peak_used_mb == pytest.approx(1_125)
    assert "reaches 90% of 1,000 MB on 2027-01-05" in str(outlook)


def test_outlook_says_when_no_retention_is_needed() -> None:
    outlook = storage.storage_outlook(_plan(), start=START, used_mb=10.0, allocation_mb=10_640.0)
    assert outlook.threshold_date is None
    assert not outlook.retention_needed
    assert outlook.retention_days is None
    assert outlook.extra_cost == 0
    assert "no retention window needed" in str(outlook)


def test_plan_missing_columns_are_named() -> None:
    with pytest.raises(storage.StorageError, match="missing column\\(s\\) sends_per_month"):
        storage.normalize_plan(pl.DataFrame({"programme": ["A"], "list_size": [1.0]}))


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_storage_answers_the_quick_question(capsys) -> None:
    assert cli.main(["storage", "--recipients", "50000"]) == 0
    out = capsys.readouterr().out
    assert "50,000 IERs" in out and "97.7 MB" in out


def test_cli_storage_json_with_cadence(capsys) -> None:
    argv = ["storage", "--recipients", "50000", "--links-per-recipient", "0.05"]
    assert cli.main([*argv, "--sends-per-month", "4", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["records"] == 52_500
    assert figures["records_per_month"] == 210_000
    assert figures["mb_per_month"] == pytest.approx(410.15625)


def test_cli_storage_refuses_negative_recipients(capsys) -> None:
    # Refused by the option's type (ierkit._cli_args.positive_int) as argparse parses it: exit 2.
    with pytest.raises(SystemExit) as exited:
        cli.main(["storage", "--recipients", "-5"])
    assert exited.value.code == 2
    assert "argument --recipients: '-5' must be 1 or more" in capsys.readouterr().err


# --- storage in use and a what-if plan (the storage forecast notebook) ----------------------


@pytest.mark.parametrize(
    ("source", "used_mb", "share"), [("estimated", 3000.0, 0.3), ("reported", 1000.0, 0.1)]
)
def test_storage_in_use_counts_other_data_only_when_estimated(
    source: str, used_mb: float, share: float
) -> None:
    in_use = storage.StorageInUse(storage.StorageAllocation(10_000.0, 1000.0, source), 2000.0)
    assert in_use.used_mb == used_mb
    assert in_use.used_share == pytest.approx(share)
    assert str(in_use) == (
        f"Allocation 10,000 MB ({source}); in use {used_mb:,.0f} MB ({share:.1%}), "
        "of which the tables below 1,000 MB."
    )


def test_plan_with_programme_adds_one_normalised_row() -> None:
    plan = pl.DataFrame({"programme": ["News"], "list_size": [100.0], "sends_per_month": [2.0]})
    combined = storage.plan_with_programme(
        plan, programme="What-if", list_size=5000, sends_per_month=1.5
    )
    assert combined.get_column("programme").to_list() == ["News", "What-if"]
    assert combined.columns == storage.normalize_plan(plan).collect_schema().names()
    assert combined.row(1, named=True)["list_size"] == 5000.0
