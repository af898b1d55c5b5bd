"""Tests for ierkit.store: the deduplicated event store that extracts are landed into."""

from __future__ import annotations

from pathlib import Path

import pytest

from ierkit.store import land_events, plan_groups, scan_events
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
