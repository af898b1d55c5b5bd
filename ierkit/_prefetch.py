"""Items of an iterator computed one ahead in a thread (``prefetched``).

Used by ``ierkit.aggregate``: the roll-up of the next chunk of events runs while polars' Parquet
writer encodes this one (polars releases the GIL), so both cores work instead of taking turns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Full, Queue
from typing import Any, TypeVar

_T = TypeVar("_T")


def prefetched(items: Iterator[_T]) -> Iterator[_T]:
    """``items``, computed one ahead in a thread: the roll-up of the next chunk runs while the
    Parquet writer encodes this one (polars releases the GIL), using both cores instead of
    taking turns on one. Memory: one chunk more. An exception is raised where it is met."""
    queue: Queue[tuple[bool, Any]] = Queue(maxsize=1)
    stop = threading.Event()

    def offer(entry: tuple[bool, Any]) -> bool:
        """Put ``entry`` in the queue unless the consumer has stopped; whether it went in."""
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((True, item)):
                    return
            offer((False, None))
        except BaseException as error:  # handed to the consumer, raised there
            offer((False, error))

    thread = threading.Thread(target=produce, name="ierkit-rollup", daemon=True)
    thread.start()
    try:
        while True:
            more, item = queue.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        thread.join()
