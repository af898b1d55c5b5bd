"""Big objects of a Salesforce org: Bulk API 2.0 insert, and reads through the index only.

Records go in through Bulk API 2.0 ingest jobs (``insert``): a record whose index values exist
already is overwritten, so inserting the same records again leaves the same records. They come
back through REST SOQL that filters on the leading index field with one ``IN`` (what big
objects answer), or with no filter at all (the whole archive, in index order). ierkit never
sends another kind of query to a big object: no ``!=``, no range before the last field, no
aggregate, no ``ORDER BY``. There is no SOQL or Bulk delete of big object records (Apex
``Database.deleteImmediate()`` only), and ierkit deletes none.

Values travel as text: booleans as Number(1, 0) (1 true, 0 false), datetimes in UTC with
milliseconds (what Salesforce stores), nulls as empty fields.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import polars as pl
from simple_salesforce.api import Salesforce
from simple_salesforce.format import format_soql

from ierkit import schema
from ierkit.metadata import NO_PARENT, BigObject, big_object
from ierkit.orgs._sf_adapter import Operation
from ierkit.orgs._sf_csv import parse
from ierkit.orgs.base import OrgError
from ierkit.orgs.salesforce import SalesforceOrg

__all__ = ["INSERT_CHUNK_RECORDS", "KEYS_PER_QUERY", "BigObjectArchive", "BigObjectError"]

#: Records per Bulk API 2.0 insert job: Salesforce processes ingest jobs in batches of 10,000;
#: 50,000 records of ~40 fields stay far below the 150 MB an upload may hold.
INSERT_CHUNK_RECORDS = 50_000
#: Index values per ``IN`` of a read: 300 Ids (about 6,300 characters) keep the query's URL
#: well under the length servers accept for a GET.
KEYS_PER_QUERY = 300
#: Bulk CSV datetimes: UTC with milliseconds (polars' ``%3f``).
_CSV_DATETIME = "%Y-%m-%dT%H:%M:%S.%3fZ"
#: The archive's own column beside the canonical ones.
RUN_ID = "run_id"


class BigObjectError(OrgError):
    """The big objects are missing or refused a request; the message says which and what to do."""


class BigObjectArchive:
    """The ierkit big objects of one Salesforce org.

    Args:
        org: The org (its session, retries and Bulk job polling are used).
        insert_chunk: Records per insert job.
        keys_per_query: Index values per ``IN`` of a read.
    """

    def __init__(
        self,
        org: SalesforceOrg,
        *,
        insert_chunk: int = INSERT_CHUNK_RECORDS,
        keys_per_query: int = KEYS_PER_QUERY,
    ) -> None:
        self.org = org
        self.insert_chunk = insert_chunk
        self.keys_per_query = keys_per_query
        self.label = f"{org.label} big objects"

    def check_deployed(self) -> None:
        """BigObjectError unless both big objects exist and the user can read them."""
        names = {n.lower() for n in self.org.sobject_names()}
        missing = [
            b.api_name
            for b in (big_object(t) for t in ("individual_email_results", "individual_links"))
            if b.api_name.lower() not in names
        ]
        if missing:
            raise BigObjectError(
                f"{self.org.label} has no big object {', '.join(missing)} the user can read: "
                "write the metadata with 'ierkit metadata --out DIR', deploy it with "
                "'sf project deploy start' from that folder, and assign the permission set "
                "Ierkit_Archive to the user"
            )

    # --- writing -------------------------------------------------------------------------------

    def insert(self, table: str, frame: pl.DataFrame, *, run_id: str) -> pl.DataFrame:
        """Insert canonical records of ``table`` (overwriting those with the same index values).

        Returns:
            ``id`` and ``error`` of each record Salesforce refused (empty when all went in).
        """
        big = big_object(table)
        records = to_big_records(big, frame.lazy(), run_id=run_id).collect()
        failures = [
            self._insert_chunk(big, records.slice(start, self.insert_chunk))
            for start in range(0, records.height, self.insert_chunk)
        ]
        return (pl.concat(failures) if failures else pl.DataFrame(schema=_FAILURE_SCHEMA)).sort(
            "id"
        )

    def _insert_chunk(self, big: BigObject, chunk: pl.DataFrame) -> pl.DataFrame:
        sobject = big.api_name
        what = f"Bulk insert into {sobject}"
        org = self.org
        job = org._call(what, lambda sf: org._bulk(sf, sobject).create_job(Operation.insert))
        job_id = job["id"]
        data = chunk.write_csv(datetime_format=_CSV_DATETIME, quote_style="necessary")
        org._call(what, lambda sf: org._bulk(sf, sobject).upload_job_data(job_id, data))
        org._call(what, lambda sf: org._bulk(sf, sobject).close_job(job_id))
        info = org._wait_for_job(sobject, job_id, is_query=False)
        if info["state"] != "JobComplete":
            # Nothing can be told apart: every record of the job counts as not inserted.
            error = f"UNPROCESSED: job {job_id} ended {info['state']}: {info.get('errorMessage')}"
            return chunk.select(id=pl.col("Record_Id__c"), error=pl.lit(error))

        def failed(sf: Salesforce) -> str:
            text: str = org._bulk(sf, sobject).get_ingest_results(job_id, "failedResults")
            return text

        text = org._call(f"{what}: failedResults", failed)
        if not text.strip():
            return pl.DataFrame(schema=_FAILURE_SCHEMA)
        rows = pl.read_csv(io.StringIO(text), infer_schema=False)
        return rows.select(id=pl.col("Record_Id__c"), error=pl.col("sf__Error")).cast(
            _FAILURE_SCHEMA
        )

    # --- reading -------------------------------------------------------------------------------

    def read(self, table: str, keys: Sequence[str]) -> pl.DataFrame:
        """The archived records whose leading index field is one of ``keys`` (canonical columns
        and ``run_id``), through index queries of ``keys_per_query`` values each."""
        big = big_object(table)
        unique = sorted(set(keys))
        frames = [
            self._query(big, big.index[0], unique[start : start + self.keys_per_query])
            for start in range(0, len(unique), self.keys_per_query)
        ]
        return pl.concat(frames) if frames else _empty(table)

    def scan(self, table: str) -> pl.DataFrame:
        """Every archived record of ``table`` (a query without a filter, in index order)."""
        return self._query(big_object(table), None, [])

    def _query(self, big: BigObject, field: str | None, keys: list[str]) -> pl.DataFrame:
        fields = ", ".join(f.api_name for f in big.fields)
        soql = format_soql("SELECT {:literal} FROM {:literal}", fields, big.api_name)
        if field is not None:
            soql += format_soql(" WHERE {:literal} IN {}", field, keys)
        what = f"SOQL on {big.api_name}"
        org = self.org
        result: dict[str, Any] = org._call(what, lambda sf: sf.query(soql))
        pages = [_from_records(big, result.get("records", []))]
        while not result.get("done", True) and result.get("nextRecordsUrl"):
            url = result["nextRecordsUrl"]

            def more(sf: Salesforce, url: str = url) -> dict[str, Any]:
                page: dict[str, Any] = sf.query_more(url, identifier_is_url=True)
                return page

            result = org._call(f"{what} (page {len(pages) + 1})", more)
            pages.append(_from_records(big, result.get("records", [])))
        return pl.concat(pages)


_FAILURE_SCHEMA = pl.Schema({"id": pl.String, "error": pl.String})


def _empty(table: str) -> pl.DataFrame:
    return schema.table(table).empty().with_columns(pl.lit(None, pl.String).alias(RUN_ID))


def to_big_records(big: BigObject, frame: pl.LazyFrame, *, run_id: str) -> pl.LazyFrame:
    """Canonical records as the big object's fields (booleans 1/0, index keys derived)."""
    columns = []
    for field in big.fields:
        if field.column is not None:
            expr = pl.col(field.column)
            dtype = schema.table(big.table).column(field.column).dtype
            if dtype == pl.Boolean:
                expr = expr.cast(pl.Int8)
            columns.append(expr.alias(field.api_name))
    keys = [
        pl.coalesce(*(pl.col(c) for c in sources), pl.lit(NO_PARENT)).alias(name)
        for name, sources in big.key_sources
    ]
    return schema.conform(big.table, frame).select(*columns, *keys, Run_Id__c=pl.lit(run_id))


def _from_records(big: BigObject, records: list[dict[str, Any]]) -> pl.DataFrame:
    """REST records of the big object back to canonical columns (plus ``run_id``)."""
    spec = schema.table(big.table)
    if not records:
        return _empty(big.table)
    flat = pl.json_normalize(records, infer_schema_length=None)
    text = pl.DataFrame(
        [
            flat.get_column(f.api_name).cast(pl.String)
            if f.api_name in flat.columns
            else pl.Series(f.api_name, [None] * len(records), pl.String)
            for f in big.fields
        ]
    )
    exprs = []
    for column in spec.columns:
        source = pl.col(big.field_for(column.name).api_name)
        if column.dtype == pl.Boolean:
            exprs.append((parse(source, pl.Int8()) == 1).alias(column.name))
        else:
            exprs.append(parse(source, column.dtype).alias(column.name))
    exprs.append(pl.col("Run_Id__c").alias(RUN_ID))
    return text.select(exprs)
