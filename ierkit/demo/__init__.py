"""The demo org: a deterministic synthetic mid-size B2B company with Marketing Cloud Connect.

``generate`` writes a local org folder (readable by ``ierkit.orgs.LocalOrg``): the ten canonical
tables as ``<table>.parquet``, ``ground_truth.parquet`` (why each recipient of each send has or
lacks an IER), ``tracking_extract.zip`` (a Marketing Cloud Tracking Extract of the same sends)
and ``demo.json`` (parameters, counts, the list of sends). ``ensure_demo`` keeps one generated
copy per parameter set in the cache folder.

Six months of sends from the programmes (``_catalogue.PROGRAMMES``), plus three one-off sends
that plant send-level failure modes; person-level failure modes are planted at fixed rates
(``ierkit.reasons`` codes). Everything is generated with polars expressions over hash-based
randomness (``_random``), one send (or one block of up to ``BLOCK_ROWS`` recipients) at a time,
so memory stays bounded at any scale.

The generation is a chain of steps, each taking and returning frozen values:
``_population`` (users, people, campaigns, members) -> ``_schedule`` (sends, send records) ->
``_simulation`` (per send: ``_audience``, ``_sync`` allocation, engagement, ``_records`` and
``_extract_writer`` rows, written through ``_chunks``) -> ``_tables`` (finishing tables) ->
``_generate`` (files, ``demo.json``); ``_cache`` keeps generated demos by fingerprint.

Determinism: the same seed, as-of date and scale give byte-identical files (Parquet tables,
ground truth, ``demo.json`` and the extract zip) in the same environment. polars' ``hash`` is
not promised stable across polars versions, so another polars version may give other data.

Modelling choices a reader of the data should know:
- ``date_opened`` is the first open (Salesforce does not document first or last).
- A ``Block bounce`` sets ``soft_bounce`` (Marketing Cloud treats block bounces like soft ones);
  ``Hard bounce`` sets ``hard_bounce``.
- Send totals (``number_sent``, ...) are Marketing Cloud's view: they count every recipient,
  also those whose IER is missing, so totals minus IERs reveal the gap.
- The tracking sync runs hourly at minute ``SYNC_MINUTE`` and writes at most
  ``throughput_per_cycle`` IERs per cycle, first come first served; the IERs of a large send
  therefore spread over several cycles. Events after the last cycle before the as-of instant do
  not exist yet (neither in the org nor in the extract).
- Unsubscribes and hard bounces suppress the person from later sends.
"""

from __future__ import annotations

from ierkit.demo._cache import ensure_demo, fingerprint
from ierkit.demo._extract_writer import ExtractFormat
from ierkit.demo._generate import DemoError, DemoSummary, generate
from ierkit.demo._params import (
    BLOCK_ROWS,
    DEMO_AS_OF,
    DEMO_SEED,
    SYNC_MINUTE,
    SYNC_THROUGHPUT,
    as_of_instant,
)
from ierkit.demo._records import GROUND_TRUTH_SCHEMA

__all__ = [
    "BLOCK_ROWS",
    "DEMO_AS_OF",
    "DEMO_SEED",
    "GROUND_TRUTH_SCHEMA",
    "SYNC_MINUTE",
    "SYNC_THROUGHPUT",
    "DemoError",
    "DemoSummary",
    "ExtractFormat",
    "as_of_instant",
    "ensure_demo",
    "fingerprint",
    "generate",
]
