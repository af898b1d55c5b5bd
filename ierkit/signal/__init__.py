"""Engagement you can trust: suspected automated clicks and machine opens set apart.

Security gateways follow every link of an email within seconds of delivery (Salesforce KB
000271790) and Apple Mail Privacy Protection loads the open pixel on delivery (KB 000389505).
This package flags both, with the reason in words, beside the facts (nothing is dropped):

- ``classify_events`` / ``recipient_signal``: from tracking-extract events (exact times, e.g.
  ``ierkit.store.scan_events``), per event and per recipient of a send.
- ``classify_recipients``: the same per recipient straight from events, without a row per
  event (fast: what ``ierkit aggregate`` writes beside the IERs, ``engagement_signal.parquet``;
  ``read_engagement_signal`` reads it back when it is current, else classifies the store).
- ``classify_iers``: from the org alone (IERs and link details), per IER.
- ``engagement_score``: a transparent, deterministic score per Contact and Lead (recency-weighted
  human clicks by link intent, human opens at a low weight, machine opens and automated clicks at
  none), with an explanation in words.

Every window, count and weight is a field of ``SignalParams`` (frozen; defaults documented).
Reports (``ierkit.reports``) count human engagement; ``reports.suspected_automated_clicks``
lists the rest.
"""

from ierkit.signal._events import (
    EVENT_SIGNAL_SCHEMA,
    RECIPIENT_KEYS,
    RECIPIENT_SIGNAL_SCHEMA,
    classify_events,
    classify_recipients,
    recipient_signal,
)
from ierkit.signal._org import IER_SIGNAL_SCHEMA, classify_iers
from ierkit.signal._params import DEFAULT_LINK_WEIGHTS, SignalParams
from ierkit.signal._score import engagement_score, intent_weight
from ierkit.signal._written import (
    SIGNAL_FILE,
    SignalWritten,
    describe_written,
    engagement_signal_is_current,
    read_engagement_signal,
    store_state,
    write_engagement_signal,
)

__all__ = [
    "DEFAULT_LINK_WEIGHTS",
    "EVENT_SIGNAL_SCHEMA",
    "IER_SIGNAL_SCHEMA",
    "RECIPIENT_KEYS",
    "RECIPIENT_SIGNAL_SCHEMA",
    "SIGNAL_FILE",
    "SignalParams",
    "SignalWritten",
    "classify_events",
    "classify_iers",
    "classify_recipients",
    "describe_written",
    "engagement_score",
    "engagement_signal_is_current",
    "intent_weight",
    "read_engagement_signal",
    "recipient_signal",
    "store_state",
    "write_engagement_signal",
]
