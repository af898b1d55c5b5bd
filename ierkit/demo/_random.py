"""Building blocks of the demo generator: seeded hash randomness and synthetic Salesforce Ids.

Everything here is vectorised: a random draw is a hash of a row key, so one expression gives a
whole column of draws and the same key always gives the same draw, whatever the chunking.

polars' ``Expr.hash`` is stable within one polars version but not promised across versions: the
demo is byte-identical for the same seed in the same environment, and may differ after a polars
upgrade.
"""

from __future__ import annotations

import hashlib
from typing import Final

import polars as pl
from polars.expr.whenthen import ChainedThen, Then

from ierkit.ids import SUFFIX_ALPHABET

# Base-62 digits in ASCII order, so that sorting Ids as text sorts them by their counter.
_BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TRIPLE_SPAN: Final = 62**3
# Every 3-digit base-62 string, and the uppercase bits of each (bit j: character j is A-Z).
_TRIPLES: Final = pl.Series(
    "triples", [a + b + c for a in _BASE62 for b in _BASE62 for c in _BASE62], dtype=pl.String
)
_TRIPLE_UPPER: Final = pl.Series(
    "upper",
    [
        int("A" <= a <= "Z") | int("A" <= b <= "Z") << 1 | int("A" <= c <= "Z") << 2
        for a in _BASE62
        for b in _BASE62
        for c in _BASE62
    ],
    dtype=pl.Int64,
)
_SUFFIX: Final = pl.Series("suffix", list(SUFFIX_ALPHABET), dtype=pl.String)
#: Largest counter an Id can carry (six base-62 digits).
MAX_COUNTER: Final = 62**6 - 1
_INV_2_53: Final = 1.0 / 2.0**53


def salt(seed: int, *parts: object) -> int:
    """A 64-bit hash seed for one random stream, from the demo seed and the stream's name.

    Uses BLAKE2 (not Python's ``hash``, which changes per process) so streams are reproducible.
    """
    text = "|".join([str(seed), *(str(p) for p in parts)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def uniform(key: pl.Expr, stream_salt: int) -> pl.Expr:
    """A uniform draw in [0, 1) per row, fixed by the row key and the stream."""
    return (key.hash(seed=stream_salt) // 2048).cast(pl.Float64) * _INV_2_53


def exponential(key: pl.Expr, stream_salt: int, mean: float) -> pl.Expr:
    """An exponential draw with the given mean per row."""
    return -(1.0 - uniform(key, stream_salt)).log() * mean


def geometric_extra(key: pl.Expr, stream_salt: int, mean: float, cap: int) -> pl.Expr:
    """A whole number >= 0 (roughly geometric with the given mean), capped at ``cap``."""
    return exponential(key, stream_salt, mean).floor().cast(pl.Int64).clip(0, cap)


def pick(u: pl.Expr, values: list[str], weights: list[float] | None = None) -> pl.Expr:
    """Map a uniform draw to one of ``values`` (equal weights unless given)."""
    weights = weights or [1.0] * len(values)
    total = sum(weights)
    expr: Then | ChainedThen | None = None
    cumulative = 0.0
    for value, weight in zip(values[:-1], weights[:-1], strict=True):
        cumulative += weight / total
        expr = (pl.when(u < cumulative) if expr is None else expr.when(u < cumulative)).then(
            pl.lit(value)
        )
    if expr is None:
        return pl.lit(values[-1])
    return expr.otherwise(pl.lit(values[-1]))


def index_pick(u: pl.Expr, values: list[str]) -> pl.Expr:
    """Map a uniform draw to one of many equally likely ``values`` (a lookup, not a chain)."""
    table = pl.Series(values, dtype=pl.String)
    return pl.lit(table).gather((u * len(values)).floor().cast(pl.Int64).clip(0, len(values) - 1))


def sf_ids(prefix: str, counter: pl.Expr) -> pl.Expr:
    """Valid 18-character Salesforce Ids from a counter column.

    The 15-character Id is ``prefix`` (3 characters) + the pod ``"Dn"`` + ``"0000"`` + the
    counter in six base-62 digits; the case suffix is computed arithmetically from the digits.

    Args:
        prefix: The object's 3-character key prefix (``"003"``).
        counter: Int64 counter, 0 <= counter <= MAX_COUNTER.
    """
    head = f"{prefix}Dn0000"
    assert len(head) == 9
    high = counter // _TRIPLE_SPAN
    low = counter % _TRIPLE_SPAN
    upper_high = pl.lit(_TRIPLE_UPPER).gather(high)
    upper_low = pl.lit(_TRIPLE_UPPER).gather(low)
    bits0 = sum(1 << j for j, ch in enumerate(head[:5]) if "A" <= ch <= "Z")
    bits1_const = sum(1 << j for j, ch in enumerate(head[5:9]) if "A" <= ch <= "Z")
    # Chunk 2 is head[5:9] + the first digit of ``high``; chunk 3 is the rest of ``high`` + ``low``.
    bits1 = pl.lit(bits1_const, dtype=pl.Int64) + (upper_high % 2) * 16
    bits2 = upper_high // 2 + upper_low * 4
    return pl.concat_str(
        [
            pl.lit(head),
            pl.lit(_TRIPLES).gather(high),
            pl.lit(_TRIPLES).gather(low),
            pl.lit(SUFFIX_ALPHABET[bits0]),
            pl.lit(_SUFFIX).gather(bits1),
            pl.lit(_SUFFIX).gather(bits2),
        ]
    )


def sf_id(prefix: str, counter: int) -> str:
    """One Id, as ``sf_ids`` would make it (for the handful of users and campaigns)."""
    return str(pl.select(sf_ids(prefix, pl.lit(counter, dtype=pl.Int64))).item())


def counter_start(seed: int, name: str) -> int:
    """Where an object's Id counter starts: far enough in that Ids carry letters, like real ones."""
    return 62**5 * 3 + salt(seed, "counter", name) % (62**5)
