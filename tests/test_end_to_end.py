"""One scenario, two doors in: the demo org read from disk and served by a Salesforce-like server.

The scale-0.1 demo org is served over HTTPS by ``tests/sfserver.py`` and read through
simple-salesforce (``SalesforceOrg``). A snapshot of it, the sync-health diagnosis, the reports
and the tracking decision must come out identical to the same steps on the local folder; and the
notebooks run with ``source="salesforce"`` unchanged, leaving no secret in what they write.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import papermill
import polars as pl
import pytest

from ierkit import decision, demo, reports, sync_health, weekly
from ierkit.orgs import LocalOrg, Org
from tests.sfserver import RunningServer, load_local_org, serve
from tests.test_salesforce import connect, fake, jwt_env

AS_OF = demo.as_of_instant(demo.DEMO_AS_OF)
DISTINCTIVE_PASSWORD = "e2e-Pa55word-QQZX-9931-never-print-me"


@pytest.fixture(scope="module")
def served(
    small_demo_path: Path, tmp_path_factory: pytest.TempPathFactory, rsa_key: tuple[Path, bytes]
) -> Iterator[RunningServer]:
    with serve(
        fake(load_local_org(small_demo_path), rsa_key), tmp_path_factory.mktemp("sf")
    ) as running:
        yield running


def _scenario(org: Org, extract: Path) -> dict[str, pl.DataFrame]:
    diagnosis = sync_health.diagnose(org, extract, as_of=AS_OF)
    return {
        "recipients": diagnosis.recipients.sort("job_id", "batch_id", "subscriber_key"),
        "coverage": diagnosis.coverage.sort("job_id"),
        "by_reason": diagnosis.by_reason.sort("reason"),
        "worklist": reports.engagement_worklist(org, as_of=demo.DEMO_AS_OF, days=30).collect(),
        "no_response": reports.no_response_by_send(org, as_of=demo.DEMO_AS_OF).collect(),
        "campaigns": reports.campaign_summary(org).collect(),
        "decision": decision.decide(org, as_of=AS_OF).collect(),
    }


def test_snapshot_diagnosis_reports_and_decision_match_the_local_org(
    served: RunningServer, small_demo_path: Path, tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> None:
    extract = small_demo_path / "tracking_extract.zip"
    salesforce = connect(served, jwt_env(rsa_key))
    snapshot = salesforce.snapshot(tmp_path / "snapshot")
    assert isinstance(snapshot, LocalOrg)
    local = _scenario(LocalOrg(small_demo_path), extract)
    assert local["recipients"].height > 1000 and local["worklist"].height > 10
    for name, org in (("snapshot", snapshot), ("live", salesforce)):
        other = _scenario(org, extract)
        for table, frame in local.items():
            assert other[table].equals(frame), f"{name}: {table} differs"


@pytest.mark.slow
def test_notebooks_run_on_salesforce_unchanged_and_leak_no_secret(
    served: RunningServer,
    small_demo_path: Path,
    tmp_path: Path,
    rsa_key: tuple[Path, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session_id = connect(served, jwt_env(rsa_key))._client().session_id
    # The kernel papermill starts inherits this environment: credentials never pass as parameters.
    monkeypatch.setenv("SF_INSTANCE_URL", served.base_url)
    monkeypatch.setenv("SF_SESSION_ID", session_id)
    monkeypatch.setenv("SF_PASSWORD", DISTINCTIVE_PASSWORD)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(served.ca_path))
    monkeypatch.setenv("IERKIT_OUTPUTS_DIR", str(tmp_path / "outputs"))
    written: list[Path] = []
    for name, extra in (
        ("sync_health.ipynb", {"extract": str(small_demo_path / "tracking_extract.zip")}),
        ("engagement_report.ipynb", {}),
    ):
        output = tmp_path / name
        papermill.execute_notebook(
            str(weekly.notebooks_dir() / name),
            str(output),
            parameters={"source": "salesforce", "as_of": demo.DEMO_AS_OF.isoformat(), **extra},
            cwd=str(weekly.notebooks_dir()),
            progress_bar=False,
        )
        html = output.with_suffix(".html")
        weekly.notebook_to_html(output, html)
        written += [output, html]
        book = nbformat.read(output, as_version=4)
        assert "source `salesforce`" in str(book.cells[3].outputs)
    written += [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()]
    for path in written:
        text = path.read_bytes().decode(errors="replace")
        assert session_id not in text and DISTINCTIVE_PASSWORD not in text, path.name
    # The notebooks really read through the server.
    assert any("/jobs/query" in path for _, path, _ in served.org.requests)
