"""Tests for ierkit.store: the deduplicated event store that extracts are landed into."""

from __future__ import annotations

from pathlib import Path

import pytest

from ierkit import _files
from ierkit.extract import ExtractFormatError
from ierkit.store import (
    JOURNAL_FILE,
    Journal,
    land_events,
    plan_groups,
    read_journal,
    scan_events,
)
from tests.test_extract import HEAD, KEY_A, write, write_extract


@pytest.fixture
def extract_folder(tmp_path: Path) -> Path:
    return write_extract(tmp_path / "extract")


def test_landing_twice_changes_nothing(extract_folder: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = land_events([extract_folder], store)
    stored = scan_events(store).collect()
    second = land_events([extract_folder, extract_folder], store)
    assert first.events_in_store == second.events_in_store == 5
    assert scan_events(store).collect().equals(stored)


def test_identical_rows_within_one_file_are_kept(tmp_path: Path) -> None:
    # Two clicks on one link within the same second are two clicks, however often landed.
    row = f"1,100,{KEY_A},,11,5,1/15/2026 1:00:00 PM,Click,0,,https://x.com/p\n"
    write(tmp_path / "x", "Clicks.csv", f"{HEAD},URL\n{row}{row}")
    store = tmp_path / "store"
    land_events([tmp_path / "x"], store)
    land_events([tmp_path / "x"], store)
    assert scan_events(store).collect().height == 2


def test_plan_groups_packs_consecutive_sends() -> None:
    assert plan_groups({1: 3, 2: 3, 3: 5, 4: 1}, limit=6) == [[1, 2], [3, 4]]
    assert plan_groups({1: 10, 2: 1}, limit=6) == [[1], [2]]


def test_landing_lists_the_sends_whose_tables_are_owed(
    extract_folder: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    land_events([extract_folder], store)
    # Landed, but no table written yet: the journal owes job 100's tables, nothing is staged.
    assert read_journal(store) == Journal(None, (100,))
    assert sorted(p.name for p in store.iterdir()) == [
        ".ierkit-event-store.json",  # the lock file goes with its holder; the marker stays
        "events",
        "journal.json",
        "send_jobs.parquet",
    ]


def test_a_malformed_extract_changes_nothing(extract_folder: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    land_events([extract_folder], store)
    before = (read_journal(store), scan_events(store).collect())
    write(tmp_path / "bad", "Opens.csv", f"{HEAD}\n1,100,{KEY_A},a@x.com,11,5,31/1/2026,Open,0,\n")
    with pytest.raises(ExtractFormatError):
        land_events([tmp_path / "bad"], store)
    assert read_journal(store) == before[0]
    assert scan_events(store).collect().equals(before[1])
    assert not list(store.glob(".staging-*"))


def test_an_unreadable_journal_makes_every_send_owed(extract_folder: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    land_events([extract_folder], store)
    (store / JOURNAL_FILE).write_text('{"pending": [1')  # edited by hand, cut short
    assert read_journal(store) == Journal(None, (100,))
    # A landing outside the store is never merged (nor removed afterwards).
    (store / JOURNAL_FILE).write_text('{"landing": "../../home", "pending": []}')
    assert read_journal(store) == Journal(None, (100,))


def test_recover_replaced_puts_back_a_folder_caught_between_renames(tmp_path: Path) -> None:
    # Between the renames: the target is gone, its complete old copy hidden beside it.
    (tmp_path / ".job_id=1.old-0123456789abcdef0123456789abcdef").mkdir()
    (tmp_path / ".job_id=1.old-0123456789abcdef0123456789abcdef" / "a.parquet").write_text("1")
    # After them: both present; the old copy goes.
    (tmp_path / "job_id=2").mkdir()
    (tmp_path / "job_id=2" / "b.parquet").write_text("new")
    (tmp_path / ".job_id=2.old-fedcba9876543210fedcba9876543210").mkdir()
    assert _files.recover_replaced(tmp_path) == ["job_id=1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job_id=1", "job_id=2"]
    assert (tmp_path / "job_id=1" / "a.parquet").read_text() == "1"
    assert (tmp_path / "job_id=2" / "b.parquet").read_text() == "new"
