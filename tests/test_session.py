"""A notebook's session: parameters, the report date, the cached org, the cleanup target."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ierkit import demo
from ierkit.session import ParameterError, Session, cleanup_target, list_parameter, report_date


@pytest.mark.parametrize(
    ("as_of", "source", "expected"),
    [
        ("", "demo", demo.DEMO_AS_OF),
        (None, "demo", demo.DEMO_AS_OF),
        (" 2026-10-01 ", "/some/folder", dt.date(2026, 10, 1)),
        ("", "/no/such/folder", dt.datetime.now(dt.UTC).date()),
        (dt.date(2026, 1, 2), "demo", dt.date(2026, 1, 2)),
    ],
)
def test_report_date(as_of: object, source: str, expected: dt.date) -> None:
    assert report_date(as_of, source) == expected  # type: ignore[arg-type]


def test_a_demo_folder_reports_at_its_own_date(small_demo_path: Path) -> None:
    assert report_date("", str(small_demo_path)) == demo.DEMO_AS_OF


def test_report_date_names_the_parameter() -> None:
    with pytest.raises(ParameterError, match="parameter as_of: '20/11/2026' is not"):
        report_date("20/11/2026", "demo")


def test_cleanup_target_never_touches_the_shared_demo(
    demo_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IERKIT_OUTPUTS_DIR", str(tmp_path))
    session = Session("demo", demo.DEMO_AS_OF)
    assert cleanup_target(session, execute=False) is session.org
    target = cleanup_target(session, execute=True)
    assert Path(target.path) == tmp_path / "demo-cleanup-org"  # type: ignore[attr-defined]
    assert Path(target.path) != Path(session.org.path)  # type: ignore[attr-defined]
    assert target.record_counts() == session.org.record_counts()


def test_session_tables_are_lazy_scans_of_the_org(demo_path: Path) -> None:
    session = Session.open(str(demo_path), "")
    plan = session.tables.iers.explain()
    assert "PARQUET SCAN" in plan.upper() or "SCAN PARQUET" in plan.upper()
    assert session.tables is Session.open(str(demo_path), "").tables  # built once per kernel


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        (" , ", None),
        ("Monthly Newsletter", ["Monthly Newsletter"]),
        ("a, b,", ["a", "b"]),
    ],
)
def test_list_parameter(value: str, expected: list[str] | None) -> None:
    assert list_parameter(value) == expected
