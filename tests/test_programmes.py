"""Tests for ierkit.programmes."""

from __future__ import annotations

import polars as pl
import pytest

from ierkit.programmes import UNKNOWN_PROGRAMME, programme_expr


@pytest.mark.parametrize(
    ("email_name", "programme"),
    [
        ("Monthly Newsletter - November 2026", "Monthly Newsletter"),
        ("Sales Outreach - Pricing - Follow-up", "Sales Outreach"),
        ("Welcome Email", "Welcome Email"),
        ("Event Invite-Berlin", "Event Invite-Berlin"),  # no " - ": the whole name
        ("  Padded  - x", "Padded"),
        (" - detail only", UNKNOWN_PROGRAMME),
        ("", UNKNOWN_PROGRAMME),
        (None, UNKNOWN_PROGRAMME),
    ],
)
def test_programme_expr(email_name: str | None, programme: str) -> None:
    frame = pl.DataFrame({"name": [email_name]}, schema={"name": pl.String})
    assert frame.select(programme_expr()).item() == programme


def test_programme_expr_other_column_and_separator() -> None:
    frame = pl.DataFrame({"email_name": ["Nurture | Week 3"]})
    result = frame.select(programme_expr(pl.col("email_name"), separator=" | "))
    assert result.columns == ["programme"]
    assert result.item() == "Nurture"
