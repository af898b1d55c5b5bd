"""Tests for ierkit._prefetch: an iterator computed one ahead in a thread (aggregate's roll-up)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ierkit._prefetch import prefetched


class BrokenError(Exception):
    pass


def _numbers(n: int, fail_at: int | None = None) -> Iterator[int]:
    for number in range(n):
        if number == fail_at:
            raise BrokenError(f"broken at {number}")
        yield number


def test_prefetched_keeps_order_and_raises_where_met() -> None:
    assert list(prefetched(_numbers(50))) == list(range(50))
    seen = []
    with pytest.raises(BrokenError, match="broken at 3"):
        for number in prefetched(_numbers(10, fail_at=3)):
            seen.append(number)
    assert seen == [0, 1, 2]


def test_prefetched_stops_its_thread_when_the_reader_stops() -> None:
    produced = []

    def endless() -> Iterator[int]:
        number = 0
        while True:
            produced.append(number)
            yield number
            number += 1

    items = prefetched(endless())
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()  # joins the thread: it must notice and stop, not block on a full queue
    assert len(produced) <= 6
