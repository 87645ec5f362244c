"""Docker's word expansion for Dockerfile arguments: quotes, escapes, ``$VAR`` and ``${VAR...}``.

The Dockerfile parser (the ``dockerfile`` package, Docker's own Go parser) splits an
instruction into words but leaves quotes and variables alone; the builder expands each
word here, the way BuildKit's ``shell.Lex.ProcessWord`` does, for the instructions
Docker expands (ADD, COPY, ENV, ARG, EXPOSE, FROM, LABEL, USER, VOLUME, WORKDIR,
STOPSIGNAL and the ``--chown``/``--from`` flags). RUN, CMD and ENTRYPOINT are left to
the shell in the container, as in Docker.

Supported: ``'...'`` (literal), ``"..."`` (``$`` expands; the escape character escapes
``"``, ``$`` and itself), the escape character outside quotes (the next character is
literal), ``$NAME``, ``${NAME}``, ``${NAME:-word}``, ``${NAME-word}``, ``${NAME:+word}``,
``${NAME+word}``, ``${NAME:?message}``, ``${NAME?message}``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["expand", "ExpandError"]


class ExpandError(ValueError):
    """A malformed word (unterminated quote or ``${``) or a ``${VAR?message}`` that fired."""


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``word`` with its quotes removed and its variables replaced from ``env`` (unset: empty)."""
    return _Lexer(word, env, escape).word()


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text, self.env, self.escape = text, env, escape
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def word(self, stop: str = "") -> str:
        """Up to the end, or up to an unquoted ``stop`` character (``}`` inside ``${...}``)."""
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch or (stop and ch == stop):
                return "".join(out)
            if ch == "'":
                out.append(self._single())
            elif ch == '"':
                out.append(self._double())
            elif ch == "$":
                out.append(self._dollar())
            elif ch == self.escape:
                self.next()
                out.append(self.next())  # an escape at the very end is dropped, as Docker does
            else:
                out.append(self.next())

    def _single(self) -> str:
        self.next()
        end = self.text.find("'", self.pos)
        if end < 0:
            raise ExpandError(f"unexpected end of statement while looking for matching single-quote in {self.text!r}")
        out, self.pos = self.text[self.pos:end], end + 1
        return out

    def _double(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise ExpandError(f"unexpected end of statement while looking for matching double-quote in {self.text!r}")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
                continue
            self.next()
            if ch == self.escape and self.peek() in ('"', "$", self.escape) and self.peek():
                ch = self.next()
            out.append(ch)

    def _name(self) -> str:
        start = self.pos
        while self.peek() and self.peek() in _NAME_CHARS:
            self.pos += 1
        return self.text[start:self.pos]

    def _dollar(self) -> str:
        self.next()  # the $
        if self.peek() != "{":
            name = self._name()
            return self.env.get(name, "") if name else "$"
        self.next()
        name = self._name()
        if not name:
            raise ExpandError(f"bad substitution in {self.text!r}: missing variable name")
        op = self.next()
        if op == "}":
            return self.env.get(name, "")
        colon = op == ":"
        if colon:
            op = self.next()
        if op not in ("-", "+", "?"):
            raise ExpandError(f"unsupported modifier ({op or 'end of word'}) in substitution in {self.text!r}")
        arg = self.word(stop="}")
        if self.next() != "}":
            raise ExpandError(f"missing '}}' in {self.text!r}")
        value = self.env.get(name)
        is_set = value is not None and (value != "" or not colon)
        if op == "-":
            return value if is_set else arg  # type: ignore[return-value]
        if op == "+":
            return arg if is_set else ""
        if not is_set:
            raise ExpandError(f"{name}: {arg or 'is not allowed to be unset'}")
        return value  # type: ignore[return-value]
