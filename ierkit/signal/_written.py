"""The engagement signal ``ierkit aggregate`` writes beside the IERs, and reading it back.

``<out>/engagement_signal.parquet`` holds ``classify_recipients`` of the whole event store: one
row per recipient of a send with an open or a click, the human and machine counts and the
reasons in words. Its Parquet metadata names the store state it was computed from (per send, a
fingerprint of the path, size and modification time of each event file: the store replaces a
send's files whenever its events change) and the rules' parameters. A reader takes the file
only when both still match; otherwise it classifies the store's events again, so a file left
behind by a run with ``--no-signal``, by a killed run or by other parameters is never used. A
writer classifies again only the sends whose fingerprint changed and copies the others' rows,
as the IER tables are written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Final

import polars as pl

from ierkit import _files
from ierkit import store as event_store
from ierkit._store_layout import folder_files
from ierkit.signal._events import (
    RECIPIENT_SIGNAL_SCHEMA,
    classify_recipients,
    events_input,
    recipients_of,
)
from ierkit.signal._params import SignalParams

#: The file beside ``individual_email_results.parquet``.
SIGNAL_FILE: Final = event_store.SIGNAL_FILE
_STATE_KEY: Final = "ierkit.store_state"
_PARAMS_KEY: Final = "ierkit.signal_params"
_JOBS_KEY: Final = "ierkit.send_states"
# The parameters the event rules read (the score's weights do not change the flags).
_RULE_PARAMS: Final = (
    "scanner_seconds",
    "burst_seconds",
    "burst_min_links",
    "domain_min_recipients",
    "machine_open_seconds",
)


@dataclasses.dataclass(frozen=True)
class SignalWritten:
    """What ``write_engagement_signal`` wrote.

    Attributes:
        path: The file.
        recipients: Recipients with an open or a click.
        automated_clicks: Clicks flagged automated.
        machine_opens: Opens flagged automated or possible machine opens.
    """

    path: Path
    recipients: int
    automated_clicks: int
    machine_opens: int


def _job_states(store: str | os.PathLike[str]) -> dict[int, str]:
    """Per send: a fingerprint of the event files of its folder (path, size and change time).

    The sends of a pack share one: a pack rewritten for one of them classifies them all again.
    """
    base = event_store.events_dir(store)
    states = {}
    for folder in event_store.stored_folders(base):
        digest = hashlib.sha256()
        for path in folder_files(base, folder):
            stat = path.stat()
            digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        states.update(dict.fromkeys(folder.jobs, digest.hexdigest()))
    return states


def _states_text(states: dict[int, str]) -> str:
    return json.dumps({str(job): state for job, state in sorted(states.items())})


def store_state(store: str | os.PathLike[str]) -> str:
    """A fingerprint of the store's events: every event file's path, size and change time."""
    return hashlib.sha256(_states_text(_job_states(store)).encode()).hexdigest()


def _params_text(params: SignalParams) -> str:
    return json.dumps({name: getattr(params, name) for name in _RULE_PARAMS}, sort_keys=True)


def _default_store(out: Path) -> Path:
    """The store ``aggregate`` wrote ``out`` from: its marker's, else ``<out>/event_store``."""
    try:
        marker = json.loads((out / event_store.OUTPUT_MARKER).read_text())
        return Path(marker["store"])
    except (OSError, ValueError, KeyError, TypeError):
        return out / "event_store"


def write_engagement_signal(
    store: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    params: SignalParams | None = None,
    limit: int = event_store.MAX_EVENTS_PER_GROUP,
) -> SignalWritten:
    """Classify the store's events per recipient and write ``<out>/engagement_signal.parquet``.

    Run by ``ierkit aggregate`` (under the store's lock) after the IERs are written. Only the
    sends whose event files changed since the file was last written (with the same parameters)
    are classified again; the others' rows are copied, as the IER tables do. Sends are read a
    group at a time (``limit`` events), so memory is bounded by the group.

    Args:
        store: The event store folder.
        out: The output folder (beside the IERs).
        params: Windows and counts; the defaults when None.
        limit: Events read at once (a send larger than this is read alone).

    Returns:
        The file and its totals.
    """
    p = params or SignalParams()
    path = Path(out) / SIGNAL_FILE
    states = _job_states(store)
    kept, same = _unchanged(path, states, p)
    changed = sorted(set(states) - same)
    base = event_store.events_dir(store)
    in_files = event_store.rows_per_job(event_store.job_files(base, changed))
    sizes = {job_id: in_files[job_id] for job_id in changed if job_id in in_files}
    parts = [kept] + [
        recipients_of(events_input(event_store.scan_events(store, job_ids=group)).collect(), p)
        for group in event_store.plan_groups(sizes, limit=limit)
    ]
    frame = pl.concat(parts)
    if kept.height:  # copied and classified sends interleave; each part holds whole sends
        frame = frame.sort("job_id", maintain_order=True)
    text = _states_text(states)
    _files.write_parquet(
        frame,
        path,
        compression="zstd",
        compression_level=1,
        metadata={
            _STATE_KEY: hashlib.sha256(text.encode()).hexdigest(),
            _JOBS_KEY: text,
            _PARAMS_KEY: _params_text(p),
        },
    )
    totals = frame.select(pl.col("automated_clicks").sum(), pl.col("machine_opens").sum())
    return SignalWritten(path, frame.height, int(totals.item(0, 0)), int(totals.item(0, 1)))


def _unchanged(
    path: Path, states: dict[int, str], params: SignalParams
) -> tuple[pl.DataFrame, set[int]]:
    """The sends whose events are as when ``path`` was written with ``params``, and their
    rows; none when there is no such file."""
    nothing = (pl.DataFrame(schema=RECIPIENT_SIGNAL_SCHEMA), set[int]())
    try:
        data = path.read_bytes()
        metadata = pl.read_parquet_metadata(io.BytesIO(data))
        before = {int(job): state for job, state in json.loads(metadata[_JOBS_KEY]).items()}
        frame = pl.read_parquet(io.BytesIO(data))
    except (OSError, KeyError, ValueError, TypeError, pl.exceptions.PolarsError):
        return nothing  # none, from an earlier version, or unreadable: classify everything
    if metadata.get(_PARAMS_KEY) != _params_text(params) or frame.schema != RECIPIENT_SIGNAL_SCHEMA:
        return nothing
    same = {job for job, state in states.items() if before.get(job) == state}
    return frame.filter(pl.col("job_id").is_in(sorted(same))), same


def describe_written(out: str | os.PathLike[str]) -> str:
    """One line for people on ``<out>/engagement_signal.parquet``: what it set apart."""
    path = Path(out) / SIGNAL_FILE
    totals = (
        pl.scan_parquet(path)
        .select(
            pl.len(),
            pl.col("clicks").sum(),
            pl.col("automated_clicks").sum(),
            pl.col("opens").sum(),
            pl.col("machine_opens").sum(),
        )
        .collect()
        .row(0)
    )
    recipients, clicks, automated, opens, machine = (int(value or 0) for value in totals)
    return (
        f"engagement signal of {recipients:,} recipients who opened or clicked: "
        f"{automated:,} of {clicks:,} clicks automated, {machine:,} of {opens:,} opens by a "
        f"machine (per recipient, with the reasons, in {path})"
    )


def _current(out: Path, store: Path, params: SignalParams) -> pl.DataFrame | None:
    """The written file's rows when it matches the store's state and ``params``, else None."""
    try:
        data = (out / SIGNAL_FILE).read_bytes()  # one read: metadata and rows of one version
    except FileNotFoundError:
        return None
    metadata = pl.read_parquet_metadata(io.BytesIO(data))
    if metadata.get(_PARAMS_KEY) != _params_text(params):
        return None
    if metadata.get(_STATE_KEY) != store_state(store):
        return None
    return pl.read_parquet(io.BytesIO(data))


def engagement_signal_is_current(
    out: str | os.PathLike[str],
    *,
    store: str | os.PathLike[str] | None = None,
    params: SignalParams | None = None,
) -> bool:
    """Whether ``<out>/engagement_signal.parquet`` was written from the store as it is now.

    Args:
        out: The aggregate output folder.
        store: The event store; the one ``aggregate`` recorded for ``out`` when None.
        params: Windows and counts; the defaults when None.
    """
    out_path = Path(out)
    store_path = _default_store(out_path) if store is None else Path(store)
    return _current(out_path, store_path, params or SignalParams()) is not None


def read_engagement_signal(
    out: str | os.PathLike[str],
    *,
    store: str | os.PathLike[str] | None = None,
    params: SignalParams | None = None,
) -> pl.LazyFrame:
    """The store's engagement signal per recipient: the written file when current, else now.

    Args:
        out: The aggregate output folder.
        store: The event store; the one ``aggregate`` recorded for ``out`` when None.
        params: Windows and counts; the defaults when None.

    Returns:
        ``RECIPIENT_SIGNAL_SCHEMA`` rows (``classify_recipients``), sorted by the three keys.
    """
    out_path = Path(out)
    store_path = _default_store(out_path) if store is None else Path(store)
    p = params or SignalParams()
    written = _current(out_path, store_path, p)
    if written is not None:
        return written.lazy()
    return classify_recipients(event_store.scan_events(store_path), p)
