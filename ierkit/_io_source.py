"""A LazyFrame fed by Python code (``frames_source``), so that it streams like a scan.

Used where rows come from work polars cannot express as one query: the roll-up of the event
store (``ierkit.aggregate``) and a tracking file checked batch by batch (``ierkit.extract``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import polars as pl
from polars.io.plugins import register_io_source


def frames_source(
    frames: Callable[[], Iterator[pl.DataFrame]],
    schema: Mapping[str, pl.DataType],
    *,
    name: str,
    validate_schema: bool = False,
) -> pl.LazyFrame:
    """A LazyFrame whose rows are the frames ``frames()`` yields, read when it is collected.

    The filter, columns and row limit polars pushes down are applied to each frame, and the
    frames stop being read once the limit is reached.

    Args:
        frames: Called at each collect; yields frames of ``schema``.
        schema: The columns and types of the frames.
        name: What ``explain`` shows for this source.
        validate_schema: Check each frame against ``schema`` (a mismatch raises).
    """

    def read(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        remaining = n_rows
        for frame in frames():
            if predicate is not None:
                frame = frame.filter(predicate)
            if with_columns is not None:
                frame = frame.select(with_columns)
            if remaining is not None:
                frame = frame.head(remaining)
                remaining -= frame.height
            yield frame
            if remaining is not None and remaining <= 0:
                return

    return register_io_source(
        read, schema=dict(schema), validate_schema=validate_schema, explain_name=name
    )
