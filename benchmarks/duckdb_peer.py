"""The DuckDB peer of ``ierkit aggregate``: what a data engineer would write instead of ierkit.

Issue 17 measures ierkit's CSV/zip path against it (``benchmarks/aggregate.py``, case
``duckdb_peer``), and ``tests/test_duckdb_peer.py`` checks on the demo extract that it computes
exactly ierkit's tables, so that the benchmark's peer cannot drift from ierkit's rules.
Needs duckdb (the ``bench`` and ``test`` extras); never imported by ierkit.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import polars as pl

IER_TABLE = "individual_email_results"
LINK_TABLE = "individual_links"
#: The event files of a Tracking Extract, by event type.
_CSV_FILES = {
    "Sent": "Sent.csv",
    "Open": "Opens.csv",
    "Click": "Clicks.csv",
    "Bounce": "Bounces.csv",
    "Unsub": "Unsubs.csv",
}

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def _duckdb_person_check(key: str) -> str:
    """SQL: whether ``key`` is a valid 18-character Salesforce Id (shape and case suffix)."""
    letters = []
    for chunk in range(3):
        bits = " + ".join(
            f"(CASE WHEN ascii(substr({key}, {5 * chunk + i + 1}, 1)) BETWEEN 65 AND 90 "
            f"THEN {1 << i} ELSE 0 END)"
            for i in range(5)
        )
        letters.append(f"substr('{_ALPHABET}', 1 + {bits}, 1)")
    return (
        f"(regexp_full_match({key}, '(003|00Q)[0-9A-Za-z]{{12}}[A-Z0-5]{{3}}') "
        f"AND substr({key}, 16, 3) = {' || '.join(letters)})"
    )


def duckdb_peer(zip_path: Path, out: Path, *, threads: int | None = None) -> None:
    """IERs and link details from a Tracking Extract zip with one DuckDB query per table.

    The peer the issue measures ierkit against: unzip, read the five CSV files, parse Marketing
    Cloud's ``M/D/YYYY h:mm:ss AM`` dates (fixed UTC-6), group by JobID/BatchID/SubscriberKey
    (and SubscriberID, for blank keys) with Marketing Cloud Connect's rules as
    ``ierkit.aggregate`` states them, join the SendJobs details, write both tables to Parquet
    (``individual_email_results.parquet``, ``individual_links.parquet`` in ``out``) with the
    same columns and types. No store, no validation, no deduplication across extracts.
    """
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="duckdb-peer-", dir=out) as tmp:
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(tmp)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        if threads:
            con.execute(f"SET threads = {threads}")
        files = {kind: Path(tmp) / name for kind, name in _CSV_FILES.items()}
        types = {
            "SendID": "BIGINT",
            "SubscriberID": "BIGINT",
            "ListID": "BIGINT",
            "BatchID": "BIGINT",
            "SendURLID": "BIGINT",
            "URLID": "BIGINT",
        }
        hard = "lower(regexp_extract(trim(BounceCategory), '^([A-Za-z]+)', 1)) = 'hard'"
        selects = []
        for kind, path in files.items():
            if not path.exists():
                continue
            click = kind == "Click"
            selects.append(
                f"SELECT SendID AS job_id, coalesce(BatchID, 0) AS batch_id, "
                f"nullif(trim(SubscriberKey), '') AS subscriber_key, "
                f"SubscriberID AS subscriber_id, ListID AS list_id, '{kind}' AS kind, "
                # Marketing Cloud's dates are in its fixed UTC-6.
                f"(strptime(trim(EventDate), '%m/%d/%Y %I:%M:%S %p') + INTERVAL 6 HOUR)"
                f"::TIMESTAMPTZ AS t, "
                f"{'URL' if click else 'NULL::VARCHAR'} AS url, "
                f"{'Alias' if click else 'NULL::VARCHAR'} AS link_name, "
                f"{'coalesce(SendURLID, URLID)' if click else 'NULL::BIGINT'} AS link_id, "
                f"{hard if kind == 'Bounce' else 'false'} AS hard "
                f"FROM read_csv('{path}', header = true, auto_detect = false, "
                f"delim = ',', quote = '\"', escape = '\"', "
                f"columns = {{{_columns(path, types)}}})"
            )
        con.execute(f"CREATE TEMP VIEW events AS {' UNION ALL '.join(selects)}")
        jobs = Path(tmp) / "SendJobs.csv"
        if jobs.exists():
            con.execute(
                f"CREATE TEMP TABLE jobs AS SELECT DISTINCT ON (SendID) SendID AS job_id, "
                f"trim(EmailName) AS name, trim(FromName) AS from_name, "
                f"trim(FromEmail) AS from_address, trim(Subject) AS subject_line "
                f"FROM read_csv('{jobs}', header = true, all_varchar = true) "
                f"WHERE SendID IS NOT NULL"
            )
        else:
            con.execute(
                "CREATE TEMP TABLE jobs (job_id BIGINT, name VARCHAR, from_name VARCHAR, "
                "from_address VARCHAR, subject_line VARCHAR)"
            )
        ier_id = (
            "job_id::VARCHAR || '-' || coalesce(batch_id::VARCHAR, '') || '-' || "
            "coalesce(subscriber_key, '#' || coalesce(subscriber_id::VARCHAR, ''))"
        )
        key = "job_id, batch_id, subscriber_key, subscriber_id"
        valid = _duckdb_person_check("subscriber_key")
        con.execute(
            f"""
            COPY (
              WITH rolled AS (
                SELECT {key},
                  coalesce(arg_min(list_id, t) FILTER (kind = 'Sent'), arg_min(list_id, t))
                    AS list_id,
                  min(t) FILTER (kind = 'Sent') AS date_sent,
                  count(*) FILTER (kind = 'Open') AS opens,
                  max(t) FILTER (kind = 'Open') AS last_open,
                  count(*) FILTER (kind = 'Click') AS total_clicks,
                  count(DISTINCT coalesce('#' || link_id::VARCHAR, url)) FILTER (kind = 'Click')
                    AS unique_clicks,
                  min(t) FILTER (kind IN ('Open', 'Click')) AS date_opened,
                  coalesce(bool_or(hard), false) AS hard_bounce,
                  min(t) FILTER (kind = 'Bounce') AS date_bounced,
                  min(t) FILTER (kind = 'Unsub') AS date_unsubscribed,
                  max(t) AS tracking_as_of
                FROM events GROUP BY ALL
              )
              SELECT {ier_id} AS id, jobs.name,
                CASE WHEN {valid} AND subscriber_key[1:3] = '003' THEN subscriber_key END
                  AS contact_id,
                CASE WHEN {valid} AND subscriber_key[1:3] = '00Q' THEN subscriber_key END
                  AS lead_id,
                NULL::VARCHAR AS email_send_id, NULL::VARCHAR AS triggered_send_id,
                NULL::VARCHAR AS campaign_member_id, NULL::VARCHAR AS merge_id,
                job_id, batch_id, list_id, subscriber_id, subscriber_key,
                jobs.from_name, jobs.from_address, jobs.subject_line,
                date_sent, opens + total_clicks > 0 AS opened, date_opened,
                (CASE WHEN opens = 0 AND total_clicks > 0 THEN 1 ELSE opens END)::INTEGER
                  AS open_count,
                CASE WHEN opens = 0 AND total_clicks > 0 THEN date_opened ELSE last_open END
                  AS last_opened,
                total_clicks::INTEGER AS total_clicks, unique_clicks::INTEGER AS unique_clicks,
                unique_clicks > 0 AS clicked, hard_bounce,
                date_bounced IS NOT NULL AND NOT hard_bounce AS soft_bounce, date_bounced,
                date_unsubscribed IS NOT NULL AS unsubscribed, date_unsubscribed,
                tracking_as_of, date_sent AS created_date, NULL::TIMESTAMPTZ AS system_modstamp
              FROM rolled LEFT JOIN jobs USING (job_id)
            ) TO '{out / (IER_TABLE + ".parquet")}' (FORMAT parquet)
            """
        )
        con.execute(
            f"""
            COPY (
              WITH links AS (
                SELECT {key}, link_id, max(url) AS url, max(link_name) AS link_name,
                  count(*) AS total_clicks, max(t) AS last_clicked, min(t) AS created_date
                FROM events WHERE kind = 'Click'
                GROUP BY {key}, link_id, CASE WHEN link_id IS NULL THEN url END
              )
              SELECT concat_ws('|', {ier_id}, coalesce(url, ''), link_id::VARCHAR) AS id,
                {ier_id} AS individual_email_result_id, job_id, batch_id, subscriber_key,
                url AS link_url, link_name, total_clicks::INTEGER AS total_clicks,
                last_clicked, link_id::VARCHAR AS exact_target_link_id,
                concat_ws('|', {ier_id}, coalesce(url, ''), link_id::VARCHAR) AS unique_link_id,
                created_date, NULL::TIMESTAMPTZ AS system_modstamp
              FROM links
            ) TO '{out / (LINK_TABLE + ".parquet")}' (FORMAT parquet)
            """
        )
        con.close()


def _columns(path: Path, types: dict[str, str]) -> str:
    """DuckDB's ``columns`` for a CSV file: every header name, typed where ``types`` says."""
    with path.open(encoding="utf-8-sig") as f:
        header = f.readline().rstrip("\r\n").split(",")
    return ", ".join(f"'{name}': '{types.get(name, 'VARCHAR')}'" for name in header)


def peer_equals(ours: Path, theirs: Path) -> bool:
    """Whether two output folders hold the same IER and link tables (schema, rows, values)."""
    for name in (IER_TABLE, LINK_TABLE):
        a = pl.read_parquet(ours / f"{name}.parquet").sort("id")
        b = pl.read_parquet(theirs / f"{name}.parquet").sort("id")
        if a.schema != b.schema or not a.equals(b):
            return False
    return True
