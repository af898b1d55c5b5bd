"""Tests for ierkit.charts: charts built from report outputs, saved as real image files."""

from __future__ import annotations

import datetime as dt
import re

import altair as alt
import polars as pl
import pytest

from ierkit import charts, reasons, reports
from ierkit.charts import ChartError
from ierkit.reports import ReportTables

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def trend_frame(programmes: int = 3, weeks: int = 6) -> pl.DataFrame:
    start = dt.date(2026, 6, 1)
    return pl.DataFrame(
        [
            {
                "week_start": start + dt.timedelta(weeks=w),
                "programme": f"Programme {p:03d}",
                "sent": 1000 * (p + 1),
                "unique_opens": 200 + 10 * w + p,
                "unique_clicks": 20 + w,
            }
            for p in range(programmes)
            for w in range(weeks)
        ]
    )


def summary_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "campaign_name": ["Newsletter", "Nurture", "Outreach"],
            "sent": [1000, 500, 100],
            "delivered": [800, 500, 90],
            "unique_opens": [200, 100, 45],
            "unique_clicks": [20, 10, 9],
            "unsubscribes": [2, 1, 0],
        }
    )


def png_size(data: bytes) -> tuple[int, int]:
    # IHDR: width and height are the 4-byte big-endian integers at offsets 16 and 20.
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.parametrize(
    "make",
    [
        lambda: charts.trend_chart(trend_frame()),
        lambda: charts.rate_bars(summary_frame()),
        lambda: charts.rate_bars(summary_frame().lazy(), metric="click"),
        lambda: charts.click_heatmap_chart(
            pl.DataFrame({"weekday": [1, 5], "hour": [9, 17], "links_clicked": [3, 8]})
        ),
    ],
    ids=["trend", "open-bars", "click-bars", "heatmap"],
)
def test_charts_save_as_png_and_svg(tmp_path, make) -> None:
    chart = make()
    png = charts.save_chart(chart, tmp_path / "chart.png")
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC)
    width, height = png_size(data)
    assert width > 300 and height > 150
    assert len(data) > 10_000
    svg = charts.save_chart(chart, tmp_path / "sub" / "chart.svg").read_text()
    assert svg.lstrip().startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert len(svg) > 5_000
    assert svg.count("<path") + svg.count("<rect") > 5  # marks were drawn


def test_html_is_self_contained(tmp_path) -> None:
    html = charts.save_chart(charts.rate_bars(summary_frame()), tmp_path / "bars.html").read_text()
    # No script loaded from a CDN: the Vega bundle is inline, so the file renders offline.
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert "vegaEmbed" in html or "vega" in html
    assert len(html) > 100_000


def test_save_chart_rejects_other_suffix(tmp_path) -> None:
    with pytest.raises(ChartError, match=r"\.png, \.svg or \.html"):
        charts.save_chart(charts.rate_bars(summary_frame()), tmp_path / "chart.pdf")


def test_titles_and_axis_labels_are_readable() -> None:
    spec = charts.rate_bars(summary_frame()).to_dict()
    assert spec["title"]["text"] == "Open rate per campaign: over sent and over delivered"
    assert spec["encoding"]["x"]["title"] == "Open rate"
    assert spec["encoding"]["y"]["title"] == "Campaign"
    heat = charts.click_heatmap_chart(
        pl.DataFrame(
            {"weekday": [1], "hour": [9], "links_clicked": [1], "time_zone": ["America/Chicago"]}
        )
    ).to_dict()
    assert "America/Chicago" in heat["title"]
    assert heat["encoding"]["x"]["title"] == "Hour of day (America/Chicago)"


def test_rate_bars_show_both_bases() -> None:
    rows = charts.chart_data(charts.rate_bars(summary_frame()))
    rates = {(r["campaign_name"], r["basis"]): r["rate"] for r in rows}
    assert rates[("Newsletter", "over sent")] == pytest.approx(0.2)
    assert rates[("Newsletter", "over delivered")] == pytest.approx(0.25)
    assert rates[("Nurture", "over sent")] == rates[("Nurture", "over delivered")] == 0.2


def test_rate_bars_cap_and_merge() -> None:
    many = pl.DataFrame(
        {
            "campaign_name": [f"C{i:04d}" for i in range(3000)] + ["C0000"],
            "sent": [*range(1, 3001), 10_000],
            "delivered": [*range(1, 3001), 10_000],
            "unique_opens": [1] * 3000 + [5_000],
        }
    )
    chart = charts.rate_bars(many, max_bars=25)
    rows = charts.chart_data(chart)
    assert len(rows) == 50  # 25 bars, two bases each
    # The two "C0000" rows are one bar: (1 + 5000) / (1 + 10000).
    merged = [r for r in rows if r["campaign_name"] == "C0000" and r["basis"] == "over sent"]
    assert merged[0]["rate"] == pytest.approx(5001 / 10001)
    assert "Largest 25 of 3000" in chart.to_dict()["title"]["subtitle"]


def test_rate_bars_unknown_metric() -> None:
    with pytest.raises(ChartError, match="metric"):
        charts.rate_bars(summary_frame(), metric="bounce")


def test_trend_chart_folds_small_programmes() -> None:
    chart = charts.trend_chart(trend_frame(programmes=40, weeks=52), max_programmes=5)
    rows = charts.chart_data(chart)
    programmes = {r["programme"] for r in rows}
    assert len(programmes) == 6 and "Other programmes" in programmes
    assert len(rows) == 6 * 52 * 2
    # Nothing is lost by folding: the opens of all 40 programmes are still counted.
    opens = sum(r["count"] for r in rows if r["measure"] == "Unique opens")
    assert opens == trend_frame(programmes=40, weeks=52)["unique_opens"].sum()


def test_heatmap_has_at_most_168_cells_for_any_input_size() -> None:
    # 300,000 link clicks spread over half a year: the chart still embeds 7 x 24 cells.
    n = 300_000
    start = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    links = pl.DataFrame(
        {
            "id": [f"a0L{i}" for i in range(n)],
            "individual_email_result_id": [f"a0R{i}" for i in range(n)],
            "total_clicks": [2] * n,
        }
    ).with_columns(
        last_clicked=pl.lit(start)
        + pl.duration(minutes=(pl.int_range(n, dtype=pl.Int64) * 7919) % (180 * 24 * 60))
    )
    heat = reports.click_heatmap(ReportTables.of(links=links)).collect()
    assert heat.height <= 7 * 24
    assert heat["links_clicked"].sum() == n
    # Feeding the same cells several times over (e.g. concatenated periods) still gives 168.
    chart = charts.click_heatmap_chart(pl.concat([heat] * 40), value="total_clicks")
    rows = charts.chart_data(chart)
    assert len(rows) == 7 * 24
    assert sum(r["clicks"] for r in rows) == 40 * 2 * n


def test_heatmap_fills_empty_cells_with_zero() -> None:
    chart = charts.click_heatmap_chart(
        pl.DataFrame({"weekday": [3, 3], "hour": [14, 14], "links_clicked": [2, 5]})
    )
    rows = charts.chart_data(chart)
    assert len(rows) == 168
    filled = [r for r in rows if r["clicks"]]
    assert filled == [{"weekday": 3, "hour": 14, "clicks": 7, "weekday_name": "Wednesday"}]


def test_heatmap_rejects_mixed_time_zones() -> None:
    frame = pl.DataFrame(
        {"weekday": [1, 1], "hour": [1, 2], "links_clicked": [1, 1], "time_zone": ["UTC", "CET"]}
    )
    with pytest.raises(ChartError, match="time zones"):
        charts.click_heatmap_chart(frame)


def test_chart_from_missing_columns_explains() -> None:
    with pytest.raises(ChartError, match="week_start"):
        charts.trend_chart(summary_frame())


def test_charts_are_altair_charts() -> None:
    assert isinstance(charts.rate_bars(summary_frame()), alt.Chart)
    assert isinstance(charts.trend_chart(trend_frame()), alt.FacetChart)


def test_chart_has_one_bar_per_reason() -> None:
    by_reason = pl.DataFrame(
        {
            "reason": [reasons.EMAIL_KEY, reasons.IN_SYNC_WINDOW],
            "missing": [3, 9],
            "sends": [1, 1],
            "fix": ["a", "b"],
        }
    )
    spec = charts.missing_by_reason_chart(by_reason).to_dict()
    values = next(iter(spec["datasets"].values()))
    assert sorted((v["reason"], v["what"]) for v in values) == [
        (reasons.EMAIL_KEY, "fix"),
        (reasons.IN_SYNC_WINDOW, "wait"),
    ]


def test_deduplicated_recipients_are_by_design_not_a_fix() -> None:
    by_reason = pl.DataFrame(
        {
            "reason": [reasons.DEDUPLICATED, reasons.LEAD_CONVERTED],
            "missing": [4, 2],
            "sends": [1, 1],
            "fix": ["", ""],
        }
    )
    spec = charts.missing_by_reason_chart(by_reason).to_dict()
    values = next(iter(spec["datasets"].values()))
    assert sorted((v["reason"], v["what"]) for v in values) == [
        (reasons.DEDUPLICATED, "by design"),
        (reasons.LEAD_CONVERTED, "not repairable"),
    ]


def test_titles_state_the_finding_and_one_palette_colours_every_chart() -> None:
    months = [dt.date(2027, m, 1) for m in (1, 2, 3)]
    projection = pl.DataFrame({"month_start": months, "used_mb": [80.0, 89.0, 95.0]})
    flat = pl.DataFrame({"month_start": months, "used_mb": [80.0, 80.0, 80.0]})
    chart = charts.storage_projection_chart(
        {"keep everything": projection, "keep 90 days": flat}, allocation_mb=100.0, threshold=0.9
    )
    assert chart.to_dict()["layer"][0]["title"] == (
        "Keep everything: storage passes 90% of the allocation in Feb 2027; "
        "keep 90 days: storage stays under 90% of the allocation"
    )
    by_reason = pl.DataFrame(
        {
            "reason": ["email_key", "tracking_off"],
            "missing": [3, 1745],
            "sends": [2, 1],
            "fix": ["", ""],
        }
    )
    assert charts.missing_by_reason_chart(by_reason).to_dict()["title"] == (
        "Tracking off explains the most missing IERs: 1,745"
    )
    config = alt.theme.get()()  # type: ignore[misc]
    assert config["config"]["range"]["category"] == list(charts.PALETTE)


# --- engagement score by owner -------------------------------------------------------------------


def _scores() -> pl.DataFrame:
    # Ann clicked two sends (one row each, same score): she counts once for Alice.
    return pl.DataFrame(
        {
            "owner_name": ["Alice Rep", "Alice Rep", "Alice Rep", "Bob Rep"],
            "recipient_id": ["003A", "003A", "003B", "003C"],
            "engagement_score": [9.5, 9.5, 0.4, 5.0],
        }
    )


def test_score_distribution_chart_counts_people_per_owner_and_band() -> None:
    chart = charts.score_distribution_chart(_scores(), bins=2)
    cells = sorted((r["owner"], r["score_band"], r["people"]) for r in charts.chart_data(chart))
    # Bands of 9.5 / 2 = 4.75: Ann (9.5) tops the last band, Bob (5.0) is in it too.
    assert cells == [
        ("Alice Rep", "0.0-4.8", 1),
        ("Alice Rep", "4.8-9.5", 1),
        ("Bob Rep", "4.8-9.5", 1),
    ]
    spec = chart.to_dict()
    assert spec["encoding"]["y"]["sort"] == ["Alice Rep", "Bob Rep", "Other owners"]


def test_score_distribution_chart_folds_small_owners_and_checks_input() -> None:
    chart = charts.score_distribution_chart(_scores().lazy(), bins=2, max_owners=1)
    owners = {r["owner"]: 0 for r in charts.chart_data(chart)}
    assert set(owners) == {"Alice Rep", "Other owners"}
    with pytest.raises(ChartError, match="engagement_score"):
        charts.score_distribution_chart(_scores().drop("engagement_score"))
    with pytest.raises(ChartError, match="bins"):
        charts.score_distribution_chart(_scores(), bins=0)
