"""The shared weekly run on the demo (the ``demo_week`` fixture in tests/conftest.py).

``test_weekly.py`` and ``test_weekly_pages.py`` check the same ``ierkit weekly`` run on the demo;
it is the slowest step of the suite, so it runs once per session and both read its result.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ierkit import weekly


@dataclass(frozen=True)
class DemoWeek:
    """One ``weekly.run_weekly`` on the default demo, run as typed on the command line.

    The run starts in an empty working folder with a relative ``--source`` (the cached demo)
    and ``--out outputs``, which already holds an earlier week (2026-W46) for the index to link.
    What the tests check of the run's surroundings is recorded right after it, before any test
    reads the result (tests only read; none writes into these folders).
    """

    result: weekly.WeeklyResult
    #: The working folder the run started in.
    workdir: Path
    #: What the run and its kernels wrote to stdout and stderr (file descriptors 1 and 2).
    output: str
    #: Names in the working folder right after the run.
    workdir_after: list[str]
    #: Names beside the packaged notebooks before and right after the run.
    packaged_before: list[str]
    packaged_after: list[str]


@contextmanager
def fd_output(sink_path: Path) -> Iterator[None]:
    """Send stdout and stderr, this process's and its children's (kernels), to ``sink_path``.

    What ``capfd`` does for one test, for a session fixture (``capfd`` is per test).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = {fd: os.dup(fd) for fd in (1, 2)}
    saved_streams = sys.stdout, sys.stderr
    with sink_path.open("w", buffering=1) as sink:
        for fd in saved_fds:
            os.dup2(sink.fileno(), fd)
        sys.stdout = sys.stderr = sink
        try:
            yield
        finally:
            sink.flush()
            sys.stdout, sys.stderr = saved_streams
            for fd, saved in saved_fds.items():
                os.dup2(saved, fd)
                os.close(saved)
