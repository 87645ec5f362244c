"""The builder's steps against a real image store: layers, config, cache, errors.

These drive ``runtime.build`` in-process with the engine's ``ImageStore`` on a private
root (no engine, no container: RUN is covered by test_build_cli.py).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from runtime.build.builder import Builder, BuildError, BuildOptions
from runtime.build.cache import BuildCache
from runtime.build.dockerfile import parse
from runtime.engine.images import ImageStore

pytestmark = pytest.mark.root


class Build:
    """A store and a builder on one root; ``run`` builds a context made of ``files``."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "root"
        self.ctx = tmp / "ctx"
        self.ctx.mkdir()
        self.store = ImageStore(str(self.root))
        self.builder = Builder(self.store, BuildCache(str(self.root)), None, str(self.root / "build" / "tmp"))
        self.lines: list[str] = []

    def files(self, files: dict[str, str | bytes]) -> None:
        for name, data in files.items():
            p = self.ctx / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data.encode() if isinstance(data, str) else data)

    def run(self, dockerfile: str, tags=("t:latest",), args=None, no_cache=False):
        self.lines = []
        df = parse(dockerfile)
        emit = self.lines.append
        return self.builder.build(df, str(self.ctx), BuildOptions(list(tags), dict(args or {}), no_cache), emit)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def layer(self, image, i: int) -> Path:
        return Path(image.layers[i])


@pytest.fixture
def b(tmp_path):
    return Build(tmp_path)


def test_book_dockerfile_layers_config_and_progress(b):
    b.files({"server": b"\x7fELF binary"})
    os.chmod(b.ctx / "server", 0o755)
    image = b.run("FROM scratch\nMAINTAINER jackson.nic@gmail.com\n\nEXPOSE 8080\n\nCOPY ./server ./\n\nENTRYPOINT ./server\n",
                  tags=["testserver"])
    assert len(image.layers) == 1  # one filesystem-changing instruction, one layer
    server = b.layer(image, 0) / "server"
    assert server.read_bytes() == b"\x7fELF binary"
    st = server.stat()
    assert stat.S_IMODE(st.st_mode) == 0o755 and (st.st_uid, st.st_gid) == (0, 0)
    assert image.config["Entrypoint"] == ["/bin/sh", "-c", "./server"]
    assert image.config["ExposedPorts"] == {"8080/tcp": {}}
    assert image.config.get("Cmd") is None
    assert b.store.resolve("testserver").id == image.id
    lines = b.text.splitlines()
    assert lines[0] == "Step 1/5 : FROM scratch"
    assert "Step 4/5 : COPY ./server ./" in lines
    assert lines[-2:] == [f"Successfully built {image.id[7:19]}", "Successfully tagged testserver:latest"]
    history = b.store.config(image.id)["history"]
    assert len(history) == 4 and sum(1 for h in history if not h.get("empty_layer")) == 1


def test_unchanged_rebuild_uses_the_cache_for_every_step_and_gives_the_same_image(b):
    b.files({"a": "1", "b": "2"})
    df = "FROM scratch\nENV X=1\nCOPY a /a\nCOPY b /b\nLABEL l=v\n"
    first = b.run(df)
    assert "Using cache" not in b.text
    again = b.run(df)
    assert b.text.count(" ---> Using cache") == 4
    assert again.id == first.id
    # a changed file rebuilds from its step on, and the steps before still hit
    (b.ctx / "b").write_text("changed")
    third = b.run(df)
    assert b.text.count(" ---> Using cache") == 2
    assert third.id != first.id
    assert third.layers[0] == first.layers[0] and third.layers[1] != first.layers[1]
    # metadata counts: the mode of a copied file is part of its step's key
    os.chmod(b.ctx / "b", 0o600)
    b.run(df)
    assert b.text.count(" ---> Using cache") == 2
    # --no-cache rebuilds everything
    b.run(df, no_cache=True)
    assert "Using cache" not in b.text


def test_copy_rules_wildcards_directories_workdir_and_chown(b):
    b.files({"src/x.go": "x", "src/y.go": "y", "src/sub/z.txt": "z", "README.md": "r", "etc/passwd": "app:x:1000:1000::/:/bin/sh\n",
             "etc/group": "app:x:1000:\nstaff:x:50:\n"})
    os.chmod(b.ctx / "src", 0o700)
    image = b.run(
        "FROM scratch\n"
        "COPY etc /etc/\n"
        "WORKDIR /app\n"
        "COPY src/*.go ./\n"  # wildcard into WORKDIR
        "COPY src /tree\n"  # a directory copies its contents
        "COPY --chown=app:staff README.md notes\n"  # relative to WORKDIR, renamed, names from the image
        "COPY [\"README.md\", \"/abs dir/\"]\n"
    )
    top = [Path(p) for p in image.layers]
    assert (top[0] / "etc" / "passwd").exists()
    assert (top[1] / "app").is_dir()  # WORKDIR of a missing directory: a layer with it
    assert sorted(os.listdir(top[2] / "app")) == ["x.go", "y.go"]
    assert (top[3] / "tree" / "sub" / "z.txt").read_text() == "z" and not (top[3] / "tree" / "src").exists()
    assert stat.S_IMODE((top[3] / "tree").stat().st_mode) == 0o755  # made, not a copy of the source dir's mode
    notes = top[4] / "app" / "notes"
    assert (notes.stat().st_uid, notes.stat().st_gid) == (1000, 50)
    assert (top[5] / "abs dir" / "README.md").exists()
    assert image.config["WorkingDir"] == "/app"


def test_dockerignored_files_are_not_in_the_context(b, tmp_path):
    from runtime.build.context import pack, unpack

    b.files({"keep": "k", "secret.key": "s", ".dockerignore": "*.key\n"})
    ctx2 = tmp_path / "unpacked"
    ctx2.mkdir()
    unpack(pack(str(b.ctx), "Dockerfile"), str(ctx2))
    b.ctx = ctx2
    with pytest.raises(BuildError, match="excluded by .dockerignore: stat secret.key"):
        b.run("FROM scratch\nCOPY secret.key /\n")
    b.run("FROM scratch\nCOPY keep /\n")


def test_add_extracts_a_local_tar_and_copy_does_not(b):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("pkg/hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    b.files({"pkg.tar.gz": buf.getvalue()})
    image = b.run("FROM scratch\nADD pkg.tar.gz /opt/\nCOPY pkg.tar.gz /opt/\n")
    assert (Path(image.layers[0]) / "opt" / "pkg" / "hello.txt").read_text() == "hello"
    assert (Path(image.layers[1]) / "opt" / "pkg.tar.gz").read_bytes() == buf.getvalue()


def test_env_arg_and_build_args(b):
    b.files({"v1.txt": "one"})
    image = b.run(
        "ARG VERSION=0\n"
        "FROM scratch\n"
        "ARG VERSION\n"
        "ARG DIR=/data\n"
        "ENV APP_DIR=${DIR}/app NAME=\"hello world\"\n"
        "COPY v${VERSION}.txt $APP_DIR/\n"
        "LABEL version=$VERSION unset=${NOPE:-dflt}\n",
        args={"VERSION": "1", "UNUSED": "x"},
    )
    assert (Path(image.layers[0]) / "data" / "app" / "v1.txt").read_text() == "one"
    assert set(image.config["Env"]) == {"APP_DIR=/data/app", "NAME=hello world"}
    assert image.config["Labels"] == {"version": "1", "unset": "dflt"}
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in b.text


def test_entrypoint_resets_an_inherited_cmd_but_not_its_own(b):
    base = b.run('FROM scratch\nCMD ["base-cmd"]\n', tags=["base"])
    assert base.config["Cmd"] == ["base-cmd"]
    child = b.run('FROM base\nENTRYPOINT ["/app"]\n', tags=["child"])
    assert child.config["Entrypoint"] == ["/app"] and child.config.get("Cmd") is None
    own = b.run('FROM base\nCMD ["--flag"]\nENTRYPOINT ["/app"]\n', tags=["own"])
    assert own.config["Cmd"] == ["--flag"]
    shell = b.run('FROM scratch\nSHELL ["/bin/bash", "-c"]\nCMD echo hi\nUSER 1000:1000\nVOLUME /data\nSTOPSIGNAL SIGINT\n')
    assert shell.config["Cmd"] == ["/bin/bash", "-c", "echo hi"]
    assert shell.config["User"] == "1000:1000" and shell.config["Volumes"] == {"/data": {}}
    assert shell.config["StopSignal"] == "SIGINT"


def test_multi_stage_copy_from_name_and_index(b):
    b.files({"a": "A", "b": "B"})
    image = b.run(
        "FROM scratch AS first\nCOPY a /out/a\n"
        "FROM scratch AS second\nCOPY b /out/b\nCOPY --from=first /out/a /out/\n"
        "FROM scratch\nCOPY --from=0 /out /from0\nCOPY --from=second /out/ /from1/\n"
    )
    assert len(image.layers) == 2
    assert sorted(os.listdir(Path(image.layers[0]) / "from0")) == ["a"]
    assert sorted(os.listdir(Path(image.layers[1]) / "from1")) == ["a", "b"]


def test_copy_onto_an_existing_directory_of_the_base(b):
    b.files({"f": "f"})
    b.run("FROM scratch\nWORKDIR /srv\n", tags=["withdir"])
    image = b.run("FROM withdir\nCOPY f /srv\n")  # /srv is a directory of the image: f goes into it
    assert (Path(image.layers[-1]) / "srv" / "f").read_text() == "f"


@pytest.mark.parametrize(
    "dockerfile, message",
    [
        ("FROM scratch\nCOPY missing /\n", "COPY failed: file not found in build context or excluded by .dockerignore: stat missing: file does not exist"),
        ("FROM scratch\nCOPY ../outside /\n", "COPY failed: forbidden path outside the build context: ../outside"),
        ("FROM scratch\nCOPY a a /dir\n", "the destination must be a directory and end with a /"),
        ("FROM scratch\nCOPY nomatch* /\n", "COPY failed: no source files were specified"),
        ("FROM nosuch\n", "No such image: nosuch"),
        ("FROM host\n", "the built-in image host cannot be built on"),
        ("FROM scratch\nCOPY --chown=nobody a /\n", "can't find uid for user nobody"),
        ("FROM scratch\nCOPY --from=5 a /\n", "invalid from flag value 5"),
    ],
)
def test_errors_leave_nothing(b, dockerfile, message):
    b.files({"a": "a"})
    before = (sorted(os.listdir(b.root / "images" / "layers")), b.store.list())
    with pytest.raises(BuildError) as err:
        b.run(dockerfile, tags=["never"])
    assert message in str(err.value) and "\n" not in str(err.value)
    assert (sorted(os.listdir(b.root / "images" / "layers")), b.store.list()) == before
    assert os.listdir(b.root / "build" / "tmp") == []
    with pytest.raises(Exception, match="No such image"):
        b.store.resolve("never")


def test_symlinks_in_the_context_stay_inside_it(b):
    b.files({"real": "r"})
    os.symlink("/etc/passwd", b.ctx / "abs-link")  # resolved inside the context, as Docker does
    with pytest.raises(BuildError, match="file not found in build context"):
        b.run("FROM scratch\nCOPY abs-link/ /x/\n")
    os.symlink("real", b.ctx / "rel-link")
    image = b.run("FROM scratch\nCOPY rel-link /x/\n")
    assert (Path(image.layers[0]) / "x" / "rel-link").read_text() == "r"


def test_the_view_of_an_image_is_the_merged_overlay_and_mounts_nothing(tmp_path):
    from runtime.build.view import ImageView

    low, high = tmp_path / "low", tmp_path / "high"
    (low / "etc").mkdir(parents=True)
    (low / "etc" / "gone").write_text("x")
    (low / "etc" / "kept").write_text("low")
    (high / "etc").mkdir(parents=True)
    os.mknod(high / "etc" / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))  # overlayfs' whiteout
    (high / "etc" / "kept").write_text("high")
    with open("/proc/self/mountinfo") as f:
        before = f.read()
    with ImageView([str(low), str(high)]) as view:
        assert view.lookup("/etc/gone") is None
        assert Path(view.lookup("/etc/kept")).read_text() == "high"
        assert sorted(os.listdir(view.root + "/etc")) == ["kept"]
        with open("/proc/self/mountinfo") as f:
            assert f.read() == before  # detached: not in the mount tree
        fd = int(view.root.rsplit("/", 1)[1])
    with pytest.raises(OSError):
        os.fstat(fd)  # closed with the view: the kernel drops the mount
