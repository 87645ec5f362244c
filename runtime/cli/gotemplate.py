"""Go's text/template, the part Docker users write in ``--format`` and ``inspect -f``.

No maintained Python implementation exists on PyPI (the one package wraps Go through cgo),
so this is a small parser and evaluator of its own. It covers what Docker's CLI offers:
fields and nested fields, ``$`` and variables (``$v :=``, ``range $i, $v :=``), ``if``/
``else if``/``else``, ``range``/``else``, ``with``, ``end``, ``break``/``continue``, comments,
the trim markers ``{{-``/``-}}``, parenthesised pipelines, ``|``, Go's builtins (``and or
not len index print printf println eq ne lt le gt ge slice``) and Docker's (``json join
split lower upper title pad truncate``). Errors read as Go's: ``template: :1:5: ...``.

Data is JSON-shaped (dicts, lists, str, int, float, bool, None). A missing key of a plain
dict prints ``<no value>`` as Go's maps do; a ``Strict`` dict (a listing row, a struct in
Docker) refuses an unknown field, as Docker's ``can't evaluate field X`` does. A callable
value is a method: ``{{.Label "k"}}`` calls it with its arguments.
"""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False  # typing costs start-up time on the CLI path
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Template", "TemplateError", "Strict", "render", "go_str"]


class TemplateError(Exception):
    """A template that does not parse or does not execute: the message is Go's one line."""


class Strict(dict):
    """A struct-like value: an unknown field is an error rather than ``<no value>``.

    ``methods``: fields that take arguments (``{{.Label "k"}}``), kept out of ``json``."""

    type_name = "*formatter.Context"

    def __init__(self, fields: dict[str, Any], methods: dict[str, Any] | None = None, type_name: str | None = None) -> None:
        super().__init__(fields)
        self.methods = methods or {}
        if type_name:
            self.type_name = type_name


NO_VALUE = "<no value>"
_MISSING = object()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# ------------------------------------------------------------------ values ---


def go_str(value: Any) -> str:
    """How Go's ``fmt.Print`` shows a value (``%v``)."""
    if value is None:
        return NO_VALUE
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{go_str(k)}:{_inner(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_inner(v) for v in value) + "]"
    return str(value)


def _inner(value: Any) -> str:
    return "<nil>" if value is None else go_str(value)


def _truth(value: Any) -> bool:
    """Go's truth: the zero value of every type (and nil, empty collections) is false."""
    if value is None or value is False:
        return False
    if isinstance(value, (str, list, tuple, dict, int, float)):
        return bool(value)
    return True


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key)
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise TemplateError(f"cannot index slice/array with type {_type(key)}")
            if not 0 <= key < len(item):
                raise TemplateError(f"index out of range: {key}")
            item = item[key]
        elif item is None:
            raise TemplateError("index of untyped nil")
        else:
            raise TemplateError(f"can't index item of type {_type(item)}")
    return item


def _type(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float64", str: "string", dict: "map", list: "slice"}.get(type(value), type(value).__name__)


def _len(value: Any) -> int:
    if isinstance(value, (str, list, tuple, dict)):
        return len(value)
    raise TemplateError(f"len of type {_type(value)}")


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def _printf(fmt: str, *args: Any) -> str:
    """Go's ``fmt.Sprintf`` for the verbs people use: %s %v %d %q %x %X %f %t %%."""
    out, pos, i = [], 0, 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2) or "", m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if i >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[i]
        i += 1
        if verb == "s" and isinstance(arg, (bool, int, float)):  # Go: %s of a number is a bad verb
            text = f"%!s({_type(arg)}={go_str(arg)})"
        elif verb in "sv":
            text = go_str(arg) if verb == "v" or not isinstance(arg, str) else arg
            if prec is not None:
                text = text[: int(prec)]
        elif verb == "q":
            text = json.dumps(go_str(arg) if not isinstance(arg, str) else arg, ensure_ascii=False)
        elif verb == "t":
            text = go_str(arg)
        elif verb in "dxXobc" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
            n = int(arg)
            text = {"d": str(n), "x": f"{n:x}", "X": f"{n:X}", "o": f"{n:o}", "b": f"{n:b}", "c": chr(n)}[verb]
            if "0" in flags and width and "-" not in flags:
                text = text.rjust(int(width), "0")
        elif verb in "xX" and isinstance(arg, str):
            text = arg.encode().hex()
            text = text.upper() if verb == "X" else text
        elif verb in "feg" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
            text = format(float(arg), f".{prec or 6}{verb}")
        else:
            text = f"%!{verb}({_type(arg)}={go_str(arg)})"
        if width and width != "*":
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width))
        out.append(text)
    out.append(fmt[pos:])
    if i < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{_type(a)}={go_str(a)}" for a in args[i:]) + ")")
    return "".join(out)


def _print(*args: Any) -> str:
    # Go's Sprint: a space between operands when neither is a string
    out = []
    for n, a in enumerate(args):
        if n and not isinstance(a, str) and not isinstance(args[n - 1], str):
            out.append(" ")
        out.append(go_str(a))
    return "".join(out)


def _compare(op: str):
    def cmp(a: Any, *bs: Any) -> bool:
        if op == "eq":
            if not bs:
                raise TemplateError("missing argument for comparison")
            return any(_eq(a, b) for b in bs)
        b = bs[0] if bs else None
        if op == "ne":
            return not _eq(a, b)
        if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
            raise TemplateError("incompatible types for comparison")
        return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]

    return cmp


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        raise TemplateError("non-comparable type")
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        if a is None or b is None:
            return a is b
        raise TemplateError("incompatible types for comparison")
    return a == b


def _slice(item: Any, *idx: int) -> Any:
    if not isinstance(item, (str, list, tuple)):
        raise TemplateError(f"can't slice item of type {_type(item)}")
    return item[idx[0] if idx else 0: idx[1] if len(idx) > 1 else len(item)]


def _title(s: str) -> str:
    # Go's strings.Title: upper-case the first letter of each word, leave the rest
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), s)


def _truncate(s: str, n: int) -> str:
    return s[:n]


def _pad(s: str, before: int, after: int) -> str:
    return " " * before + s + " " * after


FUNCS: dict[str, Any] = {
    "json": _json,
    "join": lambda items, sep: sep.join(go_str(i) for i in (items or [])),
    "split": lambda s, sep: s.split(sep) if sep else list(s),
    "lower": lambda s: s.lower(),
    "upper": lambda s: s.upper(),
    "title": _title,
    "pad": _pad,
    "truncate": _truncate,
    "len": _len,
    "index": _index,
    "slice": _slice,
    "print": _print,
    "printf": _printf,
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "eq": _compare("eq"),
    "ne": _compare("ne"),
    "lt": _compare("lt"),
    "le": _compare("le"),
    "gt": _compare("gt"),
    "ge": _compare("ge"),
    "not": lambda a: not _truth(a),
    "html": lambda *a: _print(*a).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;").replace("'", "&#39;"),
    "urlquery": lambda *a: __import__("urllib.parse").parse.quote_plus(_print(*a)),
}
_LAZY = {"and", "or"}  # short-circuit: evaluated by the evaluator


# ------------------------------------------------------------------ lexing ---


def _action_end(src: str, pos: int) -> int:
    """Where the action opened before ``pos`` ends (its ``}}``), skipping quoted text and comments; -1 if never."""
    while pos < len(src):
        c = src[pos]
        if src.startswith("}}", pos):
            return pos
        if src.startswith("/*", pos):
            close = src.find("*/", pos + 2)
            if close < 0:
                return -1
            pos = close + 2
            continue
        if c in "\"'`":
            pos += 1
            while pos < len(src) and src[pos] != c:
                if src[pos] == "\\" and c != "`":
                    pos += 1
                elif src[pos] == "\n" and c != "`":
                    return -1
                pos += 1
        pos += 1
    return -1


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\\n]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<char>'(?:[^'\\]|\\.)')
    | (?P<num>-?(?:0[xX][0-9a-fA-F]+|\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+|\d+(?:[eE][-+]?\d+)?))
    | (?P<decl>:=|=)
    | (?P<field>(?:\.[A-Za-z_]\w*)+|\.)
    | (?P<var>\$[A-Za-z_0-9]*(?:\.[A-Za-z_]\w*)*)
    | (?P<ident>[A-Za-z_]\w*)
    | (?P<punct>[|(),])
    )""",
    re.X,
)


class _Pos:
    def __init__(self, src: str, offset: int) -> None:
        self.line = src.count("\n", 0, offset) + 1
        self.col = offset - (src.rfind("\n", 0, offset) + 1)

    def __str__(self) -> str:
        return f"{self.line}:{self.col}"


def _tokens(text: str, where: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        # a field chain right after a closing parenthesis: (index .X 0).Subnet
        if text[pos] == ")" and pos + 1 < len(text) and text[pos + 1] == ".":
            m = re.compile(r"\)((?:\.[A-Za-z_]\w*)+)").match(text, pos)
            if m:
                out.append(("punct", ")"))
                out.append(("chain", m.group(1)))
                pos = m.end()
                continue
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            bad = text[pos:].strip()[:1]
            raise TemplateError(f"template: {where}: unexpected \"{bad}\" in command")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


# ------------------------------------------------------------------ parsing --
# Nodes: ("text", s) | ("action", pipe) | ("if"|"with", pipe, body, else) | ("range", pipe, body, else)
# | ("break",) | ("continue",). A pipe: (decl_vars, is_assign, [command]); a command: [operand];
# an operand: ("field", [names]) | ("var", name, [names]) | ("lit", value) | ("func", name) | ("pipe", pipe, [names]).


class _Parser:
    def __init__(self, src: str, name: str = "") -> None:
        self.src, self.name = src, name
        self.items: list[tuple[str, Any, int]] = []  # ("text", s, off) | ("action", inner, off)
        pos = 0
        while True:
            start = src.find("{{", pos)
            if start < 0:
                break
            end = _action_end(src, start + 2)
            if end < 0:
                raise TemplateError(f"template: {name}:{_Pos(src, start).line}: unclosed action")
            inner = src[start + 2:end]
            trim_left = inner[:1] == "-" and inner[1:2].isspace()
            trim_right = inner[-1:] == "-" and inner[-2:-1].isspace()
            inner = inner[2 if trim_left else 0: len(inner) - 2 if trim_right else len(inner)]
            text = src[pos:start]
            if trim_left:
                text = text.rstrip(" \t\r\n")
            if text:
                self.items.append(("text", text, pos))
            first = start + 2 + (2 if trim_left else 0)
            self.items.append(("action", inner, first + len(inner) - len(inner.lstrip())))
            pos = end + 2
            if trim_right:
                while pos < len(src) and src[pos] in " \t\r\n":
                    pos += 1
        if src[pos:]:
            self.items.append(("text", src[pos:], pos))
        self.i = 0
        self.range_depth = 0

    def where(self, off: int) -> str:
        """Go names the line of a parse error (an execution error adds the column)."""
        return f"{self.name}:{_Pos(self.src, off).line}"

    def parse(self) -> list[Any]:
        body, end = self.block(top=True)
        return body

    def block(self, top: bool = False) -> tuple[list[Any], tuple[str, list, int]]:
        nodes: list[Any] = []
        while self.i < len(self.items):
            kind, value, off = self.items[self.i]
            self.i += 1
            if kind == "text":
                nodes.append(("text", value))
                continue
            inner = value.strip()
            if inner.startswith("/*"):
                if not inner.endswith("*/"):
                    raise TemplateError(f"template: {self.where(off)}: unclosed comment")
                continue
            toks = _tokens(inner, self.where(off))
            if not toks:
                raise TemplateError(f"template: {self.where(off)}: missing value for command")
            head = toks[0]
            word = head[1] if head[0] == "ident" else None
            if word in ("end", "else"):
                if top:
                    raise TemplateError(f"template: {self.where(off)}: unexpected {{{{{word}}}}}")
                return nodes, (word, toks[1:], off)
            if word in ("if", "with", "range"):
                nodes.append(self.control(word, toks[1:], off))
            elif word in ("break", "continue"):
                if not self.range_depth:
                    raise TemplateError(f"template: {self.where(off)}: {{{{{word}}}}} outside {{{{range}}}}")
                nodes.append((word,))
            elif word in ("define", "template", "block"):
                raise TemplateError(f"template: {self.where(off)}: {{{{{word}}}}} is not supported here")
            else:
                nodes.append(("action", self.pipeline(toks, off, decl_ok=True), off))
        if not top:
            raise TemplateError(f"template: {self.name}:{_Pos(self.src, len(self.src)).line}: unexpected EOF")
        return nodes, ("eof", [], len(self.src))

    def control(self, word: str, toks: list, off: int) -> tuple:
        if not toks:
            raise TemplateError(f"template: {self.where(off)}: missing value for {word}")
        pipe = self.pipeline(toks, off, decl_ok=True, range_decl=word == "range")
        if word == "range":
            self.range_depth += 1
        body, (end, rest, end_off) = self.block()
        if word == "range":
            self.range_depth -= 1
        other: list[Any] = []
        if end == "else":
            if rest and rest[0] == ("ident", "if") and word == "if":
                other = [self.control("if", rest[1:], end_off)]  # else if: the chain shares one {{end}}
                return (word, pipe, body, other, off)
            if rest and rest[0] == ("ident", "with") and word == "with":
                other = [self.control("with", rest[1:], end_off)]
                return (word, pipe, body, other, off)
            other, (end, rest, end_off) = self.block()
            if end != "end":
                raise TemplateError(f"template: {self.where(end_off)}: expected end; found {{{{else}}}}")
        return (word, pipe, body, other, off)

    def pipeline(self, toks: list, off: int, decl_ok: bool = False, range_decl: bool = False) -> tuple:
        decl: list[str] = []
        assign = False
        if decl_ok:
            # $x := ... | $i, $v := ... | $x = ...
            if len(toks) >= 2 and toks[0][0] == "var" and toks[1][0] == "decl":
                decl, assign, toks = [toks[0][1]], toks[1][1] == "=", toks[2:]
            elif range_decl and len(toks) >= 4 and toks[0][0] == "var" and toks[1] == ("punct", ",") and toks[2][0] == "var" \
                    and toks[3][0] == "decl":
                decl, toks = [toks[0][1], toks[2][1]], toks[4:]
        commands, pos = [], 0
        cmd: list[Any] = []
        while pos < len(toks):
            kind, value = toks[pos]
            if kind == "punct" and value == "|":
                if not cmd:
                    raise TemplateError(f"template: {self.where(off)}: missing command")
                commands.append(cmd)
                cmd = []
                pos += 1
                continue
            if kind == "punct" and value == "(":
                depth, j = 1, pos + 1
                while j < len(toks) and depth:
                    if toks[j] == ("punct", "("):
                        depth += 1
                    elif toks[j] == ("punct", ")"):
                        depth -= 1
                    j += 1
                if depth:
                    raise TemplateError(f"template: {self.where(off)}: unclosed left paren")
                chain: list[str] = []
                inner = toks[pos + 1: j - 1]
                if j < len(toks) and toks[j][0] == "chain":
                    chain = toks[j][1].split(".")[1:]
                    j += 1
                cmd.append(("pipe", self.pipeline(inner, off), chain))
                pos = j
                continue
            if kind == "punct" and value == ")":
                raise TemplateError(f"template: {self.where(off)}: unexpected right paren")
            if kind == "punct" or kind == "decl":
                raise TemplateError(f"template: {self.where(off)}: unexpected \"{value}\" in operand")
            cmd.append(self.operand(kind, value, off))
            pos += 1
        if cmd:
            commands.append(cmd)
        elif commands:
            raise TemplateError(f"template: {self.where(off)}: missing command")
        if not commands:
            raise TemplateError(f"template: {self.where(off)}: missing value for command")
        return (decl, assign, commands)

    def operand(self, kind: str, value: str, off: int) -> tuple:
        if kind == "field":
            return ("field", [] if value == "." else value.split(".")[1:])
        if kind == "var":
            name, *chain = value.split(".")
            return ("var", name, chain)
        if kind == "str":
            return ("lit", json.loads(value))
        if kind == "raw":
            return ("lit", value[1:-1])
        if kind == "char":
            return ("lit", ord(json.loads('"' + value[1:-1] + '"')))
        if kind == "num":
            text = value.lower()
            if text.lstrip("-").startswith("0x"):
                return ("lit", int(text, 16))
            return ("lit", float(value) if any(c in text for c in ".e") else int(value))
        if value in ("true", "false"):
            return ("lit", value == "true")
        if value == "nil":
            return ("lit", None)
        if value not in FUNCS and value not in _LAZY:
            raise TemplateError(f'template: {self.where(off)}: function "{value}" not defined')
        return ("func", value)


# ---------------------------------------------------------------- executing --


class Template:
    """A parsed template: ``execute(data)`` returns the text."""

    def __init__(self, src: str, name: str = "", missing_key_error: bool = False, funcs: dict[str, Any] | None = None) -> None:
        """``missing_key_error``: Go's ``missingkey=error`` (Docker's ``inspect -f`` on raw JSON);
        ``funcs``: functions that replace some of ``FUNCS`` for this template (Docker's header pass)."""
        self.src, self.name, self.missing_key_error = src, name, missing_key_error
        self.funcs = {**FUNCS, **funcs} if funcs else FUNCS
        self.nodes = _Parser(src, name).parse()

    def execute(self, data: Any, partial: list[str] | None = None) -> str:
        """The text; ``partial``: a list that keeps what was written before an error."""
        out: list[str] = [] if partial is None else partial
        self._run(self.nodes, data, [{"$": data}], out)
        return "".join(out)

    def _fail(self, off: int, what: str, message: str) -> TemplateError:
        return TemplateError(f'template: {self.name}:{_Pos(self.src, off)}: executing "{self.name}" at <{what}>: {message}')

    def _run(self, nodes: list, dot: Any, scopes: list[dict], out: list[str]) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                _, pipe, off = node
                value = self._pipe(pipe, dot, scopes, off)
                if not pipe[0]:  # a declaration prints nothing
                    out.append(go_str(value))
            elif kind == "if":
                _, pipe, body, other, off = node
                scopes.append({})
                try:
                    branch = body if _truth(self._pipe(pipe, dot, scopes, off)) else other
                    self._run(branch, dot, scopes, out)
                finally:
                    scopes.pop()
            elif kind == "with":
                _, pipe, body, other, off = node
                scopes.append({})
                try:
                    value = self._pipe(pipe, dot, scopes, off)
                    if _truth(value):
                        self._run(body, value, scopes, out)
                    else:
                        self._run(other, dot, scopes, out)
                finally:
                    scopes.pop()
            elif kind == "range":
                self._range(node, dot, scopes, out)
            elif kind == "break":
                raise _Break()
            elif kind == "continue":
                raise _Continue()

    def _range(self, node: tuple, dot: Any, scopes: list[dict], out: list[str]) -> None:
        _, (decl, assign, commands), body, other, off = node
        scopes.append({})
        try:
            value = self._pipe(([], False, commands), dot, scopes, off)
            if isinstance(value, dict):
                pairs = sorted(value.items())
            elif isinstance(value, (list, tuple)):
                pairs = list(enumerate(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                pairs = [(i, i) for i in range(value)]
            elif value is None:
                pairs = []
            else:
                raise self._fail(off, "range", f"range can't iterate over {go_str(value)}")
            if not pairs:
                self._run(other, dot, scopes, out)
                return
            for key, item in pairs:
                frame = {}
                if len(decl) == 1:
                    frame[decl[0]] = item
                elif len(decl) == 2:
                    frame[decl[0]], frame[decl[1]] = key, item
                scopes.append(frame)
                try:
                    self._run(body, item, scopes, out)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    scopes.pop()
        finally:
            scopes.pop()

    def _pipe(self, pipe: tuple, dot: Any, scopes: list[dict], off: int) -> Any:
        decl, assign, commands = pipe
        value: Any = _MISSING
        for cmd in commands:
            value = self._command(cmd, dot, scopes, off, value)
        if decl:
            if assign:
                for frame in reversed(scopes):
                    if decl[0] in frame:
                        frame[decl[0]] = value
                        break
                else:
                    raise TemplateError(f"template: {self.name}:{_Pos(self.src, off)}: undefined variable: {decl[0]}")
            else:
                scopes[-1][decl[0]] = value
        return value

    def _command(self, cmd: list, dot: Any, scopes: list[dict], off: int, piped: Any) -> Any:
        head = cmd[0]
        if head[0] == "func":
            name = head[1]
            if name in _LAZY:
                items = list(cmd[1:]) + ([("lit", piped)] if piped is not _MISSING else [])
                if not items:
                    raise self._fail(off, name, f"wrong number of args for {name}: want at least 1 got 0")
                result: Any = None
                for a in items:
                    result = self._arg(a, dot, scopes, off)
                    if (name == "and") != _truth(result):
                        return result
                return result
            args = [self._arg(a, dot, scopes, off) for a in cmd[1:]]
            if piped is not _MISSING:
                args.append(piped)
            try:
                return self.funcs[name](*args)
            except TemplateError as exc:
                raise self._fail(off, name, f"error calling {name}: {exc}") from None
            except TypeError:
                raise self._fail(off, name, f"wrong number of args for {name}: got {len(args)}") from None
            except (AttributeError, ValueError) as exc:
                raise self._fail(off, name, f"error calling {name}: {exc}") from None
        if len(cmd) > 1 or piped is not _MISSING:
            # a method with arguments: {{.Label "k"}}, or a field given the pipe's value
            target = self._arg(head, dot, scopes, off, call=False)
            if not callable(target):
                what = self._label(head)
                raise self._fail(off, what, f"can't give argument to non-function {what}")
            args = [self._arg(a, dot, scopes, off) for a in cmd[1:]]
            if piped is not _MISSING:
                args.append(piped)
            try:
                return target(*args)
            except TypeError:
                raise self._fail(off, self._label(head), f"wrong number of args for {head[1][-1]}: got {len(args)}") from None
        return self._arg(head, dot, scopes, off)

    @staticmethod
    def _label(op: tuple) -> str:
        if op[0] == "field":
            return "." + ".".join(op[1])
        if op[0] == "var":
            return ".".join([op[1], *op[2]])
        return str(op[1])

    def _arg(self, op: tuple, dot: Any, scopes: list[dict], off: int, call: bool = True) -> Any:
        kind = op[0]
        if kind == "lit":
            return op[1]
        if kind == "field":
            return self._chain(dot, op[1], off, "", call)
        if kind == "var":
            for frame in reversed(scopes):
                if op[1] in frame:
                    return self._chain(frame[op[1]], op[2], off, op[1], call)
            raise TemplateError(f"template: {self.name}:{_Pos(self.src, off).line}: undefined variable \"{op[1]}\"")
        if kind == "pipe":
            return self._chain(self._pipe(op[1], dot, scopes, off), op[2], off, "", call)
        if kind == "func":
            return self._command([op], dot, scopes, off, _MISSING)
        raise TemplateError(f"template: {self.name}: bad operand")

    def _chain(self, value: Any, names: list[str], off: int, base: str, call: bool) -> Any:
        path = base
        for n, name in enumerate(names):
            path += "." + name
            if isinstance(value, dict):
                got = value.get(name, _MISSING)
                if got is _MISSING and isinstance(value, Strict):
                    got = value.methods.get(name, _MISSING)
                if got is _MISSING:
                    if isinstance(value, Strict):
                        raise self._fail(off, path, f"can't evaluate field {name} in type {value.type_name}")
                    if self.missing_key_error:
                        raise self._fail(off, path, f'map has no entry for key "{name}"')
                    if n + 1 < len(names):
                        raise self._fail(off, path, f"nil pointer evaluating interface {{}}.{names[n + 1]}")
                    return None
                value = got
                if callable(value) and (call or n + 1 < len(names)):
                    value = value()
            elif value is None:
                raise self._fail(off, path, f"nil pointer evaluating interface {{}}.{name}")
            else:
                raise self._fail(off, path, f"can't evaluate field {name} in type {_type(value)}")
        return value


def render(template: str, data: Any, missing_key_error: bool = False) -> str:
    """Parse and execute ``template`` on ``data``."""
    return Template(template, missing_key_error=missing_key_error).execute(data)
