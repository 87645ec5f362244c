"""The build context: .dockerignore rules, packing and unpacking (runtime.build.context)."""

import io
import os
import tarfile

import pytest

from runtime.build.context import ContextError, Ignore, pack, unpack


@pytest.mark.parametrize(
    "patterns, path, excluded",
    [
        (["foo"], "foo", True),
        (["foo"], "foo/bar", True),  # a directory's pattern covers what is under it
        (["foo"], "a/foo", False),  # unlike .gitignore: relative to the root only
        (["/foo"], "foo", True),
        (["*.md"], "README.md", True),
        (["*.md"], "docs/x.md", False),
        (["*/*.md"], "docs/x.md", True),
        (["**/*.md"], "docs/a/x.md", True),
        (["**/*.md"], "x.md", True),
        (["docs/**"], "docs/a/b", True),
        (["a?c"], "abc", True),
        (["a?c"], "a/c", False),
        (["[a-c]x"], "bx", True),
        (["[!a-c]x"], "bx", False),
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md"], "CHANGES.md", True),
        (["!README.md", "*.md"], "README.md", True),  # the last matching line wins
        (["# comment", "", "  build  "], "build/x", True),
        (["./build/../out"], "out", True),
    ],
)
def test_dockerignore_rules(patterns, path, excluded):
    assert Ignore(patterns).excluded(path) is excluded


def _names(data: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return set(tar.getnames())


def test_pack_leaves_out_ignored_files_but_keeps_the_dockerfile(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "server").write_bytes(b"\x7fELF")
    (tmp_path / "secret.key").write_text("k")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text("x")
    (tmp_path / "logs" / "keep.log").write_text("x")
    (tmp_path / ".dockerignore").write_text("Dockerfile\n*.key\nlogs\n!logs/keep.log\n")
    names = _names(pack(str(tmp_path), "Dockerfile"))
    assert names == {"Dockerfile", ".dockerignore", "server", "logs/keep.log"}


def test_a_dockerfile_from_outside_the_context_is_added(tmp_path):
    (tmp_path / "a").write_text("a")
    data = pack(str(tmp_path), ".dockerfile.outside", b"FROM scratch\n")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.extractfile(".dockerfile.outside").read() == b"FROM scratch\n"
        assert "a" in tar.getnames()


def test_unpack_keeps_modes_and_links(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "run.sh", 0o755)
    os.symlink("run.sh", src / "link")
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack(pack(str(src), "Dockerfile"), str(dest))
    assert os.stat(dest / "run.sh").st_mode & 0o777 == 0o755
    assert os.readlink(dest / "link") == "run.sh"


@pytest.mark.parametrize("name", ["../escape", "/abs/escape"])
def test_unpack_refuses_members_outside(tmp_path, name):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    dest = tmp_path / "dest"
    dest.mkdir()
    if name.startswith("/"):
        unpack(buf.getvalue(), str(dest))  # a leading / is stripped, as tar does
        assert (dest / "abs" / "escape").exists()
    else:
        with pytest.raises(ContextError):
            unpack(buf.getvalue(), str(dest))
    assert not (tmp_path / "escape").exists()


def test_unpack_refuses_garbage(tmp_path):
    with pytest.raises(ContextError, match="not a valid tar archive"):
        unpack(b"this is not a tar" * 100, str(tmp_path))
