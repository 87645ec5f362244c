"""What every command module builds on: click, shaped like Docker's CLI and light to start.

- ``Group``: a click group whose commands are named in a table (``{"ls": "module:attr"}``)
  and imported when one runs or its help is shown, so a run imports its own module only.
- ``Command`` and ``option``: Docker's flag shapes (``-p SPEC, --publish SPEC`` in help,
  unknown arguments refused) with the one-line errors the CLI has always printed.
- ``pair``, ``INT``, ``choice``, ``parsed``: parameter types whose errors read like the rest.
- ``Cli`` / ``pass_cli``: the global options and the engine client, made on first use.
- ``one_line``: a click usage error as the one line printed after ``Error: ``.

Nothing here imports the engine: ``runtime.api.client`` is the CLI's only way to it.
"""

from __future__ import annotations

import click

from runtime.api.client import Client

TYPE_CHECKING = False  # as in runtime.api.client: no typing import of our own at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = [
    "Cli", "pass_cli", "Group", "Command", "Option", "option", "argument",
    "pair", "INT", "choice", "parsed", "rest", "one_line", "ArgumentError", "usage_exit",
]


class Cli:
    """What every command gets: the global options and a client made on first use."""

    def __init__(self, host: str | None, root: str | None) -> None:
        self.host, self.root = host, root
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.host, self.root)
        return self._client


pass_cli = click.make_pass_decorator(Cli)


class Command(click.Command):
    """A command whose summary is its docstring's first line, and which refuses extra arguments
    with argparse's words (``unrecognized arguments: x``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.help and not self.short_help:
            self.short_help = self.help.strip().splitlines()[0]

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.allow_extra_args = True  # left in ctx.args, refused below in our words
        try:
            rest = super().parse_args(ctx, args)
        except click.BadOptionUsage as exc:  # raised by click's parser without its context
            exc.ctx = exc.ctx or ctx
            raise
        if ctx.args and not ctx.resilient_parsing:
            raise ArgumentError(f"unrecognized arguments: {' '.join(ctx.args)}", ctx)
        return rest


class Group(click.Group):
    """A group (a noun, or the ``netcore`` command itself) whose commands can be named in
    ``lazy`` as ``{"name": "module:attribute"}`` and are imported only when used.

    With no command it prints its help and exits 0, as ``docker network`` does.
    """

    command_class = Command
    group_class = type  # subgroups are of this class too

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, aliases: dict[str, str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("invoke_without_command", True)
        super().__init__(*args, **kwargs)
        if self.help and not self.short_help:
            self.short_help = self.help.strip().splitlines()[0]
        self.lazy = dict(lazy or {})
        self.aliases = dict(aliases or {})  # Docker's other names of a verb (``list`` -> ``ls``): run, never listed

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.BadOptionUsage as exc:  # raised by click's parser without its context
            exc.ctx = exc.ctx or ctx
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.commands, *(name for name in self.lazy if name not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd_name = self.aliases.get(cmd_name, cmd_name)
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name].partition(":")
            self.commands[cmd_name] = getattr(__import__(module, fromlist=[attr]), attr)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if not name.startswith("-") and self.get_command(ctx, name) is None and not ctx.resilient_parsing:
            choices = ", ".join(map(repr, self.list_commands(ctx)))
            raise ArgumentError(f"argument COMMAND: invalid choice: {name!r} (choose from {choices})", ctx)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        rv = super().invoke(ctx)
        if ctx.invoked_subcommand is None:  # the bare noun: its help
            click.echo(ctx.get_help())
        return rv


class Option(click.Option):
    """An option listed in help as argparse and Docker's own help list them: ``-p SPEC, --publish SPEC``."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if self.hidden:
            return None
        if self.is_flag or self.count:
            metavar = ""
        elif self.metavar:
            metavar = " " + self.metavar
        elif isinstance(self.type, click.Choice):
            metavar = " {" + ",".join(map(str, self.type.choices)) + "}"
        else:
            metavar = " " + (self.name or "").upper()
        return ", ".join(name + metavar for name in self.opts), self.help or ""


def option(*decls: str, **attrs: Any) -> Callable[[Any], Any]:
    """``click.option`` with the help layout above: use it for every option."""
    attrs.setdefault("cls", Option)
    return click.option(*decls, **attrs)


argument = click.argument


class _Pair(click.ParamType):
    name = "KEY=VALUE"

    def __init__(self, what: str) -> None:
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, rest = value.partition("=")
        if not sep or not key:
            self.fail(f"invalid {self.what} {value!r}: expected KEY=VALUE", param, ctx)
        return key, rest


def pair(what: str) -> click.ParamType:
    """A ``KEY=VALUE`` option (``-e``, ``-o``, ``--label``): a value without ``=`` is an error naming ``what``."""
    return _Pair(what)


class _Int(click.ParamType):
    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return int(value)
        except ValueError:
            self.fail(f"invalid int value: {value!r}", param, ctx)


INT = _Int()


class _Choice(click.Choice):
    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in self.choices:
            return value
        choices = ", ".join(map(repr, self.choices))
        self.fail(f"invalid choice: {value!r} (choose from {choices})", param, ctx)


def choice(*values: str) -> click.Choice:
    """One of ``values``, exactly (no case folding, no prefixes)."""
    return _Choice(values)


class _Parsed(click.ParamType):
    def __init__(self, func: Callable[[str], Any], name: str) -> None:
        self.func, self.name = func, name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.func(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def parsed(func: Callable[[str], Any], name: str = "text") -> click.ParamType:
    """A type from a parsing function: its ``ValueError`` becomes the option's one-line error."""
    return _Parsed(func, name)


def _hint(param: click.Parameter) -> str:
    if isinstance(param, click.Argument):
        return param.metavar or (param.name or "").upper()
    return "/".join(param.opts)


class ArgumentError(click.UsageError):
    """Wrong positional arguments (too few, too many) or an unknown command: Docker's cobra
    returns these as plain errors (exit 1); only flag errors are its ``StatusError`` 125."""

    exit_code = 1


def usage_exit(exc: click.UsageError) -> int:
    """Docker's exit code for a usage error: 1 for the arguments (``cli.RequiresMinArgs``,
    ``cli.NoArgs``, an unknown command), 125 for a flag (``FlagErrorFunc``) or a refused value."""
    if isinstance(exc, ArgumentError) or (isinstance(exc, click.BadParameter) and isinstance(exc.param, click.Argument)):
        return 1
    return 125


def one_line(exc: click.UsageError) -> str:
    """The message of a usage error in the words the CLI has always used (argparse's)."""
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        return f"the following arguments are required: {_hint(exc.param)}"
    if isinstance(exc, click.BadParameter) and exc.param is not None:
        return f"argument {_hint(exc.param)}: {exc.message}"
    if isinstance(exc, click.NoSuchOption):
        return f"unrecognized arguments: {exc.option_name}"
    if isinstance(exc, click.BadOptionUsage) and exc.ctx is not None:
        for param in exc.ctx.command.params:
            if exc.option_name in getattr(param, "opts", ()):
                what = "expected one argument" if "requires" in exc.message else exc.message
                return f"argument {_hint(param)}: {what}"
    return exc.format_message()


class _Rest(click.Argument):
    def make_metavar(self, ctx: click.Context) -> str:
        return self.metavar or "ARG..."


def rest(name: str, metavar: str) -> Callable[[Any], Any]:
    """Every argument left, untouched (a container's command): use with
    ``context_settings={"allow_interspersed_args": False}`` so that options after the
    first argument are the command's, as in ``docker run IMAGE ls -la``."""
    return click.argument(name, nargs=-1, type=click.UNPROCESSED, metavar=metavar, cls=_Rest)
