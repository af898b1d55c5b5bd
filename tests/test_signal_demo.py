"""On the demo org, the engagement signal recovers the planted truth (figures printed with -s)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ierkit import demo, extract, reasons, signal, sync_health
from ierkit.orgs import LocalOrg


@pytest.fixture(scope="module")
def folder() -> Path:
    return demo.ensure_demo()


@pytest.fixture(scope="module")
def truth(folder: Path) -> pl.DataFrame:
    return pl.read_parquet(folder / "signal_truth.parquet")


def test_extract_flags_recover_the_scanners(folder: Path, truth: pl.DataFrame) -> None:
    with extract.open_extract(folder / "tracking_extract.zip") as files:
        events = pl.concat(
            [extract.scan_checked(f) for f in files if f.kind in ("Sent", "Open", "Click")]
        ).collect()
    per = signal.recipient_signal(signal.classify_events(events.lazy())).collect()
    joined = (
        truth.filter(pl.col("subscriber_key").is_not_null())
        .join(per, on=list(signal.RECIPIENT_KEYS), how="full", coalesce=True)
        .fill_null(0)
    )
    hit = joined.select(pl.min_horizontal("scanner_clicks", "automated_clicks").sum()).item()
    precision = hit / joined["automated_clicks"].sum()
    recall = hit / joined["scanner_clicks"].sum()
    print(f"extract: precision {precision:.3f}, recall {recall:.3f}")
    assert joined["scanner_clicks"].sum() > 1000
    assert precision >= 0.95 and recall >= 0.95


def test_org_flags_recover_the_scanners_and_keep_every_human_clicker(
    folder: Path, truth: pl.DataFrame
) -> None:
    org = LocalOrg(folder)
    flags = signal.classify_iers(
        org.table("individual_email_results"), org.table("individual_links")
    ).collect()
    planted = truth.filter(pl.col("ier_id").is_not_null()).select(
        "ier_id",
        automated=(pl.col("ier_scanner_clicks") > 0) & (pl.col("ier_human_clicks") == 0),
        human=pl.col("ier_human_clicks") > 0,
    )
    joined = flags.join(planted, on="ier_id", how="left").fill_null(False)
    hit = (joined["automated_clicks"] & joined["automated"]).sum()
    precision = hit / joined["automated_clicks"].sum()
    recall = hit / joined["automated"].sum()
    print(f"org: precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.90 and recall >= 0.90
    # The worklist keeps IERs with human clicks: no planted human clicker drops out.
    assert joined.filter(pl.col("human") & ~pl.col("human_clicked")).height == 0


def test_every_deduplicated_recipient_gets_that_reason(folder: Path) -> None:
    org = LocalOrg(folder)
    diagnosis = sync_health.diagnose(
        org, folder / "tracking_extract.zip", as_of=demo.as_of_instant(demo.DEMO_AS_OF)
    )
    planted = pl.read_parquet(folder / "ground_truth.parquet").filter(
        pl.col("reason") == reasons.DEDUPLICATED
    )
    found = diagnosis.recipients.filter(pl.col("reason") == reasons.DEDUPLICATED)
    joined = planted.join(found, on=["job_id", "recipient_id"], how="left")
    print(f"deduplicated: planted {planted.height}, found {found.height}")
    assert planted.height > 100
    assert joined["detail"].is_not_null().all()
    assert joined["detail"].str.starts_with("deduplicated: shares an email address with ").all()
    # ... and only they: nobody who shares an address but was never in the audience.
    assert found.join(planted, on=["job_id", "recipient_id"], how="anti").height == 0
    assert found.height == planted.height
    # They were never sent to: a send's coverage counts what Marketing Cloud counts as sent
    # (less the subscribers deleted in Marketing Cloud, whose Sent rows have no key).
    truth = pl.read_parquet(folder / "ground_truth.parquet")
    deleted = (
        truth.filter(pl.col("reason") == reasons.DELETED_IN_MARKETING_CLOUD)
        .group_by("job_id")
        .agg(deleted=pl.len().cast(pl.Int64))
    )
    # (With tracking off the ground truth names the send's reason, not the deleted ones.)
    sends = (
        org.table("email_sends")
        .filter(~pl.col("individual_tracking_disabled"))
        .select("job_id", "number_sent")
        .collect()
    )
    coverage = (
        diagnosis.coverage.join(sends, on="job_id", how="inner")
        .join(deleted, on="job_id", how="left")
        .with_columns(pl.col("deleted").fill_null(0))
    )
    assert coverage.height > 50
    assert (coverage["sent"] + coverage["deleted"] == coverage["number_sent"]).all()
