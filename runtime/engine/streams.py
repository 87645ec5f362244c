"""Forward-only byte streams for unpacking archives as they arrive.

``load`` and ``import`` read the archive straight from the API request: it is never
stored whole. These readers hash what passes through them (a layer's digests are
those of its compressed and its uncompressed bytes), decompress gzip, and give
``tarfile`` the little it needs of a seekable file (forward seeks only), while
recording every byte that is not a regular file's content: those bytes, replayed
around the unpacked files, give back the very same tar (Docker's tar-split), so
``save`` writes layers whose digests match the image config.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from typing import Protocol

__all__ = ["ArchiveError", "Source", "Prefixed", "HashingReader", "GunzipReader", "TarStream", "open_layer_stream", "GZIP_MAGIC", "ZSTD_MAGIC"]

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ArchiveError(Exception):
    """The archive is corrupt, truncated or unsafe: one line for the user."""


class Source(Protocol):
    def read(self, n: int = -1) -> bytes: ...


class Prefixed:
    """``head`` (bytes already read to sniff the format), then the rest of ``src``."""

    def __init__(self, head: bytes, src: Source) -> None:
        self.head, self.src = head, src

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = self.head, b""
            return out
        return self.src.read(n)


class Prefetcher:
    """Reads ``src`` ahead in a thread (a socket's or a file's reads release the GIL), so the
    archive keeps arriving while the layers are unpacked. ``close`` stops the thread."""

    def __init__(self, src: Source, depth: int = 16) -> None:
        import queue
        import threading

        self.src = src
        self.q: queue.Queue[bytes | BaseException] = queue.Queue(depth)
        self.stop = False
        self.done = False
        self.thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop:
                data = self.src.read(CHUNK)
                self.q.put(data)
                if not data:
                    return
        except BaseException as exc:  # handed to the reader
            self.q.put(exc)

    def read(self, n: int = -1) -> bytes:
        if self.done:
            return b""
        item = self.q.get()
        if isinstance(item, BaseException):
            self.done = True
            raise item
        if not item:
            self.done = True
        return item

    def close(self) -> None:
        """Stop reading ahead; what is left unread stays in ``src``."""
        self.stop = True
        while self.thread.is_alive():
            try:
                self.q.get(timeout=0.05)
            except Exception:
                pass


class HashingReader:
    """Reads ``n`` bytes at most from ``src`` (all of it when ``n`` is None), hashing them."""

    def __init__(self, src: Source, n: int | None = None, prefix: bytes = b"") -> None:
        self.src, self.left = src, n
        self.sha = hashlib.sha256()
        self.prefix = prefix
        self.count = 0
        if prefix:
            self.sha.update(prefix)
            self.count = len(prefix)
            if self.left is not None:
                self.left -= len(prefix)

    def read(self, n: int = -1) -> bytes:
        if self.prefix:
            out, self.prefix = self.prefix, b""
            return out
        if self.left is not None:
            if self.left <= 0:
                return b""
            n = self.left if n < 0 else min(n, self.left)
        data = self.src.read(n if n >= 0 else CHUNK)
        if self.left is not None:
            if not data:
                raise ArchiveError("unexpected end of archive (truncated?)")
            self.left -= len(data)
        self.sha.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        return self.sha.hexdigest()


class GunzipReader:
    """gzip decompression of a reader (several gzip members in a row included)."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.done = False

    def read(self, n: int = -1) -> bytes:
        while not self.done:
            raw = self.src.read(CHUNK)
            try:
                if not raw:
                    out = self.z.flush()
                    if not self.z.eof:
                        raise ArchiveError("unexpected end of gzip data (truncated archive?)")
                    self.done = True
                    return out
                out = self.z.decompress(raw)
                while self.z.eof and self.z.unused_data:  # another gzip member follows
                    rest = self.z.unused_data
                    self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    out += self.z.decompress(rest)
            except zlib.error as exc:
                raise ArchiveError(f"invalid gzip data: {exc}") from None
            if out:
                return out
        return b""


class TarStream:
    """A forward-only file for ``tarfile.open(mode="r:")``: buffered, hashed, recording.

    Every byte read is hashed (the uncompressed digest: a layer's diff id). Bytes read
    while ``recording`` is on go to ``raw`` (headers and padding); ``copy_to`` moves a
    member's content to a file descriptor without recording it, and notes a reference
    to it in ``segments`` as ``(raw bytes before it, path, size)``.
    """

    def __init__(self, src: Source, record: bool = True, hashed_by: HashingReader | None = None) -> None:
        self.src = src
        self.hashed_by = hashed_by  # ``src`` hashes every byte already: no second hash of the same bytes
        self.sha = hashlib.sha256()
        self.buf = b""
        self.off = 0  # read position inside buf
        self.pos = 0  # stream position of buf[off]
        self.eof = False
        self.record = record
        self.raw = bytearray()
        self.segments: list[tuple[int, str | None, int]] = []
        self._raw_mark = 0

    # -- what tarfile calls ------------------------------------------------
    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0:
            raise OSError("TarStream seeks from the start only")
        if pos < self.pos:
            back = self.pos - pos
            if back > self.off:
                raise OSError("TarStream cannot seek back that far")
            self.off -= back
            self.pos = pos
            if self.record:
                del self.raw[len(self.raw) - back :]  # re-read bytes are recorded again
            return pos
        while self.pos < pos:
            if not self.read(min(pos - self.pos, CHUNK)):
                break
        return self.pos

    def read(self, n: int = -1) -> bytes:
        out = self._take(n if n >= 0 else 1 << 62)
        if self.record:
            self.raw += out
        return out

    # -- ours ----------------------------------------------------------------
    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.src.read(CHUNK)
        if not data:
            self.eof = True
            return False
        if self.hashed_by is None:
            self.sha.update(data)
        self.buf = self.buf[self.off :] + data if self.off < len(self.buf) else data
        self.off = 0
        return True

    def _take(self, n: int) -> bytes:
        """Up to ``n`` bytes, fewer only at the end of the stream (``tarfile`` expects full reads)."""
        while len(self.buf) - self.off < n and self._fill():
            if n >= 1 << 62:
                continue
        end = min(len(self.buf), self.off + n)
        out = self.buf[self.off : end]
        self.pos += end - self.off
        self.off = end
        return out

    def copy_to(self, fd: int | None, size: int, path: str | None) -> None:
        """Move ``size`` content bytes to ``fd`` (None: skip them) and note ``path`` for a replay."""
        left = size
        while left:
            if self.off >= len(self.buf) and not self._fill():
                raise ArchiveError("unexpected end of archive (truncated?)")
            end = min(len(self.buf), self.off + left)
            if fd is not None:
                view = memoryview(self.buf)[self.off : end]
                while view:
                    view = view[os.write(fd, view) :]
            left -= end - self.off
            self.pos += end - self.off
            self.off = end
        self.mark(path, size)

    def mark(self, path: str | None, size: int) -> None:
        if self.record:
            self.segments.append((len(self.raw) - self._raw_mark, path, size))
            self._raw_mark = len(self.raw)

    def finish(self, end: int | None = None) -> None:
        """Read to the end so that the hash covers every byte. ``tarfile`` takes a bad or cut
        header for the end of the archive: anything but zeros after it is an error here, and
        so is an archive cut before its end-of-archive block (``end``: where that begins)."""
        while True:
            data = self.read(CHUNK)
            if not data:
                break
            if data.count(0) != len(data):
                raise ArchiveError("invalid tar header (corrupt archive?)")
        if end is not None and self.pos - end < 512:
            raise ArchiveError("unexpected end of archive (truncated?)")
        self.mark(None, 0)

    def hexdigest(self) -> str:
        return self.hashed_by.hexdigest() if self.hashed_by is not None else self.sha.hexdigest()


def open_layer_stream(src: Source) -> tuple[HashingReader, TarStream]:
    """A layer blob as read from an archive: (its compressed-bytes hasher, its tar stream).

    gzip is recognised by its magic number; zstd is refused with one line."""
    head = src.read(4)
    outer = HashingReader(src, prefix=head)
    if head.startswith(GZIP_MAGIC):
        return outer, TarStream(GunzipReader(outer))
    if head.startswith(ZSTD_MAGIC):
        raise ArchiveError("zstd-compressed layers are not supported (use gzip or plain tar)")
    return outer, TarStream(outer, hashed_by=outer)
