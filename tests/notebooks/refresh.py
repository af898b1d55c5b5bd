"""Re-execute the reference notebooks that nbval checks: ``python -m tests.notebooks.refresh``.

Each notebook under ``notebooks/`` is run with papermill on the default demo org and stored here
with its outputs. ``pytest`` (nbval, see pyproject.toml) re-runs every stored notebook and fails
when an output no longer matches, so a change in a number a notebook shows is a failing test
until someone looks at it and refreshes the references on purpose. ``test_notebooks.py`` checks
that each reference still holds the same code as its notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import papermill

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent.parent / "notebooks"
#: Parameters the references run with: the default demo org at its own date.
PARAMETERS = {"source": "demo", "as_of": ""}


def reference_path(notebook: Path) -> Path:
    """Where the reference of ``notebook`` is stored."""
    return HERE / notebook.name


def refresh(names: list[str] | None = None) -> list[Path]:
    """Execute the notebooks (all, or those named) and store them as references."""
    written = []
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        if names and notebook.name not in names and notebook.stem not in names:
            continue
        target = reference_path(notebook)
        papermill.execute_notebook(
            str(notebook),
            str(target),
            parameters=PARAMETERS,
            cwd=str(NOTEBOOKS),
            progress_bar=False,
        )
        book = nbformat.read(target, as_version=4)
        # papermill's timing metadata changes every run; the outputs are what nbval compares.
        book.metadata.pop("papermill", None)
        for cell in book.cells:
            cell.metadata.pop("papermill", None)
            cell.metadata.pop("execution", None)
        nbformat.write(book, target)
        written.append(target)
        print(f"refreshed {target.relative_to(HERE.parent.parent)}")
    return written


if __name__ == "__main__":
    refresh(sys.argv[1:] or None)
