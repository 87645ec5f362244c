"""Parsing and checking Dockerfiles (runtime.build.dockerfile)."""

from pathlib import Path

import pytest

from runtime.build.dockerfile import DockerfileError, parse

BOOK = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "helloworld" / "Dockerfile"


def test_the_books_dockerfile():
    df = parse(BOOK.read_text())
    assert df.steps == 5
    (stage,) = df.stages
    assert stage.base == "scratch" and stage.name is None
    assert [(i.name, i.args, i.json) for i in stage.instructions] == [
        ("MAINTAINER", ("jackson.nic@gmail.com",), False),
        ("EXPOSE", ("8080",), False),
        ("COPY", ("./server", "./"), False),
        ("ENTRYPOINT", ("./server",), False),
    ]
    assert stage.instructions[-1].original == "ENTRYPOINT ./server"


def test_case_comments_continuations_and_forms():
    df = parse(
        "# a comment\n"
        "arg BASE=scratch\n"
        "from $BASE as Build\n"
        "run echo a \\\n"
        "  # a comment inside a continuation\n"
        "  b\n"
        'cmd ["x", "y z"]\n'
        'copy --from=build --chown=1:2 ["a b", "/c/"]\n'
        "FROM build\n"
    )
    assert [m.args for m in df.meta_args] == [("BASE=scratch",)]
    first, second = df.stages
    assert first.name == "build" and first.base == "$BASE"
    run, cmd, copy = first.instructions
    assert run.name == "RUN" and run.args == ("echo a   b",) and not run.json
    assert run.line == 4
    assert cmd.json and cmd.args == ("x", "y z")
    assert copy.flag("from") == "build" and copy.flag("chown") == "1:2" and copy.args == ("a b", "/c/")
    assert second.base == "build"
    assert df.steps == 6


def test_escape_directive():
    df = parse("# escape=`\nFROM scratch\nCOPY a `\n  b /\n")
    assert df.escape == "`"
    assert df.stages[0].instructions[0].args == ("a", "b", "/")


@pytest.mark.parametrize(
    "text, message",
    [
        ("FROM scratch\nFOO bar\n", "Dockerfile:2: unknown instruction: FOO"),
        ("RUN true\n", "Dockerfile:1: no build stage in current context"),
        ("FROM scratch\nCOPY a\n", "Dockerfile:2: COPY requires at least two arguments"),
        ("FROM scratch\nCOPY --chmod=7 a b\n", "Dockerfile:2: COPY: unknown flag: chmod"),
        ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments"),
        ("FROM scratch\n\nENV A\n", "Dockerfile:3: ENV must have two arguments"),
        ("FROM scratch\nWORKDIR\n", "Dockerfile:2: WORKDIR requires exactly one argument"),
        ("FROM scratch AS x\nFROM scratch AS X\n", "Dockerfile:2: duplicate name 'x'"),
        ("FROM scratch\nSHELL /bin/bash\n", "Dockerfile:2: SHELL requires the arguments to be in JSON form"),
        ("", "Dockerfile: file with no instructions"),
        ("# only a comment\n", "Dockerfile: file with no instructions"),
    ],
)
def test_errors_name_file_and_line(text, message):
    with pytest.raises(DockerfileError) as err:
        parse(text)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_errors_use_the_given_file_name():
    with pytest.raises(DockerfileError, match=r"^build/Dockerfile.dev:1: unknown instruction: NOPE$"):
        parse("NOPE x\n", "build/Dockerfile.dev")
