"""A Dockerfile, parsed and checked: stages of instructions, before any build work.

Lines, comments, continuations, the ``# escape=`` directive and the JSON (exec) versus
shell forms are read by Docker's own parser (the ``dockerfile`` package wraps BuildKit's
Go parser), so they behave exactly as in Docker. Here the result is checked the way
Docker's builder checks it (known instructions, argument counts, known flags), with every
error one line that names the file and line, and grouped into build stages.
Variables are not expanded here: that needs the build's ARG/ENV state (``words.expand``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Instruction", "Stage", "Dockerfile", "DockerfileError", "parse", "INSTRUCTIONS"]

INSTRUCTIONS = frozenset({
    "FROM", "RUN", "CMD", "ENTRYPOINT", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "EXPOSE", "LABEL",
    "USER", "VOLUME", "MAINTAINER", "STOPSIGNAL", "SHELL", "HEALTHCHECK", "ONBUILD",
})
_FLAGS = {"COPY": {"from", "chown"}, "ADD": {"chown"}, "FROM": {"platform"},
          "HEALTHCHECK": {"interval", "timeout", "start-period", "retries"}}


class DockerfileError(ValueError):
    """Bad Dockerfile: the message is the one line the user sees."""


@dataclass(frozen=True)
class Instruction:
    name: str  # upper case: FROM, RUN, ...
    args: tuple[str, ...]  # the parser's words, quotes and variables still in them
    flags: tuple[tuple[str, str], ...] = ()  # (--name, value) without the dashes
    json: bool = False  # exec (JSON array) form
    original: str = ""  # the instruction as written, continuations joined: the step's text
    line: int = 0

    def flag(self, name: str) -> str | None:
        for key, value in self.flags:
            if key == name:
                return value
        return None


@dataclass
class Stage:
    index: int
    base: str  # FROM's image word (may hold meta ARG variables), or "scratch"
    name: str | None  # FROM ... AS name (lower case, as Docker keeps it)
    start: Instruction  # the FROM
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    meta_args: list[Instruction]  # ARGs before the first FROM: they may be used in FROM lines
    stages: list[Stage]
    escape: str = "\\"

    @property
    def steps(self) -> int:
        """How many steps the classic builder counts: every instruction, meta ARGs included."""
        return len(self.meta_args) + sum(1 + len(s.instructions) for s in self.stages)


def parse(text: str, filename: str = "Dockerfile") -> Dockerfile:
    """Parse and check ``text``; raise DockerfileError with ``filename:line: what``."""
    import dockerfile  # Docker's parser, loaded only by builds

    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        raise DockerfileError(_located(text, filename, str(exc))) from None
    escape = _escape_directive(text)
    meta: list[Instruction] = []
    stages: list[Stage] = []
    for c in commands:
        ins = Instruction(
            name=c.cmd.upper(),
            args=tuple(c.value),
            flags=tuple(_split_flag(filename, c.start_line, f) for f in c.flags),
            json=c.json,
            original=c.original,
            line=c.start_line,
        )
        where = f"{filename}:{ins.line}"
        if ins.name not in INSTRUCTIONS:
            raise DockerfileError(f"{where}: unknown instruction: {c.cmd.upper()}")
        if c.heredocs:
            raise DockerfileError(f"{where}: heredocs are not supported by the classic builder")
        _check(ins, where)
        if ins.name == "FROM":
            base, name = ins.args[0], None
            if len(ins.args) == 3:
                name = ins.args[2].lower()
                if any(s.name == name for s in stages):
                    raise DockerfileError(f"{where}: duplicate name {name!r} for a build stage")
            stages.append(Stage(len(stages), base, name, ins))
        elif not stages:
            if ins.name != "ARG":
                raise DockerfileError(f"{where}: no build stage in current context: the first instruction must be FROM")
            meta.append(ins)
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise DockerfileError(f"{filename}: no build stage in current context: the file has no FROM")
    return Dockerfile(meta, stages, escape)


def _check(ins: Instruction, where: str) -> None:
    """Docker's argument rules for one instruction."""
    name, n = ins.name, len(ins.args)
    allowed = _FLAGS.get(name, set())
    for key, _ in ins.flags:
        if key not in allowed:
            raise DockerfileError(f"{where}: {name}: unknown flag: {key}")
    if name == "FROM" and not (n == 1 or (n == 3 and ins.args[1].upper() == "AS")):
        raise DockerfileError(f"{where}: FROM requires either one or three arguments (FROM IMAGE [AS NAME])")
    if name in ("COPY", "ADD") and n < 2:
        raise DockerfileError(f"{where}: {name} requires at least two arguments, but only {n} provided")
    if name in ("WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER") and n != 1:
        raise DockerfileError(f"{where}: {name} requires exactly one argument")
    if name in ("RUN", "EXPOSE", "VOLUME", "ARG", "HEALTHCHECK") and n == 0 and not (name == "RUN" and ins.json):
        raise DockerfileError(f"{where}: {name} requires at least one argument")
    if name == "SHELL" and (not ins.json or n == 0):
        raise DockerfileError(f"{where}: SHELL requires the arguments to be in JSON form")
    if name == "ONBUILD":
        raise DockerfileError(f"{where}: ONBUILD is not supported by netcore build")
    if name == "HEALTHCHECK" and ins.args[0].upper() not in ("CMD", "NONE"):
        raise DockerfileError(f"{where}: HEALTHCHECK: unknown type {ins.args[0]!r} (CMD or NONE)")


def _split_flag(filename: str, line: int, flag: str) -> tuple[str, str]:
    key, sep, value = flag[2:].partition("=")
    if not sep:
        raise DockerfileError(f"{filename}:{line}: flag --{key} needs a value (--{key}=VALUE)")
    return key, value


def _escape_directive(text: str) -> str:
    """The ``# escape=`` parser directive (only at the top, before any comment or instruction)."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        key, sep, value = stripped[1:].partition("=")
        if not sep:
            break
        if key.strip().lower() == "escape" and value.strip() in ("\\", "`"):
            return value.strip()
    return "\\"


def _located(text: str, filename: str, message: str) -> str:
    """The parser's errors carry no line number: find the first line whose prefix fails too."""
    import dockerfile

    lines = text.splitlines(keepends=True)
    if "no instructions" in message:
        return f"{filename}: {message}"
    for n in range(1, len(lines) + 1):
        try:
            dockerfile.parse_string("".join(lines[:n]))
        except dockerfile.GoParseError as exc:
            if str(exc) == message:
                return f"{filename}:{n}: {message}"
    return f"{filename}: {message}"
