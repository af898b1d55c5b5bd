"""Tests for how ierkit.store lands an extract cheaply (issue 17) without losing its guarantees.

One staged file per tracking file, rows counted only for sends that can overlap, groups of
sends read by JobID range, a staging folder left by an earlier version still merged, zip
members handed over as they are unpacked.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl
import pytest

from ierkit import extract
from ierkit.store import events_dir, land_events, merge_events, scan_events, stored_jobs
from tests.test_extract import HEAD, KEY_A, KEY_B, write


def _row(job: int, key: str, time: str, kind: str, tail: str = "") -> str:
    return f"1,{job},{key},,11,5,1/15/2026 {time},{kind},0,{tail}\n"


def _stored(store: Path) -> pl.DataFrame:
    return scan_events(store).collect()


def test_a_file_of_many_sends_is_staged_as_one_file(tmp_path: Path) -> None:
    sent = "".join(_row(job, KEY_A, "10:00:00 AM", "Sent") for job in range(100, 130))
    write(tmp_path / "x", "Sent.csv", f"{HEAD}\n{sent}")
    with extract.open_extract(tmp_path / "x") as [file]:
        result = extract.stage_file(file, tmp_path / "staged")
    assert result.events == 30
    assert [p.name for p in (tmp_path / "staged").iterdir()] == [extract.STAGED_EVENTS]
    store = tmp_path / "store"
    land_events([tmp_path / "x"], store)
    assert stored_jobs(events_dir(store)) == list(range(100, 130))


def test_overlap_is_decided_per_send_in_a_group(tmp_path: Path) -> None:
    # Send 100 comes in two Opens files that overlap (one open in both): counted once.
    # Send 101, in the same group, has one Opens file holding two identical rows (two opens
    # in the same second): both kept.
    same_second = _row(101, KEY_B, "12:00:00 PM", "Open")
    write(tmp_path / "x", "Opens.csv", f"{HEAD}\n{_row(100, KEY_A, '12:00:00 PM', 'Open')}")
    write(
        tmp_path / "x",
        "Opens_2.csv",
        f"{HEAD}\n{_row(100, KEY_A, '12:00:00 PM', 'Open')}{_row(100, KEY_A, '1:00:00 PM', 'Open')}"
        f"{same_second}{same_second}",
    )
    store = tmp_path / "store"
    land_events([tmp_path / "x"], store)
    counts = dict(_stored(store).group_by("job_id").len().iter_rows())
    assert counts == {100: 2, 101: 2}


@pytest.mark.parametrize("limit", [1, 2, 1000])
def test_groups_of_sends_give_the_same_store(tmp_path: Path, limit: int) -> None:
    rows = "".join(
        _row(job, key, f"{hour}:00:00 AM", "Open")
        for job in (300, 100, 200)
        for key in (KEY_B, KEY_A)
        for hour in (11, 9)
    )
    write(tmp_path / "x", "Opens.csv", f"{HEAD}\n{rows}")
    store = tmp_path / f"store-{limit}"
    land_events([tmp_path / "x"], store, limit=limit)
    land_events([tmp_path / "x"], store, limit=limit)  # overlapping now: counted, not added
    stored = _stored(store)
    assert stored.height == 12
    # Store order: by send, then key, then time.
    assert stored.select("job_id", "subscriber_key").rows()[:4] == [
        (100, KEY_A),
        (100, KEY_A),
        (100, KEY_B),
        (100, KEY_B),
    ]
    assert stored.get_column("event_time").slice(0, 2).is_sorted()


def test_a_staging_folder_nested_per_send_is_still_merged(tmp_path: Path) -> None:
    # Earlier versions staged <n>-<kind>/job_id=<JobID>/*.parquet; a killed run may leave one.
    write(tmp_path / "x", "Sent.csv", f"{HEAD}\n{_row(100, KEY_A, '10:00:00 AM', 'Sent')}")
    frame = extract.read_extract(tmp_path / "x").collect()
    staged = tmp_path / "staged"
    (staged / "00001-Sent" / "job_id=100").mkdir(parents=True)
    frame.write_parquet(staged / "00001-Sent" / "job_id=100" / "0.parquet")
    jobs, stored = merge_events(staged, tmp_path / "store")
    assert (jobs, stored) == ([100], 1)


def test_zip_members_are_all_found_and_named_in_order(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as archive:
        archive.writestr("Sent.csv", f"{HEAD}\n" + _row(100, KEY_A, "10:00:00 AM", "Sent") * 5000)
        archive.writestr("Opens.csv", f"{HEAD}\n{_row(100, KEY_A, '11:00:00 AM', 'Open')}")
        archive.writestr("Bounces.csv", f"{HEAD},BounceCategory\n")
    with extract.open_extract(tmp_path / "x.zip") as files:
        assert [f.name for f in files] == ["x.zip:Bounces.csv", "x.zip:Opens.csv", "x.zip:Sent.csv"]
    with extract.unpacking(tmp_path / "x.zip") as unpacked:
        # Each as it is ready (the order depends on the threads): every one, once.
        assert sorted(f.name for f in unpacked) == [f.name for f in files]
    landed = land_events([tmp_path / "x.zip"], tmp_path / "store")
    assert (landed.files, landed.events_read) == (3, 5001)
