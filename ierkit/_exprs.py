"""Small polars expressions that several modules compute the same way."""

from __future__ import annotations

import polars as pl


def rate(numerator: str, denominator: str) -> pl.Expr:
    """``numerator / denominator`` as a fraction, null where the denominator is zero or null.

    A rate over nothing is unknown, not zero: a send with no deliveries has no open rate.
    """
    return (
        pl.when(pl.col(denominator) > 0)
        .then(pl.col(numerator) / pl.col(denominator))
        .otherwise(None)
    )
