"""Running a report notebook unattended, and its HTML version that opens offline."""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import tempfile
from pathlib import Path
from typing import Any

from ierkit.weekly._errors import WeeklyRunError

#: Cells tagged so are left out of the HTML: their widgets render nothing outside JupyterLab.
WIDGET_TAG = "widgets"

#: The report notebooks of the weekly run, in the order a RevOps lead reads them.
WEEKLY_NOTEBOOKS: tuple[str, ...] = (
    "engagement_report.ipynb",
    "sync_health.ipynb",
    "tracking_decision.ipynb",
    "storage_forecast.ipynb",
)

#: nbconvert's lab template without the blocks that load JavaScript from a CDN: require.js,
#: MathJax, Mermaid and the widget renderer (from unpkg). The reports' charts are embedded PNG
#: images and no notebook uses LaTeX or Mermaid, so nothing they show needs a script; a report
#: then opens with no network, and loads nothing from anywhere when it does have one.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block extra_css -%}
<style>
  /* A report fits a 1280 px window: the page keeps to it; a wide table scrolls in its box. */
  body.jp-Notebook { max-width: 1200px; margin: 0 auto; padding: 16px; box-sizing: border-box; }
  .jp-OutputArea-output { overflow-x: auto; max-width: 100%; }
  .jp-OutputArea-output img { max-width: 100%; height: auto; }
  .jp-RenderedText pre { white-space: pre-wrap; overflow-wrap: anywhere; }
  @media print {
    body.jp-Notebook { max-width: none; padding: 0; font-size: 11pt; }
    .jp-OutputArea-output { overflow: visible; }
    .jp-Cell, table, img { break-inside: avoid; }
  }
</style>
{%- endblock extra_css -%}
"""
_OFFLINE_TEMPLATE_NAME = "ierkit_offline.html.j2"


def notebooks_dir() -> Path:
    """The folder of the suite's notebooks.

    An installed wheel ships them as package data (``ierkit/notebooks``, see pyproject.toml's
    hatch ``force-include``); an editable install or a checkout has them in ``notebooks/``
    beside the package.
    """
    packaged = importlib.resources.files("ierkit") / "notebooks"
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "notebooks"


def _batch_kernel_manager() -> type[Any]:
    """A kernel manager for unattended runs whose kernels log nothing alarming.

    Two lines used to land in every weekly log, both from jupyter_client's defaults:

    - ipykernel warns "Kernel is running over TCP without encryption" when its sockets are TCP
      ports. The batch kernel runs on this machine only, so it talks over IPC (Unix sockets):
      no port is open and there is nothing to warn about. The sockets go in a private folder
      of their own (0700, removed at shutdown): jupyter_client's default, ``kernel-ipc-<n>``
      in the working folder, left sockets in the project when a run was killed.
    - ``shutdown_kernel`` sends SIGINT to the kernel before asking it to shut down, in case it
      is busy; an idle kernel then logs "ERROR | KeyboardInterrupt caught in kernel". Our
      kernels are shut down after their last cell (or after a cell timed out, when the
      shutdown request still arrives on the control channel and the manager kills the process
      if it does not exit in time), so the interrupt is skipped while shutting down.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class BatchKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc"

        @default("ip")
        def _private_ipc_prefix(self) -> str:
            return os.path.join(tempfile.mkdtemp(prefix="ierkit-kernel-"), "kernel-ipc")

        def cleanup_ipc_files(self) -> None:
            super().cleanup_ipc_files()
            with contextlib.suppress(OSError):  # not empty: another kernel's; leave it
                os.rmdir(os.path.dirname(self.ip))

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return BatchKernelManager


def execute_notebook(
    notebook: Path,
    output: Path,
    parameters: dict[str, object],
    *,
    kernel_name: str | None = None,
    execution_timeout: int = 900,
) -> None:
    """Run one notebook with papermill; raise ``WeeklyRunError`` naming the failed cell.

    The executed notebook is written to ``output`` whether or not a cell fails.
    """
    import papermill

    # Pass only the parameters the notebook declares: papermill warns about the others.
    declared = papermill.inspect_notebook(str(notebook))
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters={k: v for k, v in parameters.items() if k in declared},
            kernel_name=kernel_name,
            execution_timeout=execution_timeout,
            progress_bar=False,
            # The caller's folder: a relative --source, --extract or output folder given on
            # the command line means the same inside the notebook.
            cwd=None,
            kernel_manager_class=_batch_kernel_manager(),
        )
    except papermill.PapermillExecutionError as error:
        raise WeeklyRunError(
            f"{notebook.name}: cell In [{error.exec_count}] failed with {error.ename}: "
            f"{error.evalue.strip()[:300]}"
        ) from error


def notebook_to_html(notebook: Path, target: Path) -> None:
    """Write ``notebook`` as HTML without its code cells, loading no script from anywhere.

    Cells tagged ``widgets`` (explorers and their headings) are removed: a static page cannot
    run them, and an empty "Explore" heading is a dead end.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(
        extra_loaders=[jinja2.DictLoader({_OFFLINE_TEMPLATE_NAME: _OFFLINE_TEMPLATE})],
        template_file=_OFFLINE_TEMPLATE_NAME,
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags={WIDGET_TAG}, enabled=True), enabled=True
    )
    node = nbformat.read(notebook, as_version=4)
    # The widgets' saved state (every option of every picker) would be written into the page
    # as a script block that nothing runs.
    node.metadata.pop("widgets", None)
    body, _ = exporter.from_notebook_node(node)
    target.write_text(body, encoding="utf-8")
