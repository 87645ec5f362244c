"""RangeAllocator: round robin over one range, never an address twice."""

from __future__ import annotations

import pytest

from netcore.ipam.allocator import RangeAllocator

BASE = 10 << 24  # 10.0.0.0 as an int


def test_full_16_worth_range_allocates_every_address_once_then_none():
    first, last = BASE + 1, BASE + 65534  # a /16 without network and broadcast
    alloc = RangeAllocator(first, last)
    got = [alloc.allocate() for _ in range(alloc.size)]
    assert got == list(range(first, last + 1))  # in order, no repeats, no gaps
    assert alloc.full()
    assert alloc.allocate() is None
    assert alloc.allocate() is None  # stays None, no wrap into a taken address


def test_release_all_then_allocate_all_again():
    alloc = RangeAllocator(BASE + 1, BASE + 4094)
    got = {alloc.allocate() for _ in range(alloc.size)}
    assert len(got) == alloc.size
    for a in got:
        assert alloc.release(a)
    assert not alloc.full()
    again = {alloc.allocate() for _ in range(alloc.size)}
    assert again == got
    assert alloc.allocate() is None


def test_round_robin_released_address_not_reused_at_once():
    alloc = RangeAllocator(1, 5)
    assert [alloc.allocate(), alloc.allocate()] == [1, 2]
    assert alloc.release(1)
    assert alloc.allocate() == 3  # not 1
    assert alloc.allocate() == 4
    assert alloc.allocate() == 5
    assert alloc.allocate() == 1  # wrapped around to the freed one
    assert alloc.allocate() is None


def test_taken_at_construction_is_skipped_and_counted():
    alloc = RangeAllocator(1, 4, taken={2, 4, 99})  # 99: outside the range, not counted
    assert alloc.allocate() == 1
    assert alloc.allocate() == 3
    assert alloc.allocate() is None


def test_mark_and_release_report_state():
    alloc = RangeAllocator(1, 3)
    assert alloc.mark(2) is True
    assert alloc.mark(2) is False
    assert alloc.release(2) is True
    assert alloc.release(2) is False  # releasing twice does not free a slot twice
    assert [alloc.allocate() for _ in range(3)] == [1, 2, 3]
    assert alloc.allocate() is None


def test_mark_outside_range_does_not_use_up_the_range():
    alloc = RangeAllocator(10, 11)
    assert alloc.mark(1)  # e.g. a gateway below the ip-range
    assert [alloc.allocate(), alloc.allocate()] == [10, 11]
    assert alloc.allocate() is None


@pytest.mark.parametrize("first,last", [(5, 5), (BASE, BASE + 1)])
def test_tiny_ranges(first, last):
    alloc = RangeAllocator(first, last)
    assert alloc.size == last - first + 1
    assert sorted(alloc.allocate() for _ in range(alloc.size)) == list(range(first, last + 1))
    assert alloc.allocate() is None
