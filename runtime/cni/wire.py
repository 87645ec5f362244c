"""JSON and one HTTP/1.0 request to the engine, for ``netcore-cni`` alone.

The plugin is exec'd twice per container (ADD, DEL), so its start is most of its cost.
The ``json`` package imports ``re`` (and ``enum`` with it): ~6 ms of a ~20 ms start on an
idle machine, several times that on a loaded one. The C half of ``json`` (``_json``)
does the work without them: its scanner decodes, its string encoder encodes, and a few
lines do the rest. The request is the CLI client's (``runtime.api.client``): HTTP/1.0
on the engine's unix socket, the answer's body running to the end of the stream; that
module is not imported because it imports ``json``.
"""

from __future__ import annotations

import _json
import _socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["loads", "dumps", "post", "EngineUnreachable"]


class _Context:
    """What ``_json.make_scanner`` reads off a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity
    memo: dict = {}


_scan = _json.make_scanner(_Context())
_WS = " \t\n\r"


def loads(text: str | bytes) -> Any:
    """Decode one JSON document; ``ValueError`` if it is not one."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    text = text.strip(_WS)
    try:
        obj, end = _scan(text, 0)
    except StopIteration:
        raise ValueError("expecting a JSON value at the start") from None
    except Exception:  # the scanner builds its errors from json.decoder, which it cannot always import here
        import json  # only on bad input: the package's own message

        try:
            json.loads(text)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        raise ValueError("invalid JSON") from None
    if end != len(text):
        raise ValueError(f"extra data at character {end}")
    return obj


def dumps(obj: Any) -> str:
    if isinstance(obj, str):
        return _json.encode_basestring_ascii(obj)
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, (int, float)):
        return repr(obj)
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{_json.encode_basestring_ascii(str(k))}: {dumps(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(dumps(v) for v in obj) + "]"
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


class EngineUnreachable(Exception):
    """No engine answered on the socket (none runs, or it went away mid-request)."""


def post(sock_path: str, path: str, body: Any, timeout: float = 60) -> tuple[int, Any]:
    """``POST path`` with a JSON body; the status and the decoded answer (None if empty or not JSON)."""
    data = dumps(body).encode()
    head = (f"POST {path} HTTP/1.0\r\nHost: netcore\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(sock_path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise EngineUnreachable(f"cannot connect to the netcore engine at unix://{sock_path}: is the engine running?") from None
        chunks = []
        try:
            sock.sendall(head + data)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            raise EngineUnreachable(f"the netcore engine at unix://{sock_path} did not answer in {timeout:g} s") from None
        except OSError as exc:
            raise EngineUnreachable(f"lost the connection to the netcore engine at unix://{sock_path}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    raw = b"".join(chunks)
    head, _, payload = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(None, 2)[1])
    except (IndexError, ValueError):
        raise EngineUnreachable(f"the netcore engine at unix://{sock_path} sent a malformed answer") from None
    try:
        return status, loads(payload) if payload.strip() else None
    except ValueError:
        return status, None
