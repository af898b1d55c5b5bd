"""The engagement signal ``ierkit aggregate`` writes beside the IERs, and reading it back."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import polars as pl
import pytest

from ierkit import aggregate, cli, demo, extract, signal
from ierkit.extract import EVENT_SCHEMA
from ierkit.signal import _written

T0 = dt.datetime(2026, 11, 2, 14, 0, tzinfo=dt.UTC)
HEAD = (
    "ClientID,SendID,SubscriberKey,EmailAddress,SubscriberID,ListID,EventDate,EventType,"
    "BatchID,TriggeredSendExternalKey"
)
PEOPLE = {"A": 11, "B": 12, "C": 13, "D": 14}


def mc(seconds: float) -> str:
    """T0 + seconds as Marketing Cloud writes it (UTC-6, to the second)."""
    local = (T0 + dt.timedelta(seconds=seconds) - dt.timedelta(hours=6)).replace(tzinfo=None)
    return f"{local.month}/{local.day}/{local.year} {local:%I:%M:%S %p}".replace(" 0", " ")


def row(key: str, seconds: float, kind: str) -> str:
    return f"1,100,{key},{key.lower()}@x.example,{PEOPLE[key]},5,{mc(seconds)},{kind},0,"


def write_extract(folder: Path, events: list[tuple[str, float, str, str | None]]) -> Path:
    """Tracking files of send 100: (subscriber key, seconds after T0, type, clicked URL)."""
    files: dict[str, list[str]] = {"Sent": [], "Open": [], "Click": []}
    for key, seconds, kind, url in events:
        files[kind].append(row(key, seconds, kind) + (f",{url}" if kind == "Click" else ""))
    folder.mkdir(parents=True)
    names = {"Sent": "Sent.csv", "Open": "Opens.csv", "Click": "Clicks.csv"}
    for kind, lines in files.items():
        head = HEAD + (",URL" if kind == "Click" else "")
        (folder / names[kind]).write_text("\n".join([head, *lines]) + "\n")
    return folder


#: A scanner (A: opens at 2 s, clicks two links at 3 and 5 s), an Apple-Mail-like open (B: at
#: 40 s, nothing after), a fast human (C: opens at 35 s, clicks at 50 s), and D, who was sent to
#: and did nothing.
FIRST = [
    *[(key, 0.0, "Sent", None) for key in PEOPLE],
    ("A", 2.0, "Open", None),
    ("A", 3.0, "Click", "https://x/pricing"),
    ("A", 5.0, "Click", "https://x/blog"),
    ("B", 40.0, "Open", None),
    ("C", 35.0, "Open", None),
    ("C", 50.0, "Click", "https://x/pricing"),
]
#: The next day's extract: B opens again two hours later, so B's first open was a person's.
SECOND = [("B", 7200.0, "Open", None)]

COLUMNS = ["subscriber_key", "opens", "human_opens", "machine_opens", "clicks"]
COLUMNS += ["human_clicks", "automated_clicks", "human_links", "signal_reason"]
MACHINE_B = "opened 40 s after delivery and nothing after: possibly Apple Mail Privacy Protection"
EXPECTED_FIRST = [
    (
        "A",
        1,
        0,
        1,
        2,
        0,
        2,
        0,
        # Each click's reasons, then the open's: the distinct reasons, sorted.
        "clicked 3 s after delivery (a person needs more than 20 s); "
        "2 different links clicked within 2 s; "
        "clicked 5 s after delivery (a person needs more than 20 s); "
        "2 different links clicked within 2 s; "
        "opened 2 s after delivery, with the scanner's clicks",
    ),
    ("B", 1, 0, 1, 0, 0, 0, 0, MACHINE_B),
    ("C", 1, 1, 0, 1, 1, 0, 1, None),
]


def flags(frame: pl.DataFrame | pl.LazyFrame) -> list[tuple[object, ...]]:
    return frame.lazy().select(COLUMNS).collect().rows()


def test_aggregate_writes_the_flags_beside_the_iers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    aggregate.aggregate_extracts([write_extract(tmp_path / "d1", FIRST)], out)
    written = pl.read_parquet(out / signal.SIGNAL_FILE)
    assert written.schema == signal.RECIPIENT_SIGNAL_SCHEMA
    assert written.select("job_id", "batch_id").unique().rows() == [(100, 0)]
    assert flags(written) == EXPECTED_FIRST
    assert signal.engagement_signal_is_current(out)
    assert flags(signal.read_engagement_signal(out)) == EXPECTED_FIRST
    # The same rows as classifying the store's events one by one.
    events = pl.scan_parquet(out / "event_store" / "events" / "**" / "*.parquet")
    per_event = signal.recipient_signal(signal.classify_events(events)).collect()
    assert written.equals(per_event)


def test_a_stale_file_is_not_used(tmp_path: Path) -> None:
    out = tmp_path / "out"
    aggregate.aggregate_extracts([write_extract(tmp_path / "d1", FIRST)], out)
    # The next extract changes the store, but this run writes no signal: the file is stale.
    aggregate.aggregate_extracts([write_extract(tmp_path / "d2", SECOND)], out, write_signal=False)
    assert flags(pl.read_parquet(out / signal.SIGNAL_FILE)) == EXPECTED_FIRST
    assert not signal.engagement_signal_is_current(out)
    now = flags(signal.read_engagement_signal(out))
    assert now[1] == ("B", 2, 2, 0, 0, 0, 0, 0, None)  # classified again: B is a person
    assert now[0] == EXPECTED_FIRST[0] and now[2] == EXPECTED_FIRST[2]
    # Written again, it is current again and says the same.
    signal.write_engagement_signal(out / "event_store", out)
    assert signal.engagement_signal_is_current(out)
    assert flags(pl.read_parquet(out / signal.SIGNAL_FILE)) == now


def test_a_file_written_with_other_windows_is_not_used(tmp_path: Path) -> None:
    out = tmp_path / "out"
    aggregate.aggregate_extracts([write_extract(tmp_path / "d1", FIRST)], out)
    strict = signal.SignalParams(machine_open_seconds=30)
    assert not signal.engagement_signal_is_current(out, params=strict)
    b = flags(signal.read_engagement_signal(out, params=strict))[1]
    assert b == ("B", 1, 1, 0, 0, 0, 0, 0, None)  # 40 s is no machine open within 30 s


def test_cli_writes_the_signal_by_default_and_not_with_no_signal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_extract(tmp_path / "d1", FIRST)
    assert cli.main(["aggregate", str(folder), "--out", str(tmp_path / "on")]) == 0
    printed = capsys.readouterr().out
    assert (
        "engagement signal of 3 recipients who opened or clicked: 2 of 3 clicks automated, "
        "2 of 3 opens by a machine" in printed
    )
    assert flags(pl.read_parquet(tmp_path / "on" / signal.SIGNAL_FILE)) == EXPECTED_FIRST
    off = tmp_path / "off"
    assert cli.main(["aggregate", str(folder), "--out", str(off), "--no-signal"]) == 0
    assert "engagement signal" not in capsys.readouterr().out
    assert not (off / signal.SIGNAL_FILE).exists()
    assert (off / "individual_email_results.parquet").is_file()
    # Read anyway: classified from the store on demand, the same flags.
    assert flags(signal.read_engagement_signal(off)) == EXPECTED_FIRST


def test_sends_read_a_group_at_a_time_give_the_same_file(tmp_path: Path) -> None:
    events = [(k, 0.0, "Sent", None) for k in PEOPLE]
    events += [(k, 2.0 + i, "Open", None) for i, k in enumerate(PEOPLE)]
    folder = tmp_path / "x"
    folder.mkdir()
    # Three sends: the same events under SendIDs 100, 101, 102.
    for name in ("Sent.csv", "Opens.csv"):
        kind = "Sent" if name == "Sent.csv" else "Open"
        lines = [row(k, s, kind) for k, s, t, _ in events if t == kind]
        lines = [line.replace(",100,", f",{job},", 1) for job in (100, 101, 102) for line in lines]
        (folder / name).write_text("\n".join([HEAD, *lines]) + "\n")
    out = tmp_path / "out"
    aggregate.aggregate_extracts([folder], out)
    whole = pl.read_parquet(out / signal.SIGNAL_FILE)
    signal.write_engagement_signal(out / "event_store", out, limit=4)
    assert pl.read_parquet(out / signal.SIGNAL_FILE).equals(whole)
    assert whole.get_column("job_id").to_list() == [100] * 4 + [101] * 4 + [102] * 4


# --- classify_recipients: the same rows as recipient_signal(classify_events()) -----------------


def random_events(seed: int, recipients: int = 400) -> pl.DataFrame:
    """Events with the awkward cases: blank keys and batches, ties, clicks before delivery,
    links without an id, two Sent rows, several domains, bounces."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for _ in range(recipients):
        key = None if rng.random() < 0.05 else f"k{rng.randrange(recipients // 2)}"
        domain = rng.choice(["a.example", "B.example", None])
        base = {
            "job_id": rng.randrange(1, 3),
            "batch_id": rng.choice([None, 0, 1]),
            "subscriber_key": key,
            "email": None if domain is None else f"{key}@{domain}",
        }
        sent = rng.randrange(0, 600)

        def add(kind: str, seconds: int, link: int | None = None, base=base) -> None:
            rows.append(
                base
                | {
                    "event_type": kind,
                    "event_time": T0 + dt.timedelta(seconds=seconds),
                    "url": None if link is None or link == 3 else f"https://x/{link}",
                    "link_id": link if link is not None and rng.random() < 0.5 else None,
                }
            )

        if rng.random() < 0.9:
            add("Sent", sent)
        for _ in range(rng.randrange(0, 3)):
            add("Open", sent + rng.choice([rng.randrange(-3, 90), rng.randrange(0, 90_000)]))
        for _ in range(rng.randrange(0, 4)):
            seconds = rng.choice([rng.randrange(-3, 40), rng.randrange(0, 90_000), 300])
            add("Click", sent + seconds, rng.randrange(0, 4))
        if rng.random() < 0.05:
            add("Bounce", sent + 5)
    frame = pl.DataFrame(rows)
    return frame.with_columns(
        [pl.lit(None).alias(c) for c in EVENT_SCHEMA if c not in frame.columns]
    ).select([pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items()])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_classify_recipients_equals_the_per_event_path(seed: int) -> None:
    events = random_events(seed)
    expected = signal.recipient_signal(signal.classify_events(events.lazy())).collect()
    assert expected.get_column("automated_clicks").sum() > 0
    assert expected.get_column("machine_opens").sum() > 0
    for order in (events, events.sort(list(EVENT_SCHEMA), nulls_last=True), events.reverse()):
        assert signal.classify_recipients(order.lazy()).collect().equals(expected)


def test_classify_recipients_equals_the_per_event_path_on_the_demo() -> None:
    folder = demo.ensure_demo()
    with extract.open_extract(folder / "tracking_extract.zip") as files:
        kinds = ("Sent", "Open", "Click", "Bounce", "Unsub")
        events = pl.concat([extract.scan_checked(f) for f in files if f.kind in kinds]).collect()
    expected = signal.recipient_signal(signal.classify_events(events.lazy())).collect()
    assert signal.classify_recipients(events.lazy()).collect().equals(expected)
    assert expected.get_column("automated_clicks").sum() > 1000


def test_only_the_sends_whose_events_changed_are_classified_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def of_send(folder: Path, job: int) -> Path:
        for path in folder.iterdir():  # SendID is the second column of every row
            path.write_text(path.read_text().replace("\n1,100,", f"\n1,{job},"))
        return folder

    out = tmp_path / "out"
    first = [of_send(write_extract(tmp_path / f"s{job}", FIRST), job) for job in (100, 101)]
    aggregate.aggregate_extracts(first, out)
    classified: list[list[int]] = []

    def recording(events: pl.DataFrame, p: signal.SignalParams) -> pl.DataFrame:
        classified.append(sorted(events.get_column("job_id").unique().to_list()))
        return original(events, p)

    original = _written.recipients_of
    monkeypatch.setattr(_written, "recipients_of", recording)
    # The next day's extract touches send 101 only.
    aggregate.aggregate_extracts([of_send(write_extract(tmp_path / "d2", SECOND), 101)], out)
    assert classified == [[101]]
    incremental = pl.read_parquet(out / signal.SIGNAL_FILE)
    assert flags(incremental.filter(pl.col("job_id") == 100)) == EXPECTED_FIRST
    assert flags(incremental.filter(pl.col("job_id") == 101))[1] == ("B", 2, 2, 0, 0, 0, 0, 0, None)
    # The same file as classifying everything again.
    (out / signal.SIGNAL_FILE).unlink()
    signal.write_engagement_signal(out / "event_store", out)
    assert classified[-1] == [100, 101]
    assert pl.read_parquet(out / signal.SIGNAL_FILE).equals(incremental)
    # Other windows: nothing is copied.
    signal.write_engagement_signal(
        out / "event_store", out, params=signal.SignalParams(machine_open_seconds=30)
    )
    assert classified[-1] == [100, 101]
