"""Several containers' logs on one stream, each line prefixed as docker-compose prefixes it.

``name  | line``, the names padded to the longest. Following runs one reader thread per
container; ``on_exit(name)`` is called as each container's log ends (the container
exited), from that container's thread, after its last line is printed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

__all__ = ["LogPrinter"]


class LogPrinter:
    def __init__(self, names: Iterable[str], out: BinaryIO | None = None) -> None:
        names = list(names)
        self.width = max((len(n) for n in names), default=0)
        self.out = out or sys.stdout.buffer
        self.lock = threading.Lock()

    def prefix(self, name: str) -> bytes:
        return f"{name.ljust(self.width)}  | ".encode()

    def copy(self, name: str, chunks: Iterator[bytes]) -> None:
        """Print ``chunks`` (a raw log stream) line by line under ``name``'s prefix."""
        head, pending = self.prefix(name), b""
        for chunk in chunks:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if lines:
                self._write(b"".join(head + line + b"\n" for line in lines))
        if pending:
            self._write(head + pending + b"\n")

    def line(self, text: str) -> None:
        self._write(text.encode() + b"\n")

    def _write(self, data: bytes) -> None:
        with self.lock:
            self.out.write(data)
            self.out.flush()

    def follow(self, streams: dict[str, Callable[[], Iterator[bytes]]], on_exit: Callable[[str], None]) -> list[threading.Thread]:
        """Start one thread per container copying its followed log; returns the threads."""

        def run(name: str, open_stream: Callable[[], Iterator[bytes]]) -> None:
            try:
                self.copy(name, open_stream())
            except Exception as exc:  # the engine went away: say so under the container's name
                self._write(self.prefix(name) + f"(log stream ended: {exc})\n".encode())
            on_exit(name)

        threads = [threading.Thread(target=run, args=item, daemon=True, name=f"logs-{item[0]}") for item in streams.items()]
        for t in threads:
            t.start()
        return threads
