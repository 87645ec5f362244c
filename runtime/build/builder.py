"""The builder: runs a parsed Dockerfile step by step, as Docker's classic builder does.

Each step starts from the state the previous one left (layers and image config). A step
that changes files (COPY, ADD, RUN, WORKDIR of a missing directory) adds one layer; the
others change the config only. Before a step runs, the cache is asked for the state
that step made last time from the same parent and inputs (``cache.step_key``); a hit
prints ``---> Using cache`` and skips the work. Progress goes to ``emit`` in the classic
builder's words. A failing step raises BuildError and leaves nothing of itself: its
layer is written in a scratch directory and committed to the image store only once the
step succeeded; the images of earlier steps stay in the cache, as Docker's intermediate
images do. The final image is made, and tagged, only when every step passed.

The image store (``ImageStore``) and the way RUN runs a container (``Runner``) are
passed in, so this module is the Dockerfile's semantics and nothing of the engine.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from runtime.build import copying
from runtime.build.cache import BuildCache, State, step_key, tree_digest
from runtime.build.dockerfile import Dockerfile, Instruction, Stage
from runtime.build.view import ImageView, ViewError
from runtime.build.words import ExpandError, expand
from runtime.engine.rootfs import Image

__all__ = ["Builder", "BuildError", "BuildOptions", "ImageStore", "Runner", "short_id", "check_tag"]

Emit = Callable[[str], None]
DEFAULT_SHELL = ["/bin/sh", "-c"]
_TAG = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$")


class BuildError(Exception):
    """A step failed: ``str()`` is the one line the user sees, ``code`` the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class ImageStore(Protocol):
    """What the builder needs of the image store (runtime/engine/images.py)."""

    def resolve(self, ref: str) -> Image: ...
    def commit_layer(self, src_dir: str) -> str: ...
    def create_image(self, layer_ids: list[str], config: dict[str, Any], ref: str | None = None,
                     history: list[dict[str, Any]] | None = None) -> Image: ...
    def layer_path(self, layer_id: str) -> str: ...
    def config(self, image_id: str) -> dict[str, Any]: ...  # the whole image JSON (rootfs.diff_ids, history)
    def tag(self, source: str, target: str) -> None: ...


class Runner(Protocol):
    """Runs one RUN step in a container; returns the exit code and the directory whose
    contents (the container's overlay upper directory) become the step's layer.
    ``release()`` removes the container and its directory once the layer is committed."""

    def run(self, image: Image, argv: list[str], env: dict[str, str], workdir: str, user: str, emit: Emit) -> "RunResult": ...


@dataclass
class RunResult:
    code: int
    upper: str
    release: Callable[[], None]


@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False


def short_id(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def check_tag(tag: str) -> str:
    """A NAME[:TAG] reference in Docker's grammar (no registry host or digest here)."""
    if not _TAG.match(tag):
        why = "invalid reference format" + (": repository name must be lowercase" if _TAG.match(tag.lower()) else "")
        raise BuildError(f'invalid argument "{tag}" for "-t, --tag" flag: {why}', code=125)
    return tag if ":" in tag.rsplit("/", 1)[-1] else tag + ":latest"


class Builder:
    def __init__(self, store: ImageStore, cache: BuildCache, runner: Runner | None, tmp_root: str) -> None:
        self.store, self.cache, self.runner = store, cache, runner
        self.tmp_root = tmp_root
        os.makedirs(tmp_root, exist_ok=True)

    # ------------------------------------------------------------ the build ----

    def build(self, df: Dockerfile, context: str, opts: BuildOptions, emit: Emit) -> Image:
        """Run every stage; the last one is the image, tagged with ``opts.tags``."""
        run = _Run(self, df, context, opts, emit)
        try:
            return run.go()
        except ViewError as exc:
            raise BuildError(str(exc)) from None

    def layer_exists(self, layer_id: str) -> bool:
        try:
            return os.path.isdir(self.store.layer_path(layer_id))
        except Exception:  # the store says it is gone
            return False

    def layer_dirs(self, state: State) -> list[str]:
        return [self.store.layer_path(layer) for layer in state.layers]


class _Run:
    """One build: its step counter, build args and the stages built so far."""

    def __init__(self, builder: Builder, df: Dockerfile, context: str, opts: BuildOptions, emit: Emit) -> None:
        self.b, self.df, self.context, self.opts, self.emit = builder, df, context, opts, emit
        self.step = 0
        self.used_args: set[str] = set()
        self.meta: dict[str, str] = {}  # meta ARG values (before the first FROM)
        self.stages: list[State] = []

    def go(self) -> Image:
        tags = [check_tag(t) for t in self.opts.tags]
        for ins in self.df.meta_args:
            self._announce(ins)
            for name, value in self._arg_pairs(ins, self.meta):
                self.meta[name] = value
        state = State()
        for stage in self.df.stages:
            state = self._stage(stage)
            self.stages.append(state)
        unused = sorted(set(self.opts.build_args) - self.used_args)
        if unused:
            self.emit(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        image = self._final_image(state, tags)
        self.emit(f" ---> {short_id(image.id)}\n")
        self.emit(f"Successfully built {short_id(image.id)}\n")
        for tag in tags:
            self.emit(f"Successfully tagged {tag}\n")
        return image

    def _final_image(self, state: State, tags: list[str]) -> Image:
        """The image of the last state: the one an earlier build made of the very same state
        if it is still there (so an unchanged rebuild gives the same id, as in Docker), else new."""
        store = self.b.store
        if state.image:
            try:
                image = store.resolve(state.image)
            except Exception:
                image = None
            if image is not None and layer_ids(store, image) == list(state.layers) and dict(image.config) == state.config:
                for tag in tags:
                    if tag not in image.names:  # re-tagging writes the store's index: skip it when nothing changes
                        store.tag(image.id, tag)
                return store.resolve(image.id)
        image = store.create_image(list(state.layers), state.config, tags[0] if tags else None, history=list(state.history))
        for tag in tags[1:]:
            store.tag(image.id, tag)
        if state.key:
            self.b.cache.put(replace(state, image=image.id))
        return image

    def _announce(self, ins: Instruction) -> None:
        self.step += 1
        self.emit(f"Step {self.step}/{self.df.steps} : {ins.original}\n")

    def _last(self) -> bool:
        return self.step == self.df.steps

    # ------------------------------------------------------------ stages -------

    def _stage(self, stage: Stage) -> State:
        self._announce(stage.start)
        base = self._expand(stage.base, self.meta, stage.start)
        state = self._base(base, stage.start)
        if not self._last():
            self.emit(f" ---> {short_id(state.base) if state.base else ''}\n")
        s = _StageRun(self, state)
        for ins in stage.instructions:
            self._announce(ins)
            s.apply(ins)
            if not self._last():
                self.emit(f" ---> {short_id(s.state.id)}\n")
        return s.state

    def _base(self, ref: str, ins: Instruction) -> State:
        if ref.lower() == "scratch":
            return State(key="scratch")
        for i, st in enumerate(self.df.stages[: len(self.stages)]):
            if st.name == ref.lower():
                return self.stages[i]
        image = self._image(ref)
        return State(tuple(layer_ids(self.b.store, image)), dict(image.config), "from:" + image.id, image.id,
                     tuple(base_history(self.b.store, image)))

    def _image(self, ref: str) -> Image:
        try:
            image = self.b.store.resolve(ref)
        except Exception as exc:
            raise BuildError(_one_line(exc)) from None
        if image.is_host:
            raise BuildError("the built-in image host cannot be built on: it is the host's own root, not layers")
        return image

    # ------------------------------------------------------------ helpers ------

    def _expand(self, word: str, env: Mapping[str, str], ins: Instruction) -> str:
        try:
            return expand(word, env, self.df.escape)
        except ExpandError as exc:
            raise BuildError(f"Dockerfile:{ins.line}: {exc}") from None

    def _arg_pairs(self, ins: Instruction, env: Mapping[str, str]) -> list[tuple[str, str]]:
        out = []
        for word in ins.args:
            name, sep, default = word.partition("=")
            if name in self.opts.build_args:
                value = self.opts.build_args[name]
                self.used_args.add(name)
            elif sep:
                value = self._expand(default, env, ins)
            elif name in self.meta and env is not self.meta:
                value = self.meta[name]  # a stage's ARG NAME takes the meta ARG's value
            else:
                continue  # declared without a value: stays unset
            out.append((name, value))
        return out


def layer_ids(store: ImageStore, image: Image) -> list[str]:
    """An image's layer ids (its config's ``rootfs.diff_ids``), lowest first."""
    return list(store.config(image.id)["rootfs"]["diff_ids"])


def base_history(store: ImageStore, image: Image) -> list[dict[str, Any]]:
    return list(store.config(image.id).get("history") or [])


class _StageRun:
    """The instructions of one stage: ARG values in scope, whether CMD was set here."""

    def __init__(self, run: _Run, state: State) -> None:
        self.run, self.b, self.state = run, run.b, state
        self.args: dict[str, str] = {}
        self.cmd_set = False

    # ------------------------------------------------------------ env ----------

    def env(self) -> dict[str, str]:
        """What ``$VAR`` sees: ARGs in scope, overridden by the image's ENV."""
        out = dict(self.args)
        for item in self.state.config.get("Env") or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def x(self, word: str, ins: Instruction) -> str:
        return self.run._expand(word, self.env(), ins)

    # ------------------------------------------------------------ steps --------

    def apply(self, ins: Instruction) -> None:
        self.current = ins
        getattr(self, "do_" + ins.name.lower())(ins)

    def _history(self, parent: State, new: State) -> State:
        """``new`` with the step's history entry (Docker's shape) and no image of its own yet."""
        ins = self.current
        created_by = " ".join(self._command(ins)) if ins.name == "RUN" else f"/bin/sh -c #(nop)  {ins.original}"
        entry: dict[str, Any] = {"created": _now(), "created_by": created_by}
        if len(new.layers) == len(parent.layers):
            entry["empty_layer"] = True
        return replace(new, history=(*parent.history, entry), image="")

    def _cached(self, text: str, inputs: str, make: Callable[[str], State]) -> None:
        key = step_key(self.state, text, inputs)
        if not self.run.opts.no_cache:
            hit = self.b.cache.get(key, self.b.layer_exists)
            if hit is not None:
                self.run.emit(" ---> Using cache\n")
                self.state = hit
                return
        new = self._history(self.state, make(key))
        self.b.cache.put(new)
        self.state = new

    def _config(self, ins: Instruction, change: Mapping[str, Any]) -> None:
        """A config-only step: cached like any other, so a rebuild says Using cache for it too."""
        text = ins.name + " " + json.dumps(change, sort_keys=True)
        config = {**self.state.config, **change}
        self._cached(text, "", lambda key: replace(self.state, config=config, key=key))

    def do_maintainer(self, ins: Instruction) -> None:
        """Accepted and deprecated, as in Docker: it sets the image's author, not its config."""
        self._config(ins, {})

    def do_arg(self, ins: Instruction) -> None:
        pairs = self.run._arg_pairs(ins, self.env())
        self.args.update(pairs)
        # keyed on the declaration as written, as Docker does: a new value misses where it is used
        self._cached("ARG " + json.dumps(ins.args), "", lambda key: replace(self.state, key=key))

    def do_env(self, ins: Instruction) -> None:
        env = self.env()
        pairs = [(self.run._expand(ins.args[i], env, ins), self.run._expand(ins.args[i + 1], env, ins)) for i in range(0, len(ins.args), 2)]
        items = [e for e in self.state.config.get("Env") or [] if e.partition("=")[0] not in {k for k, _ in pairs}]
        items += [f"{k}={v}" for k, v in pairs]
        self._config(ins, {"Env": items})

    def do_label(self, ins: Instruction) -> None:
        env = self.env()
        labels = dict(self.state.config.get("Labels") or {})
        for i in range(0, len(ins.args), 2):
            labels[self.run._expand(ins.args[i], env, ins)] = self.run._expand(ins.args[i + 1], env, ins)
        self._config(ins, {"Labels": labels})

    def do_expose(self, ins: Instruction) -> None:
        from runtime import portspec

        ports = dict(self.state.config.get("ExposedPorts") or {})
        for word in ins.args:
            try:
                ports.update(portspec.parse_expose(self.x(word, ins)))
            except portspec.PortSpecError as exc:
                raise BuildError(f"Dockerfile:{ins.line}: EXPOSE: {exc}") from None
        self._config(ins, {"ExposedPorts": ports})

    def do_user(self, ins: Instruction) -> None:
        self._config(ins, {"User": self.x(ins.args[0], ins)})

    def do_stopsignal(self, ins: Instruction) -> None:
        self._config(ins, {"StopSignal": self.x(ins.args[0], ins)})

    def do_volume(self, ins: Instruction) -> None:
        vols = dict(self.state.config.get("Volumes") or {})
        for word in ins.args:
            path = self.x(word, ins)
            if not path:
                raise BuildError(f"Dockerfile:{ins.line}: VOLUME specified can not be an empty string")
            vols[path] = {}
        self._config(ins, {"Volumes": vols})

    def do_shell(self, ins: Instruction) -> None:
        self._config(ins, {"Shell": list(ins.args)})

    def _command(self, ins: Instruction) -> list[str]:
        if ins.json:
            return list(ins.args)
        shell = self.state.config.get("Shell") or DEFAULT_SHELL
        return [*shell, " ".join(ins.args)] if ins.args else []

    def do_cmd(self, ins: Instruction) -> None:
        self.cmd_set = True
        self._config(ins, {"Cmd": self._command(ins) or None})

    def do_entrypoint(self, ins: Instruction) -> None:
        change: dict[str, Any] = {"Entrypoint": self._command(ins) or None}
        if not self.cmd_set:
            change["Cmd"] = None  # Docker: a CMD inherited from the base does not survive a new ENTRYPOINT
        self._config(ins, change)

    def do_healthcheck(self, ins: Instruction) -> None:
        if ins.args[0].upper() == "NONE":
            self._config(ins, {"Healthcheck": {"Test": ["NONE"]}})
            return
        rest = Instruction(ins.name, ins.args[1:], json=ins.json)
        check: dict[str, Any] = {"Test": (["CMD"] + list(rest.args)) if ins.json else ["CMD-SHELL", " ".join(rest.args)]}
        for key, field_ in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod")):
            if (v := ins.flag(key)) is not None:
                check[field_] = _duration_ns(v, ins)
        if (v := ins.flag("retries")) is not None:
            check["Retries"] = int(v) if v.isdigit() else _bad(ins, f"invalid retries {v!r}")
        self._config(ins, {"Healthcheck": check})

    # ------------------------------------------------------------ layers -------

    def _layer(self, text: str, inputs: str, fill: Callable[[str], None], config: Mapping[str, Any] | None = None) -> None:
        """A step that adds one layer: ``fill(dir)`` writes it; committed only if it succeeds."""

        def make(key: str) -> State:
            work = tempfile.mkdtemp(prefix="layer-", dir=self.b.tmp_root)
            try:
                fill(work)
                layer = self.b.store.commit_layer(work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            new_config = {**self.state.config, **config} if config else self.state.config
            return replace(self.state, layers=(*self.state.layers, layer), config=new_config, key=key)

        self._cached(text, inputs, make)

    def do_workdir(self, ins: Instruction) -> None:
        """Sets WorkingDir; a directory the image lacks is made in a layer of its own."""
        path = self.x(ins.args[0], ins)
        full = posixpath.normpath(posixpath.join(self.state.config.get("WorkingDir") or "/", path))
        with self._view() as view:
            if full == "/" or view.lookup(full) is not None:
                self._config(ins, {"WorkingDir": full})
                return
            entries = [copying.Entry(full, "")]
            self._layer("WORKDIR " + full, "", lambda d: copying.fill_layer(d, entries, view, (0, 0)), {"WorkingDir": full})

    def do_copy(self, ins: Instruction) -> None:
        self._copy(ins, add=False)

    def do_add(self, ins: Instruction) -> None:
        self._copy(ins, add=True)

    def _copy(self, ins: Instruction, add: bool) -> None:
        what = ins.name
        env = self.env()
        words = [self.run._expand(w, env, ins) for w in ins.args]
        names, dest = words[:-1], words[-1]
        chown = self.run._expand(ins.flag("chown") or "", env, ins) or None
        src_from = ins.flag("from")
        with self._view() as view, self._source_root(src_from, ins) as root:
            try:
                sources = copying.find_sources(root, names, what, add=add)
                entries = copying.plan(sources, dest, self.state.config.get("WorkingDir") or "/", view, what)
                owner = copying.resolve_owner(chown, view, what)
            except copying.CopyError as exc:
                raise BuildError(str(exc)) from None
            digest = tree_digest((e.dest + ("!" if e.archive else ""), e.src) for e in entries)
            text = f"{what} {json.dumps({'from': src_from, 'chown': list(owner), 'dest': dest, 'workdir': self.state.config.get('WorkingDir')})}"

            def fill(layer: str) -> None:
                try:
                    copying.fill_layer(layer, entries, view, owner)
                except copying.CopyError as exc:
                    raise BuildError(str(exc)) from None

            self._layer(text, digest, fill)

    def _view(self) -> ImageView:
        return ImageView(self.b.layer_dirs(self.state))

    def _source_root(self, src_from: str | None, ins: Instruction) -> Any:
        """The context, or ``--from``'s stage (by name or index) or image, as a directory."""
        import contextlib

        if not src_from:
            return contextlib.nullcontext(self.run.context)
        src_from = self.x(src_from, ins)
        stages = self.run.df.stages
        state: State | None = None
        if src_from.isdigit():
            index = int(src_from)
            if index >= len(self.run.stages):
                raise BuildError(f"Dockerfile:{ins.line}: invalid from flag value {src_from}: refers to current build stage or a later one")
            state = self.run.stages[index]
        else:
            for i, st in enumerate(stages[: len(self.run.stages)]):
                if st.name == src_from.lower():
                    state = self.run.stages[i]
            if state is None:
                image = self.run._image(src_from)
                state = State(tuple(layer_ids(self.b.store, image)), dict(image.config))

        @contextlib.contextmanager
        def root() -> Any:
            with ImageView(self.b.layer_dirs(state)) as view:
                if view.root is None:
                    empty = tempfile.mkdtemp(prefix="empty-", dir=self.b.tmp_root)
                    try:
                        yield empty
                    finally:
                        os.rmdir(empty)
                else:
                    yield view.root

        return root()

    def do_run(self, ins: Instruction) -> None:
        argv = self._command(ins)
        if not argv:
            raise BuildError(f"Dockerfile:{ins.line}: RUN requires at least one argument")
        if self.b.runner is None:
            raise BuildError("RUN is not available: this engine cannot start containers from images")
        config = self.state.config
        env = {**self.args, **dict(e.partition("=")[::2] for e in config.get("Env") or [])}
        args_used = {k: v for k, v in self.args.items() if not any(e.startswith(k + "=") for e in config.get("Env") or [])}
        text = "RUN " + json.dumps({"argv": argv, "args": sorted(args_used.items())})
        shown = " ".join(argv)

        def make(key: str) -> State:
            image = Image(self.state.id, tuple(self.b.layer_dirs(self.state)), config)
            result = self.b.runner.run(image, argv, env, config.get("WorkingDir") or "/", config.get("User") or "", self.run.emit)
            try:
                if result.code != 0:
                    raise BuildError(f"The command '{shown}' returned a non-zero code: {result.code}", code=result.code)
                layer = self.b.store.commit_layer(result.upper)
            finally:
                result.release()
            return replace(self.state, layers=(*self.state.layers, layer), key=key)

        self._cached(text, "", make)


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _duration_ns(text: str, ins: Instruction) -> int:
    units = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text)
    if not m:
        _bad(ins, f"invalid duration {text!r}")
    return int(float(m.group(1)) * units[m.group(2)])  # type: ignore[union-attr]


def _bad(ins: Instruction, message: str) -> Any:
    raise BuildError(f"Dockerfile:{ins.line}: {ins.name}: {message}")


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ += ["RunResult", "layer_ids"]
