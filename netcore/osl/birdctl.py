"""BIRD's control socket: its CLI protocol spoken directly, without ``birdc``.

The protocol (BIRD 2, ``doc/reply_codes``): the daemon greets with ``0001 BIRD <version>
ready.``; each command is one line; each reply is lines of a four-digit code followed by
``-`` (more lines follow), by a space (the reply's last line), or a line starting with a
space (one more line of the previous code). Codes 0xxx report success, 1xxx and 2xxx
carry table rows and headings, 8xxx are runtime errors and 9xxx parse errors.
"""

from __future__ import annotations

import re
import socket

from netcore.errors import KernelError

__all__ = ["BirdControl", "Reply"]

_CODE = re.compile(rb"^(\d{4})([ -])(.*)$")

Reply = list[tuple[int, str]]  # (code, text) per line, continuation lines carry their code


class BirdControl:
    """One command per connection on BIRD's control socket ``path`` (short-lived: no state to keep)."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path, self.timeout = path, timeout

    def command(self, line: str) -> Reply:
        """Send one command and return its reply; an 8xxx/9xxx answer raises ``KernelError`` with BIRD's text."""
        if "\n" in line:
            raise ValueError("one BIRD command is one line")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.path)
                reader = sock.makefile("rb")
                self._reply(reader)  # the greeting: 0001 BIRD x.y.z ready.
                sock.sendall(line.encode() + b"\n")
                reply = self._reply(reader)
        except OSError as exc:
            raise KernelError("bird", line, f"control socket {self.path}: {exc.strerror or exc}") from None
        errors = [text for code, text in reply if code >= 8000]
        if errors:
            raise KernelError("bird", line, "; ".join(t.strip() for t in errors if t.strip()) or str(reply[-1][0]))
        return reply

    @staticmethod
    def _reply(reader: object) -> Reply:
        out: Reply = []
        code = 0
        while True:
            raw = reader.readline()  # type: ignore[attr-defined]
            if not raw:
                raise OSError("connection closed in the middle of a reply")
            raw = raw.rstrip(b"\r\n")
            m = _CODE.match(raw)
            if m:
                code = int(m.group(1))
                out.append((code, m.group(3).decode(errors="replace")))
                if m.group(2) == b" ":
                    return out
            elif raw.startswith(b" "):
                out.append((code, raw[1:].decode(errors="replace")))
            else:
                raise OSError(f"not BIRD's protocol: {raw[:80]!r}")

    def configure(self, path: str | None = None, check: bool = False) -> str:
        """Reload the config (``configure``), or only parse ``path`` (``configure check``); BIRD's last line."""
        words = ["configure"] + (["check"] if check else []) + ([f'"{path}"'] if path else [])
        return self.command(" ".join(words))[-1][1]

    def protocols(self) -> list[dict[str, str]]:
        """``show protocols``: one dict per protocol (name, proto, table, state, since, info)."""
        rows: list[dict[str, str]] = []
        for code, text in self.command("show protocols"):
            if code != 1002:
                continue
            parts = text.split(None, 5)
            if len(parts) >= 5:
                rows.append(dict(zip(("name", "proto", "table", "state", "since", "info"), parts + [""] * (6 - len(parts)))))
                rows[-1]["info"] = rows[-1]["info"].strip()
        return rows

    def down(self) -> None:
        """Ask BIRD to shut down (it withdraws the routes it put in the kernel as it exits)."""
        self.command("down")
