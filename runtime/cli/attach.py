"""The client's end of an attached container (``run -i/-t``, ``start -a/-i``, ``attach``).

Docker's order: attach (a hijacked connection), register for the next exit, start, relay
until the run ends, exit with the container's code. With a terminal the local one is put
in raw mode (Ctrl-C travels as a byte and becomes the container's SIGINT) and its size
follows to the container on SIGWINCH; without one, signals the client gets are sent on to
the container (Docker's ``--sig-proxy``). Ctrl-P Ctrl-Q detaches from a terminal.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import sys
import threading

from runtime.api.client import ApiError, q

__all__ = ["session", "attach_and_start", "proxy_signals"]

DETACH = b"\x10\x11"
PROXIED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def attach_and_start(client, cid: str, tty: bool, stdin: bool, start: bool, sig_proxy: bool = True) -> int:
    """Attach to ``cid``'s next run (or the one in progress), start it if asked, relay, and
    return its exit code (0 after a detach)."""
    conn = client.begin("POST", f"/containers/{q(cid)}/attach",
                        {"stream": 1, "stdin": int(stdin), "stdout": 1, "stderr": 1}, upgrade=True)
    waiter = client.begin("POST", f"/containers/{q(cid)}/wait", {"condition": "next-exit"})
    try:
        if start:
            client.request("POST", f"/containers/{q(cid)}/start")
        detached = session(client, cid, conn, tty, stdin, sig_proxy)
        if detached:
            return 0
        raw = waiter.read()
    finally:
        conn.close()
        waiter.close()
    code = json.loads(raw or b"{}").get("StatusCode")
    return code if code is not None else 0


def session(client, cid: str, conn, tty: bool, stdin: bool, sig_proxy: bool = True) -> bool:
    """Relay until the engine ends the stream; True if the user detached."""
    import _socket

    detached = threading.Event()
    raw_mode = tty and stdin and os.isatty(0)
    saved = None
    if raw_mode:
        import termios
        import tty as ttymod

        saved = termios.tcgetattr(0)
        ttymod.setraw(0, termios.TCSANOW)  # TCSAFLUSH would drop what the user typed ahead
    old_handlers = {}
    try:
        if tty and os.isatty(1):
            _resize(client, cid)
            old_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, lambda *_: _resize(client, cid))
        if not tty and sig_proxy:
            old_handlers.update(proxy_signals(client, cid))
        if stdin:
            threading.Thread(target=_copy_in, args=(conn.sock, raw_mode, detached, _socket), daemon=True).start()
        _copy_out(conn, tty)
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved)
    return detached.is_set()


def _copy_in(sock, raw_mode: bool, detached: threading.Event, _socket) -> None:
    prev = b""
    while True:
        try:
            data = os.read(0, 65536)
        except OSError:
            data = b""
        if not data:
            try:
                sock.shutdown(_socket.SHUT_WR)  # end of input: the engine closes a StdinOnce container's stdin
            except OSError:
                pass
            return
        if raw_mode and DETACH in prev[-1:] + data:
            detached.set()
        prev = data
        try:
            sock.sendall(data)
        except OSError:
            return


def _copy_out(conn, tty: bool) -> None:
    out, err = sys.stdout.buffer, sys.stderr.buffer
    pending = b""
    while True:
        try:
            chunk = conn.read1(65536)
        except OSError:
            chunk = b""
        if not chunk:
            return
        if tty:
            out.write(chunk)
            out.flush()
            continue
        pending += chunk
        while len(pending) >= 8:
            stream, size = struct.unpack(">BxxxL", pending[:8])
            if len(pending) < 8 + size:
                break
            target = err if stream == 2 else out
            target.write(pending[8:8 + size])
            target.flush()
            pending = pending[8 + size:]


def _resize(client, cid: str) -> None:
    try:
        size = os.get_terminal_size(1)
        client.request("POST", f"/containers/{q(cid)}/resize", query={"h": size.lines, "w": size.columns})
    except (OSError, ApiError):
        pass  # the container is gone, or there is no terminal: nothing to follow


def proxy_signals(client, cid: str) -> dict:
    """Send the signals the client gets (Ctrl-C's SIGINT, SIGTERM, ...) on to the container,
    each one, as Docker's ``--sig-proxy`` does (a second Ctrl-C is sent on too: the client
    keeps waiting for the container's exit code). Returns the handlers it replaced."""
    old = {}
    for name in PROXIED:
        sig = getattr(signal, name)
        old[sig] = signal.signal(sig, lambda signum, _f: _forward(client, cid, signum))
    return old


def restore(handlers: dict) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def _forward(client, cid: str, signum: int) -> None:
    try:
        client.request("POST", f"/containers/{q(cid)}/kill", query={"signal": signal.Signals(signum).name})
    except ApiError:
        pass
