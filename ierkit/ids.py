"""Salesforce record Ids: 15 to 18 characters, validity, object type, and Subscriber Key kinds.

An 18-character Id is the 15-character case-sensitive Id plus a 3-character suffix that encodes
the case of the first 15: for each chunk of 5 characters, bit j is set where character j is an
uppercase A-Z, and the suffix letter is ``SUFFIX_ALPHABET[bits]``.
"""

from __future__ import annotations

import re
from typing import Final

import polars as pl

SUFFIX_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

#: Standard key prefixes (first three characters of an Id). Custom objects' vary per org.
KEY_PREFIXES: Final[dict[str, str]] = {
    "001": "Account",
    "003": "Contact",
    "005": "User",
    "00G": "Group",
    "00Q": "Lead",
    "00T": "Task",
    "00U": "Event",
    "00v": "CampaignMember",
    "006": "Opportunity",
    "701": "Campaign",
}

# Subscriber Key kinds returned by ``classify_subscriber_key``.
KEY_CONTACT_OR_LEAD_ID: Final = "contact_or_lead_id"
KEY_ID15: Final = "id15"
KEY_EMAIL: Final = "email"
KEY_OTHER: Final = "other"
KEY_BLANK: Final = "blank"

_ID15 = re.compile(r"^[0-9A-Za-z]{15}$")
_ID18 = re.compile(r"^[0-9A-Za-z]{15}[A-Z0-5]{3}$")
# Deliberately loose: Subscriber Keys that look like an address, not RFC 5322 validation.
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _suffix(id15: str) -> str:
    letters = []
    for start in range(0, 15, 5):
        bits = 0
        for j, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << j
        letters.append(SUFFIX_ALPHABET[bits])
    return "".join(letters)


def is_valid_id(record_id: str | None) -> bool:
    """Whether ``record_id`` is a well-formed Salesforce Id.

    A 15-character Id must be alphanumeric; an 18-character Id must also carry the suffix that
    matches the case of its first 15 characters.
    """
    if not isinstance(record_id, str):
        return False
    if _ID15.match(record_id):
        return True
    return bool(_ID18.match(record_id)) and _suffix(record_id[:15]) == record_id[15:]


def to_18(record_id: str) -> str:
    """The 18-character form of a Salesforce Id.

    Args:
        record_id: A 15- or 18-character Id.

    Returns:
        The 18-character Id (an 18-character input is checked and returned unchanged).

    Raises:
        ValueError: When ``record_id`` is not a well-formed Id.
    """
    if not is_valid_id(record_id):
        raise ValueError(f"{record_id!r} is not a 15- or 18-character Salesforce Id")
    return record_id if len(record_id) == 18 else record_id + _suffix(record_id)


def to_18_expr(column: str | pl.Expr) -> pl.Expr:
    """Vectorised ``to_18`` over a string column.

    15-character alphanumeric values get their suffix; 18-character values pass unchanged;
    anything else (blank, wrong length, other characters) becomes null.
    """
    expr = pl.col(column) if isinstance(column, str) else column
    is15 = expr.str.contains(r"^[0-9A-Za-z]{15}$")
    is18 = expr.str.contains(r"^[0-9A-Za-z]{15}[A-Z0-5]{3}$")
    letters = []
    for start in range(0, 15, 5):
        bits = pl.lit(0, dtype=pl.UInt8)
        for j in range(5):
            char = expr.str.slice(start + j, 1)
            upper = char.str.contains(r"^[A-Z]$").cast(pl.UInt8)
            bits = bits + upper * (1 << j)
        letters.append(
            bits.replace_strict(list(range(32)), list(SUFFIX_ALPHABET), return_dtype=pl.String)
        )
    suffixed = pl.concat_str([expr, *letters])
    return pl.when(is15).then(suffixed).when(is18).then(expr).otherwise(None)


def object_type(record_id: str | None) -> str | None:
    """The object an Id belongs to, from its key prefix (``"Contact"`` for ``003...``).

    Returns:
        The object name, or None for an unknown prefix or a value that is not an Id.
    """
    if record_id is None or not is_valid_id(record_id):
        return None
    return KEY_PREFIXES.get(record_id[:3])


def object_type_expr(column: str | pl.Expr) -> pl.Expr:
    """Vectorised ``object_type``: null for unknown prefixes and values that are not Ids."""
    expr = pl.col(column) if isinstance(column, str) else column
    well_formed = expr.str.contains(r"^[0-9A-Za-z]{15}([A-Z0-5]{3})?$")
    prefix = expr.str.slice(0, 3)
    return pl.when(well_formed).then(
        prefix.replace_strict(KEY_PREFIXES, default=None, return_dtype=pl.String)
    )


def classify_subscriber_key(key: str | None) -> str:
    """What kind of value a Marketing Cloud Subscriber Key is.

    Returns:
        ``"contact_or_lead_id"`` for a valid 18-character Contact or Lead Id; ``"id15"`` for a
        15-character Contact or Lead Id (repairable with ``to_18``); ``"email"`` for an email
        address; ``"blank"`` for an empty key (a subscriber deleted in Marketing Cloud);
        ``"other"`` for anything else, including Ids of other objects.
    """
    if key is None or key.strip() == "":
        return KEY_BLANK
    if len(key) == 18 and is_valid_id(key) and object_type(key) in ("Contact", "Lead"):
        return KEY_CONTACT_OR_LEAD_ID
    if len(key) == 15 and is_valid_id(key) and object_type(key) in ("Contact", "Lead"):
        return KEY_ID15
    if re.match(_EMAIL, key):
        return KEY_EMAIL
    return KEY_OTHER


def classify_subscriber_key_expr(column: str | pl.Expr) -> pl.Expr:
    """Vectorised ``classify_subscriber_key``: the same kinds, as a string column."""
    expr = pl.col(column) if isinstance(column, str) else column
    person = expr.str.slice(0, 3).is_in(["003", "00Q"])
    valid18 = expr.str.len_chars().eq(18) & to_18_expr(expr.str.slice(0, 15)).eq(expr)
    return (
        pl.when(expr.is_null() | expr.str.strip_chars().eq(""))
        .then(pl.lit(KEY_BLANK))
        .when(person & valid18)
        .then(pl.lit(KEY_CONTACT_OR_LEAD_ID))
        .when(person & expr.str.contains(r"^[0-9A-Za-z]{15}$"))
        .then(pl.lit(KEY_ID15))
        .when(expr.str.contains(_EMAIL))
        .then(pl.lit(KEY_EMAIL))
        .otherwise(pl.lit(KEY_OTHER))
    )
