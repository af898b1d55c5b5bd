"""Programmes: which marketing programme an email belongs to, from its email name.

The convention (the demo's, and a common one in real orgs) is ``"<Programme> - <detail>"``: the
programme is the text before the first ``" - "``, e.g. ``"Monthly Newsletter - November 2026"``
belongs to ``"Monthly Newsletter"``. An email name without the separator is its own programme.

Reports and the decision module share this one rule; an org with another naming convention
passes its own separator (or its own expression) rather than editing callers.
"""

from __future__ import annotations

import polars as pl

#: Separator between the programme and the detail in an email name (demo convention).
PROGRAMME_SEPARATOR = " - "

#: Programme shown for an IER whose email name is null or blank.
UNKNOWN_PROGRAMME = "(no email name)"


def programme_expr(
    email_name: str | pl.Expr = "name", *, separator: str = PROGRAMME_SEPARATOR
) -> pl.Expr:
    """The programme of an email name: the text before the first ``separator``, trimmed.

    Args:
        email_name: The email-name column (a name or an expression); the IER table's ``name``
            by default.
        separator: What separates the programme from the detail.

    Returns:
        A String expression named ``programme``; ``UNKNOWN_PROGRAMME`` where the name is null or
        blank.
    """
    column = pl.col(email_name) if isinstance(email_name, str) else email_name
    head = column.str.split(separator).list.first().str.strip_chars()
    return (
        pl.when(head.is_null() | (head == ""))
        .then(pl.lit(UNKNOWN_PROGRAMME))
        .otherwise(head)
        .alias("programme")
    )
