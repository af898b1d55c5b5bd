"""Sync health: what Marketing Cloud sent against the Individual Email Results the org holds.

Every Sent row of a tracking extract (one per recipient per send and batch) is matched to the
org's IER for the same send and recipient, and every recipient without one gets exactly one
reason from ``ierkit.reasons``. IERs from an org carry no Subscriber Key, so a Sent row
(``job_id``, ``batch_id``, ``subscriber_key``) matches an IER with the same ``job_id`` and
``batch_id`` whose Contact or Lead is the key (in its 18-character form).

Reasons, in order of precedence (the first that applies wins):

1. The IER exists: ``healthy``, or ``lead_converted`` when the key is a Lead that has since been
   converted (the IER stays on the Lead; counted as matched, reported apart).
2. Send level: ``not_salesforce_audience`` (the send has no Email Send record and no IER in the
   org: an imported audience), ``tracking_off`` (the send's individual tracking is switched off).
3. Key level: ``email_key``, ``id15_key`` (the 18-character form is a Contact or Lead of the
   org), ``unknown_id`` (an Id of no Contact or Lead in the org).
4. ``deduplicated`` (not from a Sent row: a Contact or Lead with no Sent row that shares the
   address of a recipient who was sent to on an Email Send with "Dedupe Subscribers" on;
   ``detail`` names that recipient; triggered sends never deduplicate; ``_dedupe``).
5. ``in_sync_window``: the send (or triggered-send batch) is younger than the grace period, or
   the sync model says its IERs cannot all have arrived yet.
6. ``unexplained``.

The sync model: the Marketing Cloud Connect sync runs in cycles (hourly or daily, a package
setting) and writes at most so many IERs per cycle. The throughput is estimated from the org's
own IERs (``estimate_throughput``): IER ``created_date`` is bucketed into cycles, and a cycle
counts as a full one when some send still had IERs left for a later cycle. A send younger than
the grace period (default 2 hours) is never called broken.

Subscribers deleted in Marketing Cloud have no Sent row, and their later opens and clicks come
with a blank Subscriber Key: they are counted per send as unattributable events
(``deleted_in_marketing_cloud``), never turned into recipients.

Modules (private; everything public is here): ``_throughput`` (the sync throughput model),
``_matching`` (recipients to IERs, one reason each), ``_coverage`` (per send, per reason, the keys
to fix), ``_diagnosis`` (all of it from an org and an extract, and the summary in words). The
chart of missing IERs per reason is ``ierkit.charts.missing_by_reason_chart``; the command is
``ierkit sync-health`` (also ``ierkit diagnose``).
"""

from ierkit.sync_health._coverage import (
    KEY_REASONS,
    SEND_COMPLETE,
    SEND_INCOMPLETE,
    SEND_NOT_SALESFORCE,
    SEND_SYNCING,
    SEND_TRACKING_OFF,
    fixable_records,
    missing_by_reason,
    send_coverage,
)
from ierkit.sync_health._dedupe import deduplicated_recipients
from ierkit.sync_health._diagnosis import (
    Diagnosis,
    default_extract,
    diagnose,
    read_tracking,
    resolve_as_of,
    summary_text,
)
from ierkit.sync_health._matching import (
    MATCHED,
    MISSING,
    ON_CONVERTED_LEAD,
    RECIPIENT_SCHEMA,
    match_recipients,
    sent_rows,
    unattributable_events,
)
from ierkit.sync_health._throughput import (
    CYCLES,
    Cycle,
    MatchingError,
    ThroughputEstimate,
    estimate_throughput,
)

__all__ = [
    "CYCLES",
    "KEY_REASONS",
    "MATCHED",
    "MISSING",
    "ON_CONVERTED_LEAD",
    "RECIPIENT_SCHEMA",
    "SEND_COMPLETE",
    "SEND_INCOMPLETE",
    "SEND_NOT_SALESFORCE",
    "SEND_SYNCING",
    "SEND_TRACKING_OFF",
    "Cycle",
    "Diagnosis",
    "MatchingError",
    "ThroughputEstimate",
    "deduplicated_recipients",
    "default_extract",
    "diagnose",
    "estimate_throughput",
    "fixable_records",
    "match_recipients",
    "missing_by_reason",
    "read_tracking",
    "resolve_as_of",
    "send_coverage",
    "sent_rows",
    "summary_text",
    "unattributable_events",
]
