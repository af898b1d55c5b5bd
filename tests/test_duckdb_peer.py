"""The benchmark's DuckDB peer (``benchmarks/duckdb_peer.py``) computes exactly ierkit's tables.

Issue 17 measures ``ierkit aggregate`` against this peer; the ratio means something only while
the peer applies the same rules, so it is checked here on the demo's Tracking Extract.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

from ierkit import aggregate

PEER_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "duckdb_peer.py"


@pytest.fixture(scope="module")
def peer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ierkit_bench_duckdb_peer", PEER_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def outputs(
    peer: ModuleType, demo_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    zip_path = demo_path / "tracking_extract.zip"
    ours = tmp_path_factory.mktemp("ierkit")
    theirs = tmp_path_factory.mktemp("peer")
    aggregate.aggregate_extracts([zip_path], ours)
    peer.duckdb_peer(zip_path, theirs)
    return ours, theirs


@pytest.mark.slow
def test_the_duckdb_peer_writes_ierkits_tables_on_the_demo_extract(
    peer: ModuleType, outputs: tuple[Path, Path]
) -> None:
    ours, theirs = outputs
    iers = pl.read_parquet(theirs / f"{aggregate.IER_TABLE}.parquet")
    links = pl.read_parquet(theirs / f"{aggregate.LINK_TABLE}.parquet")
    # The demo's extract: every rule has rows to apply to.
    assert iers.height > 250_000 and links.height > 10_000
    counts = iers.select(
        pl.col("contact_id").is_not_null().sum(),
        pl.col("lead_id").is_not_null().sum(),
        pl.col("date_sent").is_null().sum(),
        (
            pl.col("opened")
            & (pl.col("open_count") == 1)
            & pl.col("last_opened").eq(pl.col("date_opened"))
        ).sum(),
        pl.col("hard_bounce").sum(),
        pl.col("soft_bounce").sum(),
        pl.col("unsubscribed").sum(),
        pl.col("name").is_not_null().sum(),
    ).row(0)
    assert all(count > 0 for count in counts), counts
    assert peer.peer_equals(ours, theirs)


@pytest.mark.slow
def test_the_comparison_sees_one_changed_value(
    peer: ModuleType, outputs: tuple[Path, Path], tmp_path: Path
) -> None:
    ours, theirs = outputs
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / f"{aggregate.LINK_TABLE}.parquet").write_bytes(
        (theirs / f"{aggregate.LINK_TABLE}.parquet").read_bytes()
    )
    iers = pl.read_parquet(theirs / f"{aggregate.IER_TABLE}.parquet").sort("id")
    iers = iers.with_columns(
        total_clicks=pl.when(pl.int_range(pl.len()) == 1000)
        .then(pl.col("total_clicks") + 1)
        .otherwise(pl.col("total_clicks"))
    )
    iers.write_parquet(changed / f"{aggregate.IER_TABLE}.parquet")
    assert not peer.peer_equals(ours, changed)
