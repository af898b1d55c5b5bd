"""The notebooks: committed without outputs, papermill-ready, and pinned by nbval references.

nbval itself runs from the test command (``--nbval`` in pyproject.toml) over the executed
reference notebooks in ``tests/notebooks/``; these tests keep those references honest.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from tests.notebooks import refresh

NOTEBOOKS = sorted(refresh.NOTEBOOKS.glob("*.ipynb"))
EXPECTED = {
    "cleanup_run.ipynb",
    "engagement_report.ipynb",
    "storage_forecast.ipynb",
    "sync_health.ipynb",
    "tracking_decision.ipynb",
}


def _code(book: nbformat.NotebookNode) -> list[str]:
    return [
        cell.source
        for cell in book.cells
        if cell.cell_type == "code" and "injected-parameters" not in cell.metadata.get("tags", [])
    ]


def test_the_suite_has_its_notebooks() -> None:
    assert {nb.name for nb in NOTEBOOKS} >= EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    for index, cell in enumerate(book.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has stored outputs"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_a_title_then_parameters(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    title, parameters = book.cells[0], book.cells[1]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    assert "parameters" in parameters.metadata.get("tags", [])
    assert 'source = "demo"' in parameters.source
    # Every parameter line says what it is for.
    for line in parameters.source.splitlines():
        assert "  # " in line, f"{path.name}: parameter without a comment: {line!r}"
    # Secrets never come in as parameters: papermill writes parameters into the output.
    assert not any(word in parameters.source.lower() for word in ("password", "token", "secret"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_reference_holds_the_notebooks_code(path: Path) -> None:
    reference = refresh.reference_path(path)
    assert reference.exists(), (
        f"no nbval reference for {path.name}: run python -m tests.notebooks.refresh {path.name}"
    )
    stored = nbformat.read(reference, as_version=4)
    assert _code(stored) == _code(nbformat.read(path, as_version=4)), (
        f"{reference.name} is stale: run python -m tests.notebooks.refresh {path.name}"
    )
    # The reference ran clean and has outputs for nbval to compare.
    outputs = [o for c in stored.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs and not any(o.output_type == "error" for o in outputs)
    assert json.loads(json.dumps(stored.cells[1].metadata)).get("tags") == ["parameters"]
