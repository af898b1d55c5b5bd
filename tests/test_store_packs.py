"""Packs of small sends in the event store (issue 17): one folder for many sends, same results.

Every test compares with the store as it was before packs (a folder per send, forced by
raising ``PACK_MIN_SENDS``): the same events, the same tables, the same engagement signal.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import polars as pl
import pytest

from ierkit import _store_layout, aggregate, cli, store
from ierkit import signal as engagement
from ierkit._store_layout import Folder, StoreLayoutError, pack_folder, plan_folders, send_folder
from tests.test_aggregate_safety import debris, run_cli, same, tables, write_window

#: Tables, stored events and engagement signal of the extracts landed with a folder per send.
Unpacked = tuple[tuple[pl.DataFrame, pl.DataFrame], pl.DataFrame, pl.DataFrame]


def _names(out: Path) -> list[str]:
    return sorted(path.name for path in store.events_dir(out / "event_store").iterdir())


def _members(out: Path, name: str) -> list[int]:
    members = store.events_dir(out / "event_store") / name / _store_layout.PACK_MEMBERS
    jobs: list[int] = json.loads(members.read_text())["jobs"]
    return jobs


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """C: twelve sends 100, 102, ..., 122 (one pack). A: sends 111-125, odd ones inside the
    pack's range (they join it), even ones held in it, 123-125 new beyond it (too few for a
    pack). B: ten new sends 90-99 below it (a pack of their own) and late events of 120-125."""
    root = tmp_path_factory.mktemp("pack-extracts")
    return {
        "C": write_window(root / "C", range(100, 124, 2), range(0, 2), subject="C"),
        "A": write_window(root / "A", range(111, 126), range(0, 4), subject="A"),
        "B": write_window(root / "B", range(90, 100), range(0, 2), subject="B"),
        "B2": write_window(root / "B2", range(120, 126), range(2, 5), subject="B2"),
    }


def _run(out: Path, *paths: Path) -> None:
    assert cli.main(["aggregate", *map(str, paths), "--out", str(out)]) == 0


@pytest.fixture
def out(extracts: dict[str, Path], tmp_path: Path) -> Path:
    """An output folder with C landed: its twelve sends in one pack."""
    folder = tmp_path / "out"
    _run(folder, extracts["C"])
    return folder


@pytest.fixture(scope="module")
def unpacked(extracts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Unpacked:
    """C, A, then B and B2, with a folder per send: tables, stored events and signal."""
    out = tmp_path_factory.mktemp("unpacked") / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_store_layout, "PACK_MIN_SENDS", 10**9)
        for name in ("C", "A"):
            _run(out, extracts[name])
        _run(out, extracts["B"], extracts["B2"])
    assert all(name.startswith("job_id=") for name in _names(out))
    events = store.scan_events(out / "event_store").collect()
    return tables(out), events, pl.read_parquet(out / engagement.SIGNAL_FILE)


def test_small_sends_share_packs_and_every_result_is_as_with_a_folder_each(
    extracts: dict[str, Path],
    unpacked: Unpacked,
    out: Path,
) -> None:
    assert _names(out) == ["jobs=100..122"]
    assert _members(out, "jobs=100..122") == list(range(100, 124, 2))
    _run(out, extracts["A"])
    # The odd sends inside the pack's range joined it; 123-125 are too few for a pack.
    assert _names(out) == ["job_id=123", "job_id=124", "job_id=125", "jobs=100..122"]
    assert _members(out, "jobs=100..122") == [*range(100, 112, 2), *range(111, 123)]
    _run(out, extracts["B"], extracts["B2"])
    assert _names(out) == ["job_id=123", "job_id=124", "job_id=125", "jobs=100..122", "jobs=90..99"]
    expected_tables, expected_events, expected_signal = unpacked
    assert same(tables(out), expected_tables)
    events = store.scan_events(out / "event_store")
    assert events.collect().equals(expected_events)  # store order across folders, too
    assert pl.read_parquet(out / engagement.SIGNAL_FILE).equals(expected_signal)
    assert store.stored_jobs(store.events_dir(out / "event_store")) == sorted(
        {*range(90, 100), *range(100, 124, 2), *range(111, 126)}
    )
    # Some sends of a pack: only theirs.
    some = store.scan_events(out / "event_store", job_ids=[104, 113]).collect()
    assert some.equals(expected_events.filter(pl.col("job_id").is_in([104, 113])))
    # The last landing again (it touches both packs) changes nothing.
    _run(out, extracts["B"], extracts["B2"])
    assert store.scan_events(out / "event_store").collect().equals(expected_events)
    assert same(tables(out), expected_tables)


def test_a_landing_that_touches_one_send_of_a_pack_reclassifies_that_pack_only(
    extracts: dict[str, Path], out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(out, extracts["B"])  # a pack of its own: below the first one
    assert _names(out) == ["jobs=100..122", "jobs=90..99"]
    classified: list[list[int]] = []
    original = engagement._written.recipients_of

    def recording(events: pl.DataFrame, p: engagement.SignalParams) -> pl.DataFrame:
        classified.append(sorted(events.get_column("job_id").unique().to_list()))
        return original(events, p)

    monkeypatch.setattr(engagement._written, "recipients_of", recording)
    _run(out, extracts["B2"])  # 120 and 122 in the pack 100..122; 121, 123-125 new
    assert classified == [sorted([*range(100, 124, 2), 121, 123, 124, 125])]
    incremental = pl.read_parquet(out / engagement.SIGNAL_FILE)
    (out / engagement.SIGNAL_FILE).unlink()
    engagement.write_engagement_signal(out / "event_store", out)
    assert pl.read_parquet(out / engagement.SIGNAL_FILE).equals(incremental)


def test_a_store_of_earlier_versions_gets_packs_only_for_new_runs_of_small_sends(
    extracts: dict[str, Path], unpacked: Unpacked, tmp_path: Path
) -> None:
    out = tmp_path / "earlier"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_store_layout, "PACK_MIN_SENDS", 10**9)  # a folder per send, as before
        _run(out, extracts["C"])
    _run(out, extracts["A"])  # new sends between the old folders: too few in each run
    assert all(name.startswith("job_id=") for name in _names(out))
    _run(out, extracts["B"], extracts["B2"])  # ten new sends below them all: one pack
    assert [name for name in _names(out) if name.startswith("jobs=")] == ["jobs=90..99"]
    expected_tables, expected_events, expected_signal = unpacked
    assert same(tables(out), expected_tables)
    assert store.scan_events(out / "event_store").collect().equals(expected_events)
    assert pl.read_parquet(out / engagement.SIGNAL_FILE).equals(expected_signal)


@pytest.mark.parametrize("point", ["aggregate/merge-written", "replace_folder/between-renames"])
def test_a_kill_while_a_pack_is_replaced_ends_as_uninterrupted(
    point: str,
    extracts: dict[str, Path],
    unpacked: Unpacked,
    out: Path,
) -> None:
    killed = run_cli(str(extracts["A"]), "--out", str(out), crash_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    events = store.events_dir(out / "event_store")
    if point == "replace_folder/between-renames":
        # The pack moved aside whole, the new one not in yet.
        assert [path.name for path in events.glob(".jobs=*.old-*")], "not between the renames"
        assert not (events / "jobs=100..122").exists()
    _run(out, extracts["B"], extracts["B2"])
    expected_tables, expected_events, _ = unpacked
    assert same(tables(out), expected_tables)
    assert store.scan_events(out / "event_store").collect().equals(expected_events)
    assert debris(out) == []
    assert store.read_journal(out / "event_store") == store.Journal()


def test_a_pack_out_of_order_is_sorted_whole(out: Path) -> None:
    before = tables(out)
    [file] = (store.events_dir(out / "event_store") / "jobs=100..122").glob("*.parquet")
    pl.read_parquet(file).reverse().write_parquet(file)  # as a tool rewriting it might
    result = aggregate.aggregate_store(out / "event_store", out)
    assert result.resorted
    assert same(tables(out), before)
    assert _members(out, "jobs=100..122") == list(range(100, 124, 2))
    assert not aggregate.aggregate_store(out / "event_store", out).resorted


def test_a_pack_whose_list_of_sends_is_lost_is_read_from_its_file(out: Path) -> None:
    (store.events_dir(out / "event_store") / "jobs=100..122" / _store_layout.PACK_MEMBERS).unlink()
    assert store.stored_jobs(store.events_dir(out / "event_store")) == list(range(100, 124, 2))


def test_two_folders_claiming_the_same_sends_are_refused_naming_both(
    extracts: dict[str, Path], out: Path
) -> None:
    events = store.events_dir(out / "event_store")
    shutil.copytree(events / "jobs=100..122", events / "job_id=104")  # copied in by hand
    with pytest.raises(StoreLayoutError, match=r"jobs=100\.\.122 and job_id=104 both cover"):
        store.stored_jobs(events)
    assert cli.main(["aggregate", str(extracts["A"]), "--out", str(out)]) == 2
    shutil.rmtree(events / "job_id=104")
    members = events / "jobs=100..122" / _store_layout.PACK_MEMBERS
    members.write_text(json.dumps({"jobs": [100, 130]}))
    with pytest.raises(StoreLayoutError, match=r"holds send 130, outside the JobIDs 100\.\.122"):
        store.stored_jobs(events)


# --- which folder each send goes to ------------------------------------------------------------


def _plan(
    landing: dict[int, int], folders: list[Folder] | None = None, *, pack_limit: int = 1_000
) -> list[tuple[str, bool]]:
    return [
        (folder.name, exists)
        for folder, exists, _ in plan_folders(landing, folders or [], {}, pack_limit=pack_limit)
    ]


def test_a_run_of_small_new_sends_is_shared_out_evenly_over_packs() -> None:
    assert _plan(dict.fromkeys(range(1, 21), 100)) == [
        ("jobs=1..10", False),
        ("jobs=11..20", False),
    ]
    assert _plan(dict.fromkeys(range(1, 10), 100)) == [("jobs=1..9", False)]


def test_few_small_sends_and_large_sends_keep_a_folder_each() -> None:
    few = dict.fromkeys(range(1, 8), 100)
    assert _plan(few) == [(f"job_id={job}", False) for job in range(1, 8)]
    large = {**dict.fromkeys(range(1, 10), 10), 10: 5_000, **dict.fromkeys(range(11, 20), 10)}
    assert _plan(large) == [("jobs=1..9", False), ("job_id=10", False), ("jobs=11..19", False)]
    big = {**dict.fromkeys(range(1, 10), 10), 10: _store_layout.SMALL_SEND_EVENTS}
    assert _plan(big, pack_limit=10**6)[-1] == ("job_id=10", False)


def test_new_sends_never_span_a_folder_and_join_a_pack_whose_range_holds_them() -> None:
    folders = [pack_folder([10, 20, 30]), send_folder(50)]
    landing = {25: 1, 30: 1, **dict.fromkeys(range(40, 50), 1), **dict.fromkeys(range(51, 61), 1)}
    planned = plan_folders(landing, folders, {10: 5, 20: 5, 30: 5}, pack_limit=1_000)
    assert [(folder.name, folder.jobs, exists, events) for folder, exists, events in planned] == [
        ("jobs=10..30", (10, 20, 25, 30), True, 17),
        ("jobs=40..49", tuple(range(40, 50)), False, 10),
        ("jobs=51..60", tuple(range(51, 61)), False, 10),
    ]
