"""An address allocator over one range: O(1) per address, never hands an address out twice.

A cursor walks the range round-robin (like Docker, so a released address is not
reused at once); the set of taken addresses is the source of truth.
"""

from __future__ import annotations

__all__ = ["RangeAllocator"]


class RangeAllocator:
    def __init__(self, first: int, last: int, taken: set[int] | None = None) -> None:
        self.first, self.last = first, last
        self.taken: set[int] = set(taken or ())
        self._cursor = first
        self._in_range = sum(1 for a in self.taken if first <= a <= last)

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def full(self) -> bool:
        return self._in_range >= self.size

    def allocate(self) -> int | None:
        """The next free address after the cursor, or None when the range is full."""
        if self.full():
            return None
        addr = self._cursor
        while addr in self.taken:
            addr = addr + 1 if addr < self.last else self.first
        self._cursor = addr + 1 if addr < self.last else self.first
        self.mark(addr)
        return addr

    def mark(self, addr: int) -> bool:
        """Take a specific address; False if it was already taken."""
        if addr in self.taken:
            return False
        self.taken.add(addr)
        if self.first <= addr <= self.last:
            self._in_range += 1
        return True

    def release(self, addr: int) -> bool:
        if addr not in self.taken:
            return False
        self.taken.discard(addr)
        if self.first <= addr <= self.last:
            self._in_range -= 1
        return True
